"""The ``lightcycle`` command: ``demo``, ``diagram``, ``run`` and ``verify``.

Each subcommand lives in its own module; registering them imports no torch (the
``lightcycle`` package loads its Trainer lazily, and ``demo`` imports its training module
only when it runs), so ``lightcycle --help``, ``diagram`` and ``verify`` start in a
fraction of a second.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from lightcycle import __version__

_SUBCOMMANDS = {
    "demo": "lightcycle.commands.demo",
    "diagram": "lightcycle.commands.diagram",
    "run": "lightcycle.commands.run",
    "verify": "lightcycle.commands.verify",
}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="lightcycle",
        description="A declarative state-machine training orchestrator for PyTorch (Lightning-compatible hooks).",
    )
    parser.add_argument("--version", action="version", version=f"lightcycle {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for module_name in _SUBCOMMANDS.values():
        importlib.import_module(module_name).add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    module = importlib.import_module(_SUBCOMMANDS[args.command])
    try:
        status: int = module.run(args)
    except BrokenPipeError:
        # the reader went away (`lightcycle verify t.jsonl | head`): as Python's docs advise, point
        # stdout at devnull so the interpreter's final flush does not raise again, and fail quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    return status


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
