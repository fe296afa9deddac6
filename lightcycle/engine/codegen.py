"""Compile one event's steps into a plain Python function, once per run.

The driver's table says, per state, what an event does: where it moves, which stage it
sets, which hook calls (:class:`~lightcycle.engine.dispatch.Op`) it runs. Reading
that description on every call costs a loop and a branch per hook. Instead, for each
event a run fires, this module writes the function a person would write by hand for
that run (what attrs and dataclasses do for ``__init__``)::

    def fire_training_step(a0, a1):
        if holder._ids is R0_0:             # the current state's row: is the event legal,
            holder._ids = AFTER0            # and which step? (one branch per distinct step) move
            ts.stage = STAGE0
            prev = fx.get('_current_fx_name')
            try:
                fx['_current_fx_name'] = 'training_step'
                return f0_0_0(a0, a1)       # the module's bound training_step
            finally:
                fx['_current_fx_name'] = prev
        return general(TRIGGER, (a0, a1))   # illegal here (or a later bind): the general path

An event legal from many states (``interrupt``, say) finds its step with a dict lookup in
the current row instead of comparing the row with each source row.

The run's objects (bound hooks, rows, stages) are closure cells, so the source depends
only on the *shape* of the steps; each distinct source is compiled once per process and
reused by every run. This is the only place where hook calls are executed.
"""

from __future__ import annotations

import copy
import linecache
from collections.abc import Callable, Sequence
from typing import Any

from lightcycle.engine import dispatch as d
from lightcycle.states.model import Stage, Trigger

_MAKERS: dict[str, Callable[..., Callable[..., Any]]] = {}
_FX = "_current_fx_name"
_MAX_ROW_TESTS = 4
"""Up to this many source rows an event tests the current row by identity (cheaper than
``row.get``, a C call); more take one dict lookup."""


class StepCode:
    """What one step does, in the terms the generator needs.

    Args:
        step: the driver's step object (compared by identity with the row's entry).
        after: the destination's row, or ``None`` for an internal transition.
        stage: the stage to set, or :attr:`Stage.KEEP`.
        ops: the compiled hook calls.
        sources: the rows (current-state values of ``holder._ids``) whose entry for the
            event is this step.
    """

    __slots__ = ("after", "ops", "sources", "stage", "step")

    def __init__(
        self,
        step: object,
        after: object | None,
        stage: Any,
        ops: tuple[d.Op, ...],
        sources: Sequence[object] = (),
    ) -> None:
        self.step = step
        self.after = after
        self.stage = stage
        self.ops = ops
        self.sources = tuple(sources)


