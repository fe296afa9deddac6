"""The bracket of one training batch, as both front ends fire it.

Around the step (automatic, manual, or your loop's own code) every training batch starts and
ends the same way in Lightning: the transfer hooks, the progress counters, the metric store's
batch and ``on_train_batch_start`` (where ``-1`` skips the rest of the epoch); then
``on_train_batch_end`` and the step metrics of a batch that stepped. The Trainer's epoch loop and
:class:`~lightcycle.custom_loop.LoopDriver` both use one :class:`TrainBatch`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from lightcycle.runtime.fused_step import fused_bracket
from lightcycle.runtime.logger_connector import train_step_due
from lightcycle.states import declaration as ev

if TYPE_CHECKING:
    import torch

    from lightcycle.runtime.host import RunHost
    from lightcycle.runtime.steps import AutomaticStep

SKIPPED: Final = object()
"""What :meth:`TrainBatch.start` returns when ``on_train_batch_start`` returned -1 (the epoch ends)."""
FINISHED: Final = object()
"""What :meth:`TrainBatch.whole`'s function returns for a batch it ran to its end (it stepped)."""


class TrainBatch:
    """Start and end of training batches on a host, with the event functions held (per-batch path).

    Built where the run's hooks are final (after ``configure_callbacks``) and the device is
    known; build a new one after those change.

    Args:
        host: the Trainer or LoopDriver.
        device: where the transfer hooks move batches.
    """

    __slots__ = ("_end", "_host", "_skip", "_start", "_transfer", "begin", "device", "finish")

    def __init__(self, host: RunHost, device: torch.device) -> None:
        caller = host._driver.caller
        self._host = host
        self.device = device
        self._transfer = host.precision_plugin.wrap_transfer(caller(ev.TRAIN_BATCH_TRANSFER))  # convert_input first
        self._start = caller(ev.TRAIN_BATCH_START)
        self._skip = caller(ev.SKIP_REST_OF_EPOCH)
        self._end = caller(ev.TRAIN_BATCH_END)
        self.begin: Callable[[Any, int], Any] = self.start
        """:meth:`start`, or the same work as one generated function where the driver inlines events."""
        self.finish: Callable[[Any, Any, int, bool], None] = self.end
        """:meth:`end`, or the same work as one generated function where the driver inlines events."""
        fused = fused_bracket(host._driver, self, self._transfer, SKIPPED, train_step_due)
        if fused is not None:
            self.begin, self.finish = fused

    def whole(self, auto: AutomaticStep) -> Callable[[Any, int], Any] | None:
        """:attr:`begin`, ``auto``'s stepping batch and :attr:`finish` as one generated function.

        Where all three are generated (:func:`~lightcycle.runtime.fused_step.fused_train_batch`):
        two calls fewer per batch, and the host's objects read once for the three.

        Args:
            auto: the automatic step of the epoch (the Trainer's: one micro-batch per step).

        Returns:
            ``f(batch, batch_idx)``, called as :attr:`begin` is: :data:`FINISHED` for a batch
            it ran to its end, else what :attr:`begin` returns (a batch the caller steps and
            ends as usual); ``None`` where it does not apply.
        """
        if self.begin == self.start:  # (a bound method: equal, not identical, to a new one)
            return None
        return auto.with_bracket(self, SKIPPED, FINISHED, train_step_due)

    def start(self, batch: Any, batch_idx: int) -> Any:
        """Transfer, count, open the metric store's batch, ``on_train_batch_start``.

        Args:
            batch: the batch from the loader.
            batch_idx: its index in the epoch.

        Returns:
            The transferred batch, or :data:`SKIPPED` when the module's ``on_train_batch_start``
            returned -1 (then ``is_last_batch`` is set and the skip event has fired).
        """
        host = self._host
        loop = host.fit_loop
        batch = self._transfer(batch, self.device, 0)  # first: a refused call changes no counter
        loop.batch_idx = batch_idx
        loop.batches_ready += 1
        loop.total_batch_idx += 1
        host._results.start_batch("train", None, batch)
        if self._start(batch, batch_idx) == -1:
            loop.is_last_batch = True
            self._skip()
            return SKIPPED
        return batch

    def end(self, outputs: Any, batch: Any, batch_idx: int, stepped: bool) -> None:
        """``on_train_batch_end``, then the batch's step metrics to the loggers if it ``stepped``.

        Args:
            outputs: the step's outputs (``{"loss": ...}``).
            batch: the batch.
            batch_idx: its index.
            stepped: the optimizer stepped in this batch (always, under manual optimization):
                Lightning logs no step metrics while accumulating.
        """
        self._end(outputs, batch, batch_idx)
        host = self._host
        results = host._results
        # the step values are built only for a logger that takes them at this step
        if results.close_batch("train") and stepped and host.loggers and train_step_due(host):
            metrics = results.step_metrics()
            if metrics:
                host._log_step(metrics)
