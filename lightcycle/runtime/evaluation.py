"""One evaluation run (validation, test or predict), as both front ends fire it.

The Trainer's evaluation loop iterates its loaders itself; :class:`~lightcycle.custom_loop.LoopDriver`
lets your loop call ``*_batch_start``/``*_batch_end``. Both open, fire each batch and close a
run through one :class:`EvalRun`, so the order of events, the metric store's stages and what the
loggers receive are written once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lightcycle.states.stages import RunningStage

if TYPE_CHECKING:
    import torch

    from lightcycle.runtime.host import RunHost
    from lightcycle.states.declaration import EvalEvents

# Stages whose batches and epochs send no metrics to the loggers (as in Lightning).
_NO_LOGS = frozenset((RunningStage.SANITY_CHECKING.value, RunningStage.PREDICTING.value))


class EvalRun:
    """The evaluation run in progress on a host: its events, metric stage and per-batch functions.

    It holds no state of one run but :attr:`ended`: the Trainer's evaluation loop uses one
    for its next runs while the bind, precision, device, stage and loggers are the same.

    Args:
        host: the Trainer or LoopDriver running it.
        events: the loop's events (``declaration.EVAL[noun]``).
        stage: the metric stage (``RunningStage.<...>.value``; the sanity check's validation
            runs as ``sanity_check``).
    """

    __slots__ = (
        "_batch_end",
        "_batch_start",
        "_end",
        "_epoch_end",
        "_epoch_start",
        "_host",
        "_seen",
        "_start",
        "_step",
        "_transfer",
        "device",
        "ended",
        "events",
        "own_step",
        "stage",
    )

    def __init__(self, host: RunHost, events: EvalEvents, stage: str) -> None:
        self._host = host
        self.events = events
        self.stage = stage
        self.device = host.strategy.root_device
        self.own_step = False  # (LoopDriver) the module has no step: the user's loop is the step
        self.ended = False  # a batch of this run has ended (a SIGTERM check point follows it)
        # Every event through the driver's event functions (``fire`` without the lookup).
        caller = host._driver.caller
        precision = host.precision_plugin  # (its wrappers return the event itself in 32-bit)
        context = {
            "validation": precision.val_step_context,
            "test": precision.test_step_context,
            "predict": precision.predict_step_context,
        }[events.noun]
        self._transfer = precision.wrap_transfer(caller(events.batch_transfer))  # convert_input first
        self._batch_start = caller(events.batch_start)
        self._step = precision.wrap_step(caller(events.step), context)
        self._batch_end = caller(events.batch_end)
        self._start = caller(events.start)
        self._epoch_start = caller(events.epoch_start)
        self._epoch_end = caller(events.epoch_end)
        self._end = caller(events.end)
        # Lightning logs evaluation step metrics after every batch, outside the sanity check and
        # predict: the batches counted per dataloader (the step of the next ones; None: not logged)
        self._seen = host._eval_steps.seen if host.loggers and stage not in _NO_LOGS else None

    def open(self) -> None:
        """``on_<noun>_start`` and ``on_<noun>_epoch_start``; the metric store opens the stage."""
        host = self._host
        host._results.start_epoch(self.stage)
        self._start()
        self._epoch_start()

    def start_batch(self, batch: Any, batch_idx: int, dataloader_idx: int | None) -> Any:
        """The transfer hooks and ``on_<noun>_batch_start``; returns the transferred batch.

        Args:
            batch: the batch from the loader.
            batch_idx: its index in the loader.
            dataloader_idx: the loader's index when there are several, else ``None`` (hooks then
                get no ``dataloader_idx`` and logged keys no suffix).
        """
        batch = self._transfer(batch, self.device, dataloader_idx or 0)
        self._host._results.start_batch(self.stage, dataloader_idx, batch)
        if dataloader_idx is None:
            self._batch_start(batch, batch_idx)
        else:
            self._batch_start(batch, batch_idx, dataloader_idx)
        return batch

    def step(self, batch: Any, batch_idx: int, dataloader_idx: int | None) -> Any:
        """The module's ``<noun>_step`` (its output)."""
        if dataloader_idx is None:
            return self._step(batch, batch_idx)
        return self._step(batch, batch_idx, dataloader_idx)

    def end_batch(self, outputs: Any, batch: Any, batch_idx: int, dataloader_idx: int | None) -> None:
        """``on_<noun>_batch_end``, then the batch's step metrics to the loggers."""
        if dataloader_idx is None:
            self._batch_end(outputs, batch, batch_idx)
        else:
            self._batch_end(outputs, batch, batch_idx, dataloader_idx)
        self.ended = True
        host = self._host
        metrics = host._results.end_batch(self.stage)
        seen = self._seen
        if seen is not None:
            index = dataloader_idx or 0
            if metrics:
                host._eval_steps.log(host, metrics, index)
            else:  # (the usual evaluation batch: nothing sent) counted only, as EvalSteps.log counts it
                seen[index] = seen.get(index, 0) + 1

    def end_epoch(self) -> dict[str, torch.Tensor]:
        """``on_<noun>_epoch_end``; the epoch metrics go to the loggers (not in the sanity check, predict).

        Returns:
            The epoch's metrics as logged.
        """
        host = self._host
        host._current_dataloader_idx = None
        results = host._results
        results.end_epoch(self.stage)
        self._epoch_end()
        metrics = results.close_epoch(self.stage)
        if self.stage not in _NO_LOGS:
            host._log_epoch(metrics)
        return metrics

    def end(self) -> None:
        """``on_<noun>_end``; then the stage's metric objects are reset (as in Lightning)."""
        host = self._host
        self._end()
        host._results.end_stage(self.stage)
