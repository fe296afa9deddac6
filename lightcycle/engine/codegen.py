"""Compile one event's steps into a plain Python function, once per run.

The driver's table says, per state, what an event does: where it moves, which stage it
sets, which hook calls (:class:`~lightcycle.engine.dispatch.Op`) it runs. Reading
that description on every call costs a loop and a branch per hook. Instead, for each
event a run fires, this module writes the function a person would write by hand for
that run (what attrs and dataclasses do for ``__init__``)::

    def fire_training_step__from__fit_train_epoch_batch_started(a0, a1):
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
reused by every run. The function's name says the event and where it fires from, and so
does its file name (``<lightcycle event fire_... #N>``, registered with ``linecache``), so
tracebacks and profiles read which event ran.

What the function does is defined by the reference executor,
:func:`lightcycle.engine.interpreter.run_step`: this is that loop unrolled for one run
(``tests/engine/test_executors.py`` compares the two on every cell of the table).
"""

from __future__ import annotations

import copy
import linecache
from collections.abc import Callable, Sequence
from types import CodeType, FunctionType
from typing import Any

from lightcycle.engine import dispatch as d
from lightcycle.engine.interpreter import FX, Context, Step, check_ops, owner
from lightcycle.states.model import Event, Stage

_MAKERS: dict[str, Callable[..., Callable[..., Any]]] = {}
_MAX_ROW_TESTS = 4
"""Up to this many source rows an event tests the current row by identity (cheaper than
``row.get``, a C call); more take one dict lookup."""


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
    ctx: Context, trigger: Event, steps: Sequence[tuple[Step, Sequence[object]]], name: str
) -> Callable[..., Any]:
    """Generate the function that fires ``trigger`` from any state of this run.

    Args:
        ctx: the bind's objects (the driver as holder: ``holder._ids`` is the current row,
            read and replaced, ``holder._id_rows`` the rows by state index).
        trigger: the event; its ``params`` become the function's parameters.
        steps: every distinct step the event takes, each with the rows (current-state
            values of ``holder._ids``) whose cell for the event it is.
        name: the function's name (:func:`~lightcycle.engine.interpreter.function_name`);
            its code object and file name carry it, so tracebacks and profiles say which
            event ran.

    Returns:
        A function taking the trigger's arguments positionally; when no step matches the
        current row (an illegal event, or a row of a later bind) it calls
        ``ctx.general(trigger, args)``, which checks and raises or runs.

    Raises:
        ValueError: see :func:`~lightcycle.engine.interpreter.check_ops`.
    """
    for step, _ in steps:
        check_ops(trigger, step.ops)
    w = _Writer()
    required = [f"a{i}" for i in range(len(trigger.params) - (1 if trigger.optional_tail else 0))]
    every = [*required, "*tail"] if trigger.optional_tail else required
    signature = ", ".join(every)
    args_tuple = f"({every[0]},)" if len(every) == 1 else f"({signature})"
    w.value("holder", ctx.holder)
    w.value("ts", ctx.trainer_state)
    w.value("fx", ctx.fx)
    w.value("general", ctx.general)
    w.value("TRIGGER", trigger)
    # ``name`` starts with ``fire_``: no event name can shadow a closure variable of ``make``
    w.line(1, f"def {name}({signature}):")
    rows = sum(len(sources) for _, sources in steps)
    by_identity = 0 < rows <= _MAX_ROW_TESTS and all(sources for _, sources in steps)
    if by_identity and rows > 1:
        w.line(2, "ids = holder._ids")
    elif steps and not by_identity:
        w.line(2, f"step = holder._ids.get({w.value('KEY', id(trigger))})")
    for s, (step, sources) in enumerate(steps):
        if not by_identity:
            test = f"step is {w.value(f'S{s}', step)}"
        else:
            current = "holder._ids" if rows == 1 else "ids"
            test = " or ".join(f"{current} is {w.value(f'R{s}_{r}', row)}" for r, row in enumerate(sources))
        w.line(2, f"if {test}:")
        _emit_step(w, s, step, ctx, trigger)
    w.line(2, f"return general(TRIGGER, {args_tuple})")
    source = "\n".join([f"def make({', '.join(w.names)}):", *w.lines, f"    return {name}", ""])
    maker = _MAKERS.get(source)
    if maker is None:
        # one file name per source, registered with linecache (as attrs does), so that a
        # traceback through a hook shows the generated line that called it
        filename = f"<lightcycle event {name} #{len(_MAKERS) + 1}>"
        linecache.cache[filename] = (len(source), None, source.splitlines(keepends=True), filename)
        namespace: dict[str, Any] = {"deepcopy": copy.deepcopy}
        exec(compile(source, filename, "exec"), namespace)
        maker = _MAKERS[source] = _qualified(namespace["make"], name)
    return maker(*w.values)


