"""``torchmetrics`` objects in ``self.log`` / ``self.log_dict`` behave as in live Lightning 2.6.

One program runs under ``pytorch_lightning`` and under lightcycle: ``Accuracy`` and
``MeanSquaredError`` logged on_step and on_epoch in training (with gradient accumulation),
a ``MetricCollection`` through ``log_dict`` in validation and test (one and two dataloaders),
a metric only ``update``-d,
``sync_dist=True`` on one device. Compared at every probed hook: ``callback_metrics``,
``logged_metrics``, ``progress_bar_metrics`` and the metrics' own states (so ``reset()``
happens where Lightning calls it); then every call the loggers received, what ``validate``
returns and the checkpointed ``state_dict`` (a persistent metric state included).
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import pytorch_lightning as PL
import torch
from pytorch_lightning.loggers import Logger as PLLogger
from torch.utils.data import DataLoader, TensorDataset
from torchmetrics import MeanSquaredError, MetricCollection
from torchmetrics.classification import MulticlassAccuracy

import lightcycle as LC
from lightcycle.loggers import Logger as LCLogger
from tests import kit

PROBED = (
    "on_train_batch_end",
    "on_train_epoch_start",
    "on_train_epoch_end",
    "on_validation_batch_end",
    "on_validation_epoch_end",
    "on_validation_end",
    "on_sanity_check_end",
    "on_test_epoch_end",
    "on_test_end",
    "on_train_end",
)


def _floats(metrics: dict[str, Any]) -> dict[str, float]:
    return {k: round(float(v), 6) for k, v in sorted(metrics.items())}


def _states(module: Any) -> dict[str, Any]:
    """Every metric's states and update count: shows when each was updated and reset."""
    out: dict[str, Any] = {}
    for name, sub in module.named_modules():
        if hasattr(sub, "metric_state") and hasattr(sub, "update_count"):  # a Metric, not a collection
            state = {k: v.tolist() for k, v in sub.metric_state.items() if isinstance(v, torch.Tensor)}
            out[name] = (state, sub.update_count)
    return out


def _program(fw: ModuleType, events: list[Any]) -> tuple[Any, Any, Any]:
    class Model(fw.LightningModule):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.layer = torch.nn.Linear(4, 3)
            self.train_acc = MulticlassAccuracy(num_classes=3)
            self.train_mse = MeanSquaredError()
            self.train_mse.persistent(True)  # its states travel in the checkpoint's state_dict
            self.val_metrics = MetricCollection(
                {"acc": MulticlassAccuracy(num_classes=3), "mse": MeanSquaredError()}, prefix="val_"
            )
            self.val_updated = MulticlassAccuracy(num_classes=3)

        def training_step(self, batch: Any, batch_idx: int) -> Any:
            x, y = batch
            logits = self.layer(x)
            loss = torch.nn.functional.cross_entropy(logits, y)
            self.train_acc(logits.argmax(-1), y)  # forward: updates and sets the step value
            self.log("train_acc", self.train_acc, on_step=True, on_epoch=True, prog_bar=True)
            self.train_mse(logits[:, 0], y.float())
            self.log("train_mse", self.train_mse, on_step=False, on_epoch=True, sync_dist=True)
            self.log("loss", loss, sync_dist=True, prog_bar=True)
            self.log("loss_max", loss, on_epoch=True, reduce_fx="max", sync_dist=True)
            return loss

        def validation_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
            x, y = batch
            logits = self.layer(x)
            self.val_metrics(logits.argmax(-1), y)
            self.log_dict(self.val_metrics, on_step=True, on_epoch=True)
            self.val_updated.update(logits.argmax(-1), y)  # no forward: no step value to log
            self.log("val_updated", self.val_updated, on_step=True, prog_bar=True)

        def test_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
            self.validation_step(batch, batch_idx, dataloader_idx)

        def on_validation_epoch_end(self) -> None:
            self.log("val_sync", torch.tensor(float(self.current_epoch)), sync_dist=True)

        def configure_optimizers(self) -> Any:
            return torch.optim.SGD(self.parameters(), lr=0.5)

    def probe_hook(hook: str) -> Any:
        def record(self: Any, trainer: Any, module: Any, *args: Any) -> None:
            events.append(
                (
                    hook,
                    trainer.global_step,
                    _floats(trainer.callback_metrics),
                    _floats(trainer.logged_metrics),
                    _floats(trainer.progress_bar_metrics),
                    _states(module),
                )
            )

        return record

    probe = type("Probe", (fw.Callback,), {hook: probe_hook(hook) for hook in PROBED})

    class Recording(PLLogger if fw is PL else LCLogger):  # type: ignore[misc]
        name = "rec"
        version = 0

        def log_metrics(self, metrics: Any, step: Any = None) -> None:
            events.append(("log_metrics", step, _floats(dict(metrics))))

        def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
            pass

    return Model, probe, Recording


def _loader(n: int, seed: int) -> DataLoader[Any]:
    g = torch.Generator().manual_seed(seed)
    return DataLoader(TensorDataset(torch.randn(n, 4, generator=g), torch.randint(0, 3, (n,), generator=g)), 3)


