"""StochasticWeightAveraging averages, schedules and checkpoints as Lightning's (with and without BatchNorm)."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import pytorch_lightning as PL
import torch

import lightcycle as LC
from tests.callback_programs import run, same_weights


def _model(fw: ModuleType, batch_norm: bool, scheduler: bool) -> Any:
    class Model(fw.LightningModule):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            super().__init__()
            layers = (
                [torch.nn.Linear(4, 3)] + ([torch.nn.BatchNorm1d(3)] if batch_norm else []) + [torch.nn.Linear(3, 1)]
            )
            self.net = torch.nn.Sequential(*layers)

        def training_step(self, batch: Any, batch_idx: int) -> Any:
            return self.net(batch[0]).pow(2).mean()

        def configure_optimizers(self) -> Any:
            opt = torch.optim.SGD(self.parameters(), lr=0.1)
            return ([opt], [torch.optim.lr_scheduler.StepLR(opt, 1, gamma=0.5)]) if scheduler else opt

    torch.manual_seed(0)
    return Model()


def _lrs(events: list[tuple[int, int, float]]) -> Any:
    def make(fw: ModuleType) -> list[Any]:
        class Probe(fw.Callback):  # type: ignore[misc, name-defined]
            def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, i: int) -> None:
                events.append((trainer.current_epoch, trainer.global_step, trainer.optimizers[0].param_groups[0]["lr"]))

        return [fw.callbacks.StochasticWeightAveraging(swa_lrs=0.05, swa_epoch_start=2, annealing_epochs=2), Probe()]

    return make


@pytest.mark.parametrize(("batch_norm", "scheduler"), [(False, True), (True, False)])
def test_swa_equals_lightning(batch_norm: bool, scheduler: bool, tmp_path: Path) -> None:
    out = {}
    for name, fw in (("pl", PL), ("lc", LC)):
        events: list[tuple[int, int, float]] = []
        ckpt = fw.callbacks.ModelCheckpoint(dirpath=tmp_path / name, save_last=True)
        out[name] = run(
            fw,
            lambda fw, ckpt=ckpt, events=events: [*_lrs(events)(fw), ckpt],
            module=_model(fw, batch_norm, scheduler),
            max_epochs=4,
            enable_checkpointing=True,
            limit_train_batches=3,
        )
        out[name]["events"] = events
        out[name]["saved"] = torch.load(tmp_path / name / "last.ckpt", weights_only=False)
    pl, lc = out["pl"], out["lc"]
    assert lc["events"] == pl["events"]
    assert same_weights(lc["weights"], pl["weights"])
    assert lc["trainer"].current_epoch == pl["trainer"].current_epoch
    assert lc["trainer"].max_epochs == pl["trainer"].max_epochs == 4
    pl_state, lc_state = (
        pl["saved"]["callbacks"]["StochasticWeightAveraging"],
        lc["saved"]["callbacks"]["StochasticWeightAveraging"],
    )
    assert (
        lc_state["n_averaged"] == pl_state["n_averaged"]
        and lc_state["latest_update_epoch"] == pl_state["latest_update_epoch"]
    )
    assert lc_state["scheduler_state"] == pl_state["scheduler_state"]
    assert same_weights(lc_state["average_model_state"], pl_state["average_model_state"])
    assert (lc["saved"]["epoch"], lc["saved"]["global_step"]) == (pl["saved"]["epoch"], pl["saved"]["global_step"])


def test_swa_refuses_bad_arguments() -> None:
    with pytest.raises(LC.MisconfigurationException, match="swa_lrs"):
        LC.callbacks.StochasticWeightAveraging(swa_lrs=-1.0)
    with pytest.raises(LC.MisconfigurationException, match="swa_epoch_start"):
        LC.callbacks.StochasticWeightAveraging(swa_lrs=0.1, swa_epoch_start=0)
