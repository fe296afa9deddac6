"""A Ctrl-C (or SystemExit) inside an ``on_exception`` handler stops the run (issue 14, point 2).

Ordinary exceptions raised by handlers become notes on the original error (every handler still
runs). A ``BaseException`` that is not an ``Exception`` is the user stopping the process: it is
not turned into a note; the internal teardown still runs (loggers finalized as failed, the
lifecycle back to idle), then that exception reaches the caller with the original error as its
``__context__``. Covered for the Trainer and for a custom loop (``LoopDriver``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import lightcycle as LC
from lightcycle import TrainerStatus
from lightcycle.custom_loop.loop_driver import LoopDriver
from lightcycle.loggers import CSVLogger
from tests.recording import BASE_KWARGS

STOPS = [KeyboardInterrupt, SystemExit]


class _Boom(LC.LightningModule):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.Linear(2, 1)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        raise RuntimeError("boom")

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)

    def train_dataloader(self) -> DataLoader[Any]:
        return DataLoader(TensorDataset(torch.ones(4, 2)), batch_size=2)


class _Handler(LC.Callback):  # type: ignore[misc]
    def __init__(self, raises: BaseException | None = None) -> None:
        self.raises = raises
        self.seen: list[BaseException] = []

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        self.seen.append(exception)
        if self.raises is not None:
            raise self.raises


class _Data(LC.LightningDataModule):  # type: ignore[misc]
    def __init__(self, raises: BaseException) -> None:
        super().__init__()
        self.raises = raises

    def train_dataloader(self) -> DataLoader[Any]:
        return DataLoader(TensorDataset(torch.ones(4, 2)), batch_size=2)

    def on_exception(self, exception: BaseException) -> None:
        raise self.raises


class _Logger(CSVLogger):
    def __init__(self, save_dir: Path, raises: BaseException | None = None) -> None:
        super().__init__(save_dir)
        self.statuses: list[str] = []
        self.raises = raises

    def finalize(self, status: str) -> None:
        self.statuses.append(status)
        super().finalize(status)
        if self.raises is not None:
            raise self.raises


@pytest.mark.parametrize("stop", STOPS)
def test_trainer_lets_a_stop_in_on_exception_through_after_teardown(stop: type[BaseException], tmp_path: Path) -> None:
    ordinary, stopper, after = _Handler(ValueError("ordinary")), _Handler(stop()), _Handler()
    logger = _Logger(tmp_path)
    trainer = LC.Trainer(**{**BASE_KWARGS, "logger": logger}, max_epochs=1, callbacks=[ordinary, stopper, after])
    with pytest.raises(stop) as info:
        trainer.fit(_Boom())
    original = info.value.__context__
    assert isinstance(original, RuntimeError) and str(original) == "boom"
    # the ordinary failure before it is still a note on the original
    assert any("ValueError: ordinary" in n for n in getattr(original, "__notes__", []))
    assert not any(stop.__name__ in n for n in getattr(original, "__notes__", []))
    assert after.seen == []  # as in Lightning, the handlers after the stop are not called
    assert logger.statuses == ["failed"]  # the internal teardown ran
    assert trainer.state.status is TrainerStatus.INTERRUPTED and trainer.state.stage is None
    assert trainer._driver.state == "idle"


@pytest.mark.parametrize("stop", STOPS)
def test_trainer_lets_a_stop_in_the_datamodule_handler_through(stop: type[BaseException]) -> None:
    trainer = LC.Trainer(**BASE_KWARGS, max_epochs=1)
    with pytest.raises(stop) as info:
        trainer.fit(_Boom(), datamodule=_Data(stop()))
    assert isinstance(info.value.__context__, RuntimeError)
    assert trainer._driver.state == "idle"


@pytest.mark.parametrize("stop", STOPS)
def test_trainer_lets_a_stop_in_the_internal_teardown_through(stop: type[BaseException], tmp_path: Path) -> None:
    failing = _Handler(ValueError("ordinary"))
    trainer = LC.Trainer(**{**BASE_KWARGS, "logger": _Logger(tmp_path, stop())}, max_epochs=1, callbacks=[failing])
    with pytest.raises(stop) as info:
        trainer.fit(_Boom())
    original = info.value.__context__
    assert isinstance(original, RuntimeError)
    assert any("ValueError: ordinary" in n for n in original.__notes__)
    assert trainer._driver.state == "idle"


def test_ordinary_handler_failures_stay_notes() -> None:
    first, second = _Handler(ValueError("one")), _Handler(TypeError("two"))
    trainer = LC.Trainer(**BASE_KWARGS, max_epochs=1, callbacks=[first, second])
    with pytest.raises(RuntimeError, match="boom") as info:
        trainer.fit(_Boom())
    notes = info.value.__notes__
    assert any("ValueError: one" in n for n in notes) and any("TypeError: two" in n for n in notes)
    assert len(second.seen) == 1


@pytest.mark.parametrize("stop", STOPS)
def test_loop_driver_lets_a_stop_in_on_exception_through(stop: type[BaseException], tmp_path: Path) -> None:
    stopper, after = _Handler(stop()), _Handler()
    logger = _Logger(tmp_path)
    lc = LoopDriver(_Boom(), [stopper, after], logger=logger)
    with pytest.raises(stop) as info, lc.fit():
        raise RuntimeError("in my loop")
    assert str(info.value.__context__) == "in my loop"
    assert after.seen == []
    assert logger.statuses == ["failed"]
    assert lc.lifecycle_state == "idle"
    with lc.fit():  # the driver can start a new run
        pass
    assert lc.state.status is TrainerStatus.FINISHED
