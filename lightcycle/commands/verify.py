"""``lightcycle verify TRACE.jsonl``: check recorded hook traces against the lifecycle.

Prints ``OK`` with per-hook counts for each trace the declaration accepts, or the first
violation with the events around it, the state it happened in and what was allowed
there. Exit status 0 when every trace passes, 1 otherwise; an empty trace, or one with no
hook call, is not a pass (nothing was verified).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Any

from lightcycle.states.model import Lifecycle


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
    p.add_argument(
        "--lifecycle",
        metavar="MODULE:ATTR",
        default=None,
        help=(
            "check against an extended declaration, e.g. mypkg.loop:LIFECYCLE, importable or found "
            "from the working directory (default: lightcycle's)"
        ),
    )
    p.add_argument(
        "--partial",
        action="store_true",
        help="accept traces that stop before their run is over (e.g. a crashed process's live trace)",
    )


def load_lifecycle(spec: str) -> Lifecycle:
    """Import ``module:attr`` and check that it is a :class:`Lifecycle`.

    Raises:
        ValueError: the spec is malformed, or the attribute is not a Lifecycle.
        ImportError: the module cannot be imported.
    """
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"--lifecycle expects MODULE:ATTR (e.g. mypkg.loop:LIFECYCLE), got {spec!r}")
    obj: Any = _import_from_cwd(module_name)
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ValueError(f"--lifecycle {spec}: {module_name} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if not isinstance(obj, Lifecycle):
        raise ValueError(f"--lifecycle {spec}: expected a lightcycle Lifecycle, got {type(obj).__name__}")
    return obj


def _import_from_cwd(module_name: str) -> Any:
    """Import ``module_name``; if its package is not found, look in the working directory too.

    ``python -m lightcycle`` puts the working directory on ``sys.path``, the installed
    ``lightcycle`` script does not; either way ``--lifecycle examples.custom_event:LIFECYCLE``
    run from a project's root finds the project's modules (installed ones come first).
    """
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        cwd = os.getcwd()
        top = module_name.split(".")[0]
        if err.name != top or cwd in sys.path or "" in sys.path:
            raise
    sys.path.append(cwd)  # kept: the module may import more of its project later
    return importlib.import_module(module_name)


def run(args: argparse.Namespace) -> int:
    """Verify every trace named in ``args``; returns 0 if all pass, else 1."""
    from lightcycle.states.declaration import LIFECYCLE
    from lightcycle.states.validate import DeclarationError, validate
    from lightcycle.verify import load_trace, verify_trace

    lifecycle = LIFECYCLE
    if args.lifecycle:
        try:
            lifecycle = load_lifecycle(args.lifecycle)
            validate(lifecycle)
        except (ValueError, ImportError, DeclarationError) as err:
            print(f"lightcycle verify: {err}", file=sys.stderr)
            return 1
    status = 0
    for path in args.trace:
        try:
            events = load_trace(path)
        except (OSError, ValueError) as err:
            print(f"FAIL {path}: cannot read the trace: {err}")
            status = 1
            continue
        result = verify_trace(events, lifecycle, partial=args.partial)
        print(result.report(path))
        if not result.ok:
            status = 1
    return status
