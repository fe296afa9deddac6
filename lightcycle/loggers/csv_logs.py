"""``CSVLogger``: metrics to ``metrics.csv``, hyper-parameters to ``hparams.yaml`` (Lightning's files)."""

from __future__ import annotations

import csv
import os
import warnings
from argparse import Namespace
from typing import Any

from torch import Tensor

from lightcycle.loggers._files import (
    HPARAMS_FILE,
    VersionedFolder,
    add_prefix,
    convert_params,
    version_dir,
    write_hparams_yaml,
)
from lightcycle.loggers.logger import Logger, rank_zero_experiment


class ExperimentWriter:
    """Buffers metric rows and appends them to ``metrics.csv`` on :meth:`save` (Lightning's writer).

    Columns are every key ever logged plus ``step``, sorted; a key that appears after rows
    were written rewrites the file once with the wider header.

    Args:
        log_dir: the version folder (created here; an existing ``metrics.csv`` in it is
            deleted, with Lightning's warning, when the folder is not empty).
    """

    NAME_METRICS_FILE = "metrics.csv"
    NAME_HPARAMS_FILE = HPARAMS_FILE

    def __init__(self, log_dir: str) -> None:
        self.metrics: list[dict[str, Any]] = []
        self.metrics_keys: list[str] = []
        self.hparams: dict[str, Any] = {}
        self.log_dir = log_dir
        self.metrics_file_path = os.path.join(log_dir, self.NAME_METRICS_FILE)
        if os.path.isdir(log_dir) and os.listdir(log_dir):
            warnings.warn(
                f"Experiment logs directory {log_dir} exists and is not empty."
                " Previous log files in this directory will be deleted when the new ones are saved!",
                UserWarning,
                stacklevel=2,
            )
            if os.path.isfile(self.metrics_file_path):
                os.remove(self.metrics_file_path)
        os.makedirs(log_dir, exist_ok=True)

    def log_metrics(self, metrics_dict: dict[str, Any], step: int | None = None) -> None:
        """Buffer one row (tensors as Python numbers); ``step`` defaults to the buffered row count."""
        if step is None:
            step = len(self.metrics)
        row = {k: v.item() if isinstance(v, Tensor) else v for k, v in metrics_dict.items()}
        row["step"] = step
        self.metrics.append(row)

    def log_hparams(self, params: dict[str, Any]) -> None:
        """Add hyper-parameters and rewrite ``hparams.yaml`` at once."""
        self.hparams.update(params)
        write_hparams_yaml(os.path.join(self.log_dir, self.NAME_HPARAMS_FILE), self.hparams)

    def save(self) -> None:
        """Append the buffered rows to ``metrics.csv`` (header first; rewritten when new columns appear)."""
        if not self.metrics:
            return
        current = set().union(*self.metrics)
        new_keys = current - set(self.metrics_keys)
        self.metrics_keys.extend(new_keys)
        self.metrics_keys.sort()
        exists = os.path.isfile(self.metrics_file_path)
        if new_keys and exists:
            with open(self.metrics_file_path, newline="") as fh:
                old = list(csv.DictReader(fh))
            with open(self.metrics_file_path, "w", newline="") as fh:
                writer = csv.DictWriter(fh, fieldnames=self.metrics_keys)
                writer.writeheader()
                writer.writerows(old)
        with open(self.metrics_file_path, "a" if exists else "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=self.metrics_keys)
            if not exists:
                writer.writeheader()
            writer.writerows(self.metrics)
        self.metrics = []


class CSVLogger(VersionedFolder, Logger):
    """Logs to ``<save_dir>/<name>/version_<n>/`` in CSV (``metrics.csv``) and YAML (``hparams.yaml``).

    As Lightning's: the folder is created on first use of :attr:`experiment` (a run that
    logs nothing writes no ``metrics.csv``); under a Trainer every logged row reaches the
    disk at once, because the Trainer calls :meth:`save` after each :meth:`log_metrics`;
    ``flush_logs_every_n_steps`` decides only for calls made outside the Trainer.

    Args:
        save_dir: the root folder.
        name: the experiment folder (default ``"lightning_logs"``); ``None`` or ``""``:
            versions directly under ``save_dir``.
        version: an int (folder ``version_<n>``), a string (the folder name itself), or
            ``None`` (default): the next free ``version_<n>``.
        prefix: put before every metric key, joined with ``"-"`` (default ``""``).
        flush_logs_every_n_steps: :meth:`log_metrics` saves when ``(step + 1)`` is a
            multiple of it (default 100).
    """

    LOGGER_JOIN_CHAR = "-"

    def __init__(
        self,
        save_dir: str | os.PathLike[str],
        name: str | None = "lightning_logs",
        version: int | str | None = None,
        prefix: str = "",
        flush_logs_every_n_steps: int = 100,
    ) -> None:
        super().__init__()
        self._save_dir = os.fspath(save_dir)
        self._name = name or ""
        self._version = version
        self._prefix = prefix
        self._flush_logs_every_n_steps = flush_logs_every_n_steps
        self._experiment: ExperimentWriter | None = None

    @property
    def log_dir(self) -> str:
        """``<save_dir>/<name>/version_<n>`` (or ``<version>`` for a string version)."""
        return version_dir(self.root_dir, self.version)

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        """The :class:`ExperimentWriter` (created, with the folder, on first use)."""
        if self._experiment is None:
            os.makedirs(self.root_dir, exist_ok=True)
            self._experiment = ExperimentWriter(self.log_dir)
        return self._experiment

    def log_hyperparams(self, params: dict[str, Any] | Namespace | None = None) -> None:
        """Add hyper-parameters to ``hparams.yaml`` (written at once).

        Args:
            params: a mapping or an ``argparse.Namespace``.
        """
        self.experiment.log_hparams(convert_params(params))

    def log_metrics(self, metrics: dict[str, Any], step: int | None = None) -> None:
        """Buffer one row (keys with :attr:`prefix`); saves every ``flush_logs_every_n_steps`` steps.

        Args:
            metrics: metric names and values (numbers or one-element tensors).
            step: the row's ``step`` column; the number of buffered rows when ``None``.
        """
        metrics = dict(add_prefix(metrics, self._prefix, self.LOGGER_JOIN_CHAR))
        if step is None:
            step = len(self.experiment.metrics)
        self.experiment.log_metrics(metrics, step)
        if (step + 1) % self._flush_logs_every_n_steps == 0:
            self.save()

    def save(self) -> None:
        """Append the buffered rows to ``metrics.csv``."""
        self.experiment.save()

    def finalize(self, status: str) -> None:
        """Save, unless nothing was ever logged (then no folder is created).

        Args:
            status: how the run ended.
        """
        if self._experiment is not None:
            self.save()
