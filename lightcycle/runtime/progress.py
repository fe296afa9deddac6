"""The fit loop's progress counters and Lightning's stopping rules over them.

The counters are the run host's (``trainer.fit_loop``): the shared runtime writes them for
both front ends (the training-batch bracket, the optimizer step, the checkpoint connector,
the loggers' step). The Trainer's :class:`~lightcycle.trainer.loops.FitLoop` is a
:class:`FitLoopProgress` with the loop's control flow added;
:class:`~lightcycle.custom_loop.LoopDriver` keeps a plain one. This class holds the one copy
of Lightning 2.6's stopping rules (``_FitLoop.done``, ``_TrainingEpochLoop.done`` and
``_can_stop_early``) and of its accumulation rule (``_should_accumulate``), which both front
ends and the callbacks ask.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from lightcycle.runtime.surface import EpochLoopView

_COUNTERS = ("epochs_processed", "epochs_completed", "global_step", "batch_idx", "total_batch_idx", "batches_ready")

SHOULD_STOP_REASON = "`Trainer.fit` stopped: `trainer.should_stop` was set."
"""The reason Lightning logs at debug level, not info: a stop the program asked for."""


@attrs.define
class FitLoopProgress:
    """Progress of the fit loop, with Lightning's attribute names where users read them.

    ``epochs_processed`` counts epochs whose batches ran; ``epochs_completed`` (which is
    ``trainer.current_epoch``) is incremented after ``on_train_epoch_end``.
    """

    epochs_processed: int = 0
    epochs_completed: int = 0
    global_step: int = 0
    batches_that_stepped: int = 0
    """Batches after which the optimizer stepped (Lightning's ``_batches_that_stepped``): the loggers' step."""
    batch_idx: int = -1
    total_batch_idx: int = -1
    batches_ready: int = 0
    is_last_batch: bool = False
    restarting: bool = False
    resume: Any = None
    """The :class:`~lightcycle.runtime.checkpointing.ResumePlan` of a restored fit, until its first epoch."""
    epoch_rng: Any = None
    """RNG states at the start of the current epoch (stored in mid-epoch checkpoints)."""
    batches: Any = None
    """The current epoch's :class:`~lightcycle.runtime.data.Lookahead` (for the loader's saved state)."""
    max_epochs: int = 0
    min_epochs: int | None = None
    max_steps: int = -1
    min_steps: int | None = None
    _skip_backward: bool = False
    """Lightning's flag: the current epoch runs no backward (set by StochasticWeightAveraging)."""

    @property
    def epoch_loop(self) -> Any:
        """Lightning's ``fit_loop.epoch_loop``, as far as Lightning's callbacks read it."""
        return EpochLoopView(self)

    def state_dict(self) -> dict[str, Any]:
        """The counters, as a checkpoint's ``loops["fit_loop"]`` holds them (lightcycle's keys).

        Returns:
            ``epochs_processed``, ``epochs_completed``, ``global_step``, ``batch_idx``,
            ``total_batch_idx``, ``batches_ready`` and ``is_last_batch``.
        """
        state: dict[str, Any] = {key: getattr(self, key) for key in _COUNTERS}
        state["is_last_batch"] = self.is_last_batch
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore the counters of :meth:`state_dict` (a checkpoint's, read into lightcycle's keys).

        ``global_step`` falls back to zero and the batch counters to a fresh epoch's when absent;
        the loggers' step (``batches_that_stepped``) is ``global_step``: one optimizer step per
        stepping batch under automatic optimization with one optimizer.

        Args:
            state: the counters; ``epochs_processed`` and ``epochs_completed`` are required.
        """
        self.global_step = int(state.get("global_step", 0))
        self.batches_that_stepped = self.global_step
        self.epochs_processed = int(state["epochs_processed"])
        self.epochs_completed = int(state["epochs_completed"])
        self.batch_idx = int(state.get("batch_idx", -1))
        self.total_batch_idx = int(state.get("total_batch_idx", -1))
        self.batches_ready = int(state.get("batches_ready", 0))
        self.is_last_batch = bool(state.get("is_last_batch", False))

    def ready_reached(self, num_training_batches: int | float) -> bool:
        """Whether the epoch's last batch is in (Lightning's ``_num_ready_batches_reached``).

        Args:
            num_training_batches: batches per epoch.
        """
        return self.batches_ready == num_training_batches or self.is_last_batch

    def should_accumulate(self, accumulate: int, num_training_batches: int | float) -> bool:
        """Whether the batch just started only accumulates gradients (Lightning's ``_should_accumulate``).

        Args:
            accumulate: ``trainer.accumulate_grad_batches``.
            num_training_batches: batches per epoch (the last one always steps).
        """
        return self.batches_ready % accumulate != 0 and not self.ready_reached(num_training_batches)

    def epoch_done(self, num_training_batches: int | float, should_stop: bool) -> bool:
        """Lightning's ``_TrainingEpochLoop.done``: ``max_steps``, the last batch, or an allowed stop.

        Asked before every batch, so :meth:`max_steps_reached` and :meth:`ready_reached`
        are written out here rather than called.

        Args:
            num_training_batches: batches per epoch.
            should_stop: ``trainer.should_stop``.
        """
        max_steps = self.max_steps
        if max_steps != -1 and self.global_step >= max_steps:
            return True
        if self.batches_ready == num_training_batches or self.is_last_batch:
            return True
        if not should_stop:
            return False
        if self.can_stop_early():
            return True
        self.stop_deferred()
        return False

    def stop_deferred(self) -> None:
        """Called when ``should_stop`` is set but ``min_epochs``/``min_steps`` are not met yet.

        Nothing here; the fit loop tells the user (Lightning's "Training will continue..." message).
        """

    def parsed_min_epochs(self) -> int:
        """``min_epochs`` as Lightning's ``_parse_loop_limits`` sets it: 1 with only ``min_steps``, else 0 if unset."""
        if self.min_epochs is None:
            return 1 if self.min_steps is not None else 0
        return self.min_epochs

    def max_steps_reached(self) -> bool:
        """Whether ``max_steps`` optimizer steps ran (never, with ``max_steps=-1``)."""
        return self.max_steps != -1 and self.global_step >= self.max_steps

    def can_stop_early(self) -> bool:
        """Whether ``should_stop`` may end the fit now: ``min_epochs`` and ``min_steps`` are met.

        Returns:
            True when both minimums are met (Lightning's ``_can_stop_early``; with
            ``min_steps`` set and ``min_epochs`` not, at least one epoch runs, as
            Lightning's ``_parse_loop_limits`` decides).
        """
        min_epochs = self.parsed_min_epochs()
        met_epochs = self.epochs_processed >= min_epochs if min_epochs else True
        met_steps = self.global_step >= self.min_steps if self.min_steps else True
        return met_epochs and met_steps

    def fit_done(self, num_training_batches: int | float, should_stop: bool) -> bool:
        """Lightning's ``_FitLoop.done``: no batches, ``max_steps``, ``max_epochs``, or an allowed stop.

        Args:
            num_training_batches: batches per epoch (0: nothing to train).
            should_stop: ``trainer.should_stop``.

        Returns:
            Whether the fit runs no further epoch.
        """
        return self.fit_stop_reason(num_training_batches, should_stop) is not None

    def fit_stop_reason(self, num_training_batches: int | float, should_stop: bool) -> str | None:
        """Why the fit runs no further epoch, in Lightning's words; None while it goes on.

        The rules of Lightning's ``_FitLoop.done``, in its order. Reaching ``max_epochs`` also
        brings ``epochs_completed`` up to ``epochs_processed`` (Lightning's
        ``epoch_progress.current.completed``), since a callback may have changed ``max_epochs``
        mid-epoch (StochasticWeightAveraging does). Asked once per epoch, not per batch.

        Args:
            num_training_batches: batches per epoch (0: nothing to train).
            should_stop: ``trainer.should_stop``.

        Returns:
            The message Lightning logs (``"`Trainer.fit` stopped: ..."``), or None.
        """
        if num_training_batches == 0:
            return "`Trainer.fit` stopped: No training batches."
        if self.max_steps_reached():
            return f"`Trainer.fit` stopped: `max_steps={self.max_steps!r}` reached."
        if self.max_epochs != -1 and self.epochs_processed >= self.max_epochs:
            self.epochs_completed = self.epochs_processed
            return f"`Trainer.fit` stopped: `max_epochs={self.max_epochs!r}` reached."
        if should_stop and self.can_stop_early():
            return SHOULD_STOP_REASON
        return None
