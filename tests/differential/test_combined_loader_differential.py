"""CombinedLoader, and dicts/lists of loaders, run as live Lightning runs them.

The same program runs under ``pytorch_lightning`` and ``lightcycle``: the CombinedLoader's own
iteration (batches, ``batch_idx``, ``dataloader_idx``, ``len``, ``flattened``, ``iterables``) in
every mode, and its use as train/val/test/predict loaders in ``fit``/``validate``/``test``/
``predict``, recorded as a trace of hook calls with the batch and the indices each hook gets,
the trainer's batch counts and what each entry point returned.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from types import ModuleType
from typing import Any

import pytest
import pytorch_lightning as PL
import torch
from torch.utils.data import DataLoader

import lightcycle as LC
from tests.kit import quiet
from tests.paths import ROOT

MODES = ("min_size", "max_size_cycle", "max_size", "sequential")

# every test here runs once per lightcycle event executor (tests/conftest.py)
pytestmark = pytest.mark.usefixtures("each_executor")


def _loader(n: int, offset: int = 0, batch_size: int = 2) -> DataLoader:
    return DataLoader(torch.arange(offset, offset + n, dtype=torch.float32), batch_size=batch_size)


def _plain(x: Any) -> Any:
    """A batch as plain lists and dicts (tensors to lists), comparable across frameworks."""
    if isinstance(x, torch.Tensor):
        return x.tolist()
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    return x


def _combined(fw: ModuleType) -> type[Any]:
    cls: type[Any] = importlib.import_module(f"{fw.__name__}.utilities").CombinedLoader
    return cls


def _collection(shape: str, sizes: tuple[int, ...]) -> Any:
    loaders = [_loader(n, 100 * i) for i, n in enumerate(sizes)]
    if shape == "dict":
        return {chr(ord("a") + i): dl for i, dl in enumerate(loaders)}
    return loaders


# --------------------------------------------------------------------------- the loader itself


def _iterate(fw: ModuleType, mode: str, shape: str, limits: Any) -> dict[str, Any]:
    combined = _combined(fw)(_collection(shape, (3, 5, 1)), mode)
    if limits is not None:
        combined.limits = limits
    out: dict[str, Any] = {"flattened": len(combined.flattened), "shape": type(combined.iterables).__name__}
    try:
        len(combined)
    except RuntimeError as err:  # Lightning's: no len() before iter()
        out["len_before_iter"] = str(err)
    passes = []
    for _ in range(2):  # a second pass starts over
        it = iter(combined)
        passes.append({"len": len(combined), "items": [(_plain(b), i, d) for b, i, d in it]})
    out["passes"] = passes
    return out


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("shape", ["dict", "list"])
@pytest.mark.parametrize("limits", [None, 2, [1, 4, 0]])
def test_iteration_equals_lightning(mode: str, shape: str, limits: Any) -> None:
    assert _iterate(LC, mode, shape, limits) == _iterate(PL, mode, shape, limits)


def test_flattened_setter_and_errors_equal_lightning() -> None:
    def probe(fw: ModuleType) -> list[Any]:
        combined = _combined(fw)({"a": _loader(2), "b": [_loader(4), _loader(2)]}, "max_size")
        seen: list[Any] = [len(combined.flattened)]
        new = [_loader(4, 7) for _ in combined.flattened]
        combined.flattened = new
        seen.append(combined.iterables["b"][1] is new[2])
        for bad in (lambda: setattr(combined, "flattened", new[:1]), lambda: setattr(combined, "limits", [1])):
            with pytest.raises(ValueError) as err:
                bad()
            seen.append(str(err.value))
        with pytest.raises(ValueError) as err:
            _combined(fw)([_loader(2)], "longest")
        seen.append(str(err.value))
        seen.append(_plain(combined.sampler["b"][0].__class__.__name__))
        return seen

    assert probe(LC) == probe(PL)


# --------------------------------------------------------------------------- in the Trainer


def _module_class(fw: ModuleType) -> type[Any]:
    class Recorder(fw.LightningModule):  # type: ignore[name-defined,misc]
        def __init__(self) -> None:
            super().__init__()
            self.layer = torch.nn.Linear(1, 1)
            self.trace: list[Any] = []

        def _loss(self) -> torch.Tensor:
            return self.layer(torch.ones(1, 1)).sum()

        def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
            self.trace.append(("training_step", _plain(batch), batch_idx))
            return self._loss()

        def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
            self.trace.append(("on_train_batch_start", _plain(batch), batch_idx))

        def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
            self.trace.append(("on_train_batch_end", batch_idx))

        def on_train_epoch_start(self) -> None:
            self.trace.append(("on_train_epoch_start", self.trainer.num_training_batches))

        def on_before_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
            self.trace.append(("on_before_batch_transfer", dataloader_idx))
            return batch

        def validation_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
            self.trace.append(("validation_step", _plain(batch), batch_idx, dataloader_idx))
            self.log("v", float(batch_idx))

        def on_validation_batch_start(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
            self.trace.append(("on_validation_batch_start", batch_idx, dataloader_idx))

        def on_validation_batch_end(self, outputs: Any, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
            self.trace.append(("on_validation_batch_end", batch_idx, dataloader_idx))

        def test_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
            self.trace.append(("test_step", _plain(batch), batch_idx, dataloader_idx))
            self.log("t", float(batch_idx))

        def on_test_batch_end(self, outputs: Any, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
            self.trace.append(("on_test_batch_end", batch_idx, dataloader_idx))

        def predict_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> Any:
            self.trace.append(("predict_step", _plain(batch), batch_idx, dataloader_idx))
            return [batch_idx, dataloader_idx]

        def on_predict_batch_start(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
            self.trace.append(("on_predict_batch_start", batch_idx, dataloader_idx))

        def configure_optimizers(self) -> Any:
            return torch.optim.SGD(self.parameters(), lr=0.1)

    return Recorder


def _counts(trainer: Any) -> dict[str, Any]:
    return {
        name: _plain(getattr(trainer, name, None))
        for name in ("num_training_batches", "num_val_batches", "num_test_batches", "num_predict_batches")
    }


def _shown(value: Any) -> Any:
    """What ``trainer.*_dataloader(s)`` shows, by shape (dict keys / list length / a loader)."""
    if isinstance(value, dict):
        return {k: _shown(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_shown(v) for v in value]
    return type(value).__name__ if value is not None else None


def _run(fw: ModuleType, entry: str, loaders: Any, trainer_args: dict[str, Any]) -> dict[str, Any]:
    torch.manual_seed(0)
    module = _module_class(fw)()
    trainer = fw.Trainer(**quiet(max_epochs=2, **trainer_args))
    out: dict[str, Any] = {}
    try:
        if entry == "fit":
            result = trainer.fit(module, *loaders(fw))
        else:
            result = getattr(trainer, entry)(module, loaders(fw), verbose=False) if entry != "predict" else None
            if entry == "predict":
                result = trainer.predict(module, loaders(fw))
        out["result"] = _plain(result)
    except Exception as err:  # the error that reached the caller is part of the comparison
        out["error"] = f"{type(err).__name__}: {err}"
    out["trace"] = module.trace
    out["counts"] = _counts(trainer)
    out["shown"] = {
        name: _shown(getattr(trainer, name, None))
        for name in ("train_dataloader", "val_dataloaders", "test_dataloaders", "predict_dataloaders")
    }
    return out


def _assert_same(entry: str, loaders: Any, trainer_args: dict[str, Any]) -> None:
    lightning = _run(PL, entry, loaders, trainer_args)
    ours = _run(LC, entry, loaders, trainer_args)
    assert lightning["trace"] or lightning.get("error"), "the Lightning run recorded nothing"
    for key in ("error", "result", "counts", "shown"):
        assert ours.get(key) == lightning.get(key), key
    for i, (a, b) in enumerate(zip(lightning["trace"], ours["trace"], strict=False)):
        assert a == b, f"event {i}: lightning {a}, lightcycle {b}"
    assert len(ours["trace"]) == len(lightning["trace"])


LIMITS = [
    {},
    {"limit_train_batches": 0.5, "limit_val_batches": 0.5},
    {"limit_train_batches": 2, "limit_val_batches": 1},
]


@pytest.mark.parametrize("mode", ["min_size", "max_size_cycle", "max_size"])
@pytest.mark.parametrize("limits", LIMITS, ids=["all", "half", "int"])
def test_fit_with_combined_train_and_val_loaders(mode: str, limits: dict[str, Any]) -> None:
    """Train and validation CombinedLoaders of one mode, with the sanity check and validation."""

    def loaders(fw: ModuleType) -> tuple[Any, Any]:
        cls = _combined(fw)
        return cls(_collection("dict", (3, 5)), mode), cls(_collection("list", (4, 6)), mode)

    _assert_same("fit", loaders, {"num_sanity_val_steps": 1, **limits})


@pytest.mark.parametrize("limits", LIMITS, ids=["all", "half", "int"])
def test_fit_with_sequential_validation_combined_loader(limits: dict[str, Any]) -> None:
    def loaders(fw: ModuleType) -> tuple[Any, Any]:
        return _collection("list", (3, 4)), _combined(fw)(_collection("dict", (4, 8, 6)), "sequential")

    _assert_same("fit", loaders, limits)


def test_fit_refuses_a_sequential_train_combined_loader_where_lightning_does() -> None:
    def loaders(fw: ModuleType) -> tuple[Any]:
        return (_combined(fw)(_collection("list", (2, 3)), "sequential"),)

    _assert_same("fit", loaders, {})


def test_fit_with_a_one_element_list_gives_list_batches() -> None:
    """Lightning wraps ``[loader]`` in a CombinedLoader: each batch is a one-element list."""
    _assert_same("fit", lambda fw: ([_loader(4)], [_loader(2)]), {})


@pytest.mark.parametrize("entry", ["validate", "test", "predict"])
@pytest.mark.parametrize("mode", [*MODES, "dict", "list"])
def test_evaluation_entry_points(entry: str, mode: str) -> None:
    """Each mode (and a plain dict or list, Lightning's sequential) as the loaders of an entry point."""

    def loaders(fw: ModuleType) -> Any:
        if mode in ("dict", "list"):
            return _collection(mode, (4, 8, 6))
        return _combined(fw)(_collection("dict", (4, 8, 6)), mode)

    _assert_same(entry, loaders, {"limit_val_batches": 2, "limit_test_batches": 0.5, "limit_predict_batches": 2})


def _dict_program(fw: ModuleType) -> Any:
    """A program as users write it: ``train_dataloader`` and ``val_dataloader`` return dicts."""
    base = _module_class(fw)

    class DictLoaders(base):  # type: ignore[misc,valid-type]
        def train_dataloader(self) -> Any:
            return {"x": _loader(6), "y": _loader(3, 50, batch_size=3)}

        def val_dataloader(self) -> Any:
            return {"small": _loader(2), "large": _loader(5, 10)}

    torch.manual_seed(0)
    module = DictLoaders()
    trainer = fw.Trainer(**quiet(max_epochs=2, limit_val_batches=2))
    trainer.fit(module)
    return {"trace": module.trace, "counts": _counts(trainer), "metrics": _plain(dict(trainer.callback_metrics))}


def test_dict_of_loaders_from_the_hooks() -> None:
    lightning = _dict_program(PL)
    assert lightning["trace"]
    assert _dict_program(LC) == lightning


# --------------------------------------------------------------------------- the import aliases


def test_lightning_import_paths_give_lightcycles_combined_loader() -> None:
    code = (
        "from lightcycle.compat import aliases; aliases.install()\n"
        "from lightning.pytorch.utilities import CombinedLoader as A\n"
        "from lightning.pytorch.utilities.combined_loader import CombinedLoader as B\n"
        "from pytorch_lightning.utilities import CombinedLoader as C\n"
        "import lightcycle.utilities.combined_loader as m\n"
        "assert A is B is C is m.CombinedLoader, (A, B, C)\n"
        "print('ok')\n"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "ok"


PROGRAM = """
import torch
from torch.utils.data import DataLoader
import pytorch_lightning as pl
from pytorch_lightning.utilities.combined_loader import CombinedLoader

def dl(n, offset=0):
    return DataLoader(torch.arange(offset, offset + n, dtype=torch.float32), batch_size=2)

class M(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.l = torch.nn.Linear(1, 1)
    def train_dataloader(self):
        return CombinedLoader({"a": dl(4), "b": dl(6, 10)}, "max_size")
    def val_dataloader(self):
        return [dl(2), dl(4, 20)]
    def training_step(self, batch, batch_idx):
        print("train", batch_idx, {k: None if v is None else v.tolist() for k, v in batch.items()})
        return self.l(torch.ones(1, 1)).sum()
    def validation_step(self, batch, batch_idx, dataloader_idx=0):
        print("val", batch_idx, dataloader_idx, batch.tolist())
    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)

t = pl.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
               enable_model_summary=False, num_sanity_val_steps=0)
t.fit(M())
print("counts", t.num_training_batches, t.num_val_batches)
print("framework", pl.Trainer.__module__.split(".")[0], CombinedLoader.__module__)
"""


def test_an_unmodified_lightning_program_runs_under_lightcycle_run(tmp_path: Any) -> None:
    script = tmp_path / "prog.py"
    script.write_text(PROGRAM)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    env.pop("LIGHTCYCLE_TRACE", None)
    runs = {}
    for name, argv in (("lightning", [str(script)]), ("lightcycle", ["-m", "lightcycle", "run", str(script)])):
        done = subprocess.run(
            [sys.executable, *argv], capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path
        )
        assert done.returncode == 0, done.stderr[-3000:]
        runs[name] = done.stdout.splitlines()
    frameworks = {name: [line for line in lines if line.startswith("framework ")] for name, lines in runs.items()}
    assert frameworks == {
        "lightning": ["framework pytorch_lightning pytorch_lightning.utilities.combined_loader"],
        "lightcycle": ["framework lightcycle lightcycle.utilities.combined_loader"],
    }
    traces = {
        name: [line for line in lines if line.split(" ")[0] in ("train", "val", "counts")]
        for name, lines in runs.items()
    }
    assert any(line.startswith("val 1 1") for line in traces["lightning"])
    assert traces["lightcycle"] == traces["lightning"]
