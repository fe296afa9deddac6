"""Per-step instructions and cache misses of each variant, counted by valgrind's cachegrind.

Wall-clock overhead on a shared 2-core machine moves by several µs between runs
(``overhead.py`` pairs raw-loop blocks to survive that, and still has a few µs of noise).
This script measures what the CPU is asked to do instead, which does not depend on load:
each variant of ``overhead.py`` runs under ``valgrind --tool=cachegrind --cache-sim=yes``
twice, for ``N`` and ``3N`` training steps; the difference of the two runs divided by
``2N`` is the cost of one step, with imports, setup and teardown cancelled out. Reported
per step: instructions executed (``Ir``), first-level instruction-cache misses (``I1mr``)
and first-level data-cache read misses (``D1mr``), and the same minus the raw loop's.

Why cache misses: in the training loop the CPU's caches are full of torch's code and data,
so the orchestrator's Python runs cold. Its time per step follows its instruction-cache
misses more than its instruction count (an extra function call costs about three times
more inside the loop than in a micro-benchmark), so a change that executes fewer distinct
functions helps more than one that executes fewer instructions.

Figures are counts from a simulated cache (cachegrind's model of this machine's L1), not
time; read them as "what changed", side by side with ``overhead.py``'s µs. To make two runs
of the same code give the same counts: BLAS and OpenMP thread pools are kept to one thread
(``OMP_NUM_THREADS=1`` and friends) so that no idle worker's spin loop is counted, hashing is
seeded (``PYTHONHASHSEED=0``), and the cyclic garbage collector is off during the run (one
more or one fewer full collection in the longer run moves a per-step figure by tens of
thousands of instructions). What remains varies between runs of the same code (allocator
state, address layout): on the development machine, within about 15k instructions and 1k
instruction-cache misses per step at the default ``--steps 100``, so read differences
smaller than that as noise, or raise ``--steps``.

``--bytecodes`` counts, instead, the Python bytecode instructions executed per step, per
function, with ``sys.settrace`` opcode events over 50 steps after 20 warm-up steps: exact,
needs no valgrind, takes seconds, and names the functions that add the most. ``--window`` and
``--after`` move that window: the ``realistic`` variants pay at each epoch end (validation,
checkpoint, logger flush), every ``overhead.EPOCH`` = 100 steps, so count them over whole
epochs (``--after 120 --window 200`` spans two epoch ends). Only the training thread is
traced: a progress bar's refresh thread (rich's) is not counted.

Usage::

    python benchmarks/instructions.py                          # raw, trainer, callbacks, driver, log
    python benchmarks/instructions.py --variants raw trainer --steps 200
    python benchmarks/instructions.py --jobs 1                 # one valgrind at a time
    python benchmarks/instructions.py --bytecodes              # Python bytecodes per step, by function
    python benchmarks/instructions.py --bytecodes --executors generated interpreted
    python benchmarks/instructions.py --bytecodes --variants raw realistic --after 120 --window 200
    python benchmarks/instructions.py --bytecodes --variants raw raw_realistic realistic --after 120 --window 200

``--executors`` counts each lightcycle variant once per event executor (``LIGHTCYCLE_EXECUTOR``
in the child), as ``variant@executor``; without it the child runs the default executor.

Needs ``valgrind`` on the PATH (``apt-get install valgrind``). Each run takes 1-2 minutes
(importing torch under valgrind dominates); ``--jobs`` runs several at once.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_VARIANTS = ("raw", "trainer", "callbacks", "driver", "log")
EVENTS = ("Ir", "I1mr", "D1mr")
_SINGLE_THREAD_ENV = {
    "PYTHONHASHSEED": "0",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "NUMEXPR_NUM_THREADS": "1",
}

# What both kinds of child run first: the workload of overhead.py, as its children set it up.
_PREAMBLE = """
import sys
sys.path.insert(0, {here!r})
import warnings
warnings.filterwarnings("ignore")
import torch
torch.set_num_threads(1)
torch.manual_seed(0)
import overhead
"""

_CHILD = (
    _PREAMBLE
    + """
class Clock:
    def tick(self):
        pass

import gc
gc.disable()
overhead.RUNNERS[{variant!r}](Clock(), {steps}, "cpu")
"""
)

_BYTECODE_CHILD = (
    _PREAMBLE
    + """
import collections, json

counts = collections.Counter()

