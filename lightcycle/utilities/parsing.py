"""``AttributeDict`` and hyper-parameter helpers (``lightning.pytorch.utilities.parsing``)."""

from lightcycle.core.hparams import AttributeDict

__all__ = ["AttributeDict"]
