"""The fit loop's progress counters and Lightning's stopping rules over them.

Both front ends keep one :class:`FitLoopProgress` (``trainer.fit_loop``) and ask it when a
fit is done: the Trainer's loops before each epoch, :class:`~lightcycle.custom_loop.LoopDriver`
at each step of ``lc.epochs()``. The rules are Lightning 2.6's ``_FitLoop.done`` and
``_TrainingEpochLoop._can_stop_early``.
"""

from __future__ import annotations

from typing import Any

import attrs

from lightcycle.runtime.surface import EpochLoopView


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
        min_epochs = 1 if self.min_epochs is None and self.min_steps is not None else self.min_epochs
        met_epochs = self.epochs_processed >= min_epochs if min_epochs else True
        met_steps = self.global_step >= self.min_steps if self.min_steps else True
        return met_epochs and met_steps

    def fit_done(self, num_training_batches: int | float, should_stop: bool) -> bool:
        """Lightning's ``_FitLoop.done``: no batches, ``max_steps``, ``max_epochs``, or an allowed stop.

        Reaching ``max_epochs`` also brings ``epochs_completed`` up to ``epochs_processed``
        (Lightning's ``epoch_progress.current.completed``), since a callback may have changed
        ``max_epochs`` mid-epoch (StochasticWeightAveraging does).

        Args:
            num_training_batches: batches per epoch (0: nothing to train).
            should_stop: ``trainer.should_stop``.

        Returns:
            Whether the fit runs no further epoch.
        """
        if num_training_batches == 0 or self.max_steps_reached():
            return True
        if self.max_epochs != -1 and self.epochs_processed >= self.max_epochs:
            self.epochs_completed = self.epochs_processed
            return True
        return should_stop and self.can_stop_early()
