"""Lightning 2.6 opening lightcycle's checkpoints, run in a process of its own.

``python -m tests.lightning_reads FILE...`` loads each file with
``LightningModule.load_from_checkpoint`` and resumes ``pytorch_lightning.Trainer.fit`` from it,
and prints one JSON object per file: what the recorder saw. The test runs the same resume
under lightcycle and compares. A ``stateful:`` prefix on a file means its fit trained from
torchdata's ``StatefulDataLoader``, whose saved state both resumes load.
"""

from __future__ import annotations

import json
import sys
import warnings
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

MAX_EPOCHS = 3


def make_net(pl: Any, stateful: bool = False) -> Any:
    """The module class for ``pl`` (``pytorch_lightning`` or ``lightcycle``): same weights, same data;
    ``stateful``: a shuffled ``StatefulDataLoader(generator=)`` instead of a plain DataLoader."""

    class Net(pl.LightningModule):  # type: ignore[misc,name-defined]
        def __init__(self, width: int = 4) -> None:
            super().__init__()
            self.save_hyperparameters()
            self.layer = nn.Linear(width, 1)

        def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
            return self.layer(batch[0]).pow(2).mean()

        def configure_optimizers(self) -> Any:
            opt = torch.optim.SGD(self.parameters(), lr=0.1)
            return [opt], [torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)]

        def train_dataloader(self) -> Any:
            g = torch.Generator().manual_seed(0)
            data = TensorDataset(torch.randn(8, self.hparams.width, generator=g))
            if stateful:
                from torchdata.stateful_dataloader import StatefulDataLoader

                return StatefulDataLoader(data, batch_size=2, shuffle=True, generator=torch.Generator().manual_seed(1))
            return DataLoader(data, batch_size=2)

    return Net


def make_recorder(pl: Any) -> Any:
    class Record(pl.Callback):  # type: ignore[misc,name-defined]
        """Where the resumed fit starts and ends."""

        def __init__(self) -> None:
            self.seen: dict[str, Any] = {}

        def on_train_start(self, trainer: Any, pl_module: Any) -> None:
            self.seen["train_start"] = [trainer.current_epoch, trainer.global_step]

        def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int) -> None:
            self.seen.setdefault("first_batch", [trainer.current_epoch, trainer.global_step, batch_idx])
            self.seen.setdefault("first_data", batch[0].sum().item())

        def on_train_end(self, trainer: Any, pl_module: Any) -> None:
            self.seen["train_end"] = [trainer.current_epoch, trainer.global_step]
            self.seen["lr"] = trainer.optimizers[0].param_groups[0]["lr"]

    return Record


def resume(pl: Any, path: str, stateful: bool = False) -> dict[str, Any]:
    """Resume a fit of :func:`make_net` from ``path`` under ``pl``; returns what it saw."""
    record = make_recorder(pl)()
    trainer = pl.Trainer(
        max_epochs=MAX_EPOCHS,
        callbacks=[record],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(make_net(pl, stateful)(), ckpt_path=path)
    return record.seen


def main(paths: list[str]) -> None:
    import pytorch_lightning as pl

    for arg in paths:
        stateful = arg.startswith("stateful:")
        path = arg.removeprefix("stateful:")
        loaded = make_net(pl, stateful).load_from_checkpoint(path)
        weights = torch.load(path, weights_only=False)["state_dict"]
        same = all(torch.equal(v, weights[k]) for k, v in loaded.state_dict().items())
        seen = resume(pl, path, stateful)
        print(json.dumps({"path": arg, "width": loaded.hparams.width, "same_weights": same, **seen}))


if __name__ == "__main__":
    main(sys.argv[1:])
