"""``lightcycle diagram``: the lifecycle as Mermaid, DOT or SVG; a trace as a sequence diagram.

Examples::

    lightcycle diagram                                   # fit lifecycle, Mermaid, to stdout
    lightcycle diagram --entry interrupt --format svg -o interrupt.svg
    lightcycle diagram --entry all --format all -o diagrams/   # regenerate the committed folder
    lightcycle diagram --check -o diagrams/              # exit 1 when diagrams/ is stale
    lightcycle diagram --trace run.jsonl -o run.mmd      # sequence diagram of a recorded run

The diagram modules are imported only when the subcommand runs, so ``lightcycle --help``
stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lightcycle.states.model import Lifecycle

ENTRIES = ("fit", "validate", "test", "predict", "interrupt")
"""The standard views of :data:`~lightcycle.states.LIFECYCLE` (``all`` means every one)."""

FORMAT_CHOICES = ("mermaid", "dot", "svg", "all")
"""Values of ``--format`` (``all``: mermaid, dot and svg)."""


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register the ``diagram`` subcommand.

    Args:
        subparsers: what ``ArgumentParser.add_subparsers()`` returned.

    Returns:
        The subcommand's parser (its ``func`` default is :func:`run`).
    """
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "diagram",
        help="draw the lifecycle (Mermaid, DOT, SVG) or a recorded run (sequence diagram)",
        description=(
            "Draw the lifecycle declaration: one view per entry point (fit, validate, test, predict) "
            "and the interruption overview (interrupt). Edge labels give the trigger and the hooks it "
            "fires in order (cb. = callbacks, lm. = LightningModule, dm. = datamodule). With --trace, "
            "draw a HookRecorder trace as a Mermaid sequence diagram with repeated batches/epochs folded "
            "into loops."
        ),
        epilog="Regenerate the committed folder: lightcycle diagram --entry all --format all -o diagrams/",
    )
    parser.add_argument(
        "--entry",
        default="fit",
        metavar="{" + ",".join((*ENTRIES, "all")) + "}",
        help="the view to draw (default: fit); 'all' draws every view into the -o folder",
    )
    parser.add_argument(
        "--format",
        default="mermaid",
        choices=FORMAT_CHOICES,
        help="mermaid (default), dot, svg (needs Graphviz's dot) or all (into the -o folder)",
    )
    parser.add_argument(
        "-o",
        "--output",
        metavar="PATH",
        help="output file, or folder (needed for --entry all / --format all); default: stdout",
    )
    parser.add_argument("--trace", metavar="TRACE.jsonl", help="draw this HookRecorder trace as a sequence diagram")
    parser.add_argument("--title", help="diagram title for --trace (default: the trace's file name)")
    parser.add_argument(
        "--lifecycle",
        metavar="MODULE:ATTR",
        help="draw this Lifecycle instead of lightcycle's (e.g. myproject.loop:LIFECYCLE, an extended copy)",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="compare the -o folder with what the declaration generates; exit 1 when it is stale",
    )
    parser.set_defaults(func=run)
    return parser


def _load_lifecycle(spec: str | None) -> Lifecycle:
    from lightcycle.states.declaration import LIFECYCLE
    from lightcycle.states.model import Lifecycle

    if spec is None:
        return LIFECYCLE
    module_name, _, attr = spec.partition(":")
    obj = getattr(importlib.import_module(module_name), attr or "LIFECYCLE")
    if not isinstance(obj, Lifecycle):
        raise ValueError(f"{spec} is a {type(obj).__name__}, not a lightcycle Lifecycle")
    return obj


def _emit(text: str, output: str | None, name: str) -> None:
    if output is None:
        sys.stdout.write(text)
        return
    path = Path(output)
    if path.is_dir() or output.endswith(("/", "\\")):
        path.mkdir(parents=True, exist_ok=True)
        path = path / name
    path.write_text(text)
    print(f"wrote {path}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    """Run ``lightcycle diagram``.

    Args:
        args: the parsed arguments of :func:`add_parser`'s parser.

    Returns:
        0 on success; 1 when ``--check`` finds stale files or Graphviz is missing; 2 on
        a usage error.
    """
    from lightcycle.diagrams import dot as dot_mod
    from lightcycle.diagrams import files, sequence, views

    try:
        if args.trace is not None:
            if args.format != "mermaid":
                print(
                    "lightcycle diagram: --trace draws a Mermaid sequence diagram; use --format mermaid",
                    file=sys.stderr,
                )
                return 2
            trace = Path(args.trace)
            text = sequence.sequence_diagram(sequence.read_trace(trace), args.title or trace.stem)
            _emit(text, args.output, f"{trace.stem}.mmd")
            return 0
        lifecycle = _load_lifecycle(args.lifecycle)
        known = [v.name for v in views.views(lifecycle)]
        if args.entry != "all" and args.entry not in known:
            print(
                f"lightcycle diagram: no view {args.entry!r}; choose from {', '.join([*known, 'all'])}", file=sys.stderr
            )
            return 2
        if args.check:
            if args.output is None:
                print("lightcycle diagram: --check needs -o FOLDER (e.g. -o diagrams/)", file=sys.stderr)
                return 2
            stale = files.stale_files(args.output, lifecycle)
            for line in stale:
                print(f"{args.output.rstrip('/')}/{line}", file=sys.stderr)
            if stale:
                print(f"diagrams are stale; regenerate with: {files.REGENERATE}", file=sys.stderr)
                return 1
            return 0
        names = known if args.entry == "all" else [args.entry]
        formats = list(files.FORMATS) if args.format == "all" else [args.format]
        if len(names) * len(formats) > 1:
            if args.output is None:
                print("lightcycle diagram: --entry all / --format all write files: give -o FOLDER", file=sys.stderr)
                return 2
            written = files.write_views(args.output, lifecycle, names, formats)
            print(f"{len(written)} file(s) updated in {args.output}", file=sys.stderr)
            return 0
        text = files.render_text(lifecycle, names[0], formats[0])
        _emit(text, args.output, f"{names[0]}.{files.EXTENSIONS[formats[0]]}")
        return 0
    except dot_mod.GraphvizNotFoundError as exc:
        print(f"lightcycle diagram: {exc}", file=sys.stderr)
        return 1
    except (OSError, ValueError) as exc:
        print(f"lightcycle diagram: {exc}", file=sys.stderr)
        return 2
