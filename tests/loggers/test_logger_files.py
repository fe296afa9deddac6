"""The loggers' files equal Lightning's (issue 15.2): ``metrics.csv`` rows, TensorBoard scalars
(read back with tensorboard's ``EventAccumulator``), folder layout, ``hparams.yaml``, the
default logger, and Lightning's own logger objects driven by lightcycle's Trainer.
"""

from __future__ import annotations

import csv
import importlib
import os
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import pytorch_lightning as PL
import yaml

import lightcycle as LC
from lightcycle.loggers import CSVLogger, Logger, TensorBoardLogger
from tests.logger_programs import QUIET, loaders, model_class
from tests.paths import ROOT

ARGS = dict(max_epochs=2, accumulate_grad_batches=2, log_every_n_steps=1, num_sanity_val_steps=1, **QUIET)


def _loggers(fw: ModuleType) -> Any:
    return importlib.import_module(f"{fw.__name__}.loggers")


def _fit(fw: ModuleType, logger: Any, root: Path, **extra: Any) -> Any:
    train, val = loaders()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer = fw.Trainer(logger=logger, default_root_dir=str(root), **{**ARGS, **extra})
        trainer.fit(model_class(fw)(), train, val)
    return trainer


def _rows(path: Path) -> tuple[list[str], list[dict[str, Any]]]:
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        rows = [{k: (round(float(v), 5) if v else "") for k, v in row.items()} for row in reader]
        return list(reader.fieldnames or []), rows


@pytest.mark.parametrize("options", [{}, {"prefix": "p", "name": "exp", "version": "v_a"}])
def test_csv_logger_writes_lightnings_metrics_csv(tmp_path: Path, options: dict[str, Any]) -> None:
    files = {}
    for fw in (LC, PL):
        root = tmp_path / fw.__name__
        logger = _loggers(fw).CSVLogger(root, **options)
        _fit(fw, logger, root)
        files[fw] = Path(logger.log_dir)
        assert files[fw].relative_to(root).parts == (
            options.get("name", "lightning_logs"),
            options.get("version", "version_0"),
        )
    assert _rows(files[LC] / "metrics.csv") == _rows(files[PL] / "metrics.csv")
    assert yaml.safe_load((files[LC] / "hparams.yaml").read_text()) == {"lr": 0.05}
    assert sorted(os.listdir(files[LC])) == sorted(os.listdir(files[PL]))


def test_a_lightning_csv_logger_object_works_in_lightcycle(tmp_path: Path) -> None:
    # Duck typing: Lightning's own logger classes, given to lightcycle's Trainer.
    ours = PL.loggers.CSVLogger(tmp_path / "ours")
    theirs = PL.loggers.CSVLogger(tmp_path / "theirs")
    _fit(LC, ours, tmp_path / "ours")
    _fit(PL, theirs, tmp_path / "theirs")
    assert _rows(Path(ours.log_dir) / "metrics.csv") == _rows(Path(theirs.log_dir) / "metrics.csv")


