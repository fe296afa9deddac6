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
from lightcycle.states.model import SEPARATOR

_SAVE = ("lc.save_checkpoint(path)",)
_END = ("lc.end()",)  # (what leaving a `with lc.fit():` block calls)
_FIT = ("lc.fit(...)",)  # (or lc.begin("fit"): every entry point has both forms)
_TRAIN_BATCH = ("lc.train_batch_start(batch, batch_idx)", "lc.train_batch(batch, batch_idx)")
_TRAINING_STEP = ("lc.training_step()",)
_VALIDATION_START = ("lc.validation_start()",)


def _evaluation(e: ev.EvalTriggers) -> dict[str, tuple[str, ...]]:
    """The calls that fire one evaluation loop's batch events."""
    noun = e.noun
    batch = (f"lc.{noun}_batch_start(batch, batch_idx)", f"lc.{noun}_batch(batch, batch_idx)")
    return {
        e.batch_transfer.name: batch,
        e.batch_start.name: batch,
        e.step.name: (f"lc.{noun}_step()",),
        e.batch_end.name: (f"lc.{noun}_batch_end(outputs)",),
    }


CALLS: dict[str, tuple[str, ...] | None] = {
    # opening a run: begin() fires the entry event and what follows it up to the first user call
    ev.ENTRY["fit"].name: _FIT,
    ev.SETUP.name: _FIT,
    ev.CONFIGURE_OPTIMIZERS.name: _FIT,
    ev.FIT_START.name: _FIT,
    ev.ENTRY["validate"].name: ("lc.validate()",),
    ev.ENTRY["test"].name: ("lc.test()",),
    ev.ENTRY["predict"].name: ("lc.predict()",),
    ev.TEST_DATALOADER.name: ("lc.test()",),
    ev.PREDICT_DATALOADER.name: ("lc.predict()",),
    # fit
    ev.SANITY_CHECK_START.name: ("lc.sanity_check_start()",),
    ev.SANITY_CHECK_END.name: ("lc.sanity_check_end()",),
    ev.VAL_DATALOADER.name: _VALIDATION_START,
    ev.VALIDATION_MODEL_ZERO_GRAD.name: _VALIDATION_START,
    ev.VALIDATION.start.name: _VALIDATION_START,
    ev.VALIDATION.epoch_start.name: _VALIDATION_START,
    ev.VALIDATION.epoch_end.name: ("lc.validation_end()",),
    ev.VALIDATION.end.name: ("lc.validation_end()",),
    ev.VALIDATION_EXIT.name: ("lc.validation_end()",),
    ev.TRAIN_DATALOADER.name: ("lc.train_start()", "lc.train_epoch_start()", "for epoch in lc.epochs(...)"),
    ev.TRAIN_START.name: ("lc.train_start()", "lc.train_epoch_start()", "for epoch in lc.epochs(...)"),
    ev.TRAIN_EPOCH_START.name: ("lc.train_epoch_start()", "for epoch in lc.epochs(...)"),
    ev.TRAIN_BATCH_TRANSFER.name: _TRAIN_BATCH,
    ev.TRAIN_BATCH_START.name: _TRAIN_BATCH,
    ev.SKIP_REST_OF_EPOCH.name: _TRAIN_BATCH,
    ev.OPTIMIZER_STEP.name: _TRAINING_STEP,
    ev.TRAINING_STEP.name: _TRAINING_STEP,
    ev.ZERO_GRAD.name: _TRAINING_STEP,
    ev.BEFORE_OPTIMIZER_STEP.name: _TRAINING_STEP,
    ev.OPTIMIZER_STEP_END.name: _TRAINING_STEP,
    ev.MANUAL_TRAINING_STEP.name: _TRAINING_STEP,
    ev.BACKWARD.name: ("lc.backward(loss)",),
    ev.MANUAL_OPTIMIZER_STEP.name: ("lc.optimizer_step(optimizer)",),
    ev.LR_SCHEDULER_STEP.name: ("lc.lr_scheduler_step(scheduler)",),
    ev.TRAIN_BATCH_END.name: ("lc.train_batch_end(outputs)",),
    ev.TRAIN_EPOCH_END.name: ("lc.train_epoch_end()",),
    ev.TRAIN_END.name: ("lc.train_end()",),
    ev.FIT_END.name: _END,
    ev.TEARDOWN.name: _END,
    ev.FINISH.name: _END,
    # evaluation batches, in every loop
    **_evaluation(ev.VALIDATION),
    **_evaluation(ev.TEST),
    **_evaluation(ev.PREDICT),
    # a test or predict run's loop starts with the run and ends with it
    ev.TEST.start.name: None,
    ev.TEST.epoch_start.name: None,
    ev.TEST.epoch_end.name: _END,
    ev.TEST.end.name: _END,
    ev.PREDICT.start.name: None,
    ev.PREDICT.epoch_start.name: None,
    ev.PREDICT.epoch_end.name: _END,
    ev.PREDICT.end.name: _END,
    # checkpoints: written by lc.save_checkpoint; a custom loop restores its own state
    ev.COLLECT_STATE.name: _SAVE,
    ev.COLLECT_DATAMODULE_STATE.name: _SAVE,
    ev.SAVE_CHECKPOINT.name: _SAVE,
    ev.SAVE_WEIGHTS.name: _SAVE,
    ev.LOAD_CHECKPOINT.name: None,
    ev.LOAD_DATAMODULE_STATE.name: None,
    ev.LOAD_CALLBACK_STATES.name: None,
    # not a call: the Trainer resumes epochs; an exception inside a run interrupts it
    ev.RESUME_EPOCH.name: None,
    ev.INTERRUPT.name: None,
}
"""Each declared event → the :class:`LoopDriver` calls that fire it (``None``: no call does).

Events a lifecycle adds (``LIFECYCLE.extend``) are fired with ``lc.fire(name, ...)``."""

_OUTSIDE_FIT: dict[str, tuple[str, ...]] = {
    ev.VALIDATION.epoch_end.name: _END,
    ev.VALIDATION.end.name: _END,
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
    return CALLS[event] or ()


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
