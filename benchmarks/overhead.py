"""Per-step overhead of lightcycle against a raw PyTorch loop, Lightning and ignite.

Workload (issue 7): ``Linear(32, 32) - ReLU - Linear(32, 1)``, MSE loss, SGD (lr 0.01),
batch 32, a ``DataLoader`` over an in-memory ``TensorDataset``, one torch thread.

Variants (each run in a fresh subprocess, variants interleaved within every repeat):

* ``raw``       a hand-written PyTorch loop (training_step, zero_grad, backward, step);
* ``trainer``   ``lightcycle.Trainer`` with no callbacks;
* ``callbacks`` ``lightcycle.Trainer`` with five callbacks, each overriding the six
  per-batch training hooks (``on_train_batch_start/end``, ``on_before_zero_grad``,
  ``on_before_backward``, ``on_after_backward``, ``on_before_optimizer_step``);
* ``driver``    the custom-loop driver (``lightcycle.custom_loop.LoopDriver``) around the
  raw loop's own step (see :func:`_run_driver`);
* ``log``       as ``trainer``, plus ``self.log("loss", loss)`` in ``training_step``;
* ``profiler``  as ``trainer``, with ``profiler="simple"`` (its report written to a temporary
  folder): what timing every hook call costs (``--profiler simple`` is the same);
* ``lightning_profiler`` ``pytorch_lightning.Trainer(profiler="simple")``, for comparison;
* ``lightning`` ``pytorch_lightning.Trainer`` (when installed);
* ``ignite``    ``ignite.engine.Engine`` with the same step (when installed);
* ``protocol``  no orchestrator: the module hooks of Lightning's automatic-optimization
  batch called by hand (see :func:`_run_protocol`). Not a product; the floor under
  ``trainer``: what any Trainer that keeps Lightning's hook protocol pays per batch;
* ``checked``   ``lightcycle.Trainer(checked=True)``: every event checked against the
  ``transitions`` machine's answers (asked once per state and event, then kept); reported
  separately, with its cost over ``trainer`` (target <= 3 us/step, issue 18).
* ``log10``     as ``trainer``, plus ten ``self.log`` calls per step (``log10`` − ``trainer``,
  divided by ten, is the cost of one logged scalar);
* ``realistic``, ``realistic_lightning``, ``realistic_ignite``: the defaults a user gets
  (see :func:`_realistic_trainer_kwargs`): a progress bar, checkpointing, a CSV logger, the
  model summary, the sanity check, three metrics logged with ``prog_bar=True``, validation
  (10 batches) after every epoch of 100 training batches. Their paired raw loop does the same
  user work (the two extra metrics' arithmetic, epochs over a training ``DataLoader``, the
  validation ``DataLoader`` iterated and its forward passes); ``raw_realistic`` is that loop
  run as a variant (its paired figure is the pairing's noise); ignite's is
  its nearest equivalent (``ProgressBar``, ``Checkpoint`` every epoch, an evaluator every
  epoch, three ``RunningAverage`` metrics on the bar; it has no CSV logger or model summary).
  ``realistic_async`` is ``realistic`` with ``plugins=[AsyncCheckpointIO()]`` (the per-epoch
  checkpoint pickled on the training thread, written and fsynced in the background).

``--scaling`` prints another table instead: lightcycle against Lightning with 0/1/5/20/50
callbacks, 0/1/10/50 logged metrics and validation every epoch / 100 / 20 / 5 steps (each
paired with a raw loop doing the same validation work), then the import time
(``python -X importtime``) and the time from ``fit`` to the first training batch.

Timing. Every variant calls the same ``training_step`` body, which counts its calls and
reads ``time.perf_counter()`` when the count reaches ``warmup`` and ``warmup + steps``.
The difference covers exactly ``steps`` complete iterations (data loading, hooks,
forward, backward, optimizer step) of the fit loop; setup, the warm-up steps and teardown
are excluded. Each run trains ``warmup + steps + 1`` batches of a single epoch. On CUDA
the two time stamps are preceded by ``torch.cuda.synchronize()``; those two
synchronisations are outside the timed steps' per-step path.

Memory. Peak resident set size of the child (``resource.getrusage(RUSAGE_SELF).ru_maxrss``)
and, on CUDA, ``torch.cuda.max_memory_allocated()``.

Usage::

    python benchmarks/overhead.py                       # all variants, 2000 steps, 5 repeats
    python benchmarks/overhead.py --variants raw trainer driver --repeats 9
    python benchmarks/overhead.py --device cuda
    python benchmarks/overhead.py --child trainer       # one measurement, JSON on stdout
    python benchmarks/overhead.py --variants trainer callbacks --executors generated interpreted

``--executors`` runs each lightcycle variant once per event executor (``LIGHTCYCLE_EXECUTOR``
in the child: the generated functions or the reference interpreter), interleaved with the
rest; rows are labelled ``[generated]`` / ``[interpreted]``. Without it the child runs the
default executor.

Layout: this file is the command line and the parent side (it launches one fresh child
process per measurement, ``--child``, and collects their JSON). The benchmarks folder is not
a package; its siblings, imported by their own names (this file's folder is on ``sys.path``
when it runs as a script; importers put it there): ``_overhead_workload.py`` (the model, the
data, the step clock, the paired raw loop), ``_overhead_variants.py`` (the variants' names and
runners, the child-side measurement) and ``_overhead_report.py`` (the tables). Every name they
define is re-exported here: ``overhead.RUNNERS``, ``overhead._Clock``, ``overhead.child`` etc.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
from typing import Any

# What this script used to define itself, now in its sibling modules: still reachable as
# ``overhead.<name>`` (instructions.py, the tests and other scripts use them).
from _overhead_report import LABELS as LABELS
from _overhead_report import SCALING as SCALING
from _overhead_report import TARGETS_US as TARGETS_US
from _overhead_report import _derived_lines as _derived_lines
from _overhead_report import _scaling_table as _scaling_table
from _overhead_report import _verdict as _verdict
from _overhead_report import machine as machine
from _overhead_report import report as report
from _overhead_variants import ALL_VARIANTS as ALL_VARIANTS
from _overhead_variants import EXECUTORS as EXECUTORS
from _overhead_variants import LIGHTCYCLE_VARIANTS as LIGHTCYCLE_VARIANTS
from _overhead_variants import PER_BATCH_HOOKS as PER_BATCH_HOOKS
from _overhead_variants import PROFILED as PROFILED
from _overhead_variants import REALISTIC as REALISTIC
from _overhead_variants import REALISTIC_WORK as REALISTIC_WORK
from _overhead_variants import RUNNERS as RUNNERS
from _overhead_variants import _callbacks as _callbacks
from _overhead_variants import _configured_module as _configured_module
from _overhead_variants import _framework as _framework
from _overhead_variants import _lightcycle_callbacks as _lightcycle_callbacks
from _overhead_variants import _lightcycle_module as _lightcycle_module
from _overhead_variants import _profiler as _profiler
from _overhead_variants import _run_driver as _run_driver
from _overhead_variants import _run_ignite as _run_ignite
from _overhead_variants import _run_lightcycle as _run_lightcycle
from _overhead_variants import _run_lightning as _run_lightning
from _overhead_variants import _run_protocol as _run_protocol
from _overhead_variants import _run_raw as _run_raw
from _overhead_variants import _run_raw_realistic as _run_raw_realistic
from _overhead_variants import _run_realistic as _run_realistic
from _overhead_variants import _run_realistic_ignite as _run_realistic_ignite
from _overhead_variants import _run_scaled as _run_scaled
from _overhead_variants import _trainer_kwargs as _trainer_kwargs
from _overhead_variants import child as child
from _overhead_variants import first_batch as first_batch
from _overhead_variants import keys_for as keys_for
from _overhead_variants import split_key as split_key
from _overhead_workload import BATCH as BATCH
from _overhead_workload import EPOCH as EPOCH
from _overhead_workload import FEATURES as FEATURES
from _overhead_workload import LR as LR
from _overhead_workload import VAL_BATCHES as VAL_BATCHES
from _overhead_workload import _Clock as _Clock
from _overhead_workload import _loader as _loader
from _overhead_workload import _net as _net
from _overhead_workload import _raw_blocks as _raw_blocks


def available(variant: str) -> bool:
    module = {
        "lightning": "pytorch_lightning",
        "lightning_profiler": "pytorch_lightning",
        "realistic_lightning": "pytorch_lightning",
        "ignite": "ignite",
        "realistic_ignite": "ignite",
    }.get(variant)
    return module is None or importlib.util.find_spec(module) is not None


def measure(key: str, args: argparse.Namespace, config: dict[str, Any] | None = None) -> dict[str, Any]:
    variant, executor = split_key(key)
    cmd = [
        sys.executable,
        os.path.abspath(__file__),
        "--child",
        variant,
        "--steps",
        str(args.steps),
        "--warmup",
        str(args.warmup),
        "--device",
        args.device,
        "--block",
        str(args.block),
        *(["--no-paired"] if args.no_paired else []),
        *(["--config", json.dumps(config)] if config is not None else []),
    ]
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env.pop("LIGHTCYCLE_CHECKED", None)
    env.pop("LIGHTCYCLE_DEBUG", None)
    env.pop("LIGHTCYCLE_EXECUTOR", None)
    if executor is not None:
        env["LIGHTCYCLE_EXECUTOR"] = executor
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{key} failed:\n{proc.stdout}\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def scaling(args: argparse.Namespace) -> str:
    """lightcycle against Lightning, row by row, paired µs per step over raw (wall and process
    CPU time); then import and first-batch times."""
    frameworks = [f for f in ("lightcycle", "lightning") if f == "lightcycle" or available("lightning")]
    results: dict[tuple[str, str, str], list[float]] = {}
    keys = (("paired_over_us", "wall"), ("paired_cpu_over_us", "process CPU time"))
    for r in range(args.repeats):
        for label, config in SCALING:
            for fw in frameworks if r % 2 == 0 else frameworks[::-1]:
                out = measure("trainer", args, {**config, "framework": fw})
                for key, _ in keys:
                    results.setdefault((label, fw, key), []).append(out[key])
                done = f"repeat {r + 1}/{args.repeats} {label:<28} {fw:<10} {out['paired_cpu_over_us']:8.1f}"
                print(done, file=sys.stderr, flush=True)
    lines = [f"machine: {machine()}"]
    for key, what in keys:
        lines += _scaling_table(results, frameworks, key, what, args)
    lines += ["", *startup_lines(args.repeats, frameworks)]
    return "\n".join(lines)


def import_time(module: str) -> float:
    """Seconds that importing ``module`` and reading its ``Trainer`` take in a fresh interpreter.

    The sum of ``-X importtime``'s top-level cumulative figures: lightcycle imports lazily
    (``import lightcycle`` alone loads neither torch nor the Trainer), so the ``Trainer``
    attribute is read too, and every import it triggers is counted.
    """
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {module}; {module}.Trainer"],
        capture_output=True,
        text=True,
        check=True,
    )
    total = 0
    for line in proc.stderr.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[0].startswith("import time:") and parts[1].strip().isdigit():
            name = parts[2]
            if name.strip() and not name[1:].startswith(" "):  # a top-level import (no nesting indent)
                total += int(parts[1])
    if not total:
        raise RuntimeError(f"no importtime lines for {module}")
    return total / 1e6


def startup_lines(repeats: int, frameworks: list[str]) -> list[str]:
    """Import time (``-X importtime``, torch alone for reference) and time to the first batch."""
    rows = {}
    for module in ("lightcycle", "pytorch_lightning") if "lightning" in frameworks else ("lightcycle",):
        rows[module] = [import_time(module) for _ in range(repeats)]
    lines = ["import time, torch included (python -X importtime, `import m; m.Trainer`; median (lowest..highest)):"]
    for module, values in rows.items():
        lines.append(f"  {module:<20}{statistics.median(values):7.2f} s ({min(values):.2f}..{max(values):.2f})")
    lines.append("time from Trainer(...) to the first training_step (fresh process, after the imports):")
    for fw in frameworks:
        values = []
        for _ in range(repeats):
            proc = subprocess.run(
                [sys.executable, os.path.abspath(__file__), "--first-batch", fw],
                capture_output=True,
                text=True,
                check=True,
                env=dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1"),
            )
            values.append(json.loads(proc.stdout.strip().splitlines()[-1])["first_batch_s"])
        lines.append(f"  {fw:<20}{statistics.median(values):7.3f} s ({min(values):.3f}..{max(values):.3f})")
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=2000, help="timed steps per run")
    parser.add_argument("--warmup", type=int, default=200, help="untimed steps before the timed ones")
    parser.add_argument("--repeats", type=int, default=5, help="fresh-process runs per variant (at least 5)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument(
        "--variants", nargs="+", choices=ALL_VARIANTS, default=None, help="default: all that are installed"
    )
    parser.add_argument("--block", type=int, default=100, help="steps per timing block")
    parser.add_argument(
        "--no-paired", action="store_true", help="no raw-loop blocks between the variant's blocks (see _Clock)"
    )
    parser.add_argument(
        "--profiler",
        choices=("simple",),
        help="also run the Trainers with this profiler (variants profiler, lightning_profiler)",
    )
    parser.add_argument(
        "--executors", nargs="+", choices=EXECUTORS, default=None, help="run each lightcycle variant with each executor"
    )
    parser.add_argument("--json", help="also write the raw measurements to this file")
    parser.add_argument(
        "--scaling", action="store_true", help="the scaling table (callbacks, metrics, validation), then start-up"
    )
    parser.add_argument("--child", choices=ALL_VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--config", help=argparse.SUPPRESS)
    parser.add_argument("--first-batch", choices=("lightcycle", "lightning"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.first_batch:
        print(json.dumps(first_batch(args.first_batch)))
        return
    if args.child:
        config = json.loads(args.config) if args.config else None
        paired = not args.no_paired
        print(json.dumps(child(args.child, args.steps, args.warmup, args.device, args.block, paired, config)))
        return
    if args.scaling:
        print(scaling(args))
        return
    chosen = args.variants or [v for v in ALL_VARIANTS if v not in PROFILED and v not in REALISTIC]
    if args.profiler:
        chosen = [*chosen, *(v for v in PROFILED if v not in chosen)]
    variants = [v for v in chosen if available(v)]
    if "raw" not in variants:
        variants.insert(0, "raw")
    keys = keys_for(variants, args.executors)
    results: dict[str, list[dict[str, Any]]] = {k: [] for k in keys}
    for r in range(args.repeats):
        order = keys[r % len(keys) :] + keys[: r % len(keys)]  # rotate: no fixed position bias
        for v in order:
            results[v].append(measure(v, args))
            print(
                f"repeat {r + 1}/{args.repeats} {v:<22} {results[v][-1]['us_per_step']:8.1f} us/step",
                file=sys.stderr,
                flush=True,
            )
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "machine": machine(), "results": results}, f, indent=1)
    print(report(results, args))


if __name__ == "__main__":
    main()
