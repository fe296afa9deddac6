"""Lightning's type aliases for step outputs and optimizer configurations (``lightning.pytorch.utilities.types``),
and Fabric's path, device and ``map_location`` aliases (``lightning.fabric.utilities.types``)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypedDict

import torch
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler, ReduceLROnPlateau

from lightcycle.core.optim import LRSchedulerConfig

_PATH = str | Path
"""A file or folder path (Fabric's ``lightning.fabric.utilities.types._PATH``, used in programs' type hints)."""

_DEVICE = torch.device | str | int
"""A device as Lightning takes one (Fabric's ``_DEVICE``)."""

_MAP_LOCATION_TYPE = (
    _DEVICE | Callable[[torch.UntypedStorage, str], torch.UntypedStorage | None] | dict[_DEVICE, _DEVICE] | None
)
"""``torch.load``'s ``map_location`` (Fabric's ``_MAP_LOCATION_TYPE``)."""

STEP_OUTPUT = torch.Tensor | Mapping[str, Any] | None
"""What a step may return: a loss tensor, a dict (with ``"loss"`` in training), or ``None``."""

TRAIN_DATALOADERS = Any
"""What ``train_dataloader`` may return."""

EVAL_DATALOADERS = Any
"""What ``val_dataloader``/``test_dataloader``/``predict_dataloader`` may return."""

LRSchedulerTypeUnion = LRScheduler | ReduceLROnPlateau
LRSchedulerTypeTuple = (LRScheduler, ReduceLROnPlateau)
LRSchedulerPLType = LRSchedulerTypeUnion
LRSchedulerType = type[LRScheduler] | type[ReduceLROnPlateau]


class _LRSchedulerConfigRequired(TypedDict):
    scheduler: LRSchedulerTypeUnion


class LRSchedulerConfigType(_LRSchedulerConfigRequired, total=False):
    """A scheduler's dict in ``configure_optimizers``' return: ``scheduler`` required, the rest optional.

    Lightning's TypedDict (its keys, required and optional, are tested equal to Lightning's); written
    with a required base instead of ``Required`` so that it needs no ``typing_extensions``.
    """

    name: str | None
    interval: str
    frequency: int
    reduce_on_plateau: bool
    monitor: str | None
    strict: bool


class OptimizerConfig(TypedDict):
    """``{"optimizer": ...}`` returned by ``configure_optimizers``."""

    optimizer: Optimizer


class _OptimizerLRSchedulerConfigRequired(TypedDict):
    optimizer: Optimizer
    lr_scheduler: LRSchedulerTypeUnion | LRSchedulerConfigType


class OptimizerLRSchedulerConfig(_OptimizerLRSchedulerConfigRequired, total=False):
    """``{"optimizer": ..., "lr_scheduler": ..., "monitor": ...}`` (``monitor`` optional), as Lightning's."""

    monitor: str


OptimizerLRScheduler = (
    Optimizer
    | Sequence[Optimizer]
    | tuple[Sequence[Optimizer], Sequence[LRSchedulerTypeUnion | Mapping[str, Any]]]
    | OptimizerConfig
    | OptimizerLRSchedulerConfig
    | Sequence[OptimizerConfig]
    | Sequence[OptimizerLRSchedulerConfig]
    | Mapping[str, Any]
    | Sequence[Mapping[str, Any]]
    | Iterable[Any]
    | None
)
"""What ``configure_optimizers`` may return (Lightning's union, and any mapping or iterable it also takes)."""

__all__ = [
    "EVAL_DATALOADERS",
    "STEP_OUTPUT",
    "TRAIN_DATALOADERS",
    "LRSchedulerConfig",
    "LRSchedulerConfigType",
    "LRSchedulerPLType",
    "LRSchedulerType",
    "LRSchedulerTypeTuple",
    "LRSchedulerTypeUnion",
    "OptimizerConfig",
    "OptimizerLRScheduler",
    "OptimizerLRSchedulerConfig",
]
