"""The few private trainer attributes that Lightning's own callbacks read, with Lightning's meaning.

Lightning's ``LearningRateMonitor`` asks ``trainer._logger_connector.should_update_logs`` and logs
at ``trainer.fit_loop.epoch_loop._batches_that_stepped``; a callback built on Lightning's classes
and passed to lightcycle's Trainer reads them from these views. lightcycle's own callbacks use
:func:`should_update_logs` directly.
"""

from __future__ import annotations

from typing import Any


def should_update_logs(trainer: Any) -> bool:
    """Lightning's ``_LoggerConnector.should_update_logs`` during fit: the coming step is a logging step.

    Args:
        trainer: the running trainer.

    Returns:
        False when ``log_every_n_steps`` is 0; else True when ``global_step + 1`` (asked before the
        step runs) is a multiple of it, or the trainer is stopping.
    """
    every = trainer.log_every_n_steps
    if not every:
        return False
    return (trainer.global_step + 1) % every == 0 or bool(trainer.should_stop)


def batches_that_stepped(trainer: Any, in_batch: bool) -> int:
    """Lightning's ``fit_loop.epoch_loop._batches_that_stepped``, the step its loggers are given.

    Lightning counts a batch that stepped only once the batch is over (after ``on_train_batch_end``
    and the validation that follows it); lightcycle's ``global_step`` counts the optimizer step at
    once. Under manual optimization this is ``global_step``.

    Args:
        trainer: the running trainer.
        in_batch: asked from inside a fit's training batch, after its optimizer step could have run
            (``on_train_batch_end``, or validation run after the batch).

    Returns:
        The count.
    """
    step = int(trainer.global_step)
    module = trainer.lightning_module
    if in_batch and module is not None and module.automatic_optimization:
        step -= not trainer.fit_loop.should_accumulate(trainer.accumulate_grad_batches, trainer.num_training_batches)
    return step


class LoggerConnectorView:
    """``trainer._logger_connector``: only ``should_update_logs``."""

    def __init__(self, trainer: Any) -> None:
        self._trainer = trainer

    @property
    def should_update_logs(self) -> bool:
        return should_update_logs(self._trainer)


class EpochLoopView:
    """``trainer.fit_loop.epoch_loop``: only ``_batches_that_stepped``.

    lightcycle counts optimizer steps (``global_step``), which is Lightning's batches-that-stepped
    under automatic optimization; under manual optimization with several optimizers Lightning's
    counts batches instead.
    """

    def __init__(self, progress: Any) -> None:
        self._progress = progress

    @property
    def _batches_that_stepped(self) -> int:
        return int(self._progress.global_step)
