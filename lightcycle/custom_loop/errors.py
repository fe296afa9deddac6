"""Refusals of :class:`~lightcycle.custom_loop.LoopDriver` calls, phrased in the driver's own methods.

A custom loop calls methods (``lc.train_batch_start(batch, i)``), not events
(``train_batch_transfer``). When the lifecycle refuses a call, the error says which call
was refused and which driver calls the lifecycle allows next, from one table:
:data:`CALLS`, each declared event → the :class:`LoopDriver` calls that fire it. The
error is still a :class:`~lightcycle.errors.LifecycleError` (``state``, ``trigger`` and
``legal`` keep the lifecycle's words); the Trainer's refusals are untouched.
"""

from __future__ import annotations

from collections.abc import Iterable

from lightcycle.errors import LifecycleError
from lightcycle.states import declaration as ev
from lightcycle.states.model import SEPARATOR, Event

_EVAL = (ev.VALIDATION, ev.TEST, ev.PREDICT)

FIRES: tuple[tuple[str, tuple[Event, ...]], ...] = (
    # opening a run: the entry point fires its events up to the first call the loop makes
    ("lc.fit(...)", (ev.ENTRY["fit"], ev.PREPARE_DATA, ev.SETUP, ev.CONFIGURE_OPTIMIZERS, ev.FIT_START)),
    ("lc.validate()", (ev.ENTRY["validate"],)),
    ("lc.test()", (ev.ENTRY["test"], ev.TEST_DATALOADER, ev.TEST.start, ev.TEST.epoch_start)),
    ("lc.predict()", (ev.ENTRY["predict"], ev.PREDICT_DATALOADER, ev.PREDICT.start, ev.PREDICT.epoch_start)),
    # fit
    ("lc.sanity_check_start()", (ev.SANITY_CHECK_START,)),
    ("lc.sanity_check_end()", (ev.SANITY_CHECK_END,)),
    ("lc.train_start()", (ev.TRAIN_DATALOADER, ev.TRAIN_START)),
    ("lc.train_epoch_start()", (ev.TRAIN_DATALOADER, ev.TRAIN_START, ev.TRAIN_EPOCH_START)),
    ("for epoch in lc.epochs(...)", (ev.TRAIN_DATALOADER, ev.TRAIN_START, ev.TRAIN_EPOCH_START)),
    ("lc.train_batch_start(batch, batch_idx)", (ev.TRAIN_BATCH_TRANSFER, ev.TRAIN_BATCH_START, ev.SKIP_REST_OF_EPOCH)),
    ("lc.train_batch(batch, batch_idx)", (ev.TRAIN_BATCH_TRANSFER, ev.TRAIN_BATCH_START, ev.SKIP_REST_OF_EPOCH)),
    (
        "lc.training_step()",
        (
            ev.OPTIMIZER_STEP,
            ev.TRAINING_STEP,
            ev.ZERO_GRAD,
            ev.BEFORE_OPTIMIZER_STEP,
            ev.OPTIMIZER_STEP_END,
            ev.MANUAL_TRAINING_STEP,
        ),
    ),
    ("lc.backward(loss)", (ev.BACKWARD,)),
    ("lc.optimizer_step(optimizer)", (ev.MANUAL_OPTIMIZER_STEP,)),
    ("lc.lr_scheduler_step(scheduler)", (ev.LR_SCHEDULER_STEP,)),
    ("lc.train_batch_end(outputs)", (ev.TRAIN_BATCH_END,)),
    (
        "lc.validation_start()",
        (ev.VAL_DATALOADER, ev.VALIDATION_MODEL_ZERO_GRAD, ev.VALIDATION.start, ev.VALIDATION.epoch_start),
    ),
    ("lc.validation_end()", (ev.VALIDATION.epoch_end, ev.VALIDATION.end, ev.VALIDATION_EXIT)),
    ("lc.train_epoch_end()", (ev.TRAIN_EPOCH_END,)),
    ("lc.train_end()", (ev.TRAIN_END,)),
    # evaluation batches, in every loop
    *((f"lc.{e.noun}_batch_start(batch, batch_idx)", (e.batch_transfer, e.batch_start)) for e in _EVAL),
    *((f"lc.{e.noun}_batch(batch, batch_idx)", (e.batch_transfer, e.batch_start)) for e in _EVAL),
    *((f"lc.{e.noun}_step()", (e.step,)) for e in _EVAL),
    *((f"lc.{e.noun}_batch_end(outputs)", (e.batch_end,)) for e in _EVAL),
    # closing a run (what leaving its `with` block calls); a test or predict loop ends with its run
    (
        "lc.end()",
        (ev.FIT_END, ev.TEARDOWN, ev.FINISH, ev.TEST.epoch_end, ev.TEST.end, ev.PREDICT.epoch_end, ev.PREDICT.end),
    ),
    # checkpoints: written by lc.save_checkpoint; a custom loop restores its own state
    ("lc.save_checkpoint(path)", (ev.COLLECT_STATE, ev.COLLECT_DATAMODULE_STATE, ev.SAVE_CHECKPOINT, ev.SAVE_WEIGHTS)),
)
"""Each :class:`LoopDriver` call and the declared events it fires (``lc.begin(fn)`` is ``lc.fit()`` & co.)."""

