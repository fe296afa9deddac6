"""ModelCheckpoint (being completed under the checkpoint issue)."""

from __future__ import annotations

from lightcycle.callbacks.monitoring import Checkpoint


class ModelCheckpoint(Checkpoint):
    """Saves checkpoints during fit. Full Lightning behaviour lands with the checkpoint issue."""

    def __init__(self) -> None:
        self.best_model_path = ""
        self.last_model_path = ""
