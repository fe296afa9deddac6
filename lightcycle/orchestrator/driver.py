"""The lifecycle driver: fires declared events in order and runs their hooks.

One driver serves every loop: :class:`~lightcycle.orchestrator.trainer.Trainer` walks the
lifecycle through it, and custom training loops use it directly (see
:mod:`lightcycle.orchestrator.loop`). ``fire`` looks the event up in the compiled table
(one list index, one dict lookup), refuses it with :class:`~lightcycle.errors.LifecycleError`
if the declaration does not allow it from the current state, moves, sets the stage and
runs the precompiled hook calls. Nothing on that path logs, formats strings or resolves
names.

In checked mode a ``transitions`` machine built from the same declaration moves in
lockstep, and every disagreement with the table raises :class:`LifecycleCheckError`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import attrs

from lightcycle.errors import LifecycleError
from lightcycle.orchestrator import dispatch as d
from lightcycle.orchestrator.state import TrainerStatus
from lightcycle.states.declaration import FINISH, INTERRUPT, LIFECYCLE
from lightcycle.states.model import Action, Lifecycle, Stage, Trigger
from lightcycle.states.table import TransitionTable

_TABLES: dict[int, tuple[Lifecycle, TransitionTable]] = {}


def table_for(lifecycle: Lifecycle) -> TransitionTable:
    """The compiled table of a lifecycle, built once per lifecycle object."""
    hit = _TABLES.get(id(lifecycle))
    if hit is None or hit[0] is not lifecycle:
        hit = (lifecycle, TransitionTable(lifecycle))
        _TABLES[id(lifecycle)] = hit
    return hit[1]


class LifecycleCheckError(AssertionError):
    """Checked mode: the compiled table and the ``transitions`` machine disagree."""


_KEEP = Stage.KEEP
_CALL, _RETURN, _PIPE, _ISOLATED, _COLLECT, _ACTION = d.CALL, d.RETURN, d.PIPE, d.ISOLATED, d.COLLECT, d.ACTION
_FX = "_current_fx_name"


class _Step:
    """A table entry with its hooks compiled for the current run.

    ``after`` is the destination's row keyed by ``id(trigger)`` (``None`` for an internal
    transition): :meth:`LifecycleDriver.fire` moves with one attribute read. ``single``
    is ``(hook name, function, returns)`` when the step is one call of one function with
    all the trigger's arguments (most per-batch steps): ``fire`` then calls it directly.
    """

    __slots__ = ("after", "dest", "ops", "single", "stage", "trigger")

    def __init__(self, trigger: Trigger, dest: int | None, stage: Any, ops: tuple[d.Op, ...]) -> None:
        self.trigger = trigger
        self.dest = dest
        self.stage = stage
        self.ops = ops
        self.after: dict[int, _Step] | None = None
        self.single: tuple[str, Callable[..., Any], bool] | None = None
        if len(ops) == 1:
            op = ops[0]
            if op.kind in (_CALL, _RETURN, _PIPE) and len(op.fns) == 1 and op.select is None and not op.kwargs:
                # CALL gives no result; RETURN, and PIPE alone, give the function's
                self.single = (op.name, op.fns[0], op.kind != _CALL)


class _Checker:
    """Runs the ``transitions`` machine of the declaration beside the table."""

    def __init__(self, table: TransitionTable) -> None:
        from lightcycle.states.machine import build_machine

        self.table = table
        self.machine, self.model = build_machine(table.lifecycle)
        self.transitions = 0

    def legal(self, trigger: Trigger, state: int, step: _Step | None) -> None:
        path = self.table.states[state]
        if self.model.state != path:
            raise LifecycleCheckError(f"machine is in {self.model.state!r}, table in {path!r}")
        machine_ok = trigger.name in self.machine.get_triggers(path)
        if machine_ok != (step is not None):
            raise LifecycleCheckError(
                f"{trigger.name!r} from {path!r}: table says {'legal' if step else 'illegal'}, "
                f"transitions says {'legal' if machine_ok else 'illegal'}"
            )

    def moved(self, trigger: Trigger, dest: int) -> None:
        self.model.trigger(trigger.name)
        self.transitions += 1
        if self.model.state != self.table.states[dest]:
            raise LifecycleCheckError(
                f"after {trigger.name!r}: machine in {self.model.state!r}, table in {self.table.states[dest]!r}"
            )


class LifecycleDriver:
    """Fires lifecycle events for one trainer (or trainer-like state holder).

    Args:
        trainer: passed as ``trainer`` to callback hooks; its ``state`` (a
            :class:`~lightcycle.orchestrator.state.TrainerState`) gets the stage and
            status.
        lifecycle: the declaration to follow; a copy extended with custom events
            works the same way.
        checked: run the ``transitions`` machine in lockstep and compare (tests).

    Attributes:
        secondary_errors: failures raised by ``on_exception`` handlers during the
            last interruption (also attached as notes to the original exception).
    """

    def __init__(self, trainer: Any, lifecycle: Lifecycle = LIFECYCLE, *, checked: bool = False) -> None:
        self.table = table_for(lifecycle)
        self.lifecycle = lifecycle
        self.trainer = trainer
        self._trainer_state = trainer.state
        self._rows: list[dict[Trigger, _Step]] = []
        # the same rows keyed by ``id(trigger)`` (the table's trigger objects): an int hash
        # instead of the attrs ``__hash__`` of a Trigger on every fire
        self._id_rows: list[dict[int, _Step]] = []
        # The current state *is* its row: ``fire`` moves by replacing ``_ids`` and nothing
        # else; the state's index is looked up from the row when asked (``_state``).
        self._ids: dict[int, _Step] = {}
        self._row_index: dict[int, int] = {id(self._ids): self.table.initial}
        self._module: Any = None
        self._fx: dict[str, Any] = {}
        self._saved_modes: list[tuple[Any, bool]] = []
        self._checker = _Checker(self.table) if checked else None
        if checked:
            # every event takes the checked path; ``fire`` itself stays free of the test
            self.fire = self._fire_checked  # type: ignore[method-assign]
        self._observers: list[Any] = []
        self._isolated_failures: list[tuple[str, BaseException]] = []
        self.secondary_errors: list[BaseException] = []
        self._actions: dict[Action, Callable[[], None]] = {
            Action.CAPTURE_TRAIN_MODE: self._capture_train_mode,
            Action.RESTORE_TRAIN_MODE: self._restore_train_mode,
        }
        self.bind(None, ())

    # ------------------------------------------------------------------ binding

    def bind(
        self,
        module: Any,
        callbacks: Sequence[Any],
        datamodule: Any = None,
        *,
        skip: frozenset[str] = frozenset(),
        noops: frozenset[str] = frozenset(),
    ) -> None:
        """Compile every transition's hooks against the objects of a run.

        Call it when a run starts and again whenever the callback list changes
        (after ``configure_callbacks``). Callbacks with a ``record_hook`` method
        (e.g. :class:`~lightcycle.callbacks.HookRecorder`) also observe module hooks.

        Args:
            module: the LightningModule (or ``None`` before a run).
            callbacks: the callbacks, in dispatch order.
            datamodule: the datamodule, if any.
            skip: hook names not to call in this run.
            noops: module hooks this run's settings make do nothing: left out unless an
                observer records module hooks (as base no-ops are).
        """
        from lightcycle.callbacks.monitoring import is_monitoring
        from lightcycle.core.datamodule import LightningDataModule
        from lightcycle.core.module import LightningModule

        self._module = module
        self._fx = module.__dict__ if module is not None else {}
        self._observers = [cb for cb in callbacks if callable(getattr(cb, "record_hook", None))]
        for obs in self._observers:
            attach = getattr(obs, "attach", None)
            if callable(attach):
                attach(self.trainer)
        receivers = d.Receivers(
            trainer=self.trainer,
            module=module,
            callbacks=list(callbacks),
            datamodule=datamodule,
            is_monitoring=is_monitoring,
            module_base=LightningModule,
            datamodule_base=LightningDataModule,
            skip=skip,
            keep_noops=bool(self._observers),
            noops=noops,
        )
        compiled: dict[int, tuple[d.Op, ...]] = {}
        rows: list[dict[Trigger, _Step]] = []
        for entries in self.table.rows:
            row: dict[Trigger, _Step] = {}
            for trigger, entry in entries.items():
                key = id(entry.transition)
                ops = compiled.get(key)
                if ops is None:
                    ops = d.compile_transition(entry.transition, receivers) if module is not None else ()
                    if self._observers:
                        ops = tuple(self._observed(op) for op in ops)
                    compiled[key] = ops
                row[trigger] = _Step(trigger, entry.dest, entry.stage, ops)
            rows.append(row)
        id_rows = [{id(trigger): step for trigger, step in row.items()} for row in rows]
        for id_row in id_rows:
            for step in id_row.values():
                step.after = id_rows[step.dest] if step.dest is not None else None
        state = self._state
        self._rows = rows
        self._id_rows = id_rows
        self._row_index = {id(row): i for i, row in enumerate(id_rows)}
        self._ids = id_rows[state]

    def _observed(self, op: d.Op) -> d.Op:
        if op.src == "callback" or op.kind == d.ACTION:
            return op
        observers = self._observers
        names = op.arg_names

        def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
            def observed(*args: Any, **kwargs: Any) -> Any:
                named = dict(zip(names, args, strict=False))
                named.update(kwargs)
                for obs in observers:
                    obs.record_hook(op.src, op.name, named)
                return fn(*args, **kwargs)

            return observed

        return attrs.evolve(op, fns=tuple(wrap(f) for f in op.fns))

    # ------------------------------------------------------------------ state

    @property
    def _state(self) -> int:
        """Index of the current leaf state (the row ``_ids`` is)."""
        return self._row_index[id(self._ids)]

    @property
    def state(self) -> str:
        """The current leaf state's path, e.g. ``fit.train.epoch.running``."""
        return self.table.states[self._state]

    def legal(self) -> tuple[str, ...]:
        """Names of the events legal now."""
        return self.table.legal(self._state)

    def can_fire(self, trigger: Trigger) -> bool:
        """Whether ``trigger`` is legal now (no side effects)."""
        return trigger in self._rows[self._state]

    def reset(self) -> None:
        """Return to the initial state without firing anything (a fresh driver)."""
        self._ids = self._id_rows[self.table.initial]
        if self._checker is not None:
            self._checker = _Checker(self.table)

    @property
    def checked_transitions(self) -> int:
        """How many transitions the lockstep machine has confirmed (checked mode)."""
        return self._checker.transitions if self._checker is not None else 0

    # ------------------------------------------------------------------ firing

    def fire(self, trigger: Trigger, *args: Any) -> Any:
        """Fire one event: check it, move, set the stage, run its hooks.

        Args:
            trigger: the event (a :class:`~lightcycle.states.model.Trigger` of this
                driver's lifecycle).
            *args: its parameters, in the trigger's order.

        Returns:
            The value of the hook that produces the result (a step's output, the
            module's ``on_train_batch_start`` return, the transferred batch, the
            collected state dicts), else ``None``.

        Raises:
            LifecycleError: the event is not legal in the current state; nothing fired.
        """
        # Fast path: one dict lookup by identity. Everything else (a trigger object equal
        # to but not the table's, an illegal event) takes ``_fire_general``, which does the
        # same with the full checks; checked mode replaces this method (``__init__``).
        step = self._ids.get(id(trigger))
        if step is None:
            return self._fire_general(trigger, args)
        after = step.after
        if after is not None:
            self._ids = after
        stage = step.stage
        if stage is not _KEEP:
            self._trainer_state.stage = stage
        single = step.single
        if single is not None:  # _run for one op of one function, inlined
            name, fn, returns = single
            fx = self._fx
            prev = fx.get(_FX)
            fx[_FX] = name
            try:
                result = fn(*args)
            finally:
                fx[_FX] = prev
            return result if returns else None
        ops = step.ops
        if ops:
            return self._run(ops, args)
        return None

    def _fire_checked(self, trigger: Trigger, *args: Any) -> Any:
        return self._fire_general(trigger, args)

    def _fire_general(self, trigger: Trigger, args: tuple[Any, ...]) -> Any:
        source = self._state
        step = self._rows[source].get(trigger)
        if self._checker is not None:
            self._checker.legal(trigger, source, step)
        if step is None:
            raise LifecycleError(self.state, trigger.name, self.legal())
        if step.dest is not None:
            self._ids = self._id_rows[step.dest]
            if self._checker is not None:
                self._checker.moved(trigger, step.dest)
        elif self._checker is not None:
            self._checker.moved(trigger, source)
        if step.stage is not _KEEP:
            self._trainer_state.stage = step.stage
        if not step.ops:
            return None
        return self._run(step.ops, args)

    def _run(self, ops: tuple[d.Op, ...], args: tuple[Any, ...]) -> Any:
        fx = self._fx
        prev = fx.get(_FX)
        result: Any = None
        try:
            for op in ops:
                kind = op.kind
                if kind == _ACTION:
                    self._actions[op.action]()  # type: ignore[index]
                    continue
                fx[_FX] = op.name
                select = op.select
                a = args if select is None else select(args)
                if op.kwargs:
                    kw = {k: args[i] for k, i in op.kwargs}
                    for fn in op.fns:
                        value = fn(*a, **kw)
                        if kind == _RETURN:
                            result = value
                elif kind == _CALL:
                    for fn in op.fns:
                        fn(*a)
                elif kind == _RETURN:
                    result = op.fns[0](*a)
                elif kind == _PIPE:
                    args = (op.fns[0](*a), *args[1:])
                    result = args[0]
                elif kind == _ISOLATED:
                    for fn in op.fns:
                        try:
                            fn(*a)
                        except BaseException as err:  # every handler must run
                            self._isolated_failures.append((_owner(fn, op), err))
                elif kind == _COLLECT:
                    result = {}
                    for key, fn in zip(op.keys, op.fns, strict=True):
                        value = fn()
                        if value:
                            result[key] = value
                else:  # PER_KEY
                    states = a[0]
                    for key, fn in zip(op.keys, op.fns, strict=True):
                        value = states.get(key)
                        if value:
                            fn(copy.deepcopy(value))
        finally:
            fx[_FX] = prev
        return result

    # ------------------------------------------------------------------ interruption

    def interrupt(self, exception: BaseException, teardown: Callable[[], None] | None = None) -> None:
        """Handle an exception that aborts a run, as the contract says.

        Sets the status to interrupted, fires every callback's ``on_exception`` then
        the datamodule's (each runs even if another fails), runs ``teardown``, resets
        the stage and returns to idle. Failures of handlers or of ``teardown`` are
        attached to ``exception`` as notes and kept in :attr:`secondary_errors`; the
        caller re-raises ``exception`` itself.

        Args:
            exception: the exception that aborted the run.
            teardown: internal clean-up to run after the handlers.
        """
        self._isolated_failures = []
        self._trainer_state.status = TrainerStatus.INTERRUPTED
        if self.can_fire(INTERRUPT):
            self.fire(INTERRUPT, exception)
        if teardown is not None:
            try:
                teardown()
            except BaseException as err:  # never hide the original
                self._isolated_failures.append(("internal teardown", err))
        self._trainer_state.stage = None
        if self.can_fire(FINISH):
            self.fire(FINISH)
        else:
            self.reset()
        self.secondary_errors = [err for _, err in self._isolated_failures]
        for owner, failure in self._isolated_failures:
            exception.add_note(
                f"lightcycle: {owner} also failed while handling this: {type(failure).__name__}: {failure}"
            )

    @contextmanager
    def guard(self, teardown: Callable[[], None] | None = None) -> Iterator[None]:
        """Run a block as one lifecycle run: any exception interrupts it, then re-raises.

        Args:
            teardown: internal clean-up for the interruption path.
        """
        try:
            yield
        except BaseException as exc:
            self.interrupt(exc, teardown)
            raise

    # ------------------------------------------------------------------ actions

    def _capture_train_mode(self) -> None:
        module = self._module
        self._saved_modes = [(m, m.training) for m in module.modules()] if module is not None else []

    def _restore_train_mode(self) -> None:
        for m, training in self._saved_modes:
            m.training = training
        self._saved_modes = []


def _owner(fn: Callable[..., Any], op: d.Op) -> str:
    target = getattr(fn, "func", fn)
    obj = getattr(target, "__self__", None)
    name = type(obj).__name__ if obj is not None else op.src
    return f"{name}.{op.name}"
