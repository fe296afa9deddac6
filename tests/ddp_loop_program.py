"""A LoopDriver fit on 2 self-launched CPU ranks (``strategy=DDPStrategy``, gloo), run as a script.

``python tests/ddp_loop_program.py OUT SCENARIO [IMPL]``: IMPL ``loop`` (default) is the custom
loop, ``trainer`` the same module fitted by lightcycle's Trainer under DDP (the reference).
SCENARIO ``fit`` (2 epochs of the module's shuffled 16-sample loader) or ``fail_rank1`` (rank
1's ``training_step`` raises at epoch 0, batch 1). Each rank writes ``OUT/IMPL.rank{R}.json``
(dataset indices it trained on, the module type ``training_step`` ran under, whether
``prepare_data`` ran, final weights, the exception) and a HookRecorder trace
``OUT/trace.rank{R}.jsonl``; the process re-raises the run's exception.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import timedelta
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import lightcycle as L
from lightcycle import LoopDriver
from lightcycle.callbacks import HookRecorder
from lightcycle.strategies import DDPStrategy


class Net(L.LightningModule):
    def __init__(self, fail_on: int | None) -> None:
        super().__init__()
        self.layer = nn.Linear(4, 1)
        self.fail_on = fail_on
        self.seen: list[int] = []
        self.wrapped: set[str] = set()
        self.prepared = False

    def prepare_data(self) -> None:
        self.prepared = True

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y, idx = batch
        self.seen += [int(i) for i in idx]
        self.wrapped.add(type(self.trainer.strategy.model).__name__)
        if self.trainer.global_rank == self.fail_on and (self.current_epoch, batch_idx) == (0, 1):
            raise ValueError(f"boom in the loop on rank {self.fail_on}")
        return nn.functional.mse_loss(self.layer(x), y)

    def configure_optimizers(self) -> Any:
        return torch.optim.SGD(self.parameters(), lr=0.1)

    def train_dataloader(self) -> Any:
        g = torch.Generator().manual_seed(1)
        data = TensorDataset(torch.randn(16, 4, generator=g), torch.randn(16, 1, generator=g), torch.arange(16))
        return DataLoader(data, batch_size=2, shuffle=True)


def main() -> None:
    out, scenario = sys.argv[1], sys.argv[2]
    impl = sys.argv[3] if len(sys.argv) > 3 else "loop"
    L.seed_everything(0, verbose=False)
    model = Net(1 if scenario == "fail_rank1" else None)
    strategy = DDPStrategy(timeout=timedelta(seconds=30))
    recorder = HookRecorder(os.path.join(out, f"{impl}.trace.jsonl"), keep=False)
    error: BaseException | None = None
    host: Any
    try:
        if impl == "trainer":
            host = L.Trainer(
                strategy=strategy,
                accelerator="cpu",
                devices=2,
                max_epochs=2,
                callbacks=[recorder],
                logger=False,
                enable_checkpointing=False,
                enable_progress_bar=False,
                enable_model_summary=False,
                default_root_dir=out,
            )
            host.fit(model)
        else:
            host = LoopDriver(model, callbacks=[recorder], strategy=strategy, devices=2)
            with host.fit():
                for _ in host.epochs(max_epochs=2):
                    for i, batch in enumerate(host.train_dataloader):
                        host.train_batch(batch, i)
    except BaseException as exc:
        error = exc
    rank = model.trainer.global_rank
    launcher = strategy.launcher
    record = {
        "world_size": model.trainer.world_size,
        "seen": model.seen,
        "wrapped": sorted(model.wrapped),
        "prepared": model.prepared,
        "weights": {k: v.detach().flatten().tolist() for k, v in model.state_dict().items()},
        "exception": None if error is None else f"{type(error).__name__}: {error}".split("\n")[0],
        "status": str(model.trainer.state.status.value),
        "children_exit": launcher.wait(timeout=60) if launcher is not None and launcher.launched else None,
    }
    with open(os.path.join(out, f"{impl}.rank{rank}.json"), "w") as f:
        json.dump(record, f)
    if error is not None:
        raise error


if __name__ == "__main__":
    main()