NOT_CALLED = (ev.RESUME_EPOCH, ev.INTERRUPT, ev.LOAD_CHECKPOINT, ev.LOAD_DATAMODULE_STATE, ev.LOAD_CALLBACK_STATES)
"""Declared events no driver call fires: the Trainer resumes epochs and restores checkpoints; an
exception inside a run interrupts it."""


def _by_event() -> dict[str, tuple[str, ...]]:
    """:data:`FIRES` turned round: each event's calls, in the order :data:`FIRES` lists them."""
    out: dict[str, tuple[str, ...]] = {t.name: () for t in NOT_CALLED}
    for call, events in FIRES:
        for event in events:
            if call not in out.setdefault(event.name, ()):
                out[event.name] += (call,)
    return out


CALLS = _by_event()
"""Each declared event → the :class:`LoopDriver` calls that fire it, best first (empty: none does).

Events a lifecycle adds (``LIFECYCLE.extend``) are fired with ``lc.fire(name, ...)``."""

_OUTSIDE_FIT: dict[str, tuple[str, ...]] = {
    ev.VALIDATION.epoch_end.name: ("lc.end()",),
    ev.VALIDATION.end.name: ("lc.end()",),
    ev.VALIDATION.start.name: (),
    ev.VALIDATION.epoch_start.name: (),
}
"""In a validate run the validation loop opens and closes with the run, not with ``validation_start/_end``."""


def calls_for(event: str, state: str) -> tuple[str, ...]:
    """The driver calls that fire ``event`` from ``state``.

    Args:
        event: an event's name.
        state: the lifecycle's state path (the entry point decides a few events' calls).

    Returns:
        The calls, best first; empty when no driver method fires the event.
    """
    if not state.startswith(ev.ENTRY["fit"].name + SEPARATOR) and event in _OUTSIDE_FIT:
        return _OUTSIDE_FIT[event]
    if event not in CALLS:
        return (f"lc.fire({event!r}, ...)",)  # an event the lifecycle was extended with
    return CALLS[event]


def next_calls(state: str, legal: Iterable[str]) -> list[str]:
    """The driver calls the lifecycle allows from ``state``, in the order it declares the events.

    Args:
        state: the lifecycle's state path.
        legal: the names of the events legal there, in declaration order.

    Returns:
        Distinct calls.
    """
    return list(dict.fromkeys(call for event in legal for call in calls_for(event, state)))


class LoopDriverLifecycleError(LifecycleError):
    """A :class:`LoopDriver` call the lifecycle does not allow now.

    The message names the refused call and the driver calls allowed next; the attributes
    are :class:`~lightcycle.errors.LifecycleError`'s.

    Args:
        state: the state the lifecycle was in.
        trigger: the event the refused call would have fired.
        legal: the events legal in ``state``, in declaration order.
        declared: whether ``trigger`` is an event of the lifecycle at all.
        called: the refused call as the user wrote it (``lc.fire('teardown', ...)``);
            by default the driver call that fires ``trigger``.

    Attributes:
        calls: the driver calls allowed next.
    """

    def __init__(
        self, state: str, trigger: str, legal: Iterable[str], *, declared: bool = True, called: str | None = None
    ) -> None:
        ordered = tuple(legal)
        super().__init__(state, trigger, ordered)
        self.calls = next_calls(state, ordered)
        if not declared:
            refused = f"lc.fire({trigger!r}): the lifecycle declares no event {trigger!r} (add it with "
            refused += "LIFECYCLE.extend(transitions=[...]) and pass lifecycle=...)"
        else:
            tried = (called,) if called else CALLS.get(trigger, (f"lc.fire({trigger!r}, ...)",))
            refused = f"{tried[0] if tried else f'event {trigger!r}'} is not allowed now"
        if self.calls:
            allowed = ", ".join(self.calls[:-1]) + (" or " if len(self.calls) > 1 else "") + self.calls[-1]
            advice = f"Call {allowed} next (docs/lifecycle.md shows the order; `with` blocks call start and end)."
        else:
            advice = "No driver call is allowed there; let the run end."
        self.args = (f"{refused}: the lifecycle is in state {state!r}. {advice}",)


def refusal(state: str, trigger: str, legal: Iterable[str]) -> LifecycleError:
    """The error for a refused driver call (the engine's hook for front ends, see ``LifecycleDriver.refusal``).

    Args:
        state: the state the lifecycle was in.
        trigger: the refused event.
        legal: the events legal there, in declaration order.

    Returns:
        A :class:`LoopDriverLifecycleError`.
    """
    return LoopDriverLifecycleError(state, trigger, legal)
