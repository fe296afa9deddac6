"""The module API: LightningModule, LightningDataModule (Lightning's ``lightning.pytorch.core``)."""

from lightcycle.core.datamodule import LightningDataModule
from lightcycle.core.module import LightningModule

__all__ = ["LightningDataModule", "LightningModule"]