def local(frame, event, arg):
    if event == "opcode":
        code = frame.f_code
        counts[code.co_filename + ":" + str(code.co_firstlineno) + ":" + code.co_name] += 1
    return local

def tracer(frame, event, arg):
    frame.f_trace_opcodes = True
    return local

class Clock:
    n = 0
    def tick(self):
        self.n += 1
        if self.n == {start}:
            sys.settrace(tracer)
            f = sys._getframe(1)
            while f is not None:  # frames already running (the loops) are traced too
                f.f_trace = local
                f.f_trace_opcodes = True
                f = f.f_back
        elif self.n == {stop}:
            sys.settrace(None)
            f = sys._getframe(1)
            while f is not None:
                f.f_trace = None
                f = f.f_back

overhead.RUNNERS[{variant!r}](Clock(), {total}, "cpu")
print(json.dumps({{k: v / {steps} for k, v in counts.items()}}))
"""
)
_BYTECODE_WARMUP = 20
_BYTECODE_STEPS = 50


def totals(path: Path) -> dict[str, int]:
    """Sum every event over all functions of a cachegrind output file.

    Args:
        path: a ``cachegrind.out`` file.

    Returns:
        Event name to total count (the events of :data:`EVENTS` that the file has).
    """
    names: list[str] = []
    sums: dict[str, int] = {}
    with path.open() as f:
        for line in f:
            if line.startswith("events:"):
                names = line.split()[1:]
                sums = dict.fromkeys(names, 0)
            elif line[:1].isdigit():
                parts = line.split()
                for name, value in zip(names, parts[1:], strict=False):
                    sums[name] += int(value)
    return {e: sums[e] for e in EVENTS if e in sums}


def _child_env(key: str) -> tuple[str, dict[str, str]]:
    """The ``overhead.RUNNERS`` variant of a measurement key and the child's environment."""
    variant, _, executor = key.partition("@")
    env = {**os.environ, **_SINGLE_THREAD_ENV}
    for name in ("LIGHTCYCLE_EXECUTOR", "LIGHTCYCLE_DEBUG", "LIGHTCYCLE_CHECKED"):
        env.pop(name, None)
    if executor:
        env["LIGHTCYCLE_EXECUTOR"] = executor
    return variant, env


