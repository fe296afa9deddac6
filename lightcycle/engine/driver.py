"""The lifecycle driver: fires declared events in order and runs their hooks.

One driver serves every loop: :class:`~lightcycle.trainer.trainer.Trainer` walks the
lifecycle through it, and custom training loops use it directly (see
:mod:`lightcycle.custom_loop.loop_driver`). :meth:`LifecycleDriver.bind` compiles each transition's
hooks against a run's objects; each event a run fires then gets one generated function
(:mod:`~lightcycle.engine.codegen`) that finds its step from the current state's row
(an identity test, or a dict lookup for events legal from many states), refuses the event
with :class:`~lightcycle.errors.LifecycleError` if the declaration does not allow it from
there, moves, sets the stage and calls the hooks.
Nothing on that path logs, formats strings or resolves names. Loops that fire an event
once per batch hold that function (:meth:`LifecycleDriver.caller`).

In checked mode every step is proven against the ``transitions`` machine built from the
same declaration before it first runs (:mod:`~lightcycle.engine.checked`), and every
disagreement with the table raises :class:`LifecycleCheckError`; the proven functions are
then the unchecked ones.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from functools import partial
from typing import Any

import attrs

from lightcycle._foreign import hook_base
from lightcycle.callbacks.callback import Callback
from lightcycle.callbacks.monitoring import is_monitoring
from lightcycle.core.datamodule import LightningDataModule
from lightcycle.core.module import LightningModule
from lightcycle.engine import codegen, interpreter
from lightcycle.engine import dispatch as d
from lightcycle.engine.checked import Checker, LifecycleCheckError
from lightcycle.engine.interpreter import Context, Step, event_function, function_name
from lightcycle.errors import LifecycleError
from lightcycle.profilers import wrapping as profiling
from lightcycle.states.declaration import FINISH, INTERRUPT, LIFECYCLE
from lightcycle.states.model import Action, Event, Lifecycle
from lightcycle.states.stages import TrainerStatus
from lightcycle.states.table import TransitionTable

__all__ = ["EXECUTORS", "LifecycleCheckError", "LifecycleDriver", "env_debug", "env_executor", "table_for"]

_TABLES: dict[int, tuple[Lifecycle, TransitionTable]] = {}
EXECUTORS = ("generated", "interpreted")
"""The executors a driver can run events with (see :class:`LifecycleDriver`)."""
DEFAULT_EXECUTOR = "generated"
_LOG = logging.getLogger("lightcycle.engine")


def env_executor() -> str:
    """The executor ``LIGHTCYCLE_EXECUTOR`` names (:data:`DEFAULT_EXECUTOR` when unset or empty)."""
    return os.environ.get("LIGHTCYCLE_EXECUTOR", "") or DEFAULT_EXECUTOR


def env_debug() -> bool:
    """Whether ``LIGHTCYCLE_DEBUG`` asks for debug mode (any value but empty or ``0``)."""
    return os.environ.get("LIGHTCYCLE_DEBUG", "") not in ("", "0")


def table_for(lifecycle: Lifecycle) -> TransitionTable:
    """The compiled table of a lifecycle, built once per lifecycle object."""
    hit = _TABLES.get(id(lifecycle))
    if hit is None or hit[0] is not lifecycle:
        hit = (lifecycle, TransitionTable(lifecycle))
        _TABLES[id(lifecycle)] = hit
    return hit[1]


class LifecycleDriver:
    """Fires lifecycle events for one trainer (or trainer-like state holder).

    Args:
        trainer: passed as ``trainer`` to callback hooks; its ``state`` (a
            :class:`~lightcycle.states.stages.TrainerState`) gets the stage and
            status.
        lifecycle: the declaration to follow; a copy extended with custom events
            works the same way.
        checked: check every event against the ``transitions`` machine of the declaration
            (:mod:`~lightcycle.engine.checked`) and raise
            :class:`~lightcycle.engine.checked.LifecycleCheckError` on any disagreement:
            each step an event function can take is proven when the function is made, and
            each refused event when it is refused.
        executor: how events run: ``"generated"`` (one Python function per event,
            :mod:`~lightcycle.engine.codegen`) or ``"interpreted"`` (the reference loop,
            :mod:`~lightcycle.engine.interpreter`); ``None`` reads ``LIGHTCYCLE_EXECUTOR``
            (default ``"generated"``). Both call the same receivers in the same order.

    ``LIGHTCYCLE_DEBUG=1`` (read here, once) logs each event with its source and target
    state, and each hook and action it runs, to the ``lightcycle.engine`` logger at DEBUG
    level. Off, the bound hooks and event functions are the plain ones: nothing is paid.

    Attributes:
        secondary_errors: failures raised by ``on_exception`` handlers during the
            last interruption (also attached as notes to the original exception).
        refusal: builds the error for an illegal event from ``(state, event, legal
            events)``; :class:`~lightcycle.errors.LifecycleError` unless a front end phrases
            it in its own calls (:mod:`lightcycle.custom_loop.errors`).
    """

    def __init__(
        self,
        trainer: Any,
        lifecycle: Lifecycle = LIFECYCLE,
        *,
        checked: bool = False,
        executor: str | None = None,
    ) -> None:
        chosen = env_executor() if executor is None else executor
        if chosen not in EXECUTORS:
            source = "LIGHTCYCLE_EXECUTOR" if executor is None else "executor"
            raise ValueError(f"{source} must be one of {', '.join(map(repr, EXECUTORS))}, got {chosen!r}")
        self.executor = chosen
        self.debug = env_debug()
        self.table = table_for(lifecycle)
        self.lifecycle = lifecycle
        self.trainer = trainer
        self._trainer_state = trainer.state
        self._rows: list[dict[Event, Step]] = []
        # the same rows keyed by ``id(trigger)`` (the table's trigger objects): an int hash
        # instead of the attrs ``__hash__`` of a Event on every fire
        self._id_rows: list[dict[int, Step]] = []
        # The current state *is* its row: an event function moves by replacing ``_ids``
        # and nothing else; the state's index is looked up from the row when asked (``_state``).
        self._ids: dict[int, Step] = {}
        self._row_index: dict[int, int] = {id(self._ids): self.table.initial}
        # per bind: id(table trigger) -> its generated event function, made at first use
        self._events: dict[int, Callable[..., Any]] = {}
        self._module: Any = None
        self._fx: dict[str, Any] = {}
        self._context: Context | None = None
        self._saved_modes: list[tuple[Any, bool]] = []
        # checked mode proves steps where event functions are made (``_event``) and refusals
        # where they happen (``_fire_general``): ``fire`` and the functions are the unchecked ones
        self._checker = Checker(self.table) if checked else None
        self._observers: list[Any] = []
        self._profiling: profiling.RunProfiling | None = None
        self._isolated_failures: list[tuple[str, BaseException]] = []
        self.secondary_errors: list[BaseException] = []
        self.refusal: Callable[[str, str, tuple[str, ...]], Exception] = LifecycleError
        self._actions: dict[Action, Callable[[], None]] = {
            Action.CAPTURE_TRAIN_MODE: self._capture_train_mode,
            Action.RESTORE_TRAIN_MODE: self._restore_train_mode,
            # the strategy's steps, done by the run host where it has them (a Trainer), else nothing
            Action.SETUP_ENVIRONMENT: self._host_step("_setup_environment"),
            Action.PREPARE_DATA_BARRIER: self._host_step("_prepare_data_barrier"),
            Action.STRATEGY_SETUP: self._host_step("_strategy_setup"),
            Action.STRATEGY_TEARDOWN: self._host_step("_teardown_internal"),
        }
        if self.debug:
            self._actions = {action: _logged_action(action, run) for action, run in self._actions.items()}
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
        contexts: Mapping[str, Callable[[], AbstractContextManager[Any]]] | None = None,
    ) -> None:
        """Compile every transition's hooks against the objects of a run.

        Call it when a run starts and again whenever the callback list changes
        (after ``configure_callbacks``). Callbacks with a ``record_hook`` method
        (e.g. :class:`~lightcycle.callbacks.HookRecorder`) also observe module hooks.
        When the trainer has an active ``profiler``, every receiver and event is wrapped
        to time it (:mod:`lightcycle.profilers.wrapping`); without one nothing is.

        Args:
            module: the LightningModule (or ``None`` before a run).
            callbacks: the callbacks, in dispatch order.
            datamodule: the datamodule, if any.
            skip: hook names not to call in this run.
            noops: module hooks this run's settings make do nothing: left out unless an
                observer records module hooks (as base no-ops are).
            contexts: hook name -> context-manager factory its receivers run in.
        """
        self._module = module
        self._fx = module.__dict__ if module is not None else {}
        self._observers = [cb for cb in callbacks if callable(getattr(cb, "record_hook", None))]
        for obs in self._observers:
            attach = getattr(obs, "attach", None)
            if callable(attach):
                attach(self.trainer)
        # the one hook point of profiling: resolved once per bind, never per call
        prof = self._profiling = profiling.for_run(
            getattr(self.trainer, "profiler", None), self.trainer, module, datamodule
        )
        receivers = d.Receivers(
            trainer=self.trainer,
            module=module,
            callbacks=list(callbacks),
            datamodule=datamodule,
            is_monitoring=is_monitoring,
            module_base=LightningModule,
            datamodule_base=hook_base(datamodule, LightningDataModule),
            callback_base=Callback,
            skip=skip,
            keep_noops=bool(self._observers) or prof is not None,
            noops=noops,
            keep_callback_noops=prof is not None,
            contexts=contexts or {},
        )
        compiled: dict[int, tuple[d.Op, ...]] = {}
        shared: dict[tuple[int, int | None, Any], Step] = {}
        rows: list[dict[Event, Step]] = []
        for entries in self.table.rows:
            row: dict[Event, Step] = {}
            for trigger, entry in entries.items():
                key = id(entry.transition)
                step = shared.get((key, entry.dest, entry.stage))
                if step is None:
                    ops = compiled.get(key)
                    if ops is None:
                        ops = d.compile_transition(entry.transition, receivers) if module is not None else ()
                        if prof is not None:
                            ops = prof.ops(ops)
                        if self._observers:
                            ops = tuple(self._observed(op) for op in ops)
                        if self.debug:
                            ops = tuple(_logged_op(op) for op in ops)
                        compiled[key] = ops
                    step = shared[key, entry.dest, entry.stage] = Step(trigger, entry.dest, entry.stage, ops)
                row[trigger] = step
            rows.append(row)
        state = self._state
        self._rows = rows
        self._id_rows = [{id(trigger): step for trigger, step in row.items()} for row in rows]
        self._row_index = {id(row): i for i, row in enumerate(self._id_rows)}
        self._ids = self._id_rows[state]
        self._events = {}
        self._context = Context(
            self, self._trainer_state, self.trainer, module, self._fx, self._actions, self._fire_general
        )

    @property
    def profiling(self) -> profiling.RunProfiling | None:
        """The timing of this bind's hooks and loop spans, ``None`` without an active profiler."""
        return self._profiling

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

    def can_fire(self, trigger: Event) -> bool:
        """Whether ``trigger`` is legal now (no side effects)."""
        return trigger in self._rows[self._state]

    def calls_hooks(self, trigger: Event) -> bool:
        """Whether ``trigger`` calls any hook or action in this bind, from any state.

        ``False`` means its arguments are seen by nobody in this run (e.g. the ``outputs``
        of ``on_train_batch_end`` when no callback overrides it), so the loop may skip
        building them.
        """
        return any(step.ops for row in self._rows if (step := row.get(trigger)) is not None)

    def reset(self) -> None:
        """Return to the initial state without firing anything (a fresh driver)."""
        self._ids = self._id_rows[self.table.initial]

    @property
    def checked_pairs(self) -> frozenset[tuple[str, str]]:
        """Checked mode: the ``(state path, event name)`` steps proven against the machine so far.

        Every step an event function of this driver can take is in it once the function is
        made, before its first fire (empty when unchecked).
        """
        return frozenset(self._checker.proven) if self._checker is not None else frozenset()

    # ------------------------------------------------------------------ firing

    def fire(self, trigger: Event, *args: Any) -> Any:
        """Fire one event: check it, move, set the stage, run its hooks.

        Args:
            trigger: the event (a :class:`~lightcycle.states.model.Event` of this
                driver's lifecycle).
            *args: its parameters, in the trigger's order.

        Returns:
            The value of the hook that produces the result (a step's output, the
            module's ``on_train_batch_start`` return, the transferred batch, the
            collected state dicts), else ``None``.

        Raises:
            LifecycleError: the event is not legal in the current state; nothing fired.
            TypeError: the wrong number of arguments; nothing fired.
        """
        # Fast path: the event's generated function, found by identity. Everything else
        # (its first use in this run, a trigger object equal to but not the table's, an
        # illegal event) takes ``_fire_general``, where checked mode checks it.
        event = self._events.get(id(trigger))
        if event is None:
            return self._fire_general(trigger, args)
        return event(*args)

    def caller(self, trigger: Event) -> Callable[..., Any]:
        """A function that fires ``trigger`` with the given arguments: ``fire`` without the lookup.

        For loops that fire the same event many times (once per batch). It is made for
        the objects bound now: after a later :meth:`bind` it still fires correctly,
        through the general path, so fetch it again where the callbacks may change.
        In checked mode its steps are proven here, before it is returned.

        Args:
            trigger: the event.

        Returns:
            ``f(*args)``, equivalent to ``fire(trigger, *args)``.
        """
        table_trigger = self.table.triggers.get(trigger.name)
        if table_trigger is not trigger or self._module is None:
            return partial(self.fire, trigger)  # (nothing bound yet: no function worth generating)
        return self._event(trigger)

    def inliner(self) -> codegen.Inliner | None:
        """A writer of one function that fires several events of this bind inline.

        Only where events run as plain generated functions (the generated executor, no
        debug logging, no profiler): elsewhere each event keeps its own path. Checked mode
        inlines too: the inliner fetches each inlined event's own function (its fallback)
        through ``_event`` before it writes the event's step, and ``_event`` proves every
        step of that event against the machine first.

        Returns:
            A :class:`~lightcycle.engine.codegen.Inliner`, or ``None`` where events must
            not be inlined.
        """
        if (
            self.executor != "generated"
            or self.debug
            or self._profiling is not None
            or self._module is None
            or self._context is None
        ):
            return None
        return codegen.Inliner(self._context, self._event)

    def _event(self, trigger: Event) -> Callable[..., Any]:
        """The event function of a table trigger for this bind, made at first use by the executor."""
        event = self._events.get(id(trigger))
        if event is None:
            steps: dict[int, tuple[Step, list[dict[int, Step]]]] = {}
            sources_of: dict[int, list[int]] = {}
            names: list[str] = []
            for index, (path, row, id_row) in enumerate(zip(self.table.states, self._rows, self._id_rows, strict=True)):
                step = row.get(trigger)
                if step is not None:
                    steps.setdefault(id(step), (step, []))[1].append(id_row)
                    sources_of.setdefault(id(step), []).append(index)
                    names.append(path)
            checker = self._checker
            if checker is not None:  # proven once, here: the function then runs unchecked
                for step, _ in steps.values():
                    for source in sources_of[id(step)]:
                        checker.prove(trigger, source, step.dest)
            name = function_name(trigger, names)
            assert self._context is not None  # (set by every bind, the first in __init__)
            if self.executor == "generated":
                event = codegen.compile_event(self._context, trigger, list(steps.values()), name)
            else:
                event = event_function(self._context, trigger, [step for step, _ in steps.values()], name)
            if self._profiling is not None:
                event = self._profiling.event(trigger, event)
            if self.debug:
                event = self._logged_event(trigger, event)
            self._events[id(trigger)] = event
        return event

    def _logged_event(self, trigger: Event, event: Callable[..., Any]) -> Callable[..., Any]:
        """Debug mode: ``event`` that first logs its name, source and target state."""

        @functools.wraps(event)
        def logged(*args: Any) -> Any:
            source = self._state
            step = self._rows[source].get(trigger)
            if step is None:
                _LOG.debug("event %s from %s: not legal here", trigger.name, self.table.states[source])
            else:
                target = source if step.dest is None else step.dest
                _LOG.debug("event %s: %s -> %s", trigger.name, self.table.states[source], self.table.states[target])
            return event(*args)

        return logged

    def _fire_general(self, trigger: Event, args: tuple[Any, ...]) -> Any:
        source = self._state
        step = self._rows[source].get(trigger)
        checker = self._checker
        if checker is not None:  # (also a step the function has not proven: a row changed after it was made)
            if step is None:
                checker.refused(trigger, source)
            else:
                checker.prove(trigger, source, step.dest)
        if step is None:
            raise self.refusal(self.state, trigger.name, self.legal())
        n = len(trigger.params)
        if not n - trigger.optional_tail <= len(args) <= n:
            raise TypeError(f"event {trigger.name!r} takes the arguments {trigger.params}, got {len(args)} values")
        event = self._event(step.trigger)
        # the event's function moves, sets the stage and runs the hooks
        return event(*args)

    # ------------------------------------------------------------------ interruption

    def interrupt(self, exception: BaseException, teardown: Sequence[Callable[[], None]] = ()) -> None:
        """Handle an exception that aborts a run, as the contract says.

        Sets the status to interrupted, fires every callback's ``on_exception`` then
        the datamodule's (each runs even if another fails), runs the ``teardown`` steps
        (each runs even if another fails), resets
        the stage and returns to idle. Ordinary failures (``Exception``) of handlers or of
        ``teardown`` are attached to ``exception`` as notes and kept in
        :attr:`secondary_errors`; the caller re-raises ``exception`` itself.

        A ``KeyboardInterrupt``, ``SystemExit`` or other ``BaseException`` that is not an
        ``Exception``, raised by a handler or by ``teardown``, is the user stopping the process:
        the handlers after it are not called (as in Lightning, where it escapes
        ``on_exception``), ``teardown`` and the return to idle still run, and then it is raised
        here, with ``exception`` as its ``__context__``, so that nothing retries the run.

        Args:
            exception: the exception that aborted the run.
            teardown: internal clean-up steps to run after the handlers, in order.

        Raises:
            BaseException: the first non-``Exception`` raised by a handler or by ``teardown``.
        """
        self._isolated_failures = []
        self._trainer_state.status = TrainerStatus.INTERRUPTED
        stop: BaseException | None = None
        try:
            if self.can_fire(INTERRUPT):
                self.fire(INTERRUPT, exception)
        except BaseException as err:  # the isolated handlers let only non-Exceptions through
            stop = err
        for step in teardown:
            try:
                step()
            except Exception as err:  # never hide the original
                self._isolated_failures.append(("internal teardown", err))
            except BaseException as err:
                if stop is None:
                    stop = err
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
        if stop is not None:
            if stop.__context__ is None and stop is not exception:
                stop.__context__ = exception
            raise stop

    @contextmanager
    def guard(self, teardown: Sequence[Callable[[], None]] = ()) -> Iterator[None]:
        """Run a block as one lifecycle run: any exception interrupts it, then re-raises.

        Args:
            teardown: internal clean-up steps for the interruption path (each runs even if
                another fails).
        """
        try:
            yield
        except BaseException as exc:
            self.interrupt(exc, teardown)
            raise

    # ------------------------------------------------------------------ actions

    def _host_step(self, name: str) -> Callable[[], None]:
        def step() -> None:
            method = getattr(self.trainer, name, None)
            if method is not None:
                method()

        return step

    def _capture_train_mode(self) -> None:
        module = self._module
        self._saved_modes = [(m, m.training) for m in module.modules()] if module is not None else []

    def _restore_train_mode(self) -> None:
        for m, training in self._saved_modes:
            m.training = training
        self._saved_modes = []


# ---------------------------------------------------------------------- debug mode


def _logged_op(op: d.Op) -> d.Op:
    """Debug mode: ``op`` whose receivers log ``Class.hook`` before each call."""
    if op.kind == d.ACTION:
        return op  # its action logs itself (the driver's actions are wrapped once)

    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        who = interpreter.owner(fn, op)

        @functools.wraps(fn)
        def logged(*args: Any, **kwargs: Any) -> Any:
            _LOG.debug("  hook %s", who)
            return fn(*args, **kwargs)

        return logged

    return attrs.evolve(op, fns=tuple(wrap(f) for f in op.fns))


def _logged_action(action: Action, run: Callable[[], None]) -> Callable[[], None]:
    """Debug mode: the action ``run`` that logs its name first."""

    def logged() -> None:
        _LOG.debug("  action %s", action.value)
        run()

    return logged
