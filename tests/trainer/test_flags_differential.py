"""fast_dev_run, barebones, detect_anomaly and benchmark against live Lightning: end state and messages.

The hook traces of these flags are compared in ``test_differential.py`` (``tests/scenarios.py``,
``fit_fast_dev_run`` and the others) and drawn by ``test_hypothesis_differential.py``; here
the state they leave: the trainer attributes, the files written, the loggers, the torch flags,
and the errors for combinations Lightning refuses.
"""

from __future__ import annotations

import os
import tempfile
import types
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
import pytorch_lightning as PL
import torch
from torch.utils.data import DataLoader, TensorDataset

import lightcycle as LC


def _model(pl: types.ModuleType, shuffle: bool = False) -> Any:
    class Model(pl.LightningModule):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.layer = torch.nn.Linear(2, 1)
            self.anomaly: list[tuple[str, bool]] = []
            self.batches: list[tuple[str, list[float]]] = []

        def training_step(self, batch: Any, batch_idx: int) -> Any:
            self.anomaly.append(("train", torch.is_anomaly_enabled()))
            self.batches.append(("train", batch[0][:, 0].tolist()))
            loss = self.layer(batch[0]).pow(2).mean()
            self.log("loss", loss)
            return loss

        def validation_step(self, batch: Any, batch_idx: int) -> None:
            self.anomaly.append(("val", torch.is_anomaly_enabled()))
            self.batches.append(("val", batch[0][:, 0].tolist()))
            self.log("val_loss", self.layer(batch[0]).pow(2).mean())

        def test_step(self, batch: Any, batch_idx: int) -> None:
            self.log("test_loss", self.layer(batch[0]).pow(2).mean())

        def configure_optimizers(self) -> Any:
            return torch.optim.SGD(self.parameters(), lr=0.1)

        def _loader(self) -> Any:
            g = torch.Generator().manual_seed(3)
            return DataLoader(TensorDataset(torch.arange(16.0).view(8, 2)), batch_size=2, shuffle=shuffle, generator=g)

        def train_dataloader(self) -> Any:
            return self._loader()

        def val_dataloader(self) -> Any:
            return self._loader()

        def test_dataloader(self) -> Any:
            return self._loader()

    return Model()


def _run(pl: types.ModuleType, entry: str = "fit", shuffle: bool = False, **kwargs: Any) -> dict[str, Any]:
    torch.manual_seed(0)
    model = _model(pl, shuffle)
    root = tempfile.mkdtemp(prefix="lc_flags_")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t = pl.Trainer(accelerator="cpu", devices=1, enable_progress_bar=False, default_root_dir=root, **kwargs)
        getattr(t, entry)(model)
    files = sorted(os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs)
    return {
        "fast_dev_run": t.fast_dev_run,
        "global_step": t.global_step,
        "epoch": t.current_epoch,
        "metrics": sorted(t.callback_metrics),
        "loggers": [type(lg).__name__ for lg in t.loggers],
        "files": files,
        "anomaly": model.anomaly,
        "batches": model.batches,
        "warnings": sorted(
            {str(w.message) for w in caught if "barebones" in str(w.message) or "overfit" in str(w.message)}
        ),
    }


@pytest.fixture(autouse=True)
def _keep_cudnn_benchmark() -> Iterator[None]:
    before = torch.backends.cudnn.benchmark
    yield
    torch.backends.cudnn.benchmark = before


@pytest.mark.parametrize(
    ("entry", "kwargs"),
    [
        ("fit", dict(fast_dev_run=True, max_epochs=5)),
        ("fit", dict(fast_dev_run=3, logger=True)),  # a DummyLogger: no files, no checkpoints
        ("fit", dict(fast_dev_run=1, max_steps=10, limit_train_batches=0.5)),
        ("test", dict(fast_dev_run=2)),
        ("fit", dict(barebones=True, max_epochs=1, limit_train_batches=2, limit_val_batches=1)),
        ("fit", dict(detect_anomaly=True, max_epochs=1, limit_train_batches=2, limit_val_batches=1, logger=False)),
    ],
)
def test_flag_end_state_equals_lightning(entry: str, kwargs: dict[str, Any]) -> None:
    lightning = _run(PL, entry, **kwargs)
    ours = _run(LC, entry, **kwargs)
    assert ours == lightning


@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("overfit", [2, 0.5])
def test_overfit_batches_equals_lightning(shuffle: bool, overfit: int | float) -> None:
    """Train and val limited to overfit_batches; shuffled loaders made sequential, with Lightning's warning."""
    kwargs: dict[str, Any] = dict(overfit_batches=overfit, max_epochs=2, logger=False, enable_checkpointing=False)
    lightning = _run(PL, shuffle=shuffle, **kwargs)
    ours = _run(LC, shuffle=shuffle, **kwargs)
    assert bool(ours["warnings"]) is shuffle
    assert ours == lightning


def test_overfit_batches_invalid_value_has_lightnings_message() -> None:
    for bad in (1.5, -1):
        with pytest.raises(Exception) as theirs:
            PL.Trainer(overfit_batches=bad)
        with pytest.raises(Exception) as ours:
            LC.Trainer(overfit_batches=bad)
        assert str(ours.value) == str(theirs.value)


def test_anomaly_detection_covers_the_fit_loop_only() -> None:
    ours = _run(LC, detect_anomaly=True, max_epochs=1, limit_train_batches=1, limit_val_batches=1, logger=False)
    assert ours["anomaly"] == [("val", False), ("train", True), ("val", True)]  # sanity check: off (Lightning)


@pytest.mark.parametrize(
    ("bench", "deterministic", "expected"), [(True, None, True), (False, None, False), (None, True, False)]
)
def test_benchmark_sets_cudnn_as_lightning(bench: Any, deterministic: Any, expected: bool) -> None:
    for pl in (PL, LC):
        torch.backends.cudnn.benchmark = not expected
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pl.Trainer(accelerator="cpu", logger=False, benchmark=bench, deterministic=deterministic)
        assert torch.backends.cudnn.benchmark is expected, pl.__name__
    torch.use_deterministic_algorithms(False)


def test_benchmark_none_leaves_cudnn_alone() -> None:
    torch.backends.cudnn.benchmark = True
    LC.Trainer(accelerator="cpu", logger=False)
    assert torch.backends.cudnn.benchmark is True


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(barebones=True, enable_checkpointing=True),
        dict(barebones=True, logger=True),
        dict(barebones=True, enable_progress_bar=True),
        dict(barebones=True, log_every_n_steps=5),
        dict(barebones=True, enable_model_summary=True),
        dict(barebones=True, num_sanity_val_steps=2),
        dict(barebones=True, fast_dev_run=True),
        dict(barebones=True, detect_anomaly=True),
        dict(fast_dev_run=-1),
        dict(reload_dataloaders_every_n_epochs=-1),
        dict(reload_dataloaders_every_n_epochs=1.5),
    ],
)
def test_refused_combinations_have_lightnings_message(kwargs: dict[str, Any]) -> None:
    with pytest.raises(Exception) as theirs:
        PL.Trainer(accelerator="cpu", **kwargs)
    with pytest.raises(Exception) as ours:
        LC.Trainer(accelerator="cpu", **kwargs)
    assert type(ours.value).__name__ == type(theirs.value).__name__  # each framework's own exception class
    assert str(ours.value) == str(theirs.value)
