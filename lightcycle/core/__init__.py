"""The module API: LightningModule, LightningDataModule (Lightning's ``lightning.pytorch.core``).

The two names resolve on first use (:mod:`lightcycle._lazy`), as in :mod:`lightcycle`: this
``__init__`` runs on every ``lightcycle.core.x`` import, and the torch-free command-line tool
imports :mod:`lightcycle.core.module_hooks` (the hook names), which must not pull in torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lightcycle._lazy import lazy_names

if TYPE_CHECKING:
    from lightcycle.core.datamodule import LightningDataModule as LightningDataModule
    from lightcycle.core.module import LightningModule as LightningModule

_WHERE = {"LightningDataModule": "lightcycle.core.datamodule", "LightningModule": "lightcycle.core.module"}
"""Where each public name is defined."""

__all__ = ["LightningDataModule", "LightningModule"]

__getattr__, __dir__ = lazy_names(__name__, _WHERE, globals())
