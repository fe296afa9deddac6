"""The module API: LightningModule, LightningDataModule (Lightning's ``lightning.pytorch.core``).

The two names load lazily (PEP 562), as in :mod:`lightcycle`: this ``__init__`` runs on every
``lightcycle.core.x`` import, and the torch-free command-line tool imports
:mod:`lightcycle.core.module_hooks` (the hook names), which must not pull in torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lightcycle.core.datamodule import LightningDataModule
    from lightcycle.core.module import LightningModule

_LAZY = {"LightningDataModule": "lightcycle.core.datamodule", "LightningModule": "lightcycle.core.module"}

__all__ = ["LightningDataModule", "LightningModule"]


def __getattr__(name: str) -> Any:
    """Import a public name's module on first access (PEP 562)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'lightcycle.core' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
