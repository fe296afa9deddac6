"""Lightning's ``core.saving`` hyper-parameter files: read and write ``hparams.yaml`` and tags CSV files.

Programs call these to keep a run's hyper-parameters beside its checkpoints (a callback's
``on_save_checkpoint``, an experiment script). The readers live in :mod:`lightcycle.core.hparams`
(``load_from_checkpoint(hparams_file=...)`` uses them), with ``convert``, the tags reader's value
parser; the writers are here:

- :func:`save_hparams_to_tags_csv` writes Lightning's file byte for byte (a ``key,value`` header
  row, then one row per key).
- :func:`save_hparams_to_yaml` writes the file lightcycle's loggers write (one ``key: value``
  line per key, sorted, values in JSON, which YAML reads), so it needs no PyYAML. Lightning
  dumps with PyYAML: the same keys and values for numbers, strings, lists and dicts, but a tuple
  becomes a list here (Lightning writes ``!!python/tuple``, which only an unsafe loader reads),
  a mapping or sequence of another type (an OmegaConf ``DictConfig``) becomes a plain one, and a
  value JSON cannot hold is written as its ``str`` instead of being skipped with a warning.
"""

from __future__ import annotations

import csv
import os
from argparse import Namespace
from collections.abc import Mapping, Sequence
from typing import Any

from lightcycle.core.hparams import AttributeDict, convert, load_hparams_from_tags_csv, load_hparams_from_yaml
from lightcycle.loggers._files import write_hparams_yaml


def _as_dict(hparams: Any) -> dict[str, Any]:
    if isinstance(hparams, Namespace):
        return vars(hparams)
    if isinstance(hparams, AttributeDict):
        return dict(hparams)
    if not isinstance(hparams, dict):
        raise TypeError("hparams must be dictionary")
    return hparams


def _require_folder(path: str | os.PathLike[str]) -> None:
    folder = os.path.dirname(os.fspath(path))
    if folder and not os.path.isdir(folder):
        raise RuntimeError(f"Missing folder: {folder}.")


def _plain(value: Any) -> Any:
    """Mappings and sequences of any type (an OmegaConf container) as dicts and lists, for JSON."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes, bytearray)):
        return [_plain(v) for v in value]
    return value


def save_hparams_to_yaml(
    config_yaml: str | os.PathLike[str], hparams: dict[str, Any] | Namespace, use_omegaconf: bool = True
) -> None:
    """Write ``hparams`` to a YAML file (see the module's note on how it differs from Lightning's).

    Args:
        config_yaml: the file; its folder must exist.
        hparams: a dict, an ``argparse.Namespace`` or an :class:`AttributeDict`.
        use_omegaconf: accepted for Lightning's signature; OmegaConf containers are written as
            plain dicts and lists either way.

    Raises:
        RuntimeError: the folder does not exist (Lightning's message).
        TypeError: ``hparams`` is not a mapping of those kinds.
    """
    del use_omegaconf
    _require_folder(config_yaml)
    write_hparams_yaml(os.fspath(config_yaml), {k: _plain(v) for k, v in _as_dict(hparams).items()})


def save_hparams_to_tags_csv(tags_csv: str | os.PathLike[str], hparams: dict[str, Any] | Namespace) -> None:
    """Write ``hparams`` as Lightning's tags CSV: a ``key,value`` header row, then a row per key.

    Args:
        tags_csv: the file; its folder must exist.
        hparams: a dict or an ``argparse.Namespace``.

    Raises:
        RuntimeError: the folder does not exist (Lightning's message).
    """
    _require_folder(tags_csv)
    if isinstance(hparams, Namespace):
        hparams = vars(hparams)
    with open(tags_csv, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["key", "value"])
        writer.writerow({"key": "key", "value": "value"})
        for key, value in hparams.items():
            writer.writerow({"key": key, "value": value})


def update_hparams(hparams: dict[str, Any], updates: dict[str, Any]) -> None:
    """Override ``hparams`` with ``updates`` in place, nested dicts key by key (Lightning's).

    Args:
        hparams: the hyper-parameters, changed in place.
        updates: the new values; a dict value for an existing key updates that key's dict.
    """
    for key, value in updates.items():
        if key not in hparams:
            hparams[key] = value
        elif isinstance(value, dict):
            update_hparams(hparams[key], value)
        else:
            hparams[key] = value


__all__ = [
    "convert",
    "load_hparams_from_tags_csv",
    "load_hparams_from_yaml",
    "save_hparams_to_tags_csv",
    "save_hparams_to_yaml",
    "update_hparams",
]
