"""Hyper-parameters reach the loggers as in Lightning (its ``_log_hyperparams``).

After ``on_fit_start`` (fit) or the model's move to the device (validate/test/predict),
each logger gets ``log_hyperparams`` with the initial hyper-parameters of the module
and of the datamodule that called ``save_hyperparameters``, then ``log_graph`` and
``save``. Checked against live pytorch-lightning with a recording logger, and the
``hparams.yaml`` the CSV loggers write.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import pytorch_lightning as PL
import torch
import yaml
from pytorch_lightning.loggers import Logger as PLLogger
from torch.utils.data import DataLoader, TensorDataset

import lightcycle as LC
from lightcycle.loggers import CSVLogger
from tests import kit

HOOKS = ("setup", "on_fit_start", "on_train_start", "on_validation_start", "on_test_start", "teardown")


def _classes(fw: ModuleType, events: list[tuple[Any, ...]], dm_hparams: dict[str, Any] | None) -> Any:
    class Model(fw.LightningModule):  # type: ignore[misc, name-defined]
        def __init__(self, lr: float = 0.1, width: int = 3, name: str = "x", sizes: tuple[int, ...] = (1, 2)) -> None:
            super().__init__()
            self.save_hyperparameters()
            self.layer = torch.nn.Linear(2, 1)

        def training_step(self, batch: Any, batch_idx: int) -> Any:
            return self.layer(batch[0]).sum()

        def validation_step(self, batch: Any, batch_idx: int) -> None:
            pass

        def test_step(self, batch: Any, batch_idx: int) -> None:
            pass

        def configure_optimizers(self) -> Any:
            return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)

    class Data(fw.LightningDataModule):  # type: ignore[misc, name-defined]
        def __init__(self, **kwargs: Any) -> None:
            super().__init__()
            self.save_hyperparameters()

        def _loader(self) -> Any:
            x = torch.randn(4, 2, generator=torch.Generator().manual_seed(0))
            return DataLoader(TensorDataset(x), batch_size=2)

        def train_dataloader(self) -> Any:
            return self._loader()

        def val_dataloader(self) -> Any:
            return self._loader()

        def test_dataloader(self) -> Any:
            return self._loader()

    def record(name: str) -> Any:
        return lambda self, *args, **kwargs: events.append(("hook", name))

    probe = type("Probe", (fw.Callback,), {name: record(name) for name in HOOKS})

    class Recording(PLLogger if fw is PL else object):  # type: ignore[misc]
        name = "rec"
        version = 0

        def log_metrics(self, metrics: Any, step: Any = None) -> None:
            pass

        def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
            events.append(("log_hyperparams", dict(params)))

        def log_graph(self, model: Any, input_array: Any = None) -> None:
            events.append(("log_graph", type(model).__name__))

        def save(self) -> None:
            events.append(("save",))

    data = Data(**dm_hparams) if dm_hparams is not None else Data()
    return Model, data, probe, Recording


def _run(fw: ModuleType, entry: str, dm_hparams: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
    events: list[tuple[Any, ...]] = []
    model_cls, data, probe, logger_cls = _classes(fw, events, dm_hparams)
    if dm_hparams is None:
        data._log_hyperparams = False  # only the module's are logged
    trainer = fw.Trainer(**kit.quiet(logger=logger_cls(), max_epochs=1, callbacks=[probe()], num_sanity_val_steps=0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        getattr(trainer, entry)(model_cls(), datamodule=data)
    # Lightning also calls save() when it sends metrics; keep the part up to the first loop
    start = events.index(("hook", "setup"))
    end = next(i for i, e in enumerate(events) if e[0] == "hook" and e[1].endswith("_start") and e[1] != "on_fit_start")
    return events[start : end + 1]


@pytest.mark.parametrize("entry", ["fit", "validate", "test"])
def test_hyperparameters_reach_the_loggers_where_lightning_sends_them(entry: str) -> None:
    ours = _run(LC, entry)
    assert ours == _run(PL, entry)
    assert ("log_hyperparams", {"lr": 0.1, "width": 3, "name": "x", "sizes": (1, 2)}) in ours


def test_module_and_datamodule_hyperparameters_are_merged() -> None:
    ours = _run(LC, "fit", {"batch": 8})
    assert ours == _run(PL, "fit", {"batch": 8})
    assert ("log_hyperparams", {"lr": 0.1, "width": 3, "name": "x", "sizes": (1, 2), "batch": 8}) in ours


def test_a_key_with_two_values_interrupts_the_run_as_in_lightning() -> None:
    errors = {}
    for fw in (LC, PL):
        with pytest.raises(RuntimeError, match=r"Error while merging hparams: the keys \['lr'\]") as info:
            _run(fw, "fit", {"lr": 0.5})
        errors[fw.__name__] = str(info.value)
    assert errors["lightcycle"] == errors["pytorch_lightning"]


def test_csv_logger_writes_the_hyperparameters_lightning_writes(tmp_path: Path) -> None:
    files = {}
    for fw, logger_cls in ((LC, CSVLogger), (PL, PL.loggers.CSVLogger)):
        events: list[tuple[Any, ...]] = []
        model_cls, data, _, _ = _classes(fw, events, None)
        data._log_hyperparams = False
        root = tmp_path / fw.__name__
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fw.Trainer(**kit.quiet(logger=logger_cls(root), max_epochs=1, num_sanity_val_steps=0)).fit(
                model_cls(), datamodule=data
            )
        files[fw] = root / "lightning_logs" / "version_0" / "hparams.yaml"
    ours = yaml.safe_load(files[LC].read_text())
    theirs = yaml.unsafe_load(files[PL].read_text())  # Lightning writes !!python/tuple
    assert ours == {k: list(v) if isinstance(v, tuple) else v for k, v in theirs.items()}
    assert ours == {"lr": 0.1, "width": 3, "name": "x", "sizes": [1, 2]}
