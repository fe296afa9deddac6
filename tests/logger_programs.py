"""One small program, written for either framework, whose loggers the logger tests compare.

``build(fw, ...)`` returns a module and loaders built from ``fw`` (``pytorch_lightning`` or
``lightcycle``): a linear model that logs step and epoch metrics in training and
validation, plus a recording logger subclassing ``fw``'s own ``Logger`` base.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

import torch
from torch.utils.data import DataLoader, TensorDataset

from tests import kit

QUIET = kit.quiet(logger=None)  # the logger is what the tests compare


def loaders(n_train: int = 7, n_val: int = 3, batch_size: int = 2) -> tuple[DataLoader[Any], DataLoader[Any]]:
    """A training and a validation loader of fixed random data (not shuffled)."""
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(n_train * batch_size, 2, generator=g), torch.randn(n_train * batch_size, 1, generator=g)
    xv, yv = torch.randn(n_val * batch_size, 2, generator=g), torch.randn(n_val * batch_size, 1, generator=g)
    return (
        DataLoader(TensorDataset(x, y), batch_size=batch_size),
        DataLoader(TensorDataset(xv, yv), batch_size=batch_size),
    )


def model_class(fw: ModuleType, manual: bool = False) -> Any:
    """The module class for ``fw``: logs ``loss`` (step+epoch), ``batch_x`` (step), ``val_loss`` (step+epoch)...

    With ``manual``, it optimizes manually (one optimizer step per batch, none on odd batches).
    """

    class Model(fw.LightningModule):  # type: ignore[misc, name-defined]
        def __init__(self, lr: float = 0.05) -> None:
            super().__init__()
            self.save_hyperparameters()
            torch.manual_seed(0)
            self.layer = torch.nn.Linear(2, 1)
            self.automatic_optimization = not manual

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.layer(x)

        def training_step(self, batch: Any, batch_idx: int) -> Any:
            x, y = batch
            loss = torch.nn.functional.mse_loss(self.layer(x), y)
            self.log("loss", loss, on_step=True, on_epoch=True)
            self.log("batch_x", float(batch_idx), on_step=True, on_epoch=False)
            self.log("n", torch.tensor(batch_idx), on_step=False, on_epoch=True, reduce_fx="max")
            if manual and batch_idx % 2 == 0:
                opt = self.optimizers()
                opt.zero_grad()
                self.manual_backward(loss)
                opt.step()
            return loss

        def validation_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
            x, y = batch
            self.log("val_loss", torch.nn.functional.mse_loss(self.layer(x), y), on_step=True, on_epoch=True)

        def on_validation_epoch_end(self) -> None:
            self.log("val_end", 1.0 + self.current_epoch)

        def test_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
            x, y = batch
            self.log("test_loss", torch.nn.functional.mse_loss(self.layer(x), y), on_step=True, on_epoch=True)

        def configure_optimizers(self) -> Any:
            return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)

    return Model


def recording_logger(fw: ModuleType) -> Any:
    """A logger built on ``fw.loggers.Logger`` that records every call (values rounded, with their types)."""

    base = importlib.import_module(f"{fw.__name__}.loggers").Logger

    class Recording(base):  # type: ignore[misc, valid-type]
        def __init__(self) -> None:
            super().__init__()
            self.calls: list[tuple[Any, ...]] = []

        @property
        def name(self) -> str:
            return "rec"

        @property
        def version(self) -> int:
            return 0

        def log_metrics(self, metrics: dict[str, Any], step: int | None = None) -> None:
            row = tuple((k, type(v).__name__, round(float(v), 5)) for k, v in sorted(metrics.items()))
            self.calls.append(("log_metrics", step, row))

        def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
            self.calls.append(("log_hyperparams", dict(params)))

        def save(self) -> None:
            self.calls.append(("save",))

        def finalize(self, status: str) -> None:
            self.calls.append(("finalize", status))

    return Recording()
