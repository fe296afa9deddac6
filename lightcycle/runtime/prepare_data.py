"""Whether a run has ``prepare_data`` to wait for (both front ends ask before the ``setup`` hooks)."""

from __future__ import annotations

from typing import Any

from lightcycle._foreign import hook_base
from lightcycle._hooks import is_overridden
from lightcycle.core.datamodule import LightningDataModule
from lightcycle.core.module import LightningModule


def prepare_data_defined(module: Any, datamodule: Any) -> bool:
    """Whether the module or the datamodule overrides ``prepare_data``.

    Lightning waits for local rank 0's ``prepare_data`` only when one of them does.

    Args:
        module: the LightningModule.
        datamodule: the datamodule, or ``None``.

    Returns:
        ``True`` when there is a ``prepare_data`` the other ranks must wait for.
    """
    if module is not None and is_overridden("prepare_data", module, LightningModule):
        return True
    return datamodule is not None and is_overridden(
        "prepare_data", datamodule, hook_base(datamodule, LightningDataModule)
    )
