"""Callbacks and datamodules built on Lightning's own classes run under lightcycle's Trainer.

Each object is passed as it is (no import changed) and must do under lightcycle what it does
under Lightning: the same hooks, the same logged values, the same bars.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import pytorch_lightning as PL
import torch
from torch.utils.data import DataLoader, TensorDataset

import lightcycle as LC
from tests.callback_programs import loaders, make_module, run
from tests.callbacks.test_progress import _frames, _normalise


def test_lightnings_lr_monitor_logs_under_lightcycle_as_under_lightning() -> None:
    def monitor(fw: ModuleType) -> list[Any]:
        return [PL.callbacks.LearningRateMonitor(log_momentum=True, log_weight_decay=True)]

    kwargs: dict[str, Any] = dict(optimizers="sgd_momentum_step_sched", limit_train_batches=3, log_every_n_steps=2)
    pl = run(PL, monitor, **kwargs)
    lc = run(LC, monitor, **kwargs)
    lr_rows = [r for r in pl["rows"] if any(k.startswith("lr-") for k in r[1])]
    assert lr_rows
    assert [r for r in lc["rows"] if any(k.startswith("lr-") for k in r[1])] == lr_rows
    assert lc["callback_metrics"] == pl["callback_metrics"]
    assert lc["callbacks"][0].lrs == pl["callbacks"][0].lrs


def test_lightnings_tqdm_bar_draws_under_lightcycle_as_under_lightning() -> None:
    def screen(fw: ModuleType) -> str:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            run(fw, lambda fw: [PL.callbacks.TQDMProgressBar(refresh_rate=2)], enable_progress_bar=True)
        return _normalise(out.getvalue())

    lightning = screen(PL)
    assert "Epoch1" in lightning
    assert _frames(screen(LC)) == _frames(lightning)


def _recording_callback(events: list[tuple[str, int]]) -> Any:
    class Recorder(PL.Callback):  # type: ignore[misc]
        def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
            events.append(("on_train_batch_end", batch_idx))

        def on_validation_epoch_end(self, trainer: Any, pl_module: Any) -> None:
            events.append(("on_validation_epoch_end", trainer.current_epoch))

        def state_dict(self) -> dict[str, Any]:
            return {"n": len(events)}

        def on_save_checkpoint(self, trainer: Any, pl_module: Any, checkpoint: dict[str, Any]) -> None:
            events.append(("on_save_checkpoint", trainer.global_step))

    return Recorder()


def test_a_lightning_callback_subclass_gets_the_same_hooks() -> None:
    pl_events: list[tuple[str, int]] = []
    lc_events: list[tuple[str, int]] = []
    run(PL, lambda fw: [_recording_callback(pl_events)], enable_checkpointing=True)
    run(LC, lambda fw: [_recording_callback(lc_events)], enable_checkpointing=True)
    assert len(pl_events) > 5
    assert lc_events == pl_events


def test_inherited_lightning_noops_are_not_dispatched() -> None:
    """The dispatcher compares with Lightning's base functions: only the overridden hooks are compiled."""
    events: list[tuple[str, int]] = []
    trainer = LC.Trainer(callbacks=[_recording_callback(events)], logger=False, enable_progress_bar=False)
    from lightcycle.engine.dispatch import callback_hook_is_default

    cb = trainer.callbacks[0]
    assert callback_hook_is_default(cb, "on_train_start", cb.on_train_start, None)
    assert not callback_hook_is_default(cb, "on_train_batch_end", cb.on_train_batch_end, None)


def _value(stage: Any) -> str:
    # Lightning's TrainerFn formats as "TrainerFn.FITTING" in an f-string on Python 3.11; lightcycle's as "fit".
    return str(getattr(stage, "value", stage))


def _datamodule(fw: ModuleType) -> Any:
    class Data(fw.LightningDataModule):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.calls: list[str] = []

        def prepare_data(self) -> None:
            self.calls.append("prepare_data")

        def setup(self, stage: str) -> None:
            self.calls.append(f"setup:{_value(stage)}")

        def train_dataloader(self) -> Any:
            self.calls.append("train_dataloader")
            return loaders()[0]

        def val_dataloader(self) -> Any:
            self.calls.append("val_dataloader")
            return loaders()[1]

        def teardown(self, stage: str) -> None:
            self.calls.append(f"teardown:{_value(stage)}")

        def state_dict(self) -> dict[str, Any]:
            return {"calls": len(self.calls)}

    return Data()


def test_a_lightning_datamodule_is_driven_like_lightcycles(tmp_path: Path) -> None:
    results = {}
    for name, fw in (("pl", PL), ("lc", LC)):
        dm = _datamodule(PL)
        model = make_module(fw)
        trainer = fw.Trainer(
            max_epochs=2, logger=False, enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path
        )
        trainer.fit(model, datamodule=dm)
        results[name] = (dm.calls, trainer.global_step, {k: v.clone() for k, v in model.state_dict().items()})
    assert results["lc"][:2] == results["pl"][:2]
    assert all(torch.equal(results["lc"][2][k], results["pl"][2][k]) for k in results["pl"][2])


def test_a_lightning_datamodule_without_test_loader_is_treated_like_lightcycles() -> None:
    """Its inherited test_dataloader counts as not defined, as for lightcycle's own datamodule:
    both are refused with the same error (Lightning's, for a test run without a test loader)."""
    outcomes = []
    for dm in (_datamodule(PL), _datamodule(LC)):
        model = make_module(LC)
        model.test_step = lambda batch, batch_idx: None
        with pytest.raises(LC.MisconfigurationException) as caught:
            LC.Trainer(logger=False, enable_progress_bar=False).test(model, datamodule=dm)
        outcomes.append(str(caught.value))
    assert outcomes[0] == outcomes[1]
    assert "test_dataloader" in outcomes[0]


def test_a_lightning_module_is_refused_with_the_import_to_change() -> None:
    model = make_module(PL)
    with pytest.raises(TypeError, match="import lightcycle as L"):
        LC.Trainer(logger=False).fit(model, DataLoader(TensorDataset(torch.zeros(2, 4))))
