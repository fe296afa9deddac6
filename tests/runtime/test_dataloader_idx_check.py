"""The ``dataloader_idx`` signature rule at an evaluation's start, against live Lightning.

Lightning refuses a ``validation_step`` (or batch hook) that requires ``dataloader_idx`` with
one loader, and one that cannot take it with several. lightcycle remembers each hook's
answer per function: the second run (the remembered answer) must refuse exactly as the first.
"""

from __future__ import annotations

from typing import Any

import pytest
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

import lightcycle as L


def _module(fw: Any, takes_idx: str) -> Any:
    class Net(fw.LightningModule):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.layer = torch.nn.Linear(2, 1)

        def configure_optimizers(self) -> Any:
            return torch.optim.SGD(self.parameters(), lr=0.1)

    def required(self: Any, batch: Any, batch_idx: int, dataloader_idx: int) -> None:
        self.layer(batch[0])

    def default(self: Any, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        self.layer(batch[0])

    def absent(self: Any, batch: Any, batch_idx: int) -> None:
        self.layer(batch[0])

    Net.validation_step = {"required": required, "default": default, "no": absent}[takes_idx]
    return Net()


def _outcome(fw: Any, takes_idx: str, loaders: int) -> str:
    trainer = fw.Trainer(
        logger=False, enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False
    )
    data = [DataLoader(TensorDataset(torch.randn(4, 2)), batch_size=2) for _ in range(loaders)]
    try:
        trainer.validate(_module(fw, takes_idx), data[0] if loaders == 1 else data, verbose=False)
    except RuntimeError as error:
        return f"RuntimeError: {error}"
    return "ran"


@pytest.mark.parametrize("loaders", [1, 2])
@pytest.mark.parametrize("takes_idx", ["required", "default", "no"])
def test_the_rule_and_its_message_are_lightnings_on_every_run(takes_idx: str, loaders: int) -> None:
    expected = _outcome(pl, takes_idx, loaders)
    assert _outcome(L, takes_idx, loaders) == expected
    assert (expected == "ran") == ((takes_idx == "no") == (loaders == 1) or takes_idx == "default")


def test_one_function_answers_once_and_the_same_after() -> None:
    module = _module(L, "required")
    trainer = L.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False)
    loader = DataLoader(TensorDataset(torch.randn(4, 2)), batch_size=2)
    for _ in range(2):  # the second refusal comes from the remembered answer
        with pytest.raises(RuntimeError, match="only a single `val_dataloader`"):
            trainer.validate(module, loader, verbose=False)
    trainer.validate(module, [loader, loader], verbose=False)  # several loaders: the same function fits
