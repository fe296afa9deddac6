"""Where ``self.log``'s value warnings point: at the user's line, on the first and the steady path."""

from __future__ import annotations

import warnings
from typing import Any

import torch
from torch.utils.data import DataLoader, TensorDataset

import lightcycle as L


class _IntLogger(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(2, 1)

    def training_step(self, batch: Any, batch_idx: int) -> Any:
        self.log("on_step_int", torch.tensor(3))  # LINE-STEP
        self.log("epoch_int", torch.tensor(3), on_step=False, on_epoch=True)  # LINE-EPOCH
        return self.layer(batch[0]).sum()

    def configure_optimizers(self) -> Any:
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _line_of(marker: str) -> int:
    with open(__file__) as source:
        return next(n for n, text in enumerate(source, 1) if text.rstrip().endswith(f"# {marker}"))


def test_the_integer_tensor_warning_names_the_users_self_log_line() -> None:
    trainer = L.Trainer(
        max_steps=3, logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit(_IntLogger(), DataLoader(TensorDataset(torch.randn(6, 2)), batch_size=2))
    places = {(w.filename, w.lineno) for w in caught if "needs to be floating" in str(w.message)}
    assert places == {(__file__, _line_of("LINE-STEP")), (__file__, _line_of("LINE-EPOCH"))}
