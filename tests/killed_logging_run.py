"""A fit that SIGKILLs itself mid-epoch, logging to a CSVLogger: ``python -m tests.killed_logging_run FW ROOT``.

FW is ``lightcycle`` or ``pytorch_lightning``; the test reads ``ROOT/lightning_logs/version_0/metrics.csv``.
"""

from __future__ import annotations

import importlib
import os
import signal
import sys
import warnings
from typing import Any

from tests.logger_programs import QUIET, loaders, model_class


def main(fw_name: str, root: str) -> None:
    """Run the fit; it kills its own process at epoch 2, batch 3."""
    fw = importlib.import_module(fw_name)
    loggers = importlib.import_module(f"{fw_name}.loggers")

    class Kill(fw.Callback):  # type: ignore[misc, name-defined]
        def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
            if trainer.current_epoch == 2 and batch_idx == 3:
                os.kill(os.getpid(), signal.SIGKILL)

    train, val = loaders()
    warnings.simplefilter("ignore")
    trainer = fw.Trainer(logger=loggers.CSVLogger(root), callbacks=[Kill()], max_epochs=5, log_every_n_steps=2, **QUIET)
    trainer.fit(model_class(fw)(), train, val)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