def _qualified(make: Callable[..., Any], name: str) -> Callable[..., Any]:
    """``make`` whose inner function's ``co_qualname`` is ``name``, not ``make.<locals>.name``."""
    code: CodeType = make.__code__
    consts = tuple(
        c.replace(co_qualname=name) if isinstance(c, CodeType) and c.co_name == name else c for c in code.co_consts
    )
    return FunctionType(code.replace(co_consts=consts), make.__globals__, make.__name__)


def _parameters(trigger: Event) -> list[str]:
    """The expressions of an event function's parameters: ``a0, a1, ...`` (``*tail`` for an optional one)."""
    n = len(trigger.params)
    return [*(f"a{i}" for i in range(n - 1)), "*tail"] if trigger.optional_tail else [f"a{i}" for i in range(n)]


def _positional(op: d.Op, params: Sequence[str]) -> list[str]:
    """The call's positional arguments: the selected parameters, or all of them."""
    if op.positions is None:
        return list(params)
    return [params[i] for i in op.positions]  # dispatch never selects the optional parameter


def _argument_list(w: _Writer, op: d.Op, lead: tuple[Any, Any], params: Sequence[str]) -> str:
    """The call's arguments: ``trainer, pl_module`` for callbacks, the positional ones, then keyword pairs.

    Args:
        w: the function's writer (``trainer`` and ``pl_module`` are its shared cells).
        op: the hook call.
        lead: the trainer and the module, for callback hooks.
        params: the expressions of the event's parameters, in order.

    Returns:
        The argument list as source text.
    """
    parts = _positional(op, params)
    if op.with_trainer:
        parts = [w.shared("trainer", lead[0]), w.shared("pl_module", lead[1]), *parts]
    parts.extend(f"{keyword}={params[i]}" for keyword, i in op.kwargs)  # (check_ops refused the optional one)
    return ", ".join(parts)


