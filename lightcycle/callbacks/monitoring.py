"""Base classes of the monitoring callbacks.

Lightning runs ``on_train_epoch_end`` of these callbacks after the module's, so that
metrics logged by the module in that hook are visible to them, and moves checkpoint
callbacks to the end of the callback list. The behaviour of ModelCheckpoint and
EarlyStopping lives in their own modules.
"""

from __future__ import annotations

from typing import Any

from lightcycle._foreign import is_kind
from lightcycle.callbacks.callback import Callback
from lightcycle.callbacks.early_stopping import EarlyStopping


class Checkpoint(Callback):
    """Base class of callbacks that save checkpoints (always last in the list)."""


def is_checkpoint(callback: Any) -> bool:
    """True for Checkpoint instances, lightcycle's or Lightning's (e.g. its ModelCheckpoint)."""
    return is_kind(callback, Checkpoint, "Checkpoint")


def is_monitoring(callback: Any) -> bool:
    """True for EarlyStopping and Checkpoint instances, lightcycle's or Lightning's (Lightning's definition)."""
    return is_checkpoint(callback) or is_kind(callback, EarlyStopping, "EarlyStopping")
