"""``trainer.optimizers = [...]`` during a fit: the new optimizers are wrapped and stepped, as in Lightning.

Lightning's setter (``Strategy.optimizers``) wraps the new list again, so the steps after it and
``model.optimizers()`` use the new optimizers. A plain attribute would leave the old wrappers
stepping the old optimizer.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest
import pytorch_lightning as pl
import torch
from torch.nn import functional as F

import lightcycle as lc


def _fit(fw: ModuleType, automatic: bool) -> tuple[list[float], list[str]]:
    """Three epochs; at epoch 1 a callback swaps in an SGD with lr 0 (training then stops changing weights)."""
    weights: list[float] = []
    seen: list[str] = []

    class Swap(fw.Callback):  # type: ignore[name-defined,misc]
        def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
            if trainer.current_epoch == 1:
                trainer.optimizers = [torch.optim.SGD(pl_module.parameters(), lr=0.0)]

        def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
            weights.append(round(float(pl_module.net.weight.sum()), 6))

    class Model(fw.LightningModule):  # type: ignore[name-defined,misc]
        def __init__(self) -> None:
            super().__init__()
            torch.manual_seed(0)
            self.net = torch.nn.Linear(3, 1)
            self.automatic_optimization = automatic

        def training_step(self, batch: Any, batch_idx: int) -> Any:
            x, y = batch
            loss = F.mse_loss(self.net(x), y)
            opt = self.optimizers()
            seen.append(f"{type(opt.optimizer).__name__} lr={opt.optimizer.param_groups[0]['lr']}")
            if not automatic:
                opt.zero_grad()
                self.manual_backward(loss)
                opt.step()
            return loss

        def configure_optimizers(self) -> Any:
            return torch.optim.SGD(self.parameters(), lr=0.1)

    g = torch.Generator().manual_seed(1)
    data: Any = [(torch.randn(4, 3, generator=g), torch.randn(4, 1, generator=g)) for _ in range(3)]
    trainer = fw.Trainer(
        max_epochs=3,
        callbacks=[Swap()],
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        accelerator="cpu",
    )
    trainer.fit(Model(), train_dataloaders=torch.utils.data.DataLoader(data, batch_size=None))
    return weights, seen


@pytest.mark.parametrize("automatic", [True, False], ids=["automatic", "manual"])
def test_optimizers_set_during_fit_are_the_ones_stepped(automatic: bool) -> None:
    ours, theirs = _fit(lc, automatic), _fit(pl, automatic)
    assert ours == theirs
    weights, seen = ours
    assert weights[0] == weights[1] == weights[2]  # lr 0 from epoch 1 on: nothing moves after epoch 0
    assert seen[:3] == ["SGD lr=0.1"] * 3 and seen[3:] == ["SGD lr=0.0"] * 6