class _Writer:
    """Accumulates source lines and the closure values they name."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.names: list[str] = []
        self.values: list[Any] = []

    def value(self, name: str, value: Any) -> str:
        self.names.append(name)
        self.values.append(value)
        return name

    def shared(self, name: str, value: Any) -> str:
        """A value named once however many lines use it."""
        if name not in self.names:
            self.value(name, value)
        return name

    def line(self, indent: int, text: str) -> None:
        self.lines.append("    " * indent + text)


def compile_event(
    trigger: Trigger,
    steps: Sequence[StepCode],
    holder: Any,
    trainer_state: Any,
    trainer: Any,
    module: Any,
    fx: dict[str, Any],
    actions: dict[Any, Callable[[], None]],
    general: Callable[[Trigger, tuple[Any, ...]], Any],
) -> Callable[..., Any]:
    """Generate the function that fires ``trigger`` from any state of this run.

    Args:
        trigger: the event; its ``params`` become the function's parameters.
        steps: every distinct step the event takes, one per kind of source state.
        holder: the driver: ``holder._ids`` is the current row (read and replaced) and
            ``holder._isolated_failures`` collects failures of isolated hooks.
        trainer_state: gets ``stage``.
        trainer: passed first to callback hooks.
        module: passed second to callback hooks.
        fx: the module's ``__dict__`` (``_current_fx_name`` is set there).
        actions: runtime actions by :class:`~lightcycle.states.model.Action`.
        general: called with ``(trigger, args)`` when no step matches the current row
            (an illegal event, or a row of a later bind): it checks and raises or runs.

    Returns:
        A function taking the trigger's arguments positionally.

    Raises:
        ValueError: a keyword argument names the optional last parameter.
    """
    w = _Writer()
    required = [f"a{i}" for i in range(len(trigger.params) - (1 if trigger.optional_tail else 0))]
    every = [*required, "*tail"] if trigger.optional_tail else required
    signature = ", ".join(every)
    args_tuple = f"({every[0]},)" if len(every) == 1 else f"({signature})"
    w.value("holder", holder)
    w.value("ts", trainer_state)
    w.value("fx", fx)
    w.value("general", general)
    w.value("TRIGGER", trigger)
    # prefixed, so that no event name can shadow a closure variable of ``make``
    name = f"fire_{trigger.name}" if trigger.name.isidentifier() else "fire_event"
    w.line(1, f"def {name}({signature}):")
    rows = sum(len(code.sources) for code in steps)
    by_identity = 0 < rows <= _MAX_ROW_TESTS and all(code.sources for code in steps)
    if by_identity and rows > 1:
        w.line(2, "ids = holder._ids")
    elif steps and not by_identity:
        w.line(2, f"step = holder._ids.get({w.value('KEY', id(trigger))})")
    for s, code in enumerate(steps):
        if not by_identity:
            test = f"step is {w.value(f'S{s}', code.step)}"
        else:
            current = "holder._ids" if rows == 1 else "ids"
            test = " or ".join(f"{current} is {w.value(f'R{s}_{r}', row)}" for r, row in enumerate(code.sources))
        w.line(2, f"if {test}:")
        _emit_step(w, s, code, trigger, actions, (trainer, module))
    w.line(2, f"return general(TRIGGER, {args_tuple})")
    source = "\n".join([f"def make({', '.join(w.names)}):", *w.lines, f"    return {name}", ""])
    maker = _MAKERS.get(source)
    if maker is None:
        # one file name per source, registered with linecache (as attrs does), so that a
        # traceback through a hook shows the generated line that called it
        filename = f"<lightcycle event {trigger.name} #{len(_MAKERS) + 1}>"
        linecache.cache[filename] = (len(source), None, source.splitlines(keepends=True), filename)
        namespace: dict[str, Any] = {"deepcopy": copy.deepcopy}
        exec(compile(source, filename, "exec"), namespace)
        maker = _MAKERS[source] = namespace["make"]
    return maker(*w.values)


def _owner(fn: Callable[..., Any], op: d.Op) -> str:
    """``Class.hook`` of a hook function, for the note on an exception that a failing handler joins."""
    obj = getattr(fn, "__self__", None)  # hooks are bound methods (observed module hooks are wrappers)
    name = type(obj).__name__ if obj is not None else op.src
    return f"{name}.{op.name}"


def _positional(trigger: Trigger, op: d.Op) -> list[str]:
    """The call's positional arguments: the selected parameters, or all of them."""
    n = len(trigger.params)
    if op.positions is None:
        return [*(f"a{i}" for i in range(n - 1)), "*tail"] if trigger.optional_tail else [f"a{i}" for i in range(n)]
    return [f"a{i}" for i in op.positions]  # dispatch never selects the optional parameter


def _argument_list(w: _Writer, trigger: Trigger, op: d.Op, lead: tuple[Any, Any]) -> str:
    """The call's arguments: ``trainer, pl_module`` for callbacks, the positional ones, then ``keyword=aN`` pairs."""
    parts = _positional(trigger, op)
    if op.with_trainer:
        parts = [w.shared("trainer", lead[0]), w.shared("pl_module", lead[1]), *parts]
    for keyword, i in op.kwargs:
        if trigger.optional_tail and i == len(trigger.params) - 1:
            raise ValueError(f"hook {op.name!r} takes the optional parameter of {trigger.name!r} as a keyword")
        parts.append(f"{keyword}=a{i}")
    return ", ".join(parts)


