"""The tables ``overhead.py`` prints: the variants' table with its targets, and the scaling table.

Formatting only: the measurements come in as the children's JSON (medians over blocks per
run), and here become medians over runs, overheads over the raw loop, the paired figures,
their spread, the targets' verdicts and the comparisons between two variants, under a line
describing the machine (:func:`machine`).
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import os
import platform
import statistics
from collections.abc import Callable
from typing import Any

from _overhead_variants import ALL_VARIANTS, split_key

LABELS = {
    "raw": "(a) raw PyTorch loop",
    "trainer": "(b) lightcycle Trainer",
    "callbacks": "(c) lightcycle Trainer + 5 callbacks x 6 hooks",
    "driver": "(d) lightcycle custom-loop driver",
    "log": "    lightcycle Trainer + self.log(loss)",
    "log10": "    lightcycle Trainer + 10 x self.log",
    "raw_realistic": "    raw loop doing the realistic user work",
    "realistic": "(h) lightcycle, realistic defaults",
    "realistic_async": "    (h) with plugins=[AsyncCheckpointIO()]",
    "realistic_lightning": "(i) pytorch-lightning, realistic defaults",
    "realistic_ignite": "(j) pytorch-ignite, nearest equivalent",
    "protocol": "    Lightning's batch protocol by hand (floor)",
    "profiler": "    lightcycle Trainer + profiler='simple'",
    "lightning": "(e) pytorch-lightning 2.x",
    "lightning_profiler": "    pytorch-lightning + profiler='simple'",
    "ignite": "(f) pytorch-ignite",
    "checked": "(g) lightcycle checked=True",
}
TARGETS_US = {"trainer": 15.0, "callbacks": 20.0, "driver": 6.0, "realistic": 40.0}


def machine() -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    parts = [
        f"{cpu}, {os.cpu_count()} logical CPUs",
        f"Python {platform.python_version()}",
        f"torch {torch.__version__}",
    ]
    for name in ("pytorch_lightning", "ignite"):
        if importlib.util.find_spec(name) is not None:
            mod = __import__(name)
            parts.append(f"{name} {mod.__version__}")
    if torch.cuda.is_available():
        parts.append(torch.cuda.get_device_name(0))
    return "; ".join(parts)


def report(results: dict[str, list[dict[str, Any]]], args: argparse.Namespace) -> str:
    """The table: medians over the runs of each variant (each run: medians over its blocks)."""

    def med(v: str, key: str = "us_per_step") -> float:
        values = [r[key] for r in results[v] if key in r]
        return statistics.median(values) if values else math.nan

    raw = med("raw") if "raw" in results else math.nan
    pl_over = med("lightning") - raw if "lightning" in results else math.nan
    cuda = args.device == "cuda"
    paired = not args.no_paired
    lines = [
        f"machine: {machine()}",
        f"device {args.device}; {args.steps} timed steps after {args.warmup} warm-up steps, in blocks of"
        f" {args.block}; median of {args.repeats} fresh-process runs per variant, interleaved; 1 torch thread",
        "us/step: median over the runs of each run's median block. over raw: minus raw's. paired: median over the"
        " runs of each run's median difference between its blocks and raw-loop blocks run between them in the"
        " same process (robust to load from other processes)."
        if paired
        else "",
        "",
        f"{'variant':<60}{'us/step':>9}{'over raw':>10}{'x raw':>7}{'/PL over':>9}"
        + (f"{'paired':>8}{'cpu':>7}" if paired else "")
        + f"{'target':>8}{'RSS MiB':>9}"
        + (f"{'CUDA MiB':>10}" if cuda else ""),
    ]

    def row(v: str) -> str:
        over = med(v) - raw
        base, executor = split_key(v)
        vs_pl = f"{over / pl_over:9.3f}" if base not in ("raw", "lightning") and pl_over > 0 else f"{'':>9}"
        target = f"{'<=' + format(TARGETS_US[base], 'g'):>8}" if base in TARGETS_US else f"{'':>8}"
        label = LABELS[base] + (f" [{executor}]" if executor else "")
        line = f"{label:<60}{med(v):9.1f}{over:10.1f}{med(v) / raw:7.3f}{vs_pl}"
        if paired:
            line += f"{med(v, 'paired_over_us'):8.1f}{med(v, 'paired_cpu_over_us'):7.1f}"
        line += f"{target}{med(v, 'maxrss_mib'):9.0f}"
        return line + (f"{med(v, 'cuda_peak_mib'):10.2f}" if cuda else "")

    ordered = sorted(results, key=lambda k: ALL_VARIANTS.index(split_key(k)[0]))
    checked = [k for k in ordered if split_key(k)[0] == "checked"]
    lines += [row(v) for v in ordered if v not in checked]
    lines += _derived_lines(results, med, paired)
    if checked:
        lines += ["", "checked mode (every event checked against the transitions machine's answers):"]
        lines += [row(v) for v in checked]
    if paired:
        # the noise a single median hides: this machine moves a figure by several us between runs
        spread = []
        for v in ordered:
            values = [r["paired_over_us"] for r in results.get(v, []) if "paired_over_us" in r]
            if values and v != "raw":
                spread.append(f"{v} {min(values):.1f}..{max(values):.1f}")
        if spread:
            lines += ["", "paired, lowest..highest run: " + "; ".join(spread)]
    for key, what in (("us_per_step", "over raw"), ("paired_over_us", "paired")):
        if key == "paired_over_us" and not paired:
            continue
        verdict = []
        for v in ordered:
            limit = TARGETS_US.get(split_key(v)[0])
            if limit is not None:
                over = med(v, key) - (raw if key == "us_per_step" else 0.0)
                verdict.append(f"{v} {over:+.1f} us (<= {limit:g}: {'met' if over <= limit else 'MISSED'})")
        if verdict:
            lines.append(f"targets, {what}: " + "; ".join(verdict))
    for on, off in (("profiler", "trainer"), ("lightning_profiler", "lightning")):
        if on in results and off in results:
            lines.append(f"{on}: {med(on) - med(off):+.1f} us/step over {off} (the SimpleProfiler's cost)")
    for k in checked:
        unchecked = k.replace("checked", "trainer", 1)
        if unchecked in results:
            key = "paired_over_us" if paired else "us_per_step"
            cost = med(k, key) - med(unchecked, key)
            lines.append(f"checked mode over unchecked ({k} - {unchecked}): {cost:+.1f} us/step (target <= 3)")
    trainer = next((k for k in ordered if split_key(k)[0] == "trainer"), None)
    for other in ("lightning", "ignite"):
        if other in results and trainer is not None:
            key = "paired_over_us" if paired else "us_per_step"
            base = 0.0 if paired else raw
            o, t = med(other, key) - base, med(trainer, key) - base
            lines.append(
                f"{other} overhead {o:.1f} us/step, lightcycle Trainer {t:.1f} us/step"
                f" ({'paired' if paired else 'over raw'}): {o / t:.1f}x"
            )
    return "\n".join(line for line in lines if line is not None)


def _derived_lines(results: dict[str, list[dict[str, Any]]], med: Callable[..., float], paired: bool) -> list[str]:
    """The targets that compare two variants: one logged metric; realistic against Lightning's."""
    key = "paired_over_us" if paired else "us_per_step"
    base = 0.0 if paired else med("raw")
    out = []
    if "log10" in results and "trainer" in results:
        per = (med("log10", key) - med("trainer", key)) / 10
        out.append(f"one self.log'd scalar: (log10 - trainer) / 10 = {per:.2f} us/step (<= 3: {_verdict(per <= 3)})")
    if "realistic" in results and "realistic_lightning" in results:
        ours, theirs = med("realistic", key) - base, med("realistic_lightning", key) - base
        ratio = theirs / ours if ours > 0 else math.inf
        out.append(
            f"realistic defaults: lightcycle {ours:.1f} us/step, Lightning {theirs:.1f}: 1/{ratio:.1f} of Lightning's"
            f" (<= 1/40: {_verdict(ratio >= 40)})"
        )
    if "realistic" in results and "realistic_ignite" in results:
        out.append(f"realistic: ignite's nearest equivalent {med('realistic_ignite', key) - base:.1f} us/step")
    return out


