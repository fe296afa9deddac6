"""The reference executor: one bound step's ops, walked in a loop.

The driver binds each cell of the lifecycle table (what an event does from a state) to
the objects of one run: a :class:`Step` holds where the event moves, which stage it sets
and the hook calls (:class:`~lightcycle.engine.dispatch.Op`) it makes. :func:`run_step`
is what firing an event *means*: move, set the stage, then for each op call its
receivers in order (with ``pl_module._current_fx_name`` set to the hook's name), run the
internal actions, pipe, collect or isolate results as the op's kind says.

:mod:`~lightcycle.engine.codegen` writes the same behaviour out as one Python function
per event (a loop and a branch per op fewer); the interpreter is the semantics it is
tested against (``tests/engine/test_executors.py``) and the executor selected with
``LIGHTCYCLE_EXECUTOR=interpreted``.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Sequence
from typing import Any

from lightcycle.engine import dispatch as d
from lightcycle.states.model import Event, Stage

FX = "_current_fx_name"
"""The module attribute that names the hook running now (Lightning's ``_current_fx_name``)."""


class Step:
    """A table cell bound to a run: what one event does from the states that share it.

    One object per distinct behaviour of a trigger (its transition, destination and
    stage), shared by every source state where the trigger does the same thing.

    Args:
        trigger: the table's trigger.
        dest: index of the destination leaf, or ``None`` to stay (an internal transition).
        stage: the stage to set, or :attr:`Stage.KEEP`.
        ops: the compiled hook calls and actions, in order.
    """

    __slots__ = ("dest", "hooks", "ops", "stage", "trigger")

    def __init__(self, trigger: Event, dest: int | None, stage: Any, ops: tuple[d.Op, ...]) -> None:
        self.trigger = trigger
        self.dest = dest
        self.stage = stage
        self.ops = ops
        self.hooks = any(op.kind != d.ACTION for op in ops)
        """Whether any op calls a hook (then ``_current_fx_name`` is saved and restored)."""


class Context:
    """The objects of one bind that steps run against.

    Args:
        holder: the driver: ``holder._ids`` is the current row (replaced on a move),
            ``holder._id_rows`` the rows by state index, ``holder._isolated_failures``
            collects failures of isolated hooks.
        trainer_state: gets ``stage``.
        trainer: passed first to callback hooks.
        module: passed second to callback hooks.
        fx: the module's ``__dict__`` (``_current_fx_name`` is set there).
        actions: runtime actions by :class:`~lightcycle.states.model.Action`.
        general: the driver's general path, called with ``(trigger, args)`` when the
            current state has no step for the event or the arguments do not fit: it
            checks, raises, or runs.
    """

    __slots__ = ("actions", "fx", "general", "holder", "module", "trainer", "trainer_state")

    def __init__(
        self,
        holder: Any,
        trainer_state: Any,
        trainer: Any,
        module: Any,
        fx: dict[str, Any],
        actions: dict[Any, Callable[[], None]],
        general: Callable[[Event, tuple[Any, ...]], Any],
    ) -> None:
        self.holder = holder
        self.trainer_state = trainer_state
        self.trainer = trainer
        self.module = module
        self.fx = fx
        self.actions = actions
        self.general = general


def owner(fn: Callable[..., Any], op: d.Op) -> str:
    """``Class.hook`` of a hook function, for the note on an exception that a failing handler joins.

    Args:
        fn: the receiver's bound hook (or a wrapper of it that sets ``__wrapped__``).
        op: its op.

    Returns:
        e.g. ``"ModelCheckpoint.on_exception"``.
    """
    fn = getattr(fn, "__wrapped__", fn)  # a logging or recording wrapper: name what it wraps
    obj = getattr(fn, "__self__", None)  # hooks are bound methods
    name = type(obj).__name__ if obj is not None else op.src
    return f"{name}.{op.name}"


def check_ops(trigger: Event, ops: Sequence[d.Op]) -> None:
    """Refuse ops that no executor can call with ``trigger``'s arguments.

    Args:
        trigger: the event.
        ops: one step's ops.

    Raises:
        ValueError: a keyword argument names the optional last parameter, or a ``PIPE``
            hook's event has no required first argument to replace.
    """
    n = len(trigger.params)
    for op in ops:
        if op.kind == d.ACTION:
            continue
        for _, i in op.kwargs:
            if trigger.optional_tail and i == n - 1:
                raise ValueError(f"hook {op.name!r} takes the optional parameter of {trigger.name!r} as a keyword")
        if op.kind == d.PIPE and n - trigger.optional_tail < 1:
            raise ValueError(f"PIPE hook {op.name!r} of {trigger.name!r} has no required first argument")


def function_name(trigger: Event, sources: Sequence[str]) -> str:
    """The name of an event's function: the event and the state(s) it fires from.

    ``fire_training_step__from__fit_train_epoch_batch_started`` for an event legal from
    one state; from several, their nearest common ancestor
    (``fire_interrupt__from__fit``), or ``any`` when they share none. A valid identifier
    whatever the names: other characters become ``_``.

    Args:
        trigger: the event.
        sources: the leaf paths it fires from (``.``-separated).

    Returns:
        The identifier.
    """
    parts = [path.split(".") for path in sources]
    common: list[str] = []
    for names in zip(*parts, strict=False) if parts else ():
        if any(n != names[0] for n in names):
            break
        common.append(names[0])
    where = "_".join(common) if common else "any"
    return re.sub(r"\W", "_", f"fire_{trigger.name}__from__{where}")


def run_step(ctx: Context, step: Step, args: tuple[Any, ...]) -> Any:
    """Fire one event whose step is ``step``: move, set the stage, run the ops.

    Args:
        ctx: the bind's objects.
        step: the current state's cell for the event.
        args: the event's arguments (already checked against its parameters).

    Returns:
        The event's value: the last ``RETURN``/``PIPE`` hook's result, the ``COLLECT``ed
        state dicts, else ``None``.
    """
    holder = ctx.holder
    if step.dest is not None:
        holder._ids = holder._id_rows[step.dest]
    if step.stage is not Stage.KEEP:
        ctx.trainer_state.stage = step.stage
    if not step.hooks:
        actions = ctx.actions
        for op in step.ops:
            actions[op.action]()
        return None
    fx = ctx.fx
    prev = fx.get(FX)
    try:
        return _run_ops(ctx, step.ops, args)
    finally:
        fx[FX] = prev


def _run_ops(ctx: Context, ops: tuple[d.Op, ...], args: tuple[Any, ...]) -> Any:
    fx = ctx.fx
    result: Any = None
    for op in ops:
        kind = op.kind
        if kind == d.ACTION:
            ctx.actions[op.action]()
            continue
        fx[FX] = op.name
        positional = args if op.positions is None else tuple(args[i] for i in op.positions)
        call = (ctx.trainer, ctx.module, *positional) if op.with_trainer else positional
        kwargs = {keyword: args[i] for keyword, i in op.kwargs}
        if kind == d.CALL:
            for fn in op.fns:
                fn(*call, **kwargs)
        elif kind == d.RETURN:
            for fn in op.fns:
                result = fn(*call, **kwargs)
        elif kind == d.PIPE:  # the result replaces the first argument for what follows
            result = op.fns[0](*call, **kwargs)
            args = (result, *args[1:])
        elif kind == d.ISOLATED:  # every handler runs; failures are kept, not raised
            # ... except a KeyboardInterrupt/SystemExit: the user stops the run (driver.interrupt)
            for fn in op.fns:
                try:
                    fn(*call, **kwargs)
                except Exception as err:
                    ctx.holder._isolated_failures.append((owner(fn, op), err))
        elif kind == d.COLLECT:
            result = {}
            for fn, key in zip(op.fns, op.keys, strict=True):
                value = fn()
                if value:
                    result[key] = value
        else:  # PER_KEY: each callback gets a copy of its own entry
            states = positional[0]
            for fn, key in zip(op.fns, op.keys, strict=True):
                value = states.get(key)
                if value:
                    fn(copy.deepcopy(value))
    return result


def event_function(ctx: Context, trigger: Event, steps: Sequence[Step], name: str) -> Callable[..., Any]:
    """The interpreter's function that fires ``trigger`` from any state of this bind.

    Args:
        ctx: the bind's objects.
        trigger: the table's trigger.
        steps: every step the event takes in this bind (checked here, as the generator does).
        name: the function's name (:func:`function_name`), given to its code object so
            that tracebacks and profiles say which event ran.

    Returns:
        ``f(*args)``: finds the current state's step and runs it, or hands the event to
        the general path (an illegal event, or arguments that do not fit).

    Raises:
        ValueError: see :func:`check_ops`.
    """
    for step in steps:
        check_ops(trigger, step.ops)
    key = id(trigger)
    holder = ctx.holder
    general = ctx.general
    most = len(trigger.params)
    least = most - trigger.optional_tail

    def fire(*args: Any) -> Any:
        step = holder._ids.get(key)
        if step is None or not least <= len(args) <= most:
            return general(trigger, args)
        return run_step(ctx, step, args)

    fire.__code__ = fire.__code__.replace(co_name=name, co_qualname=name)
    fire.__name__ = fire.__qualname__ = name
    return fire
