"""OnExceptionCheckpoint: save a checkpoint when a run fails, as Lightning 2.6's."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from lightcycle.callbacks.monitoring import Checkpoint

if TYPE_CHECKING:
    from lightcycle.core.module import LightningModule
    from lightcycle.runtime.host import RunHost


class OnExceptionCheckpoint(Checkpoint):
    """Save ``dirpath/filename.ckpt`` in ``on_exception``; remove it at ``teardown`` (a run that ended well).

    It is a :class:`Checkpoint`, so it counts as the run's checkpoint callback: no default
    ModelCheckpoint is added next to it, as in Lightning.

    Args:
        dirpath: folder of the file (required: an exception can come before ``setup``).
        filename: file name without extension. Default ``"on_exception"``.

    Raises:
        ValueError: ``filename`` is empty.
    """

    FILE_EXTENSION = ".ckpt"

    def __init__(self, dirpath: str | os.PathLike[str], filename: str = "on_exception") -> None:
        super().__init__()
        if not filename:
            raise ValueError("The filename cannot be empty")
        self.dirpath = dirpath
        self.filename = filename

    @property
    def ckpt_path(self) -> str:
        return os.path.join(self.dirpath, self.filename + self.FILE_EXTENSION)

    def on_exception(self, trainer: RunHost, pl_module: LightningModule, exception: BaseException) -> None:
        trainer.save_checkpoint(self.ckpt_path)

    def teardown(self, trainer: RunHost, pl_module: LightningModule, stage: str) -> None:
        trainer.strategy.remove_checkpoint(self.ckpt_path)
