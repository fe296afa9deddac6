"""Base classes of the monitoring callbacks.

Lightning runs ``on_train_epoch_end`` of these callbacks after the module's, so that
metrics logged by the module in that hook are visible to them, and moves checkpoint
callbacks to the end of the callback list. The behaviour of ModelCheckpoint and
EarlyStopping lives in their own modules.
"""

from __future__ import annotations

from lightcycle.callbacks.callback import Callback


class Checkpoint(Callback):
    """Base class of callbacks that save checkpoints (always last in the list)."""


def is_monitoring(callback: Callback) -> bool:
    """True for EarlyStopping and Checkpoint instances (Lightning's definition)."""
    from lightcycle.callbacks.early_stopping import EarlyStopping

    return isinstance(callback, (Checkpoint, EarlyStopping))