def _scalars(log_dir: str) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(log_dir)
    acc.Reload()
    return {tag: [(e.step, round(e.value, 5)) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


@pytest.mark.parametrize("lightning_object", [False, True])
def test_tensorboard_logger_writes_lightnings_scalars(tmp_path: Path, lightning_object: bool) -> None:
    pytest.importorskip("tensorboard")
    seen = {}
    for fw in (LC, PL):
        root = tmp_path / fw.__name__
        cls = (PL.loggers if lightning_object else _loggers(fw)).TensorBoardLogger
        logger = cls(root, default_hp_metric=True)
        _fit(fw, logger, root)
        log_dir = Path(logger.log_dir)
        assert log_dir.relative_to(root).parts == ("lightning_logs", "version_0")
        seen[fw] = (_scalars(str(log_dir)), sorted(p.split(".")[0] for p in os.listdir(log_dir)))
        assert yaml.safe_load((log_dir / "hparams.yaml").read_text()) == {"lr": 0.05}
    assert seen[LC] == seen[PL]
    assert "hp_metric" in seen[LC][0] and "val_loss_step" in seen[LC][0]


def test_tensorboard_logger_log_graph_and_experiment(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    import torch
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tags = {}
    for fw in (LC, PL):
        logger = _loggers(fw).TensorBoardLogger(tmp_path / fw.__name__, log_graph=True, default_hp_metric=False)
        model = model_class(fw)()
        model.example_input_array = torch.zeros(1, 2)
        train, val = loaders()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fw.Trainer(logger=logger, max_epochs=1, **QUIET).fit(model, train, val)
        logger.experiment.add_histogram("w", model.layer.weight, 0)  # the SummaryWriter, as in Lightning
        logger.finalize("success")
        acc = EventAccumulator(logger.log_dir)
        acc.Reload()
        tags[fw] = (bool(acc.Tags()["graph"]), acc.Tags()["histograms"], "hp_metric" in acc.Tags()["scalars"])
    assert tags[LC] == tags[PL] == (True, ["w"], False)


def test_default_logger_is_lightnings(tmp_path: Path) -> None:
    # TensorBoard when tensorboard (or tensorboardX) is importable, else CSV with a warning.
    kinds = {}
    for fw in (LC, PL):
        trainer = _fit(fw, True, tmp_path / fw.__name__)
        kinds[fw] = (type(trainer.logger).__name__, sorted(p.split(".")[0] for p in os.listdir(trainer.log_dir)))
    assert kinds[LC] == kinds[PL]


def test_default_logger_without_tensorboard_is_csv_with_lightnings_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name in ("tensorboard", "tensorboardX") else real(name, *a),
    )
    with pytest.warns(UserWarning, match=r"`logger=True` will use `CSVLogger`.*pip install lightcycle\[tensorboard\]"):
        trainer = LC.Trainer(default_root_dir=str(tmp_path), **QUIET)
    assert isinstance(trainer.logger, CSVLogger)
    with pytest.raises(ModuleNotFoundError, match=r"pip install lightcycle\[tensorboard\]"):
        TensorBoardLogger(tmp_path)


def test_logger_base_has_lightnings_interface(tmp_path: Path) -> None:
    names = ("log_metrics", "log_hyperparams", "log_graph", "save", "finalize", "name", "version", "log_dir",
             "save_dir", "root_dir", "group_separator", "after_save_checkpoint")  # fmt: skip
    for name in names:
        assert hasattr(Logger, name) and hasattr(PL.loggers.Logger, name), name
    for name in ("name", "version", "log_dir", "save_dir", "root_dir", "experiment"):
        assert hasattr(CSVLogger, name) and hasattr(TensorBoardLogger, name), name
    with pytest.raises(TypeError):
        Logger()  # type: ignore[abstract]
    csv_logger = CSVLogger(tmp_path, name="n", version=3, flush_logs_every_n_steps=2)
    assert (csv_logger.name, csv_logger.version, csv_logger.save_dir) == ("n", 3, str(tmp_path))
    assert csv_logger.log_dir == str(tmp_path / "n" / "version_3") and csv_logger.group_separator == "/"
    csv_logger.log_metrics({"a": 1.0}, step=0)
    assert not (tmp_path / "n" / "version_3" / "metrics.csv").exists()  # outside a Trainer: every 2 steps
    csv_logger.log_metrics({"a": 2.0}, step=1)
    assert (tmp_path / "n" / "version_3" / "metrics.csv").read_text().splitlines() == ["a,step", "1.0,0", "2.0,1"]
    assert CSVLogger(tmp_path, name="n").version == 4


@pytest.mark.slow
def test_a_run_killed_with_sigkill_keeps_every_row_lightning_keeps(tmp_path: Path) -> None:
    # Issue 14.4: the Trainer saves the logger after every log_metrics, so each row is on disk.
    # Both programs run at once (each is mostly its imports).
    import subprocess
    import sys

    repo = ROOT
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(repo), os.environ.get("PYTHONPATH")) if p)}
    procs = {
        fw: subprocess.Popen(
            [sys.executable, "-m", "tests.killed_logging_run", fw, str(tmp_path / fw)],
            env=env,
            cwd=repo,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for fw in ("lightcycle", "pytorch_lightning")
    }
    rows = {}
    for fw, proc in procs.items():
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == -9, err.decode()[-2000:]
        rows[fw] = _rows(tmp_path / fw / "lightning_logs" / "version_0" / "metrics.csv")
    theirs_keys, theirs = rows["pytorch_lightning"]
    ours_keys, ours = rows["lightcycle"]
    assert len(theirs) > 10  # two epochs and a half of rows
    assert ours_keys == theirs_keys and ours == theirs


def test_trainer_log_dir_follows_lightnings_rule(tmp_path: Path) -> None:
    # The first logger's log_dir for a CSV/TensorBoard logger (ours or Lightning's), else its save_dir.
    from tests.logger_programs import recording_logger

    for fw in (LC, PL):
        made = {
            "csv": _loggers(fw).CSVLogger(tmp_path, name="n"),
            "pl_csv": PL.loggers.CSVLogger(tmp_path, name="m"),
            "other": recording_logger(fw),
        }
        seen = {}
        for key, logger in made.items():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                seen[key] = fw.Trainer(logger=[logger, made["csv"]], default_root_dir=str(tmp_path), **QUIET).log_dir
        assert seen == {
            "csv": str(tmp_path / "n" / "version_0"),
            "pl_csv": str(tmp_path / "m" / "version_0"),
            "other": None,
        }
