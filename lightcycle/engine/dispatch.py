"""Compile a transition's hooks into calls on the objects of one run.

For each declared :class:`~lightcycle.states.model.Hook` the receivers are resolved once
per run: callbacks that do not override a hook, and module hooks that are base no-ops,
are left out, and callback methods are marked to get ``(trainer, pl_module)`` first. What
remains is a tuple of :class:`Op` s per transition, which
:mod:`~lightcycle.engine.codegen` turns into one plain function per event.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any

import attrs

from lightcycle._foreign import lightning_class
from lightcycle._hooks import is_bound_from, is_overridden, noop_function
from lightcycle.states.model import PRECISION_ACTIONS, Action, Event, Hook, Result, Target, Transition

# Op kinds, small ints so the driver's loop branches cheaply.
CALL = 0
"""Call every function; ignore results."""
RETURN = 1
"""Call the (single) function; its result is the trigger's result."""
PIPE = 2
"""Call the function; its result replaces the first argument for what follows."""
COLLECT = 3
"""Call every function; gather non-empty results by state key."""
PER_KEY = 4
"""Call each function with its own entry of a dict keyed by state key."""
ISOLATED = 5
"""Call every function even when one raises; collect the failures."""
ACTION = 6
"""Run a runtime action instead of a hook."""

Positions = tuple[int, ...] | None


@attrs.frozen
class Op:
    """One compiled hook call.

    Args:
        kind: one of the kinds above.
        name: the hook name (set as ``pl_module._current_fx_name`` while it runs).
        fns: the bound functions to call, in order.
        positions: which of the trigger's arguments are passed positionally, by
            index; ``None`` passes them all.
        kwargs: ``(keyword, index)`` pairs of keyword arguments.
        keys: the callbacks' state keys, for COLLECT and PER_KEY.
        action: the runtime action, for ACTION.
        src: ``callback``, ``module`` or ``datamodule`` (for traces and errors).
        arg_names: the hook's parameter names (positional, then keywords), for observers.
        with_trainer: call each function as ``fn(trainer, pl_module, *args)``: the
            callbacks' bound hook methods (cheaper to call than a ``functools.partial``).
    """

    kind: int
    name: str
    fns: tuple[Callable[..., Any], ...]
    positions: Positions = None
    kwargs: tuple[tuple[str, int], ...] = ()
    keys: tuple[str, ...] = ()
    action: Action | None = None
    src: str = "module"
    arg_names: tuple[str, ...] = ()
    with_trainer: bool = False


@attrs.define
class Receivers:
    """The objects of one run that hooks are called on.

    Args:
        trainer: passed first to every callback hook.
        module: the LightningModule.
        callbacks: in ``trainer.callbacks`` order.
        datamodule: or ``None``.
        is_monitoring: tells monitoring callbacks (EarlyStopping, Checkpoint) apart.
        module_base: the class whose methods count as "not overridden" for the module.
        datamodule_base: likewise for the datamodule.
        callback_base: the class whose no-op hooks callbacks may leave unreplaced (``None``:
            every callback hook found is called).
        skip: hook names not to call in this run (e.g. a dataloader hook when the
            loaders were passed to ``fit`` directly), or ``"src.name"`` for one receiver
            only (``"datamodule.prepare_data"``).
        keep_noops: also call module hooks that are base no-ops (when an observer
            records module hooks, so that the trace shows every call Lightning makes).
        noops: module hooks that the run's settings make do nothing (e.g. the default
            ``configure_gradient_clipping`` with clipping off): left out like base no-ops,
            and kept like them when ``keep_noops``.
        keep_callback_noops: also call callback hooks that are their base's no-ops (when a
            profiler times every callback hook call, as Lightning's does).
        contexts: hook name -> a context-manager factory its receivers run in (the
            precision's init context around ``configure_model``, as Lightning's).
    """

    trainer: Any
    module: Any
    callbacks: Sequence[Any]
    datamodule: Any
    is_monitoring: Callable[[Any], bool]
    module_base: type
    datamodule_base: type | None
    callback_base: type | None = None
    skip: frozenset[str] = frozenset()
    keep_noops: bool = False
    noops: frozenset[str] = frozenset()
    keep_callback_noops: bool = False
    contexts: Mapping[str, Callable[[], AbstractContextManager[Any]]] = attrs.field(factory=dict)


