"""The training half of ``lightcycle demo`` (imported only when the demo runs: it needs torch).

The data is made here (two interleaved spirals), so the demo needs no download. After
training it shows lightcycle's three uses on that run: the recorded hook trace verified
against the lifecycle (``lightcycle verify``'s verdict and counts), the run drawn as a
sequence diagram and over the lifecycle, and the commands that reproduce each.
"""

from __future__ import annotations

import argparse
import math
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from tqdm import tqdm

import lightcycle as L
from lightcycle.callbacks import HookRecorder
from lightcycle.callbacks.tqdm_progress import TQDMProgressBar
from lightcycle.commands.options import LifecycleOptionError, lifecycle_from
from lightcycle.diagrams import dot as dot_mod
from lightcycle.diagrams import files, sequence, views
from lightcycle.diagrams.overlay import entry_of
from lightcycle.runtime.host import RunHost
from lightcycle.verify import verify_trace


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
    """Prints one line of metrics per epoch, through tqdm so the progress bar stays whole."""

    def on_train_epoch_end(self, trainer: RunHost, pl_module: L.LightningModule) -> None:
        m = {k: float(v) for k, v in trainer.callback_metrics.items()}
        parts = [f"{k}={m[k]:.4f}" for k in ("train_loss_epoch", "val_loss", "val_acc") if k in m]
        say(f"epoch {trainer.current_epoch}: " + "  ".join(parts))


def say(line: str = "") -> None:
    """Print a line through ``tqdm.write``: it clears the progress bar, prints, and redraws the bar."""
    tqdm.write(line, file=sys.stdout)


def _command(*argv: str) -> str:
    return "lightcycle " + " ".join(shlex.quote(a) for a in argv)


def run(args: argparse.Namespace) -> int:
    """Train, verify the run's own trace, draw it, and print how to reproduce each step.

    Args:
        args: the parsed arguments of :func:`lightcycle.commands.demo.add_parser`'s parser.

    Returns:
        0 when the trace follows the lifecycle, 1 otherwise.
    """
    try:
        lifecycle = lifecycle_from(args.lifecycle)
    except LifecycleOptionError as err:
        print(f"lightcycle demo: {err}", file=sys.stderr)
        return 2
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    trace_path = out / "trace.jsonl"
    torch.set_num_threads(min(2, torch.get_num_threads()))
    L.seed_everything(args.seed, verbose=False)
    train = make_spirals(args.samples, seed=args.seed)
    val = make_spirals(max(256, args.samples // 4), seed=args.seed + 1)
    recorder = HookRecorder(timings=True)

    start = time.perf_counter()
    say("1. train (lightcycle.Trainer, Lightning's hook order)")
    trainer = L.Trainer(
        max_epochs=args.epochs,
        accelerator="cpu",
        # the tqdm bar even when rich is installed: the demo's lines go through tqdm.write, which
        # clears and redraws that bar (a rich bar would be torn by them)
        callbacks=[TQDMProgressBar(), EpochReport(), recorder]
        if not args.no_progress_bar
        else [EpochReport(), recorder],
        default_root_dir=str(out),
        enable_progress_bar=not args.no_progress_bar,
        enable_model_summary=False,
        logger=False,
    )
    trainer.fit(
        SpiralClassifier(),
        DataLoader(train, batch_size=64, shuffle=True),
        DataLoader(val, batch_size=256),
    )
    elapsed = time.perf_counter() - start
    recorder.write_jsonl(trace_path)
    say(
        f"   finished: status={trainer.state.status.value} epochs={trainer.current_epoch} "
        f"steps={trainer.global_step} in {elapsed:.1f} s; {len(recorder.events)} hook calls recorded in {trace_path}"
    )

    say("\n2. verify the recorded hook order against the lifecycle declaration")
    result = verify_trace(recorder.events, lifecycle)
    report = result.report(str(trace_path)).splitlines()
    say("   " + report[0])
    if result.ok:
        top = sorted(result.counts.items(), key=lambda kv: -kv[1])[:5]
        say("   most called: " + ", ".join(f"{hook} ({src}) {n}" for (src, hook), n in top))
    else:
        for line in report[1:8]:
            say("   " + line)
    lifecycle_arg = ["--lifecycle", args.lifecycle] if args.lifecycle else []
    say("   reproduce: " + _command("verify", str(trace_path), *lifecycle_arg))

    say("\n3. draw the run")
    seq_path = out / "trace.mmd"
    seq_path.write_text(sequence.sequence_diagram(recorder.events))
    say(f"   sequence diagram (Mermaid, repeated batches folded into loops): {seq_path}")
    say("   reproduce: " + _command("diagram", "--trace", str(trace_path), "-o", str(seq_path)))
    view = views.with_depth(lifecycle, entry_of(recorder.events, lifecycle), None)
    title = f"{sequence.run_title(recorder.events)}, over the lifecycle"  # what the CLI's default is
    fmt = "svg"
    try:
        text = files.overlay_text(lifecycle, view, recorder.events, fmt, title)
    except dot_mod.GraphvizNotFoundError:
        fmt = "mermaid"  # the Mermaid text needs no Graphviz
        text = files.overlay_text(lifecycle, view, recorder.events, fmt, title)
    over_path = out / f"trace.lifecycle.{files.EXTENSIONS[fmt]}"
    over_path.write_text(text)
    say(f"   the run over the lifecycle (counts per state and edge, time per state): {over_path}")
    fmt_arg = ["--format", fmt] if fmt != "mermaid" else []
    say(
        "   reproduce: "
        + _command(
            "diagram", "--trace", str(trace_path), "--over-lifecycle", *fmt_arg, *lifecycle_arg, "-o", str(over_path)
        )
    )
    say(
        "   drill down: "
        + _command(
            "diagram",
            "--trace",
            str(trace_path),
            "--over-lifecycle",
            "--state",
            "fit.train.epoch.batch",
            *fmt_arg,
            "-o",
            str(out / f"batch.{files.EXTENSIONS[fmt]}"),
        )
    )
    return 0 if result.ok else 1
