"""``lightcycle demo``: train a small classifier on synthetic data, with validation.

The data is made here (two interleaved spirals), so the demo needs no download. It shows
the progress bar, prints the metrics of each epoch, and ends with how many hooks fired in
each part of the lifecycle, read from a :class:`~lightcycle.callbacks.HookRecorder` trace.
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from collections import Counter
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import lightcycle as L
from lightcycle.callbacks import HookRecorder


def make_spirals(n: int, seed: int) -> TensorDataset:
    """Two interleaved noisy spirals: ``n`` points in 2-D with labels 0/1."""
    g = torch.Generator().manual_seed(seed)
    t = torch.rand(n, generator=g) * 3 * math.pi + 0.5
    label = torch.randint(0, 2, (n,), generator=g)
    sign = 1 - 2 * label.float()
    x = torch.stack([sign * t * torch.cos(t), sign * t * torch.sin(t)], dim=1) / 10
    x = x + 0.05 * torch.randn(n, 2, generator=g)
    return TensorDataset(x, label)


class SpiralClassifier(L.LightningModule):
    """A small MLP; logs loss and accuracy."""

    def __init__(self, hidden: int = 64, lr: float = 1e-2) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(
            nn.Linear(2, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh(), nn.Linear(hidden, 2)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)  # type: ignore[no-any-return]

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = nn.functional.cross_entropy(self(x), y)
        self.log("train_loss", loss, prog_bar=True, on_epoch=True)
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x, y = batch
        logits = self(x)
        self.log("val_loss", nn.functional.cross_entropy(logits, y), prog_bar=True)
        self.log("val_acc", (logits.argmax(dim=1) == y).float().mean(), prog_bar=True)

    def configure_optimizers(self) -> Any:
        opt = torch.optim.AdamW(self.parameters(), lr=self.hparams.lr)
        return {"optimizer": opt, "lr_scheduler": torch.optim.lr_scheduler.StepLR(opt, step_size=4, gamma=0.5)}


class EpochReport(L.Callback):
    """Prints one line of metrics per epoch."""

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        m = {k: float(v) for k, v in trainer.callback_metrics.items()}
        parts = [f"{k}={m[k]:.4f}" for k in ("train_loss_epoch", "val_loss", "val_acc") if k in m]
        print(f"epoch {trainer.current_epoch}: " + "  ".join(parts), flush=True)


def state_counts(events: list[dict[str, Any]], depth: int = 4) -> Counter[str]:
    """Hook calls per lifecycle state, cut to ``depth`` path components."""
    return Counter(".".join(e["ctx"].get("state", "?").split(".")[:depth]) for e in events)


def add_parser(sub: Any) -> None:
    """Register ``lightcycle demo``."""
    p = sub.add_parser("demo", help="train a small model on synthetic data and show the lifecycle")
    p.add_argument("--epochs", type=int, default=8, help="training epochs (default 8)")
    p.add_argument("--samples", type=int, default=4096, help="training samples (default 4096)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--no-progress-bar", action="store_true", help="hide the progress bar")


def run(args: argparse.Namespace) -> int:
    """Run the demo; returns 0."""
    torch.set_num_threads(min(2, torch.get_num_threads()))
    L.seed_everything(args.seed, verbose=False)
    train = make_spirals(args.samples, seed=args.seed)
    val = make_spirals(max(256, args.samples // 4), seed=args.seed + 1)
    recorder = HookRecorder()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="lightcycle-demo-") as root:
        trainer = L.Trainer(
            max_epochs=args.epochs,
            accelerator="cpu",
            callbacks=[EpochReport(), recorder],
            default_root_dir=root,
            enable_progress_bar=not args.no_progress_bar,
            enable_model_summary=True,
            logger=False,
        )
        model = SpiralClassifier()
        trainer.fit(
            model,
            DataLoader(train, batch_size=64, shuffle=True),
            DataLoader(val, batch_size=256),
        )
        ckpt = trainer.checkpoint_callback
        saved = getattr(ckpt, "best_model_path", "") if ckpt is not None else ""
    elapsed = time.perf_counter() - start
    print(
        f"\nfinished: status={trainer.state.status.value} epochs={trainer.current_epoch} "
        f"steps={trainer.global_step} in {elapsed:.1f} s"
        + (f" (checkpoint: {saved.rsplit('/', 1)[-1]})" if saved else "")
    )
    print("\nhooks fired per lifecycle state (HookRecorder trace):")
    counts = state_counts(recorder.events)
    width = max(len(k) for k in counts)
    for state, n in sorted(counts.items(), key=lambda kv: -kv[1]):
        print(f"  {state:<{width}}  {n:6d}")
    print(f"  {'total':<{width}}  {sum(counts.values()):6d}")
    return 0
