"""``lightcycle diagram``: the lifecycle as Mermaid, DOT, SVG or pseudocode; a recorded run drawn too.

A run is drawn as a sequence diagram, or over the lifecycle (``--over-lifecycle``).

Examples::

    lightcycle diagram                                   # fit overview, Mermaid, to stdout
    lightcycle diagram --state fit.train.epoch.batch --format svg -o batch.svg
    lightcycle diagram --entry fit --depth 3             # one level deeper than the overview
    lightcycle diagram --entry all --format all -o diagrams/   # regenerate the committed folder
    lightcycle diagram --check -o diagrams/              # exit 1 when diagrams/ is stale
    lightcycle diagram --format outline -o docs/lifecycle.md   # every hook at its place, as pseudocode
    lightcycle diagram --trace run.jsonl -o run.mmd      # sequence diagram of a recorded run
    lightcycle diagram --trace run.jsonl --over-lifecycle --format svg -o run.svg
    lightcycle diagram --trace trace.rank0.jsonl trace.rank1.jsonl -o ranks.mmd   # ranks side by side

The diagram modules are imported only when the subcommand runs, and none imports torch,
so ``lightcycle --help`` and ``lightcycle diagram`` stay well under a second.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from lightcycle.commands.options import LifecycleOptionError, add_lifecycle_option, lifecycle_from
from lightcycle.diagrams import dot as dot_mod
from lightcycle.diagrams import files, overlay, ranks, sequence, views
from lightcycle.diagrams import outline as outline_mod

ENTRIES = ("fit", "validate", "test", "predict", "interrupt")
"""The standard views of :data:`~lightcycle.states.LIFECYCLE` (``all`` means every one)."""

FORMAT_CHOICES = ("mermaid", "dot", "svg", "outline", "all")
"""Values of ``--format`` (``all``: mermaid, dot and svg of each view, and the outline)."""


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register the ``diagram`` subcommand.

    Args:
        subparsers: what ``ArgumentParser.add_subparsers()`` returned.

    Returns:
        The subcommand's parser (its ``func`` default is :func:`run`).
    """
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "diagram",
        help="draw the lifecycle (Mermaid, DOT, SVG) or a recorded run (sequence diagram, or over the lifecycle)",
        description=(
            "Draw the lifecycle declaration: one view per entry point (fit, validate, test, predict), drill-downs "
            "of nested states (e.g. fit.train.epoch.batch) and the interruption overview (interrupt); or write it "
            "as pseudocode with every hook at its place (--format outline). Edge labels "
            "give the event and the hooks it fires in order (cb. = callbacks, lm. = LightningModule, "
            "dm. = datamodule). With --trace, draw a HookRecorder trace as a Mermaid sequence diagram with "
            "repeated batches/epochs folded into loops, or with --over-lifecycle as the lifecycle labelled with "
            "how often the run was in each state and took each edge."
        ),
        epilog="Regenerate the committed folder: lightcycle diagram --entry all --format all -o diagrams/",
    )
    parser.add_argument(
        "--entry",
        default=None,
        metavar="VIEW",
        help="the view to draw: fit (default), validate, test, predict, interrupt, a drill-down such as "
        "fit.train, or 'all' (every view, into the -o folder)",
    )
    parser.add_argument(
        "--state",
        metavar="PATH",
        help="draw this nested state alone, e.g. fit.train.epoch.batch (instead of --entry)",
    )
    parser.add_argument(
        "--depth",
        type=int,
        metavar="N",
        help="draw N levels (the top state counting as 1); deeper nested states become one box saying what "
        "they hold (default: as deep as stays within 15 boxes)",
    )
    parser.add_argument(
        "--format",
        default="mermaid",
        choices=FORMAT_CHOICES,
        help="mermaid (default), dot, svg (needs Graphviz's dot), outline (the entry points as pseudocode, every "
        "hook at its place; --entry picks one) or all (every format, into the -o folder)",
    )
    parser.add_argument(
        "-o",
        "--output",
        metavar="PATH",
        help="output file, or folder (needed for --entry all / --format all); default: stdout",
    )
    parser.add_argument(
        "--trace",
        metavar="TRACE.jsonl",
        nargs="+",
        help="draw this HookRecorder trace; several (one per rank, rank 0 first): the ranks side by side, "
        "one lane each, what not every rank did highlighted",
    )
    parser.add_argument(
        "--over-lifecycle",
        action="store_true",
        help="with --trace: draw the lifecycle (--entry/--state/--depth view; default: the run's entry point) "
        "with the run's counts on states and edges (and times, from HookRecorder(timings=True)); "
        "never reached states are grey",
    )
    parser.add_argument(
        "--title", help="diagram title for --trace (default: the run's entry point and model class, from the trace)"
    )
    add_lifecycle_option(parser)
    parser.add_argument(
        "--check",
        action="store_true",
        help="compare the -o folder with what the declaration generates; exit 1 when it is stale",
    )
    parser.set_defaults(func=run)
    return parser


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