def run_once(key: str, steps: int, workdir: Path) -> dict[str, int]:
    """One cachegrind run of ``variant`` for ``steps`` training steps.

    Args:
        key: a key of ``overhead.RUNNERS``, optionally ``@executor``.
        steps: batches to train.
        workdir: where the output file goes.

    Returns:
        The event totals of the run.

    Raises:
        RuntimeError: valgrind or the child failed (its output is in the message).
    """
    variant, env = _child_env(key)
    out = workdir / f"cg.{key}.{steps}"
    code = _CHILD.format(here=str(HERE), variant=variant, steps=steps)
    proc = subprocess.run(
        [
            "valgrind",
            "--tool=cachegrind",
            "--cache-sim=yes",
            f"--cachegrind-out-file={out}",
            sys.executable,
            "-c",
            code,
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if proc.returncode != 0 or not out.exists():
        raise RuntimeError(f"{key} ({steps} steps) failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    return totals(out)


def per_step(variant: str, steps: int, workdir: Path, jobs: int) -> dict[str, float]:
    """Events per training step: (run of 3N steps - run of N steps) / 2N."""
    with ThreadPoolExecutor(max_workers=max(1, min(2, jobs))) as pool:
        short_f = pool.submit(run_once, variant, steps, workdir)
        long_f = pool.submit(run_once, variant, 3 * steps, workdir)
        short, long = short_f.result(), long_f.result()
    return {e: (long[e] - short[e]) / (2 * steps) for e in short}


def bytecodes(key: str, after: int = _BYTECODE_WARMUP, window: int = _BYTECODE_STEPS) -> dict[str, float]:
    """Python bytecode instructions per training step of ``key``, by function.

    Args:
        key: a key of ``overhead.RUNNERS``, optionally ``@executor`` (``trainer@interpreted``).
        after: training steps run before counting starts.
        window: training steps counted.

    Returns:
        ``"file:line:function"`` to instructions executed per step.

    Raises:
        RuntimeError: the child failed.
    """
    start = after
    stop = start + window
    variant, env = _child_env(key)
    code = _BYTECODE_CHILD.format(here=str(HERE), variant=variant, start=start, stop=stop, total=stop + 5, steps=window)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{key} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    result: dict[str, float] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def report_bytecodes(
    variants: list[str], top: int, after: int = _BYTECODE_WARMUP, window: int = _BYTECODE_STEPS
) -> None:
    """Print bytecodes per step per variant, and the functions that add the most over raw."""
    counts = {v: bytecodes(v, after, window) for v in variants}
    raw = counts["raw"]
    raw_total = sum(raw.values())
    print(f"Python bytecode instructions per training step ({window} steps after {after})")
    for v in variants:
        total = sum(counts[v].values())
        print(f"{v:<22}{total:>10,.0f}   {total - raw_total:>+8,.0f} over raw")
    if "raw_realistic" in counts:  # the realistic variants' own baseline: a raw loop doing the same user work
        same_work = sum(counts["raw_realistic"].values())
        for v in variants:
            if v.startswith("realistic"):
                total = sum(counts[v].values())
                print(f"{v:<22}{total:>10,.0f}   {total - same_work:>+8,.0f} over raw_realistic")
    for v in variants:
        if v == "raw":
            continue
        extra = {k: n - raw.get(k, 0.0) for k, n in counts[v].items()}
        print(f"\n{v}: the {top} functions adding the most bytecodes per step")
        for name, n in sorted(extra.items(), key=lambda kv: -kv[1])[:top]:
            print(f"  {n:>+8.1f}  {_short(name)}")


def _short(name: str) -> str:
    for marker in ("site-packages/", "lightcycle/", "benchmarks/"):
        i = name.find(marker)
        if i >= 0:
            return name[i:]
    return name


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", nargs="+", default=list(DEFAULT_VARIANTS), help="overhead.py variants")
    parser.add_argument("--steps", type=int, default=100, help="N: the runs train N and 3N steps")
    parser.add_argument("--jobs", type=int, default=2, help="valgrind runs at once")
    parser.add_argument("--bytecodes", action="store_true", help="count Python bytecodes instead (no valgrind)")
    parser.add_argument("--top", type=int, default=12, help="--bytecodes: functions listed per variant")
    parser.add_argument("--after", type=int, default=_BYTECODE_WARMUP, help="--bytecodes: steps before counting")
    parser.add_argument("--window", type=int, default=_BYTECODE_STEPS, help="--bytecodes: steps counted")
    parser.add_argument(
        "--executors",
        nargs="+",
        choices=("generated", "interpreted"),
        default=None,
        help="count each lightcycle variant with each event executor",
    )
    args = parser.parse_args(argv)
    variants = list(args.variants)
    if "raw" not in variants:
        variants.insert(0, "raw")
    if args.executors:
        lightcycle = ("trainer", "callbacks", "driver", "log", "checked")
        variants = [f"{v}@{e}" if v in lightcycle else v for v in variants for e in args.executors]
        variants = list(dict.fromkeys(variants))  # (a plain variant once)
    if args.bytecodes:
        report_bytecodes(variants, args.top, args.after, args.window)
        return
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed: apt-get install valgrind (or use --bytecodes)")
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        results: dict[str, dict[str, float]] = {}
        with ThreadPoolExecutor(max_workers=max(1, args.jobs // 2)) as pool:
            futures = {v: pool.submit(per_step, v, args.steps, workdir, args.jobs) for v in variants}
            for v in variants:
                results[v] = futures[v].result()
                print(f"counted {v}", file=sys.stderr, flush=True)
    raw = results["raw"]
    python = sys.version.split()[0]
    print(f"per training step, from cachegrind runs of {args.steps} and {3 * args.steps} steps (Python {python})")
    print(f"{'variant':<22}{'Ir':>12}{'I1mr':>10}{'D1mr':>10}   {'+Ir':>10}{'+I1mr':>9}{'+D1mr':>9}  (over raw)")
    for v in variants:
        r = results[v]
        print(
            f"{v:<22}{r['Ir']:>12,.0f}{r['I1mr']:>10,.0f}{r['D1mr']:>10,.0f}   "
            f"{r['Ir'] - raw['Ir']:>+10,.0f}{r['I1mr'] - raw['I1mr']:>+9,.0f}{r['D1mr'] - raw['D1mr']:>+9,.0f}"
        )


if __name__ == "__main__":
    main()
