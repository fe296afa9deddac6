"""A tiny training run for the exact-resume tests, also runnable as a script that gets killed.

The model has dropout (consumes the torch RNG every step), the train loader shuffles
(draws its order from the torch RNG every epoch, or from its own generator: see
:class:`Setup`), the optimizer is Adam (state) and the learning rate follows an
epoch-interval StepLR. Checkpoints come from ``ModelCheckpoint(every_n_train_steps=1,
save_last=True)``, or ``ModelCheckpoint(every_n_epochs=1, save_top_k=-1)``.

``python -m tests.exact_resume ROOT EPOCH BATCH WHERE`` trains in ``ROOT`` and kills its
own process with SIGKILL at the given point (see :class:`Crash`).
"""

from __future__ import annotations

import dataclasses
import math
import os
import signal
import sys
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, RandomSampler, TensorDataset

import lightcycle as L
from lightcycle.callbacks import ModelCheckpoint

N_TRAIN = 40  # 5 batches of 8
N_VAL = 16
BATCH = 8
EPOCHS = 3
LOADERS = ("global", "generator", "sampler", "stateful", "torchdata")


@dataclasses.dataclass(frozen=True)
class Setup:
    """What varies between the exact-resume runs.

    Args:
        loader: where the train order comes from: ``global`` (``shuffle=True``, the torch RNG),
            ``generator`` (``DataLoader(generator=)``), ``sampler`` (``RandomSampler(generator=)``),
            ``stateful`` (:class:`StatefulBatches`, resumed through ``state_dict``/``load_state_dict``)
            or ``torchdata`` (torchdata's ``StatefulDataLoader(generator=)``).
        accumulate: ``accumulate_grad_batches``.
        val_every: ``val_check_interval`` in batches (``None``: once per epoch).
        manual: manual optimization.
        every_n_epochs: checkpoints from ``ModelCheckpoint(every_n_epochs=1, save_top_k=-1)``, resumed from
            the newest file by its path (else ``every_n_train_steps=1, save_last=True`` and ``"last"``).
    """

    loader: str = "global"
    accumulate: int = 1
    val_every: int | None = None
    manual: bool = False
    every_n_epochs: bool = False


DEFAULT = Setup()


class StatefulBatches:
    """A train loader that resumes through ``state_dict``/``load_state_dict`` (not replayable by
    lightcycle: it is no DataLoader). It shuffles with its own ``generator`` once per epoch; a
    state taken after the last batch makes the next ``iter()`` begin the next epoch."""

    def __init__(self, data: TensorDataset, batch_size: int) -> None:
        self.data = data
        self.batch_size = batch_size
        self.generator = torch.Generator().manual_seed(3)
        self.order: torch.Tensor | None = None
        self.pos = 0

    def __len__(self) -> int:
        return math.ceil(len(self.data) / self.batch_size)

    def __iter__(self) -> Iterator[Any]:
        if self.order is None or self.pos >= len(self):  # a new epoch
            self.order = torch.randperm(len(self.data), generator=self.generator)
            self.pos = 0
        while self.pos < len(self):
            idx = self.order[self.pos * self.batch_size : (self.pos + 1) * self.batch_size]
            self.pos += 1
            yield self.data[idx]

    def state_dict(self) -> dict[str, Any]:
        return {"order": None if self.order is None else self.order.clone(), "pos": self.pos}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.order, self.pos = state["order"], state["pos"]


def train_loader(kind: str) -> Any:
    """The shuffled train loader of :class:`Setup` ``loader``."""
    g = torch.Generator().manual_seed(1)
    data = TensorDataset(torch.randn(N_TRAIN, 4, generator=g), torch.randn(N_TRAIN, 1, generator=g))
    own = torch.Generator().manual_seed(5)
    if kind == "global":
        return DataLoader(data, batch_size=BATCH, shuffle=True)
    if kind == "generator":
        return DataLoader(data, batch_size=BATCH, shuffle=True, generator=own)
    if kind == "sampler":
        return DataLoader(data, batch_size=BATCH, sampler=RandomSampler(data, generator=own))
    if kind == "stateful":
        return StatefulBatches(data, BATCH)
    if kind == "torchdata":
        from torchdata.stateful_dataloader import StatefulDataLoader

        return StatefulDataLoader(data, batch_size=BATCH, shuffle=True, generator=own)
    raise ValueError(f"unknown loader kind {kind!r}; one of {LOADERS}")


class Net(L.LightningModule):
    def __init__(self, crash: Crash | None = None, setup: Setup = DEFAULT) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4, 16), nn.Dropout(0.25), nn.ReLU(), nn.Linear(16, 1))
        self.crash = crash
        self.setup_ = setup
        self.automatic_optimization = not setup.manual

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = nn.functional.mse_loss(self.net(x), y)
        self.log("train_loss", loss, on_step=True, on_epoch=True)
        if self.setup_.manual:
            opt = self.optimizers()
            opt.zero_grad()
            self.manual_backward(loss)
            opt.step()
            if self.trainer.is_last_batch:
                self.lr_schedulers().step()
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x, y = batch
        self.log("val_loss", nn.functional.mse_loss(self.net(x), y))

    def configure_optimizers(self) -> Any:
        opt = torch.optim.Adam(self.parameters(), lr=0.01)
        return [opt], [torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.7)]

    def train_dataloader(self) -> Any:
        return train_loader(self.setup_.loader)

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


def trainer(root: str, setup: Setup = DEFAULT, **kw: Any) -> L.Trainer:
    folder = os.path.join(root, "ckpts")
    if setup.every_n_epochs:
        ckpt = ModelCheckpoint(dirpath=folder, every_n_epochs=1, save_top_k=-1)
    else:
        ckpt = ModelCheckpoint(dirpath=folder, every_n_train_steps=1, save_last=True)
    return L.Trainer(
        max_epochs=EPOCHS,
        callbacks=[ckpt],
        default_root_dir=root,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        deterministic=True,
        accumulate_grad_batches=setup.accumulate,
        val_check_interval=1.0 if setup.val_every is None else setup.val_every,
        **kw,
    )


def resume_path(root: str, setup: Setup = DEFAULT) -> str:
    """What a user passes as ``ckpt_path`` after the crash: ``"last"``, or the newest epoch file."""
    if not setup.every_n_epochs:
        return "last"
    folder = os.path.join(root, "ckpts")
    files = [os.path.join(folder, f) for f in os.listdir(folder) if f.startswith("epoch=")]
    return max(files, key=os.path.getmtime)


def fit(root: str, seed: int, crash: Crash | None = None, ckpt_path: str | None = None, setup: Setup = DEFAULT) -> Net:
    """Seed, build, fit (optionally from ``ckpt_path``); returns the module."""
    L.seed_everything(seed, verbose=False)
    model = Net(crash, setup)
    trainer(root, setup).fit(model, ckpt_path=ckpt_path)
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
