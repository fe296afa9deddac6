"""LambdaCallback, Timer and OnExceptionCheckpoint behave as Lightning's (same program under both)."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import pytorch_lightning as PL
import torch

import lightcycle as LC
from lightcycle.callbacks import LambdaCallback, Timer
from lightcycle.errors import MisconfigurationException
from tests.callback_programs import make_module, run, same_weights


def _lambda_hooks(events: list[tuple[Any, ...]]) -> Any:
    def make(fw: ModuleType) -> list[Any]:
        def rec(name: str) -> Any:
            # Lightning passes setup/teardown's stage by keyword: count arguments either way.
            return lambda trainer, module, *a, **kw: events.append((name, trainer.global_step, len(a) + len(kw)))

        names = [n for n in LambdaCallback.HOOKS if not n.startswith(("on_test", "on_predict"))]
        return [fw.callbacks.LambdaCallback(**{n: rec(n) for n in names})]

    return make


def test_lambda_callback_fires_lightnings_hooks() -> None:
    pl_events: list[tuple[Any, ...]] = []
    lc_events: list[tuple[Any, ...]] = []
    run(PL, _lambda_hooks(pl_events), limit_train_batches=2, limit_val_batches=1)
    run(LC, _lambda_hooks(lc_events), limit_train_batches=2, limit_val_batches=1)
    assert len(pl_events) > 20
    assert lc_events == pl_events


def test_lambda_callback_refuses_unknown_hook() -> None:
    with pytest.raises(TypeError, match="on_trian_start"):
        LambdaCallback(on_trian_start=print)


@pytest.mark.parametrize("interval", ["step", "epoch"])
def test_timer_stops_like_lightning(interval: str) -> None:
    def timer(fw: ModuleType) -> list[Any]:
        return [fw.callbacks.Timer(duration="00:00:00:00", interval=interval, verbose=False)]

    pl = run(PL, timer, max_epochs=3)
    lc = run(LC, timer, max_epochs=3)
    assert lc["trainer"].global_step == pl["trainer"].global_step
    assert lc["trainer"].current_epoch == pl["trainer"].current_epoch
    assert lc["states"][0].keys() == pl["states"][0].keys()
    assert lc["states"][0]["time_elapsed"].keys() == pl["states"][0]["time_elapsed"].keys()
    assert same_weights(lc["weights"], pl["weights"])


def test_timer_measures_and_restores() -> None:
    lc = run(LC, lambda fw: [fw.callbacks.Timer()])
    t: Timer = lc["callbacks"][0]
    assert t.time_elapsed("train") > 0 and t.time_elapsed("validate") > 0 and t.time_remaining() is None
    fresh = Timer(duration={"seconds": 5})
    fresh.load_state_dict({"time_elapsed": {"train": 2.0}})
    assert fresh.time_elapsed() == 2.0 and fresh.time_remaining() == 3.0


def test_timer_refuses_bad_arguments() -> None:
    with pytest.raises(MisconfigurationException, match="DD:HH:MM:SS"):
        Timer(duration="1:2")
    with pytest.raises(MisconfigurationException, match="interval"):
        Timer(interval="batch")


def _failing_module(fw: ModuleType) -> Any:
    model = make_module(fw)
    original = model.training_step

    def training_step(batch: Any, batch_idx: int) -> Any:
        if model.trainer.global_step == 5:
            raise RuntimeError("injected")
        return original(batch, batch_idx)

    model.training_step = training_step
    return model


def test_on_exception_checkpoint_saves_what_lightning_saves(tmp_path: Path) -> None:
    saved = {}
    for name, fw in (("pl", PL), ("lc", LC)):
        folder = tmp_path / name
        with pytest.raises(RuntimeError, match="injected"):
            run(
                fw,
                lambda fw, folder=folder: [fw.callbacks.OnExceptionCheckpoint(folder)],
                module=_failing_module(fw),
                enable_checkpointing=True,
            )
        saved[name] = torch.load(folder / "on_exception.ckpt", weights_only=False)
    pl, lc = saved["pl"], saved["lc"]
    assert (lc["epoch"], lc["global_step"]) == (pl["epoch"], pl["global_step"])
    assert same_weights(lc["state_dict"], pl["state_dict"])
    assert "OnExceptionCheckpoint" not in str(pl["callbacks"].keys())  # stateless: nothing stored for it
    assert lc["callbacks"].keys() == pl["callbacks"].keys()


def test_on_exception_checkpoint_removed_after_success_and_no_default_checkpoint(tmp_path: Path) -> None:
    for fw in (PL, LC):
        out = run(fw, lambda fw: [fw.callbacks.OnExceptionCheckpoint(tmp_path)], enable_checkpointing=True)
        assert [type(c).__name__ for c in out["trainer"].checkpoint_callbacks] == ["OnExceptionCheckpoint"]
        assert not (tmp_path / "on_exception.ckpt").exists()
    with pytest.raises(ValueError, match="filename cannot be empty"):
        LC.callbacks.OnExceptionCheckpoint(tmp_path, filename="")
