"""The profiler and max_time under DDP on two CPU ranks: one report file per rank, named as Lightning's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.paths import ROOT, TESTS

PROGRAM = TESTS / "profilers" / "ddp_profiled.py"


def test_each_rank_writes_its_report_and_the_timer_agrees(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, str(PROGRAM), str(tmp_path)], env=env, capture_output=True, timeout=150)
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    for rank in (0, 1):
        text = (tmp_path / f"fit-perf-{rank}.txt").read_text()  # Lightning: <stage>-<filename>-<local rank>
        assert text.startswith("FIT Profiler Report")
        rows = {line.split("|")[1].strip(): line.split("|")[3].strip() for line in text.splitlines() if "|" in line}
        assert rows["[Strategy]DDPStrategy.training_step"] == "4"  # 8 samples, 2 ranks, batch 2: 2 a rank, 2 epochs
        assert rows["run_training_epoch"] == "2"
        assert json.loads((tmp_path / f"rank{rank}.json").read_text()) == {"global_step": 4}  # max_time not reached
