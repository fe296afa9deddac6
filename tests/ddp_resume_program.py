"""The exact-resume run of ``tests/exact_resume.py`` on 2 self-launched CPU ranks (run as a script).

``python tests/ddp_resume_program.py ROOT MODE [SEED_PER_RANK]``: MODE is ``full`` (the
uninterrupted 2-rank fit), ``kill`` (every rank SIGKILLs itself in ``on_train_batch_end`` of
epoch 1, batch 1: after that batch's checkpoint was written and every rank passed its barrier)
or ``resume`` (a new 2-rank fit from ``ckpt_path="last"``). Each rank that finishes writes
``ROOT/MODE.rank{R}.pt``: its weights, optimizer and scheduler states, step and epoch. With
``SEED_PER_RANK`` (``1``) each rank seeds its RNGs with ``seed + rank`` after the process group
exists, so the ranks' dropout draws differ and each rank's RNG must be restored as its own.
"""

from __future__ import annotations

import os
import sys
from datetime import timedelta
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch

import lightcycle as L
from lightcycle.strategies import DDPStrategy
from tests.exact_resume import Crash, Net, state, trainer

KILL_AT = (1, 1, "batch_end")
"""Where ``kill`` dies: epoch 1, batch 1, after its checkpoint."""


class PerRankSeed(L.Callback):
    """Seeds every RNG with ``seed + global_rank`` once the ranks are known (Lightning users do this in ``setup``)."""

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def setup(self, trainer: Any, pl_module: Any, stage: str) -> None:
        L.seed_everything(self.seed + trainer.global_rank, verbose=False)


def main() -> None:
    root, mode = sys.argv[1], sys.argv[2]
    per_rank = len(sys.argv) > 3 and sys.argv[3] == "1"
    L.seed_everything(7, verbose=False)
    model = Net(Crash(*KILL_AT, kill=True) if mode == "kill" else None)
    extra = [PerRankSeed(11)] if per_rank else []
    t = trainer(
        root,
        strategy=DDPStrategy(timeout=timedelta(seconds=30)),
        accelerator="cpu",
        devices=2,
    )
    t.callbacks.extend(extra)
    t.fit(model, ckpt_path="last" if mode == "resume" else None)
    torch.save(state(model), os.path.join(root, f"{mode}.rank{t.global_rank}.pt"))
    launcher = t.strategy.launcher if isinstance(t.strategy, DDPStrategy) else None
    if launcher is not None and launcher.launched:
        codes = launcher.wait(timeout=60)
        if any(code != 0 for code in codes):
            # say which way rank 1 failed: its exit status, or None for still running after 60 s
            print(f"rank 0: the other ranks ended with {codes} (None: still running after 60 s)", file=sys.stderr)
            sys.exit(2)  # rank 1 failed: the run is not the 2-rank run it claims to be


if __name__ == "__main__":
    main()
