"""``lightcycle run [OPTIONS] SCRIPT [ARGS...]`` (or ``-m MODULE``): an unmodified Lightning program on lightcycle.

The program's imports of ``lightning.pytorch``, ``lightning`` and ``pytorch_lightning`` give
lightcycle's modules (:mod:`lightcycle.compat.aliases`), in this process and in every
process it starts: the folder of shim packages (``lightcycle/compat/shim``) goes first on
``PYTHONPATH`` for them, so their first Lightning import installs the same aliases. No
``sitecustomize`` or ``.pth`` file is involved, nothing is installed, and a process that
does not import Lightning is not touched. ``sys.argv``, ``__main__``, ``__file__``,
``sys.path[0]`` and the exit status are those of ``python SCRIPT`` / ``python -m MODULE``
(:mod:`runpy`).

This module imports neither torch nor lightcycle's runtime at import time, so
``lightcycle --help`` stays fast.
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import runpy
import shutil
import sys
import tempfile
from typing import Any

from lightcycle.compat.aliases import install
from lightcycle.compat.run_trace import TRACE_ENV, numbered, series
from lightcycle.diagrams.sequence import read_trace, sequence_diagram

SHIM_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "compat", "shim")
"""The folder holding the ``lightning``/``pytorch_lightning``/``lightning_fabric`` shim packages."""


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``lightcycle run`` on an ``argparse`` subparsers object.

    Args:
        sub: what ``ArgumentParser.add_subparsers()`` returned.

    Returns:
        The subcommand's parser.
    """
    p: argparse.ArgumentParser = sub.add_parser(
        "run",
        help="run an unmodified Lightning program on lightcycle (record, check, draw it)",
        description=(
            "Run SCRIPT (or -m MODULE) as `python SCRIPT ARGS...` would, with its imports of lightning.pytorch, "
            "lightning and pytorch_lightning answered by lightcycle, also in the processes it starts. Options come "
            "before SCRIPT; everything after SCRIPT is the program's."
        ),
        epilog=(
            "--trace FILE: every Trainer the program builds records its hooks (HookRecorder, JSON lines); the first "
            "Trainer writes FILE, the next ones stem.1.suffix, stem.2.suffix, ... (run.jsonl, run.1.jsonl); the "
            "series is removed before the run. Check them with `lightcycle verify FILE`."
        ),
    )
    p.add_argument("--trace", metavar="FILE", help="record every Trainer's hooks to FILE (then FILE's numbered series)")
    p.add_argument(
        "--checked",
        action="store_true",
        help="checked mode for every Trainer, even where LIGHTCYCLE_CHECKED=0 (it is the default)",
    )
    p.add_argument(
        "--diagram",
        metavar="FILE",
        help="write the run's Mermaid sequence diagram to FILE (one per Trainer, numbered like --trace)",
    )
    p.add_argument(
        "-m",
        dest="module",
        nargs=argparse.REMAINDER,
        metavar="MODULE",
        help="run library module MODULE as a script (as python -m); the rest are its arguments",
    )
    p.add_argument(
        "program", nargs=argparse.REMAINDER, metavar="SCRIPT [ARGS...]", help="the program and its arguments"
    )
    return p


def _child_env(trace: str | None, checked: bool) -> None:
    """Set the variables this process and its children read (aliases via the shim path, trace, checked)."""
    paths = [SHIM_DIR]
    # Children must import this lightcycle (a source checkout may not be installed); a
    # site-packages folder is already on every interpreter's path and is not moved forward.
    root = os.path.dirname(os.path.dirname(SHIM_DIR))
    if os.path.basename(root) not in ("site-packages", "dist-packages"):
        paths.append(root)
    previous = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(paths + ([previous] if previous else []))
    # multiprocessing's spawn start method hands the child this process's sys.path (not
    # PYTHONPATH's), so the shim goes here too, ahead of site-packages; in this process the
    # finder answers Lightning names before any path entry is looked at.
    sys.path[1:1] = [p for p in paths if p not in sys.path]
    if trace is not None:
        os.environ[TRACE_ENV] = trace
    if checked:
        os.environ["LIGHTCYCLE_CHECKED"] = "1"


def _clear_series(path: str) -> None:
    """Remove ``path`` and every ``stem.N.suffix`` beside it (left by an earlier run)."""
    stem, suffix = os.path.splitext(path)
    numbered = re.compile(re.escape(stem) + r"\.\d+" + re.escape(suffix) + "$")
    for name in [path, *glob.glob(glob.escape(stem) + ".*" + glob.escape(suffix))]:
        if (name == path or numbered.match(name)) and os.path.isfile(name):
            os.remove(name)


def _draw(trace: str, diagram: str, title: str) -> None:
    """One sequence diagram per recorded Trainer (``diagram``, then its numbered series)."""
    _clear_series(diagram)
    for index, path in enumerate(series(trace)):
        label = title if index == 0 else f"{title} (Trainer {index + 1})"
        with open(numbered(diagram, index), "w", encoding="utf-8") as fh:
            fh.write(sequence_diagram(read_trace(path), label))


def _execute(module: list[str] | None, program: list[str]) -> None:
    install()
    if module:
        name, *rest = module
        sys.argv = [name, *rest]  # runpy puts the module's file in sys.argv[0], as python -m does
        sys.path[0] = os.getcwd()
        runpy.run_module(name, run_name="__main__", alter_sys=True)
    else:
        script, *rest = program
        sys.argv = [script, *rest]
        sys.path[0] = os.path.dirname(os.path.abspath(script))
        runpy.run_path(script, run_name="__main__")


def run(args: argparse.Namespace) -> int:
    """Run the program; returns 0 when it ends normally.

    Its ``SystemExit`` (``sys.exit(n)``) and exceptions propagate as under ``python SCRIPT``
    (the interpreter prints the traceback and exits with status 1), after ``--diagram``
    files are written.
    """
    program: list[str] = args.program or []
    if args.module == []:
        print("lightcycle run: -m needs a MODULE name", file=sys.stderr)
        return 2
    if not args.module and not program:
        print("lightcycle run: give SCRIPT [ARGS...] or -m MODULE [ARGS...]", file=sys.stderr)
        return 2
    if not args.module and not os.path.exists(program[0]):
        print(f"lightcycle run: can't open file {program[0]!r}: no such file", file=sys.stderr)
        return 2
    trace = os.path.abspath(args.trace) if args.trace else None
    scratch = None
    if args.diagram and trace is None:
        scratch = tempfile.mkdtemp(prefix="lightcycle-run-")
        trace = os.path.join(scratch, "trace.jsonl")
    if trace is not None:
        _clear_series(trace)
    _child_env(trace, args.checked)
    title = os.path.basename(args.module[0] if args.module else program[0])
    try:
        _execute(args.module, program)
    finally:
        if args.diagram and trace is not None:
            _draw(trace, os.path.abspath(args.diagram), title)
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    return 0
