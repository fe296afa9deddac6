"""The evaluation half of :class:`~lightcycle.custom_loop.loop_driver.LoopDriver`: sanity check, evaluation batches.

Each evaluation run is one :class:`~lightcycle.runtime.evaluation.EvalRun`, the object the
Trainer's evaluation loop runs too: validation inside fit (``lc.validation()``, also inside
``lc.sanity_check()``) and the single loop of a validate, test or predict run. The per-batch
methods are one implementation for the three loops, picked by the loop's
:class:`~lightcycle.states.declaration.EvalEvents` record.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from lightcycle.custom_loop.base import DriverBase
from lightcycle.custom_loop.distributed import processed
from lightcycle.custom_loop.errors import refusal
from lightcycle.errors import MisconfigurationException, SIGTERMException
from lightcycle.runtime.evaluation import EvalRun
from lightcycle.runtime.rng import isolate_rng
from lightcycle.states import declaration as ev
from lightcycle.states.stages import RunningStage, TrainerFn

if TYPE_CHECKING:
    from typing_extensions import Self

    from lightcycle.states.model import Event

_VAL = ev.EVAL["validation"]
_TEST = ev.EVAL["test"]
_PREDICT = ev.EVAL["predict"]


class EvaluationProtocol(DriverBase):
    """The evaluation methods of :class:`~lightcycle.custom_loop.loop_driver.LoopDriver` (a base of it)."""

    # -------------------------------------------------------------- fit: the sanity check

    def sanity_check_start(self) -> None:
        """``on_sanity_check_start`` and the val dataloader hook (then run :meth:`validation_start`)."""
        self._require(ev.SANITY_CHECK_START)
        self._results.reset_run()
        self._fire(ev.SANITY_CHECK_START)
        self.val_dataloaders = processed(self, self._fire(ev.VAL_DATALOADER), "val")
        self._val_requested = True

    def sanity_check_end(self) -> None:
        """``on_sanity_check_end``; metrics logged during the sanity check are discarded."""
        self._require(ev.SANITY_CHECK_END)
        self._fire(ev.SANITY_CHECK_END)
        self._results.reset_run()

    @contextmanager
    def sanity_check(self) -> Iterator[Self]:
        """``with lc.sanity_check():`` — the sanity check and its validation run.

        Call the ``validation_batch*`` methods inside. Random number generators are
        restored afterwards, so the sanity check does not change training (as in the
        Trainer).
        """
        self._require(ev.SANITY_CHECK_START)
        with isolate_rng(), self._grad_context():
            self.sanity_check_start()
            self.validation_start()
            yield self
            self.validation_end()
            self.sanity_check_end()

    # -------------------------------------------------------------- evaluation runs

    def _open_eval(self, events: ev.EvalEvents, stage: str) -> None:
        run = self._eval = EvalRun(self, events, stage)
        run.own_step = self._own_eval.get(events.noun, True)
        run.open()

    def _close_eval(self, run: EvalRun) -> None:
        self._require(run.events.epoch_end)
        run.end_epoch()
        run.end()
        self._eval = None

    def validation_start(self, *, zero_grad: bool = True) -> None:
        """Start a validation run inside fit (or inside the sanity check).

        In training, as in the Trainer: ``on_validation_model_zero_grad`` (unless
        ``zero_grad`` is false: mid-accumulation), the val dataloader hook if nothing
        requested it yet, then ``on_validation_model_eval`` and ``on_validation_start``,
        ``on_validation_epoch_start``.
        """
        in_training = self._driver.can_fire(ev.VALIDATION_MODEL_ZERO_GRAD)  # between training batches
        if not in_training:
            self._require(_VAL.start)
        zero = zero_grad and in_training
        load = in_training and not self._val_requested
        sanity = self.state.stage is RunningStage.SANITY_CHECKING
        if zero:
            self._fire(ev.VALIDATION_MODEL_ZERO_GRAD)
        if load:
            self.val_dataloaders = processed(self, self._fire(ev.VAL_DATALOADER), "val")
            self._val_requested = True
        self._open_eval(_VAL, RunningStage.SANITY_CHECKING.value if sanity else RunningStage.VALIDATING.value)

    def validation_end(self) -> None:
        """End the validation run: ``on_validation_epoch_end``, ``on_validation_end``
        (the module's train mode is restored), then training resumes."""
        run = self._eval
        if run is None or run.events is not _VAL or self.state.fn is not TrainerFn.FITTING:
            raise refusal(self._driver.state, _VAL.epoch_end.name, self._driver.legal())
        self._close_eval(run)
        if self._driver.can_fire(ev.VALIDATION_EXIT):
            self._fire(ev.VALIDATION_EXIT)

    @contextmanager
    def validation(self, *, zero_grad: bool = True) -> Iterator[Self]:
        """``with lc.validation():`` — a validation run inside fit (under inference mode)."""
        with self._grad_context():
            self.validation_start(zero_grad=zero_grad)
            yield self
            self.validation_end()

    def _run_of(self, e: ev.EvalEvents, event: Event) -> EvalRun:
        """The open run of ``e``'s loop; else LifecycleError naming ``event`` (nothing fires)."""
        run = self._eval
        if run is None or run.events is not e:
            raise refusal(self._driver.state, event.name, self._driver.legal())
        return run

    def _eval_batch_start(self, e: ev.EvalEvents, batch: Any, batch_idx: int, dataloader_idx: int | None) -> Any:
        if self.received_sigterm and self._eval is not None and self._eval.ended:
            # Spec 4.3: after every evaluation batch but the last; the driver cannot know
            # which is the last, so the check waits for the next batch to start.
            raise SIGTERMException()
        run = self._run_of(e, e.batch_transfer)
        if dataloader_idx is not None:
            self._current_dataloader_idx = dataloader_idx
        batch = run.start_batch(batch, batch_idx, dataloader_idx)
        if run.own_step:
            run.step(batch, batch_idx, dataloader_idx)
        self._ebatch = batch
        self._eidx = batch_idx
        self._edl = dataloader_idx
        return batch

    def _eval_step(self, e: ev.EvalEvents) -> Any:
        run = self._run_of(e, e.step)
        if run.own_step:
            name = e.step_hook
            raise MisconfigurationException(
                f"{type(self.lightning_module).__name__} has no `{name}`, so your loop is the step: compute the "
                f"outputs yourself and pass them to lc.{e.noun}_batch_end(outputs)."
            )
        return run.step(self._ebatch, self._eidx, self._edl)

    def _eval_batch_end(self, e: ev.EvalEvents, outputs: Any) -> None:
        self._run_of(e, e.batch_end).end_batch(outputs, self._ebatch, self._eidx, self._edl)

    def _eval_batch(self, e: ev.EvalEvents, batch: Any, batch_idx: int, dataloader_idx: int | None) -> Any:
        self._eval_batch_start(e, batch, batch_idx, dataloader_idx)
        outputs = self._eval_step(e)
        self._eval_batch_end(e, outputs)
        return outputs

    def validation_batch_start(self, batch: Any, batch_idx: int, dataloader_idx: int | None = None) -> Any:
        """Transfer hooks and ``on_validation_batch_start``; returns the transferred batch.

        Args:
            batch: the batch.
            batch_idx: its index in the dataloader.
            dataloader_idx: with several val dataloaders, which one (hooks then receive it
                and logged keys get the ``/dataloader_idx_N`` suffix); ``None`` for one.
        """
        return self._eval_batch_start(_VAL, batch, batch_idx, dataloader_idx)

    def validation_step(self) -> Any:
        """The module's ``validation_step`` on the current batch; returns its output."""
        return self._eval_step(_VAL)

    def validation_batch_end(self, outputs: Any = None) -> None:
        """``on_validation_batch_end(outputs, ...)`` for the current batch."""
        self._eval_batch_end(_VAL, outputs)

    def validation_batch(self, batch: Any, batch_idx: int, dataloader_idx: int | None = None) -> Any:
        """Start, the module's ``validation_step``, end; returns the step's output."""
        return self._eval_batch(_VAL, batch, batch_idx, dataloader_idx)

    def test_batch_start(self, batch: Any, batch_idx: int, dataloader_idx: int | None = None) -> Any:
        """Transfer hooks and ``on_test_batch_start``; returns the transferred batch."""
        return self._eval_batch_start(_TEST, batch, batch_idx, dataloader_idx)

    def test_step(self) -> Any:
        """The module's ``test_step`` on the current batch; returns its output."""
        return self._eval_step(_TEST)

    def test_batch_end(self, outputs: Any = None) -> None:
        """``on_test_batch_end(outputs, ...)`` for the current batch."""
        self._eval_batch_end(_TEST, outputs)

    def test_batch(self, batch: Any, batch_idx: int, dataloader_idx: int | None = None) -> Any:
        """Start, the module's ``test_step``, end; returns the step's output."""
        return self._eval_batch(_TEST, batch, batch_idx, dataloader_idx)

    def predict_batch_start(self, batch: Any, batch_idx: int, dataloader_idx: int | None = None) -> Any:
        """Transfer hooks and ``on_predict_batch_start``; returns the transferred batch."""
        return self._eval_batch_start(_PREDICT, batch, batch_idx, dataloader_idx)

    def predict_step(self) -> Any:
        """The module's ``predict_step`` on the current batch; returns the prediction."""
        return self._eval_step(_PREDICT)

    def predict_batch_end(self, outputs: Any = None) -> None:
        """``on_predict_batch_end(outputs, ...)`` for the current batch."""
        self._eval_batch_end(_PREDICT, outputs)

    def predict_batch(self, batch: Any, batch_idx: int, dataloader_idx: int | None = None) -> Any:
        """Start, the module's ``predict_step``, end; returns the prediction."""
        return self._eval_batch(_PREDICT, batch, batch_idx, dataloader_idx)
