"""Loading a checkpoint into a new module or datamodule: ``load_from_checkpoint``'s work.

Lightning keeps this in ``core/saving.py`` (whose hyper-parameter files lightcycle keeps in
:mod:`lightcycle.core.hparams`); the classmethods on
:class:`~lightcycle.core.module.LightningModule` and
:class:`~lightcycle.core.datamodule.LightningDataModule` call these functions.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import torch
from torch import Tensor

from lightcycle._hooks import is_overridden
from lightcycle.core.hparams import (
    _PAST_HPARAMS_KEYS,
    instantiate_from_checkpoint,
    load_hparams_from_tags_csv,
    load_hparams_from_yaml,
)

if TYPE_CHECKING:
    from os import PathLike


def load_module_from_checkpoint(
    cls: type[Any],
    base: type[Any],
    checkpoint_path: str | PathLike[str] | IO[bytes],
    map_location: Any,
    hparams_file: str | PathLike[str] | None,
    strict: bool | None,
    weights_only: bool | None,
    overrides: dict[str, Any],
) -> Any:
    """Build ``cls`` from a checkpoint's hyper-parameters and load its weights.

    Order: instantiate with ``checkpoint["hyper_parameters"]`` updated by ``overrides``,
    ``configure_model`` (if overridden), ``on_load_checkpoint(checkpoint)``, then
    ``load_state_dict(checkpoint["state_dict"], strict)``; finally the module moves to the
    device of the loaded weights.

    Args:
        cls: the LightningModule subclass to build.
        base: ``LightningModule`` (what ``cls`` must build, and whose ``configure_model`` is the default).
        checkpoint_path: path or file object of the checkpoint.
        map_location: as for :func:`torch.load` (``None``: unavailable CUDA/MPS storage goes to CPU).
        hparams_file: ``.yaml``/``.csv`` file replacing the stored hyper-parameters.
        strict: strict state-dict loading (``None``: the module's ``strict_loading``).
        weights_only: as for :func:`torch.load`.
        overrides: ``__init__`` arguments overriding stored values.

    Returns:
        The loaded module.

    Raises:
        TypeError: ``cls(...)`` built something that is not a ``base``.
        ValueError: ``strict`` conflicts with the class's ``strict_loading``.
    """
    checkpoint = read_checkpoint(cls, checkpoint_path, map_location, hparams_file, weights_only, overrides)
    model = instantiate_from_checkpoint(
        cls,
        checkpoint,
        cls.CHECKPOINT_HYPER_PARAMS_KEY,
        cls.CHECKPOINT_HYPER_PARAMS_NAME,
        cls.CHECKPOINT_HYPER_PARAMS_TYPE,
        past_keys=_PAST_HPARAMS_KEYS,
        **overrides,
    )
    if not isinstance(model, base):
        raise TypeError(f"{cls.__name__}(...) did not build a {base.__name__}")
    if model._strict_loading is not None and strict is not None and strict != model.strict_loading:
        raise ValueError(
            f"You set `.load_from_checkpoint(..., strict={strict!r})` which is in conflict with"
            f" `{cls.__name__}.strict_loading={model.strict_loading!r}. Please set the same value for both of them."
        )
    strict = model.strict_loading if strict is None else strict
    if is_overridden("configure_model", model, base):
        model.configure_model()
    model.on_load_checkpoint(checkpoint)
    state_dict = checkpoint["state_dict"]
    keys = model.load_state_dict(state_dict, strict=strict)
    if not strict:
        if keys.missing_keys:
            warnings.warn(
                f"Found keys that are in the model state dict but not in the checkpoint: {keys.missing_keys}",
                stacklevel=3,
            )
        if keys.unexpected_keys:
            warnings.warn(
                f"Found keys that are not in the model state dict but in the checkpoint: {keys.unexpected_keys}",
                stacklevel=3,
            )
    if not state_dict:
        warnings.warn(f"The state dict in {checkpoint_path!r} contains no parameters.", stacklevel=3)
        return model
    device = next((t.device for t in state_dict.values() if isinstance(t, Tensor)), torch.device("cpu"))
    return model.to(device)


def default_map_location(storage: Any, location: str) -> Any:
    """Send storage saved on an unavailable CUDA/MPS device to the CPU; else keep ``torch.load``'s default.

    Args:
        storage: the storage being loaded.
        location: the device it was saved from.

    Returns:
        The storage on the CPU, or ``None`` for ``torch.load``'s default.
    """
    if (location.startswith("cuda") and not torch.cuda.is_available()) or (
        location.startswith("mps") and not torch.backends.mps.is_available()
    ):
        return storage.cpu()
    return None


def read_checkpoint(
    cls: type[Any],
    checkpoint_path: str | PathLike[str] | IO[bytes],
    map_location: Any,
    hparams_file: str | PathLike[str] | None,
    weights_only: bool | None,
    overrides: dict[str, Any],
) -> dict[str, Any]:
    """Load a checkpoint dict, apply ``hparams_file`` and merge ``overrides`` into its hyper-parameters.

    Args:
        cls: the class being loaded (its ``CHECKPOINT_HYPER_PARAMS_KEY`` names the entry).
        checkpoint_path: path or file object of the checkpoint.
        map_location: as for :func:`torch.load`; ``None`` sends unavailable CUDA/MPS storage to the CPU.
        hparams_file: ``.yaml``/``.csv`` file replacing the stored hyper-parameters.
        weights_only: as for :func:`torch.load`.
        overrides: ``__init__`` arguments overriding stored values.

    Returns:
        The checkpoint dict.

    Raises:
        TypeError: the file does not hold a dict.
        ValueError: ``hparams_file`` is neither ``.csv`` nor ``.yaml``.
    """
    loaded = torch.load(checkpoint_path, map_location=map_location or default_map_location, weights_only=weights_only)
    if not isinstance(loaded, dict):
        raise TypeError(f"Expected the checkpoint at {checkpoint_path!r} to hold a dict, got {type(loaded).__name__}")
    checkpoint: dict[str, Any] = loaded
    key: str = cls.CHECKPOINT_HYPER_PARAMS_KEY
    if hparams_file is not None:
        suffix = Path(hparams_file).suffix.lower()
        if suffix == ".csv":
            checkpoint[key] = load_hparams_from_tags_csv(hparams_file)
        elif suffix in (".yml", ".yaml"):
            checkpoint[key] = load_hparams_from_yaml(hparams_file)
        else:
            raise ValueError(".csv, .yml or .yaml is required for `hparams_file`")
    checkpoint.setdefault(key, {})
    checkpoint[key].update(overrides)
    return checkpoint
