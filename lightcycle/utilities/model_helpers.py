"""``is_overridden`` and ``get_torchvision_model`` (``lightning.pytorch.utilities.model_helpers``)."""

from __future__ import annotations

import importlib
from functools import partial
from typing import Any
from unittest.mock import Mock

from torch import nn

from lightcycle.callbacks.callback import Callback
from lightcycle.core.datamodule import LightningDataModule
from lightcycle.core.module import LightningModule
from lightcycle.utilities.imports import _TORCHVISION_AVAILABLE


def is_overridden(method_name: str, instance: object | None = None, parent: type | None = None) -> bool:
    """Whether ``instance``'s class overrides ``method_name`` of ``parent``.

    Args:
        method_name: the hook's name.
        instance: a module, datamodule or callback; ``None`` gives ``False`` (as Lightning).
        parent: the base class; by default LightningModule, LightningDataModule or Callback,
            whichever ``instance`` is.

    Returns:
        ``True`` when the class defines its own ``method_name``.

    Raises:
        ValueError: ``parent`` was not given and ``instance`` is none of the three.
    """
    if instance is None:
        return False
    if parent is None:
        parent = _default_parent(instance)
    attr = getattr(instance, method_name, None)
    if attr is None:
        return False
    # Unwrap as Lightning does: functools.wraps/update_wrapper, Mock(wraps=...), partial.
    attr = getattr(attr, "__wrapped__", attr)
    if isinstance(attr, Mock):
        attr = attr._mock_wraps
    elif isinstance(attr, partial):
        attr = attr.func
    if attr is None:
        return False
    parent_attr = getattr(parent, method_name, None)
    if parent_attr is None:
        raise ValueError("The parent should define the method")
    code = getattr(getattr(attr, "__func__", attr), "__code__", None)
    return code is not getattr(getattr(parent_attr, "__func__", parent_attr), "__code__", None)


def _default_parent(instance: Any) -> type:
    for base in (LightningModule, LightningDataModule, Callback):
        if isinstance(instance, base):
            return base
    raise ValueError("Expected a parent")


def get_torchvision_model(model_name: str, **kwargs: Any) -> nn.Module:
    """Build a ``torchvision.models`` network by name, as Lightning's helper does.

    Args:
        model_name: the model's name in ``torchvision.models`` (``"resnet50"``).
        **kwargs: passed to the builder (``weights="DEFAULT"``, ``num_classes=...``).

    Returns:
        The network.

    Raises:
        ModuleNotFoundError: torchvision is not installed (the message says so).
    """
    if not _TORCHVISION_AVAILABLE:
        raise ModuleNotFoundError(
            f"get_torchvision_model needs torchvision: {_TORCHVISION_AVAILABLE}; pip install torchvision"
        )
    # torchvision is optional and heavy: imported only when a program asks for one of its models.
    models = importlib.import_module("torchvision.models")
    get_model = getattr(models, "get_model", None)  # torchvision >= 0.14
    if get_model is not None:
        built: nn.Module = get_model(model_name, **kwargs)
    else:
        built = getattr(models, model_name)(**kwargs)
    return built
