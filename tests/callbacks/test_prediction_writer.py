"""BasePredictionWriter: the same writes, with the same batch indices, as Lightning's callback.

One program runs under both frameworks: a writer per interval records what each write call
got (predictions, the dataset indices of each batch, batch and dataloader indices); the
records must be equal. The dataloaders are shuffled (a seeded sampler) so the batch indices
are not simply 0..n, and there are two of them so per-dataloader nesting is compared too.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks.prediction_writer import WriteInterval as PlWriteInterval
from torch.utils.data import DataLoader, IterableDataset, TensorDataset

import lightcycle as lc
from lightcycle.callbacks import BasePredictionWriter
from lightcycle.callbacks.prediction_writer import WriteInterval
from tests.kit import quiet


def _loaders(count: int) -> list[DataLoader[Any]]:
    data = TensorDataset(torch.arange(10, dtype=torch.float32).reshape(10, 1))
    return [
        DataLoader(data, batch_size=3, shuffle=True, generator=torch.Generator().manual_seed(seed))
        for seed in range(count)
    ]


def _run(fw: ModuleType, interval: str, loaders: int) -> tuple[list[Any], Any]:
    writes: list[Any] = []

    class Module(fw.LightningModule):  # type: ignore[name-defined,misc]
        def __init__(self) -> None:
            super().__init__()
            self.layer = torch.nn.Linear(1, 1)

        def predict_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> torch.Tensor:
            return batch[0] * 2 + dataloader_idx

    class Writer(fw.callbacks.BasePredictionWriter):  # type: ignore[name-defined,misc]
        def write_on_batch_end(self, trainer, pl_module, prediction, batch_indices, batch, batch_idx, dataloader_idx):  # type: ignore[no-untyped-def]
            writes.append(("batch", prediction.tolist(), list(batch_indices), batch_idx, dataloader_idx))

        def write_on_epoch_end(self, trainer, pl_module, predictions, batch_indices):  # type: ignore[no-untyped-def]
            flat = [p.tolist() for p in predictions] if loaders == 1 else [[p.tolist() for p in d] for d in predictions]
            writes.append(("epoch", flat, batch_indices))

    trainer = fw.Trainer(**quiet(callbacks=[Writer(write_interval=interval)]))
    returned = trainer.predict(Module(), _loaders(loaders))
    return writes, returned


@pytest.mark.parametrize("interval", ["batch", "epoch", "batch_and_epoch"])
@pytest.mark.parametrize("loaders", [1, 2])
def test_writes_equal_lightnings(interval: str, loaders: int) -> None:
    ours, ours_returned = _run(lc, interval, loaders)
    theirs, theirs_returned = _run(pl, interval, loaders)
    assert ours == theirs
    assert any(kind == interval.split("_")[-1] for kind, *_ in ours)  # the writes under test happened
    flatten = (lambda r: [t.tolist() for t in r]) if loaders == 1 else (lambda r: [[t.tolist() for t in d] for d in r])
    assert flatten(ours_returned) == flatten(theirs_returned)


def test_the_dataloaders_get_their_batch_samplers_back() -> None:
    loader = _loaders(1)[0]
    own = loader.batch_sampler

    class Writer(BasePredictionWriter):
        def write_on_batch_end(self, *args: Any) -> None:
            assert loader.batch_sampler is not own  # recording during the run

    class Module(lc.LightningModule):
        def predict_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
            return batch[0]

    lc.Trainer(**quiet(callbacks=[Writer()])).predict(Module(), loader)
    assert loader.batch_sampler is own


def test_an_iterable_dataset_gives_empty_indices_as_lightning() -> None:
    class Stream(IterableDataset[torch.Tensor]):
        def __iter__(self) -> Any:
            return iter(torch.ones(4, 1).unbind())

    def run(fw: ModuleType) -> list[Any]:
        seen: list[Any] = []

        class Writer(fw.callbacks.BasePredictionWriter):  # type: ignore[name-defined,misc]
            def write_on_batch_end(self, trainer, pl_module, prediction, batch_indices, *rest):  # type: ignore[no-untyped-def]
                seen.append(batch_indices)

        class Module(fw.LightningModule):  # type: ignore[name-defined,misc]
            def predict_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
                return batch

        fw.Trainer(**quiet(callbacks=[Writer()])).predict(Module(), DataLoader(Stream(), batch_size=2))
        return seen

    assert run(lc) == run(pl)


def test_the_interval_is_lightnings_enum() -> None:
    for value in ("batch", "epoch", "batch_and_epoch"):
        ours, theirs = BasePredictionWriter(value).interval, pl.callbacks.BasePredictionWriter(value).interval
        assert (ours.value, ours.on_batch, ours.on_epoch) == (theirs.value, theirs.on_batch, theirs.on_epoch)
        assert BasePredictionWriter(WriteInterval(value)).interval is WriteInterval(value)
        assert PlWriteInterval(value).value == WriteInterval(value).value


def test_a_bad_interval_names_the_choices() -> None:
    with pytest.raises(ValueError, match="batch, epoch, batch_and_epoch"):
        BasePredictionWriter(write_interval="step")


def test_a_writer_without_its_write_method_says_which() -> None:
    class Module(lc.LightningModule):
        def predict_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
            return batch[0]

    with pytest.raises(NotImplementedError, match="define write_on_epoch_end"):
        lc.Trainer(**quiet(callbacks=[BasePredictionWriter("epoch")])).predict(Module(), _loaders(1)[0])
