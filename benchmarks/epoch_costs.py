"""Where a realistic run's time outside the batch function goes: wall-clock timers on the per-epoch work.

``instructions.py --bytecodes`` counts what the training thread executes, exactly, but under
``sys.settrace`` a step takes ~100 times longer, so work that is due by time rather than by batch
(the rich bar hands a batch over at most ``refresh_rate`` times a second) is counted on far more
batches than in a real run, and it says nothing of system calls (``fsync``) or of code that runs
cold once per epoch, which costs several times what the same code costs in a loop.
``overhead.py`` times the whole step, paired with a raw loop, but does not say where it goes.

This script runs one variant of ``overhead.py`` (default ``realistic``) in this process, unpaired,
with ``time.perf_counter`` timers around the functions that run a few times per epoch: the
checkpoint save and its parts (``os.fsync`` included), the validation run, the logger writes, the
bar's hand-overs to rich, the epoch's events. It prints, for each, the calls, the µs per call and
the µs per training step (the total over the run's steps). Timers nest (a save contains its
fsyncs), so the rows do not add up; each row is that function's own wall time, callees included.
A timer costs about a microsecond per call, so the per-batch functions are not wrapped.

Usage::

    python benchmarks/epoch_costs.py                      # realistic, 3,000 steps after 200
    python benchmarks/epoch_costs.py --variant realistic_async --steps 5000
"""

from __future__ import annotations

import argparse
import collections
import functools
import importlib
import os
import sys
import time
from collections.abc import Callable
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _overhead_variants import child  # (after the sys.path insert above)
from _overhead_workload import _Clock

LIGHTCYCLE_REALISTIC = ("realistic", "realistic_async")
"""The variants whose per-epoch work is lightcycle's (the timers wrap lightcycle's functions)."""

# (module, qualified name) of what is timed; each runs per epoch or per save, not per batch
TIMED: tuple[tuple[str, str], ...] = (
    ("lightcycle.callbacks.model_checkpoint", "ModelCheckpoint.on_train_epoch_end"),
    ("lightcycle.callbacks.model_checkpoint", "ModelCheckpoint._remove_checkpoint"),
    ("lightcycle.runtime.checkpointing", "CheckpointConnector.save"),
    ("lightcycle.runtime.checkpointing", "CheckpointConnector.dump"),
    ("lightcycle.runtime.checkpointing", "CheckpointConnector.open_epoch"),
    ("lightcycle.runtime.atomic_io", "_write_atomically"),
    ("lightcycle.runtime.atomic_io", "fsync_folder"),
    ("lightcycle.trainer.loops.training_epoch_loop", "TrainingEpochLoop._run_validation"),
    ("lightcycle.trainer.loops.training_epoch_loop", "TrainingEpochLoop._bracket"),
    ("lightcycle.runtime.host", "RunHost._log_step"),
    ("lightcycle.runtime.host", "RunHost._log_epoch"),
    ("lightcycle.loggers.csv_logs", "ExperimentWriter.save"),
    ("lightcycle.core.metric_store", "MetricStore.close_epoch"),
    ("lightcycle.callbacks.rich_progress", "RichProgressBar._update"),
    ("lightcycle.callbacks.rich_progress", "RichProgressBar._update_metrics"),
)


def _fixed(label: str) -> Callable[[tuple[Any, ...]], str]:
    """A row name that does not depend on the call."""
    return lambda _args: label


class Timers:
    """Accumulated wall time and calls per label."""

    def __init__(self) -> None:
        self.seconds: collections.defaultdict[str, float] = collections.defaultdict(float)
        self.calls: collections.Counter[str] = collections.Counter()
        self.armed = False  # counting: only during the timed steps (not setup, warm-up, teardown)

    def wrap(self, function: Callable[..., Any], label: Callable[[tuple[Any, ...]], str]) -> Callable[..., Any]:
        """``function`` timed under ``label(args)``.

        Args:
            function: what to time.
            label: the row's name, from the call's positional arguments.

        Returns:
            The timed function.
        """
        seconds, calls, clock = self.seconds, self.calls, time.perf_counter

        @functools.wraps(function)
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = clock()
            try:
                return function(*args, **kwargs)
            finally:
                if self.armed:
                    key = label(args)
                    seconds[key] += clock() - start
                    calls[key] += 1

        return timed

    def install(self, warmup: int, steps: int) -> None:
        """Time every :data:`TIMED` function, ``os.fsync`` and each event the driver fires by name.

        Args:
            warmup: the step at which counting starts (the benchmark clock's first timed step).
            steps: the steps counted.
        """
        tick = _Clock.tick

        def counted_tick(clock: _Clock) -> None:
            if clock.n == warmup:
                self.armed = True
            elif clock.n == warmup + steps:
                self.armed = False
            tick(clock)

        _Clock.tick = counted_tick  # type: ignore[method-assign,assignment]
        for module_name, qualname in TIMED:
            owner_name, _, attribute = qualname.rpartition(".")
            module = importlib.import_module(module_name)
            owner = getattr(module, owner_name) if owner_name else module
            setattr(owner, attribute, self.wrap(getattr(owner, attribute), _fixed(qualname)))
        os.fsync = self.wrap(os.fsync, _fixed("os.fsync"))
        driver = importlib.import_module("lightcycle.engine.driver").LifecycleDriver
        driver.fire = self.wrap(driver.fire, lambda args: f"fire({args[1].name})")

    def report(self, steps: int, top: int) -> str:
        """The rows, most time first.

        Args:
            steps: the timed steps (the per-step divisor).
            top: rows shown.

        Returns:
            The table.
        """
        lines = [f"{'function':52s} {'calls':>7s} {'us/call':>10s} {'us/step':>9s}"]
        for key, total in sorted(self.seconds.items(), key=lambda item: -item[1])[:top]:
            n = self.calls[key]
            lines.append(f"{key:52s} {n:7d} {total / n * 1e6:10.1f} {total / steps * 1e6:9.2f}")
        return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variant", default="realistic", choices=LIGHTCYCLE_REALISTIC, help="an overhead.py variant")
    parser.add_argument("--steps", type=int, default=3000, help="timed steps (after the warm-up)")
    parser.add_argument("--warmup", type=int, default=200, help="steps before them")
    parser.add_argument("--top", type=int, default=30, help="rows shown")
    args = parser.parse_args()
    timers = Timers()
    timers.install(args.warmup, args.steps)
    result = child(args.variant, args.steps, args.warmup, "cpu", paired=False)
    print(f"{args.variant}: {result['us_per_step']:.1f} us/step (median block, unpaired)", file=sys.stderr)
    print(timers.report(args.steps, args.top))


if __name__ == "__main__":
    main()
