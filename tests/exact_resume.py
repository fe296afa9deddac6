"""A tiny training run for the exact-resume tests, also runnable as a script that gets killed.

The model has dropout (consumes the torch RNG every step), the train loader shuffles
(draws its order from the torch RNG every epoch), the optimizer is Adam (state) and the
learning rate follows an epoch-interval StepLR. Checkpoints come from
``ModelCheckpoint(every_n_train_steps=1, save_last=True)``.

``python -m tests.exact_resume ROOT EPOCH BATCH WHERE`` trains in ``ROOT`` and kills its
own process with SIGKILL at the given point (see :class:`Crash`).
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import lightcycle as L
from lightcycle.callbacks import ModelCheckpoint

N_TRAIN = 40  # 5 batches of 8
N_VAL = 16
BATCH = 8
EPOCHS = 3


class Net(L.LightningModule):
    def __init__(self, crash: Crash | None = None) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4, 16), nn.Dropout(0.25), nn.ReLU(), nn.Linear(16, 1))
        self.crash = crash

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = nn.functional.mse_loss(self.net(x), y)
        self.log("train_loss", loss, on_step=True, on_epoch=True)
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x, y = batch
        self.log("val_loss", nn.functional.mse_loss(self.net(x), y))

    def configure_optimizers(self) -> Any:
        opt = torch.optim.Adam(self.parameters(), lr=0.01)
        return [opt], [torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.7)]

    def train_dataloader(self) -> Any:
        g = torch.Generator().manual_seed(1)
        data = TensorDataset(torch.randn(N_TRAIN, 4, generator=g), torch.randn(N_TRAIN, 1, generator=g))
        return DataLoader(data, batch_size=BATCH, shuffle=True)

    def val_dataloader(self) -> Any:
        g = torch.Generator().manual_seed(2)
        data = TensorDataset(torch.randn(N_VAL, 4, generator=g), torch.randn(N_VAL, 1, generator=g))
        return DataLoader(data, batch_size=BATCH)

    # crash points -------------------------------------------------------------------
    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        if self.crash is not None:  # the module's hook runs after ModelCheckpoint saved this batch
            self.crash.at(self, "batch_end", batch_idx)

    def on_validation_end(self) -> None:
        if self.crash is not None and not self.trainer.sanity_checking:
            self.crash.at(self, "validation_end", -1)

    def on_train_epoch_end(self) -> None:
        if self.crash is not None:
            self.crash.at(self, "epoch_end", -1)

    def on_train_epoch_start(self) -> None:
        if self.crash is not None:
            self.crash.at(self, "epoch_start", -1)


class Crash:
    """Where the run dies: ``(epoch, batch_idx or -1, where)``; ``kill`` uses SIGKILL, else an exception."""

    def __init__(self, epoch: int, batch: int, where: str, kill: bool = False) -> None:
        self.point = (epoch, batch, where)
        self.kill = kill

    def at(self, module: L.LightningModule, where: str, batch_idx: int) -> None:
        if (module.current_epoch, batch_idx, where) != self.point:
            return
        if self.kill:
            sys.stdout.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        raise RuntimeError(f"crash at {self.point}")


def trainer(root: str, **kw: Any) -> L.Trainer:
    ckpt = ModelCheckpoint(dirpath=os.path.join(root, "ckpts"), every_n_train_steps=1, save_last=True)
    return L.Trainer(
        max_epochs=EPOCHS,
        callbacks=[ckpt],
        default_root_dir=root,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        deterministic=True,
        **kw,
    )


def fit(root: str, seed: int, crash: Crash | None = None, ckpt_path: str | None = None) -> Net:
    """Seed, build, fit (optionally from ``ckpt_path``); returns the module."""
    L.seed_everything(seed, verbose=False)
    model = Net(crash)
    trainer(root).fit(model, ckpt_path=ckpt_path)
    return model


def state(model: Net) -> dict[str, Any]:
    """What must be bitwise equal: weights, optimizer and scheduler states."""
    t = model.trainer
    return {
        "weights": {k: v.clone() for k, v in model.state_dict().items()},
        "optimizer": t.optimizers[0].state_dict(),
        "scheduler": t.lr_scheduler_configs[0].scheduler.state_dict(),
        "global_step": t.global_step,
        "epoch": t.current_epoch,
    }


def kill_inside_save(n: int) -> None:
    """Make the ``n``-th ``torch.save`` write half of its bytes, then SIGKILL the process."""
    import io

    real_save = torch.save
    calls = [0]

    def save(obj: Any, f: Any, *args: Any, **kwargs: Any) -> None:
        calls[0] += 1
        if calls[0] < n:
            real_save(obj, f, *args, **kwargs)
            return
        buf = io.BytesIO()
        real_save(obj, buf, *args, **kwargs)
        f.write(buf.getvalue()[: len(buf.getvalue()) // 2])
        f.flush()
        os.kill(os.getpid(), signal.SIGKILL)

    torch.save = save  # type: ignore[assignment]


if __name__ == "__main__":
    root, epoch, batch, where = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    crash = None
    if where == "save":
        kill_inside_save(batch)  # BATCH is the number of the save that dies half-written
    else:
        crash = Crash(epoch, batch, where, kill=True)
    fit(root, seed=7, crash=crash)
    sys.exit(3)  # not reached when the kill point exists
