"""A 2-rank DDP fit with a SimpleProfiler writing to a file and a max_time (run as a script).

``python tests/profilers/ddp_profiled.py OUT``: the process self-launches rank 1 (gloo on CPU);
each rank's profiler writes ``OUT/fit-perf-<local rank>.txt`` (Lightning's naming under several
processes) and each rank writes ``OUT/rank<R>.json`` with its global step.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import torch
from torch.utils.data import DataLoader, TensorDataset

import lightcycle as LC
from lightcycle.profilers import SimpleProfiler


class Model(LC.LightningModule):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(2, 1)

    def training_step(self, batch: Any, batch_idx: int) -> Any:
        return self.layer(batch[0]).pow(2).mean()

    def configure_optimizers(self) -> Any:
        return torch.optim.SGD(self.parameters(), lr=0.1)

    def train_dataloader(self) -> Any:
        return DataLoader(TensorDataset(torch.arange(16.0).view(8, 2)), batch_size=2)


def main(out: str) -> None:
    trainer = LC.Trainer(
        accelerator="cpu",
        devices=2,
        strategy="ddp",
        max_epochs=2,
        max_time="00:01:00:00",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        profiler=SimpleProfiler(dirpath=out, filename="perf"),
    )
    trainer.fit(Model())
    with open(os.path.join(out, f"rank{trainer.global_rank}.json"), "w") as f:
        json.dump({"global_step": trainer.global_step}, f)


if __name__ == "__main__":
    main(sys.argv[1])
