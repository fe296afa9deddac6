"""BackboneFinetuning (and so BaseFinetuning) trains, schedules and checkpoints as Lightning's."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import pytorch_lightning as PL
import torch

import lightcycle as LC
from tests import kit
from tests.callback_programs import run, same_weights


def _model(fw: ModuleType) -> Any:
    class Model(fw.LightningModule):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.backbone = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3))
            self.head = torch.nn.Linear(3, 1)

        def training_step(self, batch: Any, batch_idx: int) -> Any:
            return self.head(self.backbone(batch[0])).pow(2).mean()

        def configure_optimizers(self) -> Any:
            params = filter(lambda p: p.requires_grad, self.parameters())
            opt = torch.optim.SGD(params, lr=0.1)
            return [opt], [torch.optim.lr_scheduler.StepLR(opt, 1, gamma=0.9)]

    torch.manual_seed(0)
    return Model()


def _groups(trainer: Any) -> list[list[tuple[float, int]]]:
    return [[(g["lr"], len(g["params"])) for g in opt.param_groups] for opt in trainer.optimizers]


@pytest.mark.parametrize(
    ("kwargs"),
    [
        {"unfreeze_backbone_at_epoch": 1},
        {"unfreeze_backbone_at_epoch": 2, "train_bn": False, "backbone_initial_lr": 0.5},
    ],
)
def test_backbone_finetuning_equals_lightning(kwargs: dict[str, Any], tmp_path: Path) -> None:
    out = {}
    for name, fw in (("pl", PL), ("lc", LC)):
        ckpt = fw.callbacks.ModelCheckpoint(dirpath=tmp_path / name, save_last=True)
        out[name] = run(
            fw,
            lambda fw, ckpt=ckpt: [fw.callbacks.BackboneFinetuning(**kwargs), ckpt],
            module=_model(fw),
            max_epochs=4,
            enable_checkpointing=True,
        )
        out[name]["saved"] = torch.load(tmp_path / name / "last.ckpt", weights_only=False)["callbacks"]
    pl, lc = out["pl"], out["lc"]
    assert same_weights(lc["weights"], pl["weights"])
    assert _groups(lc["trainer"]) == _groups(pl["trainer"])
    assert lc["states"][0] == pl["states"][0]
    assert lc["saved"]["BackboneFinetuning"] == pl["saved"]["BackboneFinetuning"]


def test_backbone_finetuning_without_backbone_fails_as_in_lightning() -> None:
    # freeze_before_training runs at setup and reads pl_module.backbone: Lightning fails there too.
    for fw in (PL, LC):
        with pytest.raises(AttributeError, match="backbone"):
            run(fw, lambda fw: [fw.callbacks.BackboneFinetuning()])


def test_finetuning_resume_restores_param_groups(tmp_path: Path) -> None:
    """Resumed from a checkpoint taken after unfreezing, the optimizer gets the added group back."""
    groups = {}
    for name, fw in (("pl", PL), ("lc", LC)):
        ckpt = fw.callbacks.ModelCheckpoint(dirpath=tmp_path / name, save_last=True)
        cbs = lambda fw, ckpt=ckpt: [fw.callbacks.BackboneFinetuning(unfreeze_backbone_at_epoch=1), ckpt]  # noqa: E731
        run(fw, cbs, module=_model(fw), max_epochs=2, enable_checkpointing=True)
        model = _model(fw)
        resumed = fw.Trainer(**kit.quiet(checkpointing=None, callbacks=cbs(fw), max_epochs=3))
        from tests.callback_programs import loaders

        resumed.fit(model, loaders()[0], ckpt_path=str(tmp_path / name / "last.ckpt"))
        groups[name] = (_groups(resumed), {k: v.clone() for k, v in model.state_dict().items()})
    assert groups["lc"][0] == groups["pl"][0]
    assert same_weights(groups["lc"][1], groups["pl"][1])