def _emit_step(w: _Writer, s: int, step: Step, ctx: Context, trigger: Event) -> None:
    """The lines of one step: what :func:`~lightcycle.engine.interpreter.run_step` does, unrolled."""
    ind = 3
    lead = (ctx.trainer, ctx.module)
    params = _parameters(trigger)
    if step.dest is not None:
        w.line(ind, f"holder._ids = {w.value(f'AFTER{s}', ctx.holder._id_rows[step.dest])}")
    if step.stage is not Stage.KEEP:
        w.line(ind, f"ts.stage = {w.value(f'STAGE{s}', step.stage)}")
    ops = step.ops
    if not ops:
        w.line(ind, "return None")
        return
    hooks = step.hooks
    # one function whose value is the event's: return it straight from the call
    single = len(ops) == 1 and ops[0].kind in (d.RETURN, d.PIPE) and len(ops[0].fns) == 1
    sets_result = not single and any(op.kind in (d.RETURN, d.PIPE, d.COLLECT) for op in ops)
    if sets_result:
        w.line(ind, "result = None")
    if hooks:
        w.line(ind, f"prev = fx.get({FX!r})")
        w.line(ind, "try:")
        body = ind + 1
    else:
        body = ind
    for o, op in enumerate(ops):
        fns = [w.value(f"f{s}_{o}_{j}", fn) for j, fn in enumerate(op.fns)]
        if op.kind == d.ACTION:
            assert op.action is not None
            w.line(body, f"{w.value(f'act{s}_{o}', ctx.actions[op.action])}()")
            continue
        w.line(body, f"fx[{FX!r}] = {op.name!r}")
        args = _argument_list(w, op, lead, params)
        if single:
            w.line(body, f"return {fns[0]}({args})")
        elif op.kind == d.CALL:
            for fn in fns:
                w.line(body, f"{fn}({args})")
        elif op.kind == d.RETURN:
            for fn in fns:
                w.line(body, f"result = {fn}({args})")
        elif op.kind == d.PIPE:  # the result replaces the first argument for what follows
            w.line(body, f"a0 = result = {fns[0]}({args})")
        elif op.kind == d.ISOLATED:  # every handler runs; failures are kept, not raised
            # ... except a KeyboardInterrupt/SystemExit: the user stops the run (driver.interrupt)
            for j, fn in enumerate(fns):
                who = w.value(f"owner{s}_{o}_{j}", owner(op.fns[j], op))
                w.line(body, "try:")
                w.line(body + 1, f"{fn}({args})")
                w.line(body, "except Exception as err:")
                w.line(body + 1, f"holder._isolated_failures.append(({who}, err))")
        elif op.kind == d.COLLECT:
            w.line(body, "result = {}")
            for j, fn in enumerate(fns):
                key = w.value(f"key{s}_{o}_{j}", op.keys[j])
                w.line(body, f"value = {fn}()")
                w.line(body, "if value:")
                w.line(body + 1, f"result[{key}] = value")
        else:  # PER_KEY: each callback gets a copy of its own entry
            w.line(body, f"states = {_positional(op, params)[0]}")
            for j, fn in enumerate(fns):
                key = w.value(f"key{s}_{o}_{j}", op.keys[j])
                w.line(body, f"value = states.get({key})")
                w.line(body, "if value:")
                w.line(body + 1, f"{fn}(deepcopy(value))")
    if hooks:
        w.line(ind, "finally:")
        w.line(ind + 1, f"fx[{FX!r}] = prev")
    if not single:  # (a single call has returned inside the try)
        w.line(ind, "return result" if sets_result else "return None")


