"""``lightcycle demo``: train a small classifier, verify its own trace, draw the run.

The subcommand's options live here and the training in :mod:`lightcycle.commands.demo_run`,
so registering the subcommand (which ``lightcycle --help`` does) imports no torch.
"""

from __future__ import annotations

import argparse
from typing import Any

from lightcycle.commands.options import add_lifecycle_option


def add_parser(sub: Any) -> None:
    """Register ``lightcycle demo`` on an ``argparse`` subparsers object."""
    p = sub.add_parser(
        "demo",
        help="train a small model on synthetic data, verify its hook trace and draw the run",
        description=(
            "Train a small classifier on synthetic spirals (no download), then show lightcycle's three uses "
            "on that run: verify the recorded hook trace against the lifecycle, draw it as a sequence diagram "
            "and over the lifecycle, and print the commands that reproduce each."
        ),
    )
    p.add_argument("--epochs", type=int, default=4, help="training epochs (default 4)")
    p.add_argument("--samples", type=int, default=2048, help="training samples (default 2048)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument(
        "-o",
        "--output",
        default="lightcycle-demo",
        metavar="DIR",
        help="where the trace and diagrams go (default: lightcycle-demo)",
    )
    p.add_argument("--no-progress-bar", action="store_true", help="hide the progress bar")
    add_lifecycle_option(p)


def run(args: argparse.Namespace) -> int:
    """Run the demo (imports torch and the Trainer only now).

    Args:
        args: the parsed arguments of :func:`add_parser`'s parser.

    Returns:
        0 when the run's trace follows the lifecycle, 1 otherwise.
    """
    # deferred: torch for the CLI start-up (demo_run trains; `lightcycle --help` imports this module)
    from lightcycle.commands import demo_run

    return demo_run.run(args)
