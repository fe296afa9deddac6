"""What the file loggers share: version folders, metric-name prefixes, hyper-parameter files."""

from __future__ import annotations

import json
import os
from argparse import Namespace
from collections.abc import Mapping, MutableMapping
from dataclasses import asdict, is_dataclass
from typing import Any, TypeVar

from torch import Tensor

_V = TypeVar("_V")

HPARAMS_FILE = "hparams.yaml"


def next_version(root: str) -> int:
    """The next free ``version_<n>`` number under ``root`` (0 when it has none), as Lightning counts.

    Args:
        root: the experiment folder (``<save_dir>/<name>``).

    Returns:
        One more than the largest ``n`` of the ``version_<n>`` folders in ``root``.
    """
    try:
        entries = os.listdir(root)
    except OSError:
        return 0
    found = [
        int(d.split("_")[1])
        for d in entries
        if d.startswith("version_") and d.split("_")[1].isdigit() and os.path.isdir(os.path.join(root, d))
    ]
    return max(found) + 1 if found else 0


def version_dir(root: str, version: int | str) -> str:
    """``root/version_<n>``, or ``root/<version>`` for a string version (Lightning's rule)."""
    return os.path.join(root, version if isinstance(version, str) else f"version_{version}")


def add_prefix(metrics: Mapping[str, _V], prefix: str, separator: str) -> Mapping[str, _V]:
    """``{prefix}{separator}{key}`` for every key (the mapping itself when ``prefix`` is empty)."""
    if not prefix:
        return metrics
    return {f"{prefix}{separator}{k}": v for k, v in metrics.items()}


def convert_params(params: Mapping[str, Any] | Namespace | None) -> dict[str, Any]:
    """Hyper-parameters as a dict (from a mapping, an ``argparse.Namespace`` or ``None``)."""
    if isinstance(params, Namespace):
        return dict(vars(params))
    return dict(params) if params is not None else {}


def flatten_params(params: MutableMapping[Any, Any], delimiter: str = "/", parent_key: str = "") -> dict[str, Any]:
    """Nested mappings (and dataclasses, namespaces, lists of mappings) as ``a/b`` keys (Lightning's rule)."""
    result: dict[str, Any] = {}
    for k, v in params.items():
        key = parent_key + delimiter + str(k) if parent_key else str(k)
        if is_dataclass(v) and not isinstance(v, type):
            v = asdict(v)
        elif isinstance(v, Namespace):
            v = vars(v)
        if isinstance(v, MutableMapping):
            result.update(flatten_params(v, delimiter, key))
        elif isinstance(v, list) and v and all(isinstance(item, MutableMapping) for item in v):
            for i, item in enumerate(v):
                result.update(flatten_params(item, delimiter, f"{key}/{i}"))
        else:
            result[key] = v
    return result


def sanitize_params(params: dict[str, Any]) -> dict[str, Any]:
    """Values TensorBoard's hparams plugin takes: numbers, strings, booleans, tensors; others as ``str``.

    Multi-dimensional arrays become strings too (Lightning's ``TensorBoardLogger._sanitize_params``).
    """
    out: dict[str, Any] = {}
    for k, v in params.items():
        item = getattr(v, "item", None)
        if type(v).__module__ == "numpy" and callable(item) and getattr(v, "ndim", 1) == 0:
            v = item()
        if type(v) not in (bool, int, float, str, Tensor) or (isinstance(v, Tensor) and v.ndim > 1):
            v = str(v)
        out[k] = v
    return out


def write_hparams_yaml(path: str, hparams: Mapping[str, Any]) -> None:
    """Write ``hparams.yaml``: one ``key: value`` line per hyper-parameter, sorted.

    Each value is written as JSON (which YAML reads; a tuple becomes a list, a value JSON
    cannot represent its ``str``), so ``yaml.safe_load`` reads it back. Lightning writes
    the file with PyYAML's Python tags (``!!python/tuple``), which need an unsafe loader.

    Args:
        path: the file to write (its folder is created).
        hparams: the hyper-parameters.
    """
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    lines = [f"{json.dumps(str(k))}: {json.dumps(v, default=str)}" for k, v in sorted(hparams.items())]
    with open(path, "w") as fh:
        fh.write("\n".join(lines) + "\n" if lines else "{}\n")


class VersionedFolder:
    """The ``<save_dir>/<name>/version_<n>`` naming that CSVLogger and TensorBoardLogger share.

    Mixed into those loggers (which set ``_save_dir``, ``_name`` and ``_version``), as Lightning
    gives both the same properties.
    """

    _save_dir: str
    _name: str
    _version: int | str | None

    @property
    def name(self) -> str:
        """The experiment folder name."""
        return self._name

    @property
    def version(self) -> int | str:
        """The version (the next free one, fixed on first read, when none was given)."""
        if self._version is None:
            self._version = next_version(self.root_dir)
        return self._version

    @property
    def save_dir(self) -> str:
        """The root folder given."""
        return self._save_dir

    @property
    def root_dir(self) -> str:
        """``<save_dir>/<name>``."""
        return os.path.join(self._save_dir, self._name)
