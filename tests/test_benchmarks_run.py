"""The benchmark scripts keep working (issue 7). No timing is asserted: speed is measured by
``benchmarks/overhead.py`` and ``benchmarks/instructions.py`` themselves, side by side, never
in a unit test on this noisy machine. These tests run each lightcycle variant for a few steps
and check that the measurements are made and are sane."""

from __future__ import annotations

import importlib.util
import math
import os
import subprocess
import sys
import warnings
from types import ModuleType

import pytest
import torch

from tests.paths import ROOT

BENCHMARKS = ROOT / "benchmarks"


def _load(name: str) -> ModuleType:
    if str(BENCHMARKS) not in sys.path:
        # overhead.py imports its _overhead_* siblings by name, and instructions.py's children
        # import overhead by name: the folder (not a package) has to be on sys.path
        sys.path.insert(0, str(BENCHMARKS))
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    "variant",
    [
        "raw",
        "trainer",
        "callbacks",
        "driver",
        "log",
        "log10",
        "profiler",
        "protocol",
        "checked",
        "realistic",
        "realistic_async",
        "raw_realistic",
    ],
)
def test_overhead_child_measures_every_lightcycle_variant(variant: str) -> None:
    overhead = _load("overhead")
    threads = torch.get_num_threads()
    # child() sets process-wide state (warning filters, threads, the seed): keep it to this test
    with warnings.catch_warnings(), torch.random.fork_rng():
        try:
            out = overhead.child(variant, 30, 5, "cpu", 10, True)  # raises unless all 30 timed steps ran
        finally:
            torch.set_num_threads(threads)
    assert out["variant"] == variant
    for key in ("us_per_step", "cpu_us_per_step", "paired_over_us", "paired_raw_us_per_step"):
        assert math.isfinite(out[key]), key
    assert out["us_per_step"] > 0
    assert out["paired_raw_us_per_step"] > 0


def test_bytecode_counts_name_the_orchestrator() -> None:
    instructions = _load("instructions")
    raw = instructions.bytecodes("raw")
    trainer = instructions.bytecodes("trainer")
    assert sum(raw.values()) > 1000  # the raw step itself: DataLoader, forward, backward, step
    assert sum(trainer.values()) > sum(raw.values())
    # the per-batch events run as generated functions (a stepping batch as one, with the
    # training_step event inlined): their bytecodes are counted too
    generated = [name for name in trainer if name.startswith("<lightcycle event fire_automatic_batch__")]
    assert generated, "the generated automatic-optimization batch was not counted"
    assert not any("lightcycle/" in name for name in raw)


def test_the_protocol_floor_calls_the_hooks_a_trainer_must_call() -> None:
    # the floor variant is only a floor if it makes Lightning's per-batch module calls
    protocol = _load("instructions").bytecodes("protocol")
    called = {name.rsplit(":", 1)[1] for name in protocol if "lightcycle/core/" in name}
    assert {"transfer_batch_to_device", "optimizer_step", "optimizer_zero_grad", "backward", "step"} <= called
    assert any(name.endswith(":training_step") for name in protocol)
    assert not any("orchestrator" in name or name.startswith("<lightcycle event") for name in protocol)


def test_the_report_shows_medians_targets_and_the_spread_of_runs() -> None:
    overhead = _load("overhead")
    args = overhead.argparse.Namespace(device="cpu", no_paired=False, steps=10, warmup=1, block=5, repeats=3)

    def runs(us: list[float], paired: list[float]) -> list[dict[str, float]]:
        return [
            {"us_per_step": u, "paired_over_us": p, "paired_cpu_over_us": p, "maxrss_mib": 300.0}
            for u, p in zip(us, paired, strict=True)
        ]

    results = {
        "raw": runs([100.0, 102.0, 98.0], [0.0, 0.5, -0.5]),
        "trainer": runs([110.0, 130.0, 112.0], [11.0, 29.0, 12.5]),
        "driver": runs([105.0, 104.0, 106.0], [5.0, 4.0, 6.0]),
    }
    text = overhead.report(results, args)
    assert "paired, lowest..highest run: trainer 11.0..29.0; driver 4.0..6.0" in text
    assert "trainer +12.5 us (<= 15: met)" in text  # the median run, not the outlier
    assert "driver +5.0 us (<= 6: met)" in text


def test_scaling_cells_and_startup_measure() -> None:
    overhead = _load("overhead")
    threads = torch.get_num_threads()
    with warnings.catch_warnings(), torch.random.fork_rng():
        try:
            config = {"framework": "lightcycle", "callbacks": 2, "metrics": 2, "val_every": 5}
            out = overhead.child("trainer", 30, 5, "cpu", 10, True, config)
            first = overhead.first_batch("lightcycle")
        finally:
            torch.set_num_threads(threads)
    assert math.isfinite(out["paired_over_us"]) and out["paired_raw_us_per_step"] > 0
    assert first["first_batch_s"] > 0
    assert overhead.import_time("lightcycle") > 0
    labels = [label for label, _ in overhead.SCALING]
    assert labels[:5] == [f"callbacks {n}" for n in (0, 1, 5, 20, 50)] and "validation every 5 steps" in labels


def test_executor_micro_fires_its_event_in_every_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    micro = _load("executor_micro")
    monkeypatch.setattr(micro, "FIRES", 50)
    monkeypatch.setattr(micro, "REPEATS", 2)
    event, state = micro._internal_event(micro._driver("generated", False))
    for executor in ("generated", "interpreted"):
        for checked in (False, True):
            us = micro.per_event(executor, checked, event, state)  # raised AttributeError before
            assert math.isfinite(us) and us > 0


def test_epoch_costs_times_the_per_epoch_work() -> None:
    """``epoch_costs.py`` in its own process (it patches functions process-wide): two epoch ends in the window."""
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "epoch_costs.py"), "--steps", "250", "--warmup", "10"],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = {line.split()[0]: line.split()[1:] for line in done.stdout.splitlines() if line.split()}
    saves, per_call, per_step = rows["CheckpointConnector.save"]
    assert int(saves) == 2 and float(per_call) > 0 and float(per_step) > 0
    assert int(rows["os.fsync"][0]) >= 4  # each save: the file and its folder
    assert int(rows["TrainingEpochLoop._run_validation"][0]) == 2
    assert "realistic:" in done.stderr and "us/step" in done.stderr
