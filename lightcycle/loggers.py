"""Loggers: where ``trainer.logged_metrics`` go. Lightning's default writes CSV files."""

from __future__ import annotations

import csv
import json
import os
from typing import Any


class CSVLogger:
    """Writes logged metrics to ``<root>/<name>/version_<n>/metrics.csv`` (Lightning's layout).

    The folder is created lazily, on the first write, so a Trainer that logs nothing
    leaves no files behind.

    Args:
        save_dir: the root folder (the Trainer's ``default_root_dir`` by default).
        name: the experiment folder name.
        version: the version number; the next free one when ``None``.
    """

    def __init__(
        self, save_dir: str | os.PathLike[str], name: str = "lightning_logs", version: int | None = None
    ) -> None:
        self.save_dir = os.fspath(save_dir)
        self.name = name
        self._version = version
        self._rows: list[dict[str, Any]] = []
        self.hparams: dict[str, Any] = {}

    @property
    def version(self) -> int:
        """The version folder number (fixed on first use)."""
        if self._version is None:
            root = os.path.join(self.save_dir, self.name)
            existing = []
            if os.path.isdir(root):
                for d in os.listdir(root):
                    if d.startswith("version_") and d[8:].isdigit():
                        existing.append(int(d[8:]))
            self._version = max(existing) + 1 if existing else 0
        return self._version

    @property
    def log_dir(self) -> str:
        """``<save_dir>/<name>/version_<n>``."""
        return os.path.join(self.save_dir, self.name, f"version_{self.version}")

    def log_metrics(self, metrics: dict[str, Any], step: int | None = None) -> None:
        """Buffer one row of metrics (values converted to floats here, off the hot path)."""
        row: dict[str, Any] = {"step": step}
        for key, value in metrics.items():
            row[key] = float(value.item() if hasattr(value, "item") else value)
        self._rows.append(row)

    def log_hyperparams(self, params: Any) -> None:
        """Remember hyper-parameters (written to ``hparams.yaml`` on save).

        Args:
            params: a mapping (the module's ``hparams_initial``) or an ``argparse.Namespace``.
        """
        self.hparams.update(vars(params) if hasattr(params, "__dict__") and not isinstance(params, dict) else params)

    def save(self) -> None:
        """Write ``hparams.yaml`` (when hyper-parameters were logged) and buffered rows to ``metrics.csv``.

        ``hparams.yaml`` has one ``key: value`` line per hyper-parameter, sorted, each value
        written as JSON (which YAML reads; a tuple becomes a list, a value JSON cannot
        represent its ``str``), so ``yaml.safe_load`` reads it back. Lightning writes the
        file with PyYAML's Python tags (``!!python/tuple``), which need an unsafe loader.
        """
        if self.hparams:
            os.makedirs(self.log_dir, exist_ok=True)
            lines = [f"{json.dumps(str(k))}: {json.dumps(v, default=str)}" for k, v in sorted(self.hparams.items())]
            with open(os.path.join(self.log_dir, "hparams.yaml"), "w") as fh:
                fh.write("\n".join(lines) + "\n")
        if not self._rows:
            return
        os.makedirs(self.log_dir, exist_ok=True)
        path = os.path.join(self.log_dir, "metrics.csv")
        keys: list[str] = []
        for row in self._rows:
            keys.extend(k for k in row if k not in keys)
        with open(path, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=keys)
            writer.writeheader()
            writer.writerows(self._rows)

    def finalize(self, status: str) -> None:
        """Flush at the end of a run (``success`` or ``failed``)."""
        self.save()