def _in_context(fn: Callable[..., Any], context: Callable[[], AbstractContextManager[Any]]) -> Callable[..., Any]:
    def within(*args: Any, **kwargs: Any) -> Any:
        with context():
            return fn(*args, **kwargs)

    return within


def _positions(trigger: Event, names: tuple[str, ...]) -> Positions:
    if names == trigger.params:
        return None
    idx = tuple(trigger.params.index(n) for n in names)
    if trigger.optional_tail and idx and idx[-1] == len(trigger.params) - 1:
        raise ValueError(
            f"hook arguments {names} of trigger {trigger.name!r} select its optional dataloader_idx; "
            "bind optional-tail triggers with all their parameters"
        )
    return idx


def _pass_through(self: Any, batch: Any, *args: Any) -> Any:
    return batch


_PASS_THROUGH_CODE = _pass_through.__code__.co_code


def is_pass_through(method: Any) -> bool:
    """Whether a bound method's body is just ``return <its first argument>``.

    Such a ``PIPE`` hook (the default ``on_before_batch_transfer`` /
    ``on_after_batch_transfer``) hands on the object it got: calling it changes nothing.
    Recognised by its bytecode, so a subclass that overrides the hook with real work is
    never mistaken for one.

    Args:
        method: the attribute found on the receiver.

    Returns:
        True for a bound method whose code is ``return <first argument after self>``.
    """
    code = getattr(getattr(method, "__func__", None), "__code__", None)
    return code is not None and code.co_argcount >= 2 and code.co_code == _PASS_THROUGH_CODE


def _module_fns(hook: Hook, obj: Any, base: type | None, keep_noops: bool) -> tuple[Callable[..., Any], ...]:
    if obj is None or base is None:
        return ()
    method = getattr(obj, hook.name, None)
    if method is None or not callable(method):
        return ()  # a hook set to None is skipped, as in Lightning
    if hook.only_if_overridden and not is_overridden(hook.name, obj, base):
        return ()
    if not keep_noops:
        if hook.result is Result.PIPE:
            if is_pass_through(method):
                return ()  # hands its argument on unchanged: the next hook gets the same object
        else:
            noop = noop_function(base, hook.name)
            if noop is not None and is_bound_from(method, noop):
                return ()
    return (method,)


def callback_hook_is_default(cb: Any, name: str, method: Any, noop: Any) -> bool:
    """Whether a callback's hook is its base class's no-op (left out of dispatch).

    Decided by identity with the base's own function, never by a marker a wrapper can copy.
    A callback built on Lightning's ``Callback`` inherits Lightning's hooks, which carry no
    marker but are all no-ops: for it the hook is default when it is that foreign base's own
    function, bound and unreplaced.

    Args:
        cb: the callback.
        name: the hook name.
        method: ``getattr(cb, name)``.
        noop: lightcycle's ``Callback`` no-op for ``name`` (``None`` when it has none).

    Returns:
        True when calling ``method`` would do nothing.
    """
    foreign = lightning_class(cb, "Callback")
    if foreign is not None:
        base_fn = getattr(foreign, name, None)
        return base_fn is not None and is_bound_from(method, base_fn)
    return noop is not None and is_bound_from(method, noop)