def _run(fw: ModuleType, tmp_path: Path, entry: str) -> dict[str, Any]:
    torch.manual_seed(0)
    events: list[Any] = []
    model_cls, probe, logger_cls = _program(fw, events)
    model = model_cls()
    trainer = fw.Trainer(
        max_epochs=2,
        limit_train_batches=5,
        limit_val_batches=2,
        num_sanity_val_steps=1,
        accumulate_grad_batches=2,
        log_every_n_steps=1,
        logger=logger_cls(),
        callbacks=[probe(), fw.callbacks.ModelCheckpoint(dirpath=tmp_path / fw.__name__, save_last=True)],
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if entry == "fit":
            trainer.fit(model, _loader(15, 1), _loader(6, 2))
            returned = None
        else:
            loaders = [_loader(6, 2), _loader(3, 3)] if entry == "validate-2-loaders" else _loader(6, 2)
            returned = getattr(trainer, entry.split("-")[0])(model, loaders)
    out: dict[str, Any] = {"events": events, "returned": returned, "states": _states(model)}
    if entry == "fit":
        checkpoint = torch.load(tmp_path / fw.__name__ / "last.ckpt", weights_only=False)
        out["state_dict"] = {k: v.tolist() for k, v in checkpoint["state_dict"].items()}
    return out


def _first_difference(theirs: list[Any], ours: list[Any]) -> str:
    for i, (a, b) in enumerate(zip(theirs, ours, strict=False)):
        if a != b:
            return f"event {i}:\n  lightning:  {a}\n  lightcycle: {b}"
    return f"lengths differ: lightning {len(theirs)}, lightcycle {len(ours)}"


@pytest.mark.parametrize("entry", ["fit", "validate", "test", "validate-2-loaders"])
def test_metric_objects_logged_as_in_lightning(tmp_path: Path, entry: str) -> None:
    theirs = _run(PL, tmp_path, entry)
    ours = _run(LC, tmp_path, entry)
    assert ours["events"] == theirs["events"], _first_difference(theirs["events"], ours["events"])
    assert ours["returned"] == theirs["returned"]
    assert ours["states"] == theirs["states"]
    assert ours.get("state_dict") == theirs.get("state_dict")
    # the comparison is not vacuous: metric values reached the loggers and the states were used
    logged = {k for e in ours["events"] if e[0] == "log_metrics" for k in e[2]}
    suffix = "/dataloader_idx_1" if entry == "validate-2-loaders" else ""
    assert {f"val_acc_epoch{suffix}", f"val_mse_step{suffix}", f"val_updated_epoch{suffix}"} <= logged
    assert "val_updated_step" not in logged  # only update()-d: no forward value
    if entry == "fit":
        assert {"train_acc_step", "train_acc_epoch", "train_mse", "loss_max_epoch"} <= logged
        assert "train_mse.total" in ours["state_dict"]


def _log_once(fw: ModuleType, log: Any) -> Exception:
    class Model(fw.LightningModule):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.layer = torch.nn.Linear(4, 3)
            self.acc = MulticlassAccuracy(num_classes=3)

        def training_step(self, batch: Any, batch_idx: int) -> Any:
            log(self)
            return self.layer(batch[0]).sum()

        def configure_optimizers(self) -> Any:
            return torch.optim.SGD(self.parameters(), lr=0.1)

    trainer = fw.Trainer(**kit.quiet(max_steps=1))
    with warnings.catch_warnings(), pytest.raises(Exception) as info:
        warnings.simplefilter("ignore")
        trainer.fit(Model(), _loader(3, 0))
    return info.value


@pytest.mark.parametrize(
    ("log", "says"),
    [
        pytest.param(
            lambda m: m.log("acc", MulticlassAccuracy(num_classes=3)),
            r"^Could not find the `LightningModule` attribute .* where `name` is one of \['acc'\]",
            id="not-an-attribute",
        ),
        pytest.param(
            lambda m: m.log("c", MetricCollection([MeanSquaredError()])),
            r"use `self.log_dict\(collection\)`",
            id="collection-in-log",
        ),
        pytest.param(
            lambda m: (m.log("acc", m.acc), m.log("acc", 1.0)),
            r"^You called `self.log\('acc', ...\)` twice in `training_step` .*metric_attribute: 'acc' then None",
            id="metric-then-number",
        ),
    ],
)
def test_bad_metric_logging_fails_as_in_lightning(log: Any, says: str) -> None:
    """Lightning's exception types; lightcycle's message names the problem and the fix."""
    theirs, ours = _log_once(PL, log), _log_once(LC, log)
    assert type(ours).__name__ == type(theirs).__name__, (theirs, ours)
    assert re.search(says, str(ours)), str(ours)


def test_a_run_without_metric_objects_never_imports_torchmetrics() -> None:
    code = textwrap.dedent(
        """
        import sys, torch
        import lightcycle as L
        from torch.utils.data import DataLoader, TensorDataset

        class M(L.LightningModule):
            def __init__(self):
                super().__init__()
                self.layer = torch.nn.Linear(2, 1)
            def training_step(self, batch, batch_idx):
                loss = self.layer(batch[0]).sum()
                self.log("loss", loss, on_epoch=True, sync_dist=True)
                self.log_dict({"a": 1.0, "b": loss})
                return loss
            def configure_optimizers(self):
                return torch.optim.SGD(self.parameters(), lr=0.1)

        data = DataLoader(TensorDataset(torch.randn(4, 2)), batch_size=2)
        L.Trainer(max_epochs=1, logger=False, enable_progress_bar=False, enable_checkpointing=False).fit(M(), data)
        assert "torchmetrics" not in sys.modules, "torchmetrics was imported"
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
