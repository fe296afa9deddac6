"""Progress bars. ``TQDMProgressBar`` is on by default, as Lightning's is.

Metric values shown in a bar are converted to Python numbers only when the bar is
redrawn (at most every ``refresh_interval`` seconds), so the bar forces no device
synchronisation per step.
"""

from __future__ import annotations

import math
import sys
import time
from typing import TYPE_CHECKING, Any

from lightcycle.callbacks.callback import Callback

if TYPE_CHECKING:
    from tqdm import tqdm

    from lightcycle.core.module import LightningModule
    from lightcycle.orchestrator.trainer import Trainer


class ProgressBar(Callback):
    """Base class of progress bars (``trainer.progress_bar_callback``)."""

    def get_metrics(self, trainer: Trainer, pl_module: LightningModule) -> dict[str, Any]:
        """The values shown: ``trainer.progress_bar_metrics`` as plain numbers."""
        out: dict[str, Any] = {}
        for key, value in trainer.progress_bar_metrics.items():
            out[key] = value.item() if hasattr(value, "item") else value
        return out


def _total(n: Any) -> int | None:
    if isinstance(n, (list, tuple)):
        n = sum(n)
    return None if n is None or n == math.inf else int(n)


class TQDMProgressBar(ProgressBar):
    """A tqdm bar per training epoch and per evaluation run, on stderr.

    Args:
        refresh_interval: seconds between redraws of the metric values.
        leave: keep each epoch's bar on screen after it ends.
    """

    def __init__(self, refresh_interval: float = 0.5, leave: bool = True) -> None:
        self.refresh_interval = refresh_interval
        self.leave = leave
        self._train: tqdm[Any] | None = None
        self._eval: tqdm[Any] | None = None
        self._last_draw = 0.0

    def _bar(self, desc: str, total: Any, leave: bool) -> tqdm[Any]:
        from tqdm import tqdm

        return tqdm(desc=desc, total=_total(total), leave=leave, dynamic_ncols=True, file=sys.stderr, smoothing=0)

    def _maybe_postfix(
        self, bar: tqdm[Any] | None, trainer: Trainer, pl_module: LightningModule, force: bool = False
    ) -> None:
        now = time.monotonic()
        if bar is None or (not force and now - self._last_draw < self.refresh_interval):
            return
        self._last_draw = now
        metrics = self.get_metrics(trainer, pl_module)
        if metrics:
            bar.set_postfix({k: (f"{v:.4g}" if isinstance(v, float) else v) for k, v in metrics.items()}, refresh=False)

    def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._train = self._bar(f"Epoch {trainer.current_epoch}", trainer.num_training_batches, self.leave)

    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if self._train is not None:
            self._maybe_postfix(self._train, trainer, pl_module)
            self._train.update(1)

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self._train is not None:
            self._maybe_postfix(self._train, trainer, pl_module, force=True)
            self._train.close()
            self._train = None

    def _eval_start(self, desc: str, total: Any) -> None:
        self._eval = self._bar(desc, total, leave=False)

    def _eval_step(self) -> None:
        if self._eval is not None:
            self._eval.update(1)

    def _eval_end(self) -> None:
        if self._eval is not None:
            self._eval.close()
            self._eval = None

    def on_validation_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        total = trainer.num_sanity_val_batches if trainer.sanity_checking else trainer.num_val_batches
        self._eval_start("Sanity Checking" if trainer.sanity_checking else "Validation", total)

    def on_validation_batch_end(
        self,
        trainer: Trainer,
        pl_module: LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        self._eval_step()

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._eval_end()
        self._maybe_postfix(self._train, trainer, pl_module, force=True)

    def on_test_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._eval_start("Testing", trainer.num_test_batches)

    def on_test_batch_end(
        self,
        trainer: Trainer,
        pl_module: LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        self._eval_step()

    def on_test_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._eval_end()

    def on_predict_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._eval_start("Predicting", trainer.num_predict_batches)

    def on_predict_batch_end(
        self,
        trainer: Trainer,
        pl_module: LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        self._eval_step()

    def on_predict_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._eval_end()

    def on_exception(self, trainer: Trainer, pl_module: LightningModule, exception: BaseException) -> None:
        for bar in (self._train, self._eval):
            if bar is not None:
                bar.close()
        self._train = self._eval = None