def compile_hook(hook: Hook, trigger: Event, r: Receivers) -> Op | None:
    """Resolve one declared hook against the run's objects.

    Args:
        hook: the declared hook.
        trigger: its transition's trigger (for argument positions).
        r: the run's receivers.

    Returns:
        The op to run, or ``None`` when nobody needs to be called.
    """
    if hook.name in r.skip or f"{hook.src}.{hook.name}" in r.skip:
        return None
    positions = _positions(trigger, hook.args)
    kwargs = tuple((k, trigger.params.index(k)) for k in hook.kwargs)
    src = hook.src
    keys: tuple[str, ...] = ()
    fns: tuple[Callable[..., Any], ...]
    with_trainer = False
    if hook.target.is_callbacks:
        chosen = [
            cb
            for cb in r.callbacks
            if hook.target is Target.CALLBACKS or (hook.target is Target.MONITORING_CALLBACKS) == r.is_monitoring(cb)
        ]
        # A callback without the method (a custom event's hook, declared with
        # ``Lifecycle.extend``) is simply not a receiver of that hook.
        pairs = [(cb, m) for cb in chosen if (m := getattr(cb, hook.name, None)) is not None]
        if hook.result is not Result.COLLECT and not hook.per_state_key and not r.keep_callback_noops:
            noop = noop_function(r.callback_base, hook.name)  # looked up once for all callbacks
            pairs = [(cb, m) for cb, m in pairs if not callback_hook_is_default(cb, hook.name, m, noop)]
        if hook.result is Result.COLLECT or hook.per_state_key:
            fns = tuple(m for _, m in pairs)  # state_dict/load_state_dict take no trainer
            keys = tuple(cb.state_key for cb, _ in pairs)
        else:
            fns = tuple(m for _, m in pairs)
            with_trainer = True
    elif hook.target is Target.MODULE:
        if hook.name in r.noops and not r.keep_noops:
            fns = ()  # does nothing with this run's settings, and nobody records it
        else:
            fns = _module_fns(hook, r.module, r.module_base, r.keep_noops)
    elif hook.target is Target.DATAMODULE:
        fns = _module_fns(hook, r.datamodule, r.datamodule_base, r.keep_noops)
        src = "datamodule"
    elif hook.target is Target.BATCH_HOOK:
        if (
            r.datamodule is not None
            and r.datamodule_base is not None
            and is_overridden(hook.name, r.datamodule, r.datamodule_base)
        ):
            fns = (getattr(r.datamodule, hook.name),)
            src = "datamodule"
        else:
            fns = _module_fns(hook, r.module, r.module_base, r.keep_noops)
    else:  # DATA_SOURCE
        if r.datamodule is not None:
            fns = _module_fns(hook, r.datamodule, r.datamodule_base, r.keep_noops)
            src = "datamodule"
        else:
            fns = _module_fns(hook, r.module, r.module_base, r.keep_noops)
    if hook.trim_args and fns:
        accepted = _positional_capacity(fns[0])
        if accepted < len(hook.args):
            names = hook.args[:accepted]
            positions = _positions(trigger, names)
    context = r.contexts.get(hook.name)
    if context is not None:
        fns = tuple(_in_context(fn, context) for fn in fns)
    if not fns:
        if hook.otherwise is not None:
            return Op(ACTION, hook.name, (), action=hook.otherwise, src=src)
        return None
    if hook.isolated:
        kind = ISOLATED
    elif hook.per_state_key:
        kind = PER_KEY
    elif hook.result is Result.COLLECT:
        kind = COLLECT
    elif hook.result is Result.PIPE:
        kind = PIPE
    elif hook.result is Result.RETURN:
        kind = RETURN
    else:
        kind = CALL
    return Op(kind, hook.name, fns, positions, kwargs, keys, None, src, hook.args + hook.kwargs, with_trainer)


def _positional_capacity(fn: Callable[..., Any]) -> int:
    """How many positional arguments ``fn`` accepts (a large number for ``*args``)."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):  # builtins without a signature: assume they take all
        return 1 << 30
    count = 0
    for p in params:
        if p.kind is p.VAR_POSITIONAL:
            return 1 << 30
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            count += 1
    return count


def compile_transition(transition: Transition, r: Receivers) -> tuple[Op, ...]:
    """Compile every hook of a transition, dropping the ones nobody receives."""
    ops = [compile_hook(h, transition.trigger, r) for h in transition.hooks]
    if not r.keep_noops and not any(op is not None and op.kind == PIPE for op in ops):
        # Every PIPE hook was left out as a pass-through (e.g. a transfer_batch_to_device
        # overridden to 'return batch'): keep the first one, so that the event still
        # returns the value handed through rather than None.
        for i, hook in enumerate(transition.hooks):
            if hook.result is Result.PIPE:
                kept = compile_hook(hook, transition.trigger, attrs.evolve(r, keep_noops=True))
                if kept is not None:
                    ops[i] = kept
                    break
    # precision actions run at the event's call site (lightcycle.precision), not in the event function
    before = [Op(ACTION, a.value, (), action=a) for a in transition.before if a not in PRECISION_ACTIONS]
    after = [Op(ACTION, a.value, (), action=a) for a in transition.after if a not in PRECISION_ACTIONS]
    return tuple(before + [op for op in ops if op is not None] + after)