def _emit_step(
    w: _Writer,
    s: int,
    code: StepCode,
    trigger: Trigger,
    actions: dict[Any, Callable[[], None]],
    lead: tuple[Any, Any],
) -> None:
    ind = 3
    if code.after is not None:
        w.line(ind, f"holder._ids = {w.value(f'AFTER{s}', code.after)}")
    if code.stage is not Stage.KEEP:
        w.line(ind, f"ts.stage = {w.value(f'STAGE{s}', code.stage)}")
    ops = code.ops
    if not ops:
        w.line(ind, "return None")
        return
    hooks = any(op.kind != d.ACTION for op in ops)
    # one function whose value is the event's: return it straight from the call
    single = len(ops) == 1 and ops[0].kind in (d.RETURN, d.PIPE) and len(ops[0].fns) == 1
    sets_result = not single and any(op.kind in (d.RETURN, d.PIPE, d.COLLECT) for op in ops)
    if sets_result:
        w.line(ind, "result = None")
    if hooks:
        w.line(ind, f"prev = fx.get({_FX!r})")
        w.line(ind, "try:")
        body = ind + 1
    else:
        body = ind
    for o, op in enumerate(ops):
        fns = [w.value(f"f{s}_{o}_{j}", fn) for j, fn in enumerate(op.fns)]
        if op.kind == d.ACTION:
            assert op.action is not None
            w.line(body, f"{w.value(f'act{s}_{o}', actions[op.action])}()")
            continue
        w.line(body, f"fx[{_FX!r}] = {op.name!r}")
        args = _argument_list(w, trigger, op, lead)
        if single:
            w.line(body, f"return {fns[0]}({args})")
        elif op.kind == d.CALL:
            for fn in fns:
                w.line(body, f"{fn}({args})")
        elif op.kind == d.RETURN:
            for fn in fns:
                w.line(body, f"result = {fn}({args})")
        elif op.kind == d.PIPE:  # the result replaces the first argument for what follows
            if len(trigger.params) - trigger.optional_tail < 1:
                raise ValueError(f"PIPE hook {op.name!r} of {trigger.name!r} has no required first argument")
            w.line(body, f"a0 = result = {fns[0]}({args})")
        elif op.kind == d.ISOLATED:  # every handler runs; failures are kept, not raised
            # ... except a KeyboardInterrupt/SystemExit: the user stops the run (driver.interrupt)
            for j, fn in enumerate(fns):
                owner = w.value(f"owner{s}_{o}_{j}", _owner(op.fns[j], op))
                w.line(body, "try:")
                w.line(body + 1, f"{fn}({args})")
                w.line(body, "except Exception as err:")
                w.line(body + 1, f"holder._isolated_failures.append(({owner}, err))")
        elif op.kind == d.COLLECT:
            w.line(body, "result = {}")
            for j, fn in enumerate(fns):
                key = w.value(f"key{s}_{o}_{j}", op.keys[j])
                w.line(body, f"value = {fn}()")
                w.line(body, "if value:")
                w.line(body + 1, f"result[{key}] = value")
        else:  # PER_KEY: each callback gets a copy of its own entry
            w.line(body, f"states = {_positional(trigger, op)[0]}")
            for j, fn in enumerate(fns):
                key = w.value(f"key{s}_{o}_{j}", op.keys[j])
                w.line(body, f"value = states.get({key})")
                w.line(body, "if value:")
                w.line(body + 1, f"{fn}(deepcopy(value))")
    if hooks:
        w.line(ind, "finally:")
        w.line(ind + 1, f"fx[{_FX!r}] = prev")
    if not single:  # (a single call has returned inside the try)
        w.line(ind, "return result" if sets_result else "return None")
