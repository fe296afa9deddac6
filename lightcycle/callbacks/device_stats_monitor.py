"""DeviceStatsMonitor: log the device's statistics around every batch, as Lightning 2.6's.

CPU statistics come from ``psutil`` (optional: ``pip install lightcycle[psutil]``), CUDA ones
from ``torch.cuda.memory_stats``. Keys are Lightning's:
``DeviceStatsMonitor.<hook>/<statistic>`` (the logger's ``group_separator``, default ``/``).
"""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING, Any

import torch

from lightcycle.callbacks.callback import Callback
from lightcycle.errors import MisconfigurationException
from lightcycle.runtime.surface import batches_that_stepped

if TYPE_CHECKING:
    from lightcycle.core.module import LightningModule
    from lightcycle.runtime.host import RunHost


def get_cpu_stats() -> dict[str, float]:
    """Lightning's CPU statistics: ``cpu_vm_percent``, ``cpu_percent``, ``cpu_swap_percent``.

    Raises:
        ModuleNotFoundError: ``psutil`` is not installed.
    """
    if importlib.util.find_spec("psutil") is None:
        raise ModuleNotFoundError(
            "Fetching CPU device stats requires `psutil` to be installed: `pip install lightcycle[psutil]`."
        )
    # deferred: heavy optional dependency psutil
    import psutil

    return {
        "cpu_vm_percent": psutil.virtual_memory().percent,
        "cpu_percent": psutil.cpu_percent(),
        "cpu_swap_percent": psutil.swap_memory().percent,
    }


def get_device_stats(device: torch.device) -> dict[str, Any]:
    """What Lightning's accelerator for ``device`` reports (``accelerator.get_device_stats``)."""
    if device.type == "cuda":
        return dict(torch.cuda.memory_stats(device))
    if device.type == "mps":
        return {
            "mps.current_allocated_bytes": torch.mps.current_allocated_memory(),
            "mps.driver_allocated_bytes": torch.mps.driver_allocated_memory(),
        }
    return get_cpu_stats()


class DeviceStatsMonitor(Callback):
    """Log device statistics at the start and end of each train, validation and test batch.

    Logged on logging steps only (``log_every_n_steps``, counted as Lightning counts them: optimizer
    steps in training, batches of the run in evaluation).

    Args:
        cpu_stats: ``None`` (default): CPU statistics when training on the CPU; ``True``: also next to
            an accelerator's; ``False``: never CPU statistics.

    Raises:
        MisconfigurationException: at fit setup, when the trainer has no logger.
        ModuleNotFoundError: at fit setup on the CPU, when ``psutil`` is not installed.
    """

    def __init__(self, cpu_stats: bool | None = None) -> None:
        self._cpu_stats = cpu_stats

    def setup(self, trainer: RunHost, pl_module: LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        if not trainer.loggers:
            raise MisconfigurationException("Cannot use `DeviceStatsMonitor` callback with `Trainer(logger=False)`.")
        device = trainer.strategy.root_device
        if self._cpu_stats is None and device.type == "cpu" and importlib.util.find_spec("psutil") is None:
            raise ModuleNotFoundError(
                "`DeviceStatsMonitor` cannot log CPU stats as `psutil` is not installed: "
                "`pip install lightcycle[psutil]`."
            )

    def _log(self, trainer: RunHost, key: str, ready: int | None, in_batch: bool) -> None:
        # Lightning's should_update_logs: in training, the coming step (batches that stepped + 1);
        # in evaluation, the batches made ready in this run.
        step = batches_that_stepped(trainer, in_batch)
        every = trainer.log_every_n_steps
        count = step + 1 if ready is None else ready
        if not every or (count % every and not trainer.should_stop):
            return
        device = trainer.strategy.root_device
        if self._cpu_stats is False and device.type == "cpu":
            return
        stats = get_device_stats(device)
        if self._cpu_stats and device.type != "cpu":
            stats.update(get_cpu_stats())
        prefix = f"{self.__class__.__qualname__}.{key}"
        for logger in trainer.loggers:
            separator = getattr(logger, "group_separator", "/")
            logger.log_metrics({prefix + separator + k: v for k, v in stats.items()}, step=step)

    @staticmethod
    def _eval_ready(batches: Any, batch_idx: int, dataloader_idx: int) -> int:
        # Lightning's evaluation loop counts the batches made ready in this run, across dataloaders.
        done = sum(int(n) for n in batches[:dataloader_idx]) if isinstance(batches, list) else 0
        return done + batch_idx + 1

    def _val(self, trainer: RunHost, key: str, batch_idx: int, dataloader_idx: int) -> None:
        batches = trainer.num_sanity_val_batches if trainer.sanity_checking else trainer.num_val_batches
        in_batch = trainer.state.fn == "fit" and not trainer.sanity_checking  # validation inside a training batch
        self._log(trainer, key, self._eval_ready(batches, batch_idx, dataloader_idx), in_batch)

    def on_train_batch_start(self, trainer: RunHost, pl_module: LightningModule, batch: Any, batch_idx: int) -> None:
        self._log(trainer, "on_train_batch_start", None, in_batch=False)

    def on_train_batch_end(
        self, trainer: RunHost, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        self._log(trainer, "on_train_batch_end", None, in_batch=True)

    def on_validation_batch_start(
        self, trainer: RunHost, pl_module: LightningModule, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        self._val(trainer, "on_validation_batch_start", batch_idx, dataloader_idx)

    def on_validation_batch_end(
        self,
        trainer: RunHost,
        pl_module: LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        self._val(trainer, "on_validation_batch_end", batch_idx, dataloader_idx)

    def on_test_batch_start(
        self, trainer: RunHost, pl_module: LightningModule, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        ready = self._eval_ready(trainer.num_test_batches, batch_idx, dataloader_idx)
        self._log(trainer, "on_test_batch_start", ready, in_batch=False)

    def on_test_batch_end(
        self,
        trainer: RunHost,
        pl_module: LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        ready = self._eval_ready(trainer.num_test_batches, batch_idx, dataloader_idx)
        self._log(trainer, "on_test_batch_end", ready, in_batch=False)
