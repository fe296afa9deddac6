"""Invalid and unsupported input: a clear error, before any hook fires."""

from __future__ import annotations

import pytest
import pytorch_lightning as PL
from pytorch_lightning.utilities.exceptions import MisconfigurationException as PLMisconfigurationException

import lightcycle as LC
from lightcycle.errors import MisconfigurationException


def test_float_val_check_interval_with_check_val_every_n_epoch_none() -> None:
    """Found by test_hypothesis_differential: Lightning refuses it at construction."""
    with pytest.raises(PLMisconfigurationException):
        PL.Trainer(val_check_interval=1.0, check_val_every_n_epoch=None, logger=False)
    with pytest.raises(MisconfigurationException, match=r"val_check_interval=1\.0.*check_val_every_n_epoch"):
        LC.Trainer(val_check_interval=1.0, check_val_every_n_epoch=None, logger=False)