def _verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


SCALING: tuple[tuple[str, dict[str, Any]], ...] = (
    *((f"callbacks {n}", {"callbacks": n}) for n in (0, 1, 5, 20, 50)),
    *((f"metrics {n}", {"metrics": n}) for n in (1, 10, 50)),
    ("validation every epoch", {"val_every": 0}),
    *((f"validation every {n} steps", {"val_every": n}) for n in (100, 20, 5)),
)
"""The scaling table's rows (``metrics 0`` is ``callbacks 0``: the same bare Trainer; the
validation rows run 2 validation batches each time, the paired raw loop too)."""


def _scaling_table(
    results: dict[tuple[str, str, str], list[float]],
    frameworks: list[str],
    key: str,
    what: str,
    args: argparse.Namespace,
) -> list[str]:
    lines = [
        "",
        f"scaling ({what}): paired us/step over a raw loop doing the same validation work; median of"
        f" {args.repeats} runs (lowest..highest); {args.steps} timed steps after {args.warmup}",
        "",
        f"{'configuration':<28}{'lightcycle':>22}{'Lightning':>24}{'ratio':>8}",
    ]
    for label, _ in SCALING:
        cells = []
        for fw in frameworks:
            v = results[(label, fw, key)]
            cells.append((statistics.median(v), min(v), max(v)))
        widths = (22, 24)[: len(cells)]
        text = "".join(f"{m:10.1f} ({lo:.1f}..{hi:.1f})".rjust(w) for (m, lo, hi), w in zip(cells, widths, strict=True))
        ratio = f"{cells[1][0] / cells[0][0]:8.1f}" if len(cells) > 1 and cells[0][0] > 0 else ""
        lines.append(f"{label:<28}{text}{ratio}")
    return lines