class Inliner:
    """Writes the bodies of several events into one generated function.

    For a loop that fires a fixed sequence of events (one automatic-optimization batch, say):
    each event it inlines tests the current row against the row the sequence expects and,
    there, runs that row's step as its own function would (the table's step: move, stage,
    hooks); from any other row it calls the event's own function, which checks, runs or
    refuses. So the function behaves as the sequence of event calls it replaces, and what
    each event does still comes from the declaration alone.

    Args:
        ctx: the bind's objects.
        event: the driver's event function for a table trigger (the fallback of each
            inlined event).
    """

    def __init__(self, ctx: Context, event: Callable[[Event], Callable[..., Any]]) -> None:
        self.ctx = ctx
        self._event = event
        self._w = _Writer()
        self._n = 0
        self._w.value("holder", ctx.holder)
        self._w.value("ts", ctx.trainer_state)
        self._w.value("fx", ctx.fx)
        self.dirty = False
        """An event fired with ``around`` left its last hook's name in ``_current_fx_name``
        (since :meth:`restore`)."""
        self.target_set = True
        """The last :meth:`fire` gave its target a value on every path (see its ``unset``)."""
        self.spelled: dict[Any, str] = {}
        """Module functions whose call is written as their body: ``{function: template}``, the
        template formatted with the event's arguments (``"{0}.backward()"``). For a base hook
        whose body is one call: bound to the bind's module, called with every argument, no
        trainer and no keywords, it is written without its frame (its name is still set
        around it, as for the call)."""

    def restore(self, indent: int, around: str) -> None:
        """Set ``_current_fx_name`` back to ``around`` if an event fired with it left a hook's name.

        Args:
            indent: the line's indentation level.
            around: the expression the events were fired with.
        """
        if self.dirty:
            self._w.line(indent, f"fx[{FX!r}] = {around}")
            self.dirty = False

    def value(self, name: str, value: Any) -> str:
        """Name ``value`` in the function (a closure cell); ``name`` must be unique."""
        return self._w.value(name, value)

    def shared(self, name: str, value: Any) -> str:
        """Name ``value`` once however many writers of the function ask for it (the same value)."""
        return self._w.shared(name, value)

    def line(self, indent: int, text: str) -> None:
        """One line of the function's body (``indent`` 2 is the body's first level)."""
        self._w.line(indent, text)

    def row(self, state: int) -> dict[int, Step]:
        """The row of a state (by index): what an inlined event's expected row is."""
        rows: list[dict[int, Step]] = self.ctx.holder._id_rows
        return rows[state]

    def sources(self, trigger: Event) -> list[dict[int, Step]]:
        """The rows from which ``trigger`` is legal in this bind."""
        rows: list[dict[int, Step]] = self.ctx.holder._id_rows
        return [row for row in rows if id(trigger) in row]

    def fire(
        self,
        indent: int,
        trigger: Event,
        row: dict[int, Step] | None,
        args: Sequence[str],
        target: str | None = None,
        within: str | None = None,
        around: str | None = None,
        known: bool = False,
        unset: bool = False,
    ) -> dict[int, Step] | None:
        """Write firing ``trigger`` where the sequence expects the current row to be ``row``.

        Args:
            indent: the lines' indentation level.
            trigger: a table trigger without an optional parameter.
            row: the row expected now (``None``: unknown, the event's own function is called).
            args: the expressions of the trigger's parameters, in order (a pipe's hooks are
                inlined when the first is the ``target`` variable, which they replace in turn).
            target: the variable that gets the event's value (``None``: dropped).
            within: the hook name ``_current_fx_name`` holds around this event (the
                enclosing event's, already saved by it): the hooks set their names and it
                is set back after them, with no save and restore of its own; ``None``:
                saved and restored as the event's own function does.
            around: instead of ``within``, the expression of the value ``_current_fx_name``
                holds around this event, restored lazily: the inlined hooks set their names
                and leave the last one (then :attr:`dirty` is set); the event's own function
                (the fallback) gets the value first. For a sequence whose code between the
                events reads no ``_current_fx_name``: the caller sets it back (``around``)
                before anything else may read it, and in a ``finally`` (a failure).
            known: the sequence is in ``row`` for certain, not yet written to the holder
                (the caller's move, written here): the step is written without the test,
                with its own move or else ``row``'s; where it is not inlined, ``row`` is
                written before the event's own function.
            unset: where no inlined hook gives ``target`` a value, leave it unset there
                rather than ``None``: then :attr:`target_set` is False and the caller reads
                the target only in the fallback's block (one level deeper, after it).

        Returns:
            The row the sequence expects after the event (``row`` when it does not move),
            ``None`` when the event has no step from ``row`` (then it was not inlined).

        Raises:
            ValueError: not as many arguments as the trigger's required parameters.
        """
        if len(args) != len(trigger.params) - trigger.optional_tail:
            raise ValueError(f"{trigger.name} takes {trigger.params}, got {len(args)} arguments to inline")
        n = self._n = self._n + 1
        w = self._w
        call = f"{w.value(f'E{n}', self._event(trigger))}({', '.join(args)})"
        fallback = f"{target} = {call}" if target is not None else call
        if around is not None:  # the event's own function saves and restores what it finds: the value around
            fallback = f"fx[{FX!r}] = {around}; {fallback}"
        step = None if row is None else row.get(id(trigger))
        if known and row is not None:
            fallback = f"holder._ids = {w.value(f'R{n}', row)}; {fallback}"
        self.target_set = True
        if row is None or step is None or trigger.optional_tail:
            w.line(indent, fallback)  # nothing to inline: the event's own function (it checks, runs or refuses)
            return None
        check_ops(trigger, step.ops)
        # a pipe replaces its first argument in turn: inlined only where that is the target variable
        piped = bool(args) and target == args[0] and args[0].isidentifier()
        kinds = (d.CALL, d.RETURN, d.ACTION, d.PIPE) if piped else (d.CALL, d.RETURN, d.ACTION)
        if any(op.kind not in kinds for op in step.ops):
            w.line(indent, fallback)  # (isolated and collected hooks: the event's own function)
            return row if step.dest is None else self.row(step.dest)
        if known:
            body = indent
        else:
            w.line(indent, f"if holder._ids is {w.value(f'R{n}', row)}:")
            body = indent + 1
        if step.dest is not None:
            w.line(body, f"holder._ids = {w.value(f'AFTER{n}', self.row(step.dest))}")
        elif known:
            w.line(body, f"holder._ids = {w.value(f'R{n}', row)}")
        if step.stage is not Stage.KEEP:
            w.line(body, f"ts.stage = {w.value(f'STAGE{n}', step.stage)}")
        if target is not None and not any(op.kind in (d.RETURN, d.PIPE) for op in step.ops):
            if unset and not known:
                self.target_set = False
            else:
                w.line(body, f"{target} = None")
        lead = (self.ctx.trainer, self.ctx.module)
        hooked = step.hooks
        inner = body
        if hooked and within is None and around is None:
            w.line(body, f"prev{n} = fx.get({FX!r})")
            w.line(body, "try:")
            inner = body + 1
        named = False  # a hook of this step has set its name
        for o, op in enumerate(step.ops):
            fns = [w.value(f"f{n}_{o}_{j}", fn) for j, fn in enumerate(op.fns)]
            if op.kind == d.ACTION:
                assert op.action is not None
                if around is not None and not named:  # (as the event's own function runs it)
                    w.line(inner, f"fx[{FX!r}] = {around}")
                w.line(inner, f"{w.value(f'act{n}_{o}', self.ctx.actions[op.action])}()")
                continue
            named = True
            w.line(inner, f"fx[{FX!r}] = {op.name!r}")
            call_args = _argument_list(w, op, lead, args)
            if op.kind == d.PIPE:  # the result replaces the first argument for what follows
                w.line(inner, f"{args[0]} = {fns[0]}({call_args})")
                continue
            for j, fn in enumerate(fns):
                text = self._spelling(op, op.fns[j])
                if text is not None:
                    w.line(inner, text.format(*_positional(op, args)))
                    continue
                result = f"{target} = " if op.kind == d.RETURN and target is not None else ""
                w.line(inner, f"{result}{fn}({call_args})")
        if around is not None:
            self.dirty = self.dirty or hooked
        elif hooked and within is None:
            w.line(body, "finally:")
            w.line(body + 1, f"fx[{FX!r}] = prev{n}")
        elif hooked:
            w.line(body, f"fx[{FX!r}] = {within!r}")  # (an exception leaves it to the enclosing event's restore)
        if known:
            return row if step.dest is None else self.row(step.dest)
        if not step.ops and step.dest is None and step.stage is Stage.KEEP:
            w.line(body, "pass")
        w.line(indent, "else:")
        w.line(indent + 1, fallback)
        return row if step.dest is None else self.row(step.dest)

    def _spelling(self, op: d.Op, fn: Any) -> str | None:
        """The template :attr:`spelled` has for ``fn`` in ``op``, or ``None`` (a plain call)."""
        if not self.spelled or op.kind != d.CALL or op.positions is not None or op.kwargs or op.with_trainer:
            return None
        if getattr(fn, "__self__", None) is not self.ctx.module:
            return None
        return self.spelled.get(getattr(fn, "__func__", None))

    def compile(self, name: str, params: Sequence[str]) -> Callable[..., Any]:
        """The function written so far, compiled (once per distinct source in the process).

        Args:
            name: its name (starts with ``fire_``, as event functions' do).
            params: its parameters.

        Returns:
            The function, its closure cells bound to this inliner's values.
        """
        w = self._w
        header = f"    def {name}({', '.join(params)}):"
        source = "\n".join([f"def make({', '.join(w.names)}):", header, *w.lines, f"    return {name}", ""])
        maker = _MAKERS.get(source)
        if maker is None:
            filename = f"<lightcycle event {name} #{len(_MAKERS) + 1}>"
            linecache.cache[filename] = (len(source), None, source.splitlines(keepends=True), filename)
            namespace: dict[str, Any] = {}
            exec(compile(source, filename, "exec"), namespace)
            maker = _MAKERS[source] = _qualified(namespace["make"], name)
        return maker(*w.values)