def _error(message: str) -> int:
    print(f"lightcycle diagram: {message}", file=sys.stderr)
    return 2


def _ranks(args: argparse.Namespace) -> int:
    """Several traces (one per rank): the ranks side by side."""
    paths = [Path(p) for p in args.trace]
    traces = [sequence.read_trace(p) for p in paths]
    names = []
    for path, events in zip(paths, traces, strict=True):
        rank = next(((e.get("ctx") or {}).get("rank") for e in events if "rank" in (e.get("ctx") or {})), None)
        names.append(f"rank {rank}: {path.name}" if rank is not None else path.name)
    title = args.title or f"{sequence.run_title(traces[0]) or paths[0].stem}, {len(paths)} ranks side by side"
    text = ranks.ranks_diagram(traces, names, title)
    _emit(text, args.output, f"{paths[0].stem}.ranks.mmd")
    return 0


def run(args: argparse.Namespace) -> int:
    """Run ``lightcycle diagram``.

    Args:
        args: the parsed arguments of :func:`add_parser`'s parser.

    Returns:
        0 on success; 1 when ``--check`` finds stale files or Graphviz is missing; 2 on
        a usage error.
    """
    try:
        lifecycle = lifecycle_from(args.lifecycle)
        if args.over_lifecycle and args.trace is None:
            return _error("--over-lifecycle draws a recorded run: give --trace TRACE.jsonl")
        if args.trace is not None and not args.over_lifecycle:
            if args.format != "mermaid":
                return _error(
                    "--trace draws a Mermaid sequence diagram; use --format mermaid (or add --over-lifecycle)"
                )
            if len(args.trace) > 1:
                return _ranks(args)
            trace = Path(args.trace[0])
            events = sequence.read_trace(trace)
            text = sequence.sequence_diagram(events, args.title or sequence.run_title(events) or trace.stem)
            _emit(text, args.output, f"{trace.stem}.mmd")
            return 0
        known = [v.name for v in views.views(lifecycle)]
        if args.trace is not None:
            if len(args.trace) > 1:
                return _error("--over-lifecycle draws one trace; several traces are drawn side by side without it")
            trace = Path(args.trace[0])
            events = sequence.read_trace(trace)
            name = args.state or args.entry or overlay.entry_of(events, lifecycle)
            view = views.with_depth(lifecycle, name, args.depth)
            fmt = args.format
            if fmt == "all":
                return _error("--over-lifecycle writes one format: mermaid, dot or svg")
            title = args.title or f"{sequence.run_title(events) or trace.stem}, over the lifecycle"
            text = files.overlay_text(lifecycle, view, events, fmt, title)
            _emit(text, args.output, f"{trace.stem}.lifecycle.{files.EXTENSIONS[fmt]}")
            return 0
        if args.check:
            if args.output is None:
                return _error("--check needs -o FOLDER (e.g. -o diagrams/)")
            stale = files.stale_files(args.output, lifecycle)
            for line in stale:
                print(f"{args.output.rstrip('/')}/{line}", file=sys.stderr)
            if stale:
                print(f"diagrams are stale; regenerate with: {files.REGENERATE}", file=sys.stderr)
                return 1
            return 0
        if args.format == files.OUTLINE:
            if args.state is not None or args.depth is not None:
                return _error("--format outline writes whole entry points: drop --state / --depth")
            entries = None if args.entry in (None, "all") else [args.entry]
            _emit(outline_mod.outline(lifecycle, entries), args.output, outline_mod.OUTLINE_NAME)
            return 0
        entry = args.entry or "fit"
        if args.state is not None or args.depth is not None:
            view = views.with_depth(lifecycle, args.state or entry, args.depth)
            fmt = args.format
            if fmt == "all":
                return _error("--state / --depth draw one view: use --format mermaid, dot or svg")
            _emit(files.render_text(lifecycle, view, fmt), args.output, f"{view.name}.{files.EXTENSIONS[fmt]}")
            return 0
        if entry != "all" and entry not in known:
            return _error(f"no view {entry!r}; choose from {', '.join([*known, 'all'])} (or --state PATH)")
        names = known if entry == "all" else [entry]
        formats = list(files.ALL_FORMATS) if args.format == "all" else [args.format]
        if len(names) * len(formats) > 1:
            if args.output is None:
                return _error("--entry all / --format all write files: give -o FOLDER")
            written = files.write_views(args.output, lifecycle, names, formats)
            print(f"{len(written)} file(s) updated in {args.output}", file=sys.stderr)
            return 0
        text = files.render_text(lifecycle, names[0], formats[0])
        _emit(text, args.output, f"{names[0]}.{files.EXTENSIONS[formats[0]]}")
        return 0
    except dot_mod.GraphvizNotFoundError as exc:
        print(f"lightcycle diagram: {exc}", file=sys.stderr)
        return 1
    except (OSError, ValueError, LifecycleOptionError) as exc:
        return _error(str(exc))
