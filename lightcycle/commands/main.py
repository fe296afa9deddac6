"""The ``lightcycle`` command: ``demo``, ``diagram``, ``run`` and ``verify``.

Each subcommand lives in its own module and is imported only when used, so
``lightcycle --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

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
    sub = parser.add_subparsers(dest="command", required=True)
    for module_name in _SUBCOMMANDS.values():
        importlib.import_module(module_name).add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    module = importlib.import_module(_SUBCOMMANDS[args.command])
    status: int = module.run(args)
    return status


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
