"""A tiny module and tiny data for tests of callbacks: a run in milliseconds, every loop defined."""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightcycle.core.module import LightningModule


def _data(n: int, seed: int) -> TensorDataset:
    g = torch.Generator().manual_seed(seed)
    return TensorDataset(torch.randn(n, 4, generator=g), torch.randn(n, 1, generator=g))


class TinyLoaders(NamedTuple):
    """One loader per entry point (inputs of shape (batch, 4), targets (batch, 1))."""

    train: DataLoader[Any]
    val: DataLoader[Any]
    test: DataLoader[Any]
    predict: DataLoader[Any]


def tiny_loaders(batches: int = 2, eval_batches: int | None = None, batch_size: int = 2) -> TinyLoaders:
    """Small fixed random regression loaders (the same data every call).

    Args:
        batches: training batches.
        eval_batches: batches of the validation, test and predict loaders (default: ``batches``).
        batch_size: samples per batch.

    Returns:
        The four loaders.
    """
    n_eval = batches if eval_batches is None else eval_batches
    return TinyLoaders(
        DataLoader(_data(batch_size * batches, 1), batch_size=batch_size),
        DataLoader(_data(batch_size * n_eval, 2), batch_size=batch_size),
        DataLoader(_data(batch_size * n_eval, 3), batch_size=batch_size),
        DataLoader(_data(batch_size * n_eval, 4), batch_size=batch_size),
    )


class LoaderHooks:
    """The four dataloader hooks, each returning its loader of ``self.loaders``: mix it into a
    module or a datamodule that has a :class:`TinyLoaders`."""

    loaders: TinyLoaders

    def train_dataloader(self) -> Any:
        return self.loaders.train

    def val_dataloader(self) -> Any:
        return self.loaders.val

    def test_dataloader(self) -> Any:
        return self.loaders.test

    def predict_dataloader(self) -> Any:
        return self.loaders.predict


class TinyModule(LoaderHooks, LightningModule):
    """``Linear(4, 1)`` with every step and every dataloader hook defined.

    Args:
        batches: training batches its ``train_dataloader`` gives.
        eval_batches: batches of its evaluation loaders (default: ``batches``).
        manual: manual optimization (``training_step`` calls ``manual_backward`` and ``opt.step``).
        scheduler: ``None``, ``"step"`` or ``"epoch"``: a StepLR stepped at that interval.
        lr: the SGD learning rate.
        log: log ``train_loss``, ``val_loss`` and ``test_loss`` from the steps.
    """

    def __init__(
        self,
        batches: int = 2,
        eval_batches: int | None = None,
        manual: bool = False,
        scheduler: str | None = None,
        lr: float = 0.05,
        log: bool = True,
    ) -> None:
        super().__init__()
        if scheduler not in (None, "step", "epoch"):
            raise ValueError(f"scheduler must be None, 'step' or 'epoch', got {scheduler!r}")
        self.layer = nn.Linear(4, 1)
        self.automatic_optimization = not manual
        self.scheduler = scheduler
        self.lr = lr
        self.log_losses = log
        self.loaders = tiny_loaders(batches, eval_batches)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x)  # type: ignore[no-any-return]

    def _loss(self, batch: Any) -> torch.Tensor:
        x, y = batch
        return nn.functional.mse_loss(self(x), y)

    def training_step(self, batch: Any, batch_idx: int) -> Any:
        loss = self._loss(batch)
        if not self.automatic_optimization:
            opt = self.optimizers(use_pl_optimizer=True)
            assert not isinstance(opt, list)  # configure_optimizers returns one optimizer
            opt.zero_grad()
            self.manual_backward(loss)
            opt.step()
        if self.log_losses:
            self.log("train_loss", loss)
        return loss

    def validation_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> Any:
        loss = self._loss(batch)
        if self.log_losses:
            self.log("val_loss", loss)
        return loss

    def test_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> Any:
        loss = self._loss(batch)
        if self.log_losses:
            self.log("test_loss", loss)
        return loss

    def predict_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> Any:
        return self(batch[0])

    def configure_optimizers(self) -> Any:
        opt = torch.optim.SGD(self.parameters(), lr=self.lr)
        if self.scheduler == "step":
            sched = torch.optim.lr_scheduler.StepLR(opt, 1)
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
        if self.scheduler == "epoch":
            return [opt], [torch.optim.lr_scheduler.StepLR(opt, 1)]
        return opt


def tiny_module(
    batches: int = 2, eval_batches: int | None = None, manual: bool = False, scheduler: str | None = None
) -> TinyModule:
    """A fresh :class:`TinyModule` (see there for the arguments).

    Returns:
        The module; ``trainer.fit(tiny_module())`` needs no loaders.
    """
    return TinyModule(batches, eval_batches, manual, scheduler)
