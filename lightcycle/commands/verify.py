"""``lightcycle verify TRACE.jsonl``: check recorded hook traces against the lifecycle.

Several per-rank traces of one distributed run (``trace.rank0.jsonl trace.rank1.jsonl``)
are also checked against each other (:mod:`lightcycle.verify_ranks`).

Prints ``OK`` with per-hook counts for each trace the declaration accepts, or the first
violation with the events around it, the state it happened in and what was allowed
there. Exit status 0 when every trace passes, 1 otherwise; an empty trace, or one with no
hook call, is not a pass (nothing was verified).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from lightcycle.commands.options import LifecycleOptionError, add_lifecycle_option, lifecycle_from
from lightcycle.verify import load_trace, verify_trace
from lightcycle.verify_ranks import rank_of, verify_ranks


def add_parser(sub: Any) -> None:
    """Register ``lightcycle verify`` on an ``argparse`` subparsers object."""
    p = sub.add_parser(
        "verify",
        help="check recorded hook traces (JSON lines) against the lifecycle declaration",
        description=(
            "Check that each TRACE (JSON lines, one hook event per line: src, hook, args, ctx; "
            "recorded by lightcycle's HookRecorder or from Lightning) follows the declared lifecycle."
        ),
    )
    p.add_argument("trace", nargs="+", metavar="TRACE", help="a .jsonl trace file")
    add_lifecycle_option(p)
    p.add_argument(
        "--partial",
        action="store_true",
        help="accept traces that stop before their run is over (e.g. a crashed process's live trace)",
    )


def run(args: argparse.Namespace) -> int:
    """Verify every trace named in ``args``; returns 0 if all pass, else 1."""
    try:
        lifecycle = lifecycle_from(args.lifecycle)
    except LifecycleOptionError as err:
        print(f"lightcycle verify: {err}", file=sys.stderr)
        return 1

    status = 0
    loaded: dict[str, list[dict[str, Any]]] = {}
    for path in args.trace:
        try:
            events = load_trace(path)
        except (OSError, ValueError) as err:
            print(f"FAIL {path}: cannot read the trace: {err}")
            status = 1
            continue
        loaded[path] = events
        result = verify_trace(events, lifecycle, partial=args.partial)
        print(result.report(path))
        if not result.ok:
            status = 1
    # several ranks of one run: they must agree with each other too
    problems = verify_ranks(loaded)
    for problem in problems:
        print(f"FAIL ranks: {problem}")
    if problems:
        status = 1
    elif sum(1 for events in loaded.values() if _has_rank(events)) > 1:
        print("OK ranks: same collectives in the same order on every rank; every rank finished or was interrupted")
    return status


def _has_rank(events: list[dict[str, Any]]) -> bool:
    return rank_of(events) is not None
