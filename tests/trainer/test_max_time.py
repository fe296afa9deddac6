"""``Trainer(max_time=...)`` against live Lightning, on a clock the test controls.

``time.monotonic`` (read by both Timers) is replaced by a clock that advances one second per
``training_step``, so "time" is a count of batches and both runs stop at the same place.
"""

from __future__ import annotations

import os
import tempfile
import time
import types
import warnings
from datetime import timedelta
from typing import Any

import pytest
import pytorch_lightning as PL
import torch
from torch.utils.data import DataLoader, TensorDataset

import lightcycle as LC
from lightcycle.errors import MisconfigurationException

HOOKS = ("on_train_start", "on_train_epoch_start", "on_train_batch_end", "on_train_epoch_end", "on_train_end")


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _run(pl: types.ModuleType, clock: _Clock, root: str, ckpt: str | None = None, **kwargs: Any) -> dict[str, Any]:
    seen: list[tuple[str, int]] = []

    class Recorder(pl.Callback):  # type: ignore[misc, name-defined]
        pass

    for name in HOOKS:
        setattr(Recorder, name, lambda self, trainer, *a, _n=name: seen.append((_n, trainer.global_step)))

    class Model(pl.LightningModule):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.layer = torch.nn.Linear(2, 1)

        def training_step(self, batch: Any, batch_idx: int) -> Any:
            clock.now += 1.0
            return self.layer(batch[0]).pow(2).mean()

        def configure_optimizers(self) -> Any:
            return torch.optim.SGD(self.parameters(), lr=0.1)

        def train_dataloader(self) -> Any:
            return DataLoader(TensorDataset(torch.arange(16.0).view(8, 2)), batch_size=2)

    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = pl.Trainer(
            accelerator="cpu",
            devices=1,
            enable_progress_bar=False,
            enable_model_summary=False,
            logger=False,
            default_root_dir=root,
            callbacks=[Recorder()],
            **kwargs,
        )
        t.fit(Model(), ckpt_path=ckpt)
    timer = next(cb for cb in t.callbacks if type(cb).__name__ == "Timer")
    ckpts = sorted(os.listdir(os.path.join(root, "checkpoints")))
    saved = torch.load(os.path.join(root, "checkpoints", ckpts[-1]), weights_only=False)
    return {
        "hooks": seen,
        "global_step": t.global_step,
        "epoch": t.current_epoch,
        "max_epochs": t.max_epochs,
        "callbacks": [type(cb).__name__ for cb in t.callbacks],
        "timer_state": saved["callbacks"]["Timer"],
        "elapsed": timer.time_elapsed("train"),
        "remaining": timer.time_remaining("train"),
        "ckpt": os.path.join(root, "checkpoints", ckpts[-1]),
        "interval": timer._interval,
    }


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> _Clock:
    c = _Clock()
    monkeypatch.setattr(time, "monotonic", c)  # the module both Timers read it from
    return c


@pytest.mark.parametrize("max_time", ["00:00:00:05", timedelta(seconds=5), {"seconds": 5}])
def test_max_time_stops_where_lightning_stops(clock: _Clock, max_time: Any) -> None:
    theirs = _run(PL, clock, tempfile.mkdtemp(prefix="lc_mt_"), max_time=max_time)
    ours = _run(LC, clock, tempfile.mkdtemp(prefix="lc_mt_"), max_time=max_time)
    for key in ("hooks", "global_step", "epoch", "callbacks", "timer_state", "elapsed", "remaining", "interval"):
        assert ours[key] == theirs[key], key
    assert ours["global_step"] == 5  # one second per step: stopped after the fifth, mid-epoch 2
    assert ours["max_epochs"] == -1  # no 1000-epoch default in a timed run (Lightning's fit loop too)


def test_resumed_timer_counts_the_restored_time(clock: _Clock) -> None:
    results = {}
    for name, pl in (("PL", PL), ("LC", LC)):
        first = _run(pl, clock, tempfile.mkdtemp(prefix="lc_mt_"), max_time="00:00:00:03")
        resumed = _run(pl, clock, tempfile.mkdtemp(prefix="lc_mt_"), ckpt=first["ckpt"], max_time="00:00:00:06")
        results[name] = (first["global_step"], resumed["global_step"], resumed["timer_state"], resumed["hooks"])
    assert results["LC"] == results["PL"]


def test_a_timer_in_callbacks_wins_and_bad_durations_are_refused(clock: _Clock) -> None:
    for pl in (PL, LC):
        t = pl.Trainer(accelerator="cpu", callbacks=[pl.callbacks.Timer(duration="00:00:00:02")], max_time="bad")
        assert [type(cb).__name__ for cb in t.callbacks].count("Timer") == 1
    with pytest.raises(MisconfigurationException) as ours:
        LC.Trainer(accelerator="cpu", max_time="1:2:3")
    with pytest.raises(PL.utilities.exceptions.MisconfigurationException) as theirs:
        PL.Trainer(accelerator="cpu", max_time="1:2:3")
    assert str(ours.value) == str(theirs.value)
