"""The committed ``diagrams/`` folder: writing it and telling when it is stale.

For every standard view (``fit``, ``validate``, ``test``, ``predict``, ``interrupt``) the
folder holds ``<view>.mmd`` (Mermaid), ``<view>.dot`` (Graphviz) and ``<view>.svg``
(rendered by ``dot``), and once for the whole lifecycle ``lifecycle.md``, the pseudocode
outline (:mod:`lightcycle.diagrams.outline`, also kept as ``docs/lifecycle.md``). Mermaid,
DOT and outline text must equal what the declaration generates;
an SVG is current when it carries the hash of the current DOT text (see
:data:`lightcycle.diagrams.dot.HASH_COMMENT`), so checking needs no Graphviz and
regenerating re-renders an SVG only when its DOT changed.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import lightcycle.diagrams.dot as dot_mod
import lightcycle.diagrams.mermaid as mermaid_mod
from lightcycle.diagrams.outline import OUTLINE_NAME, outline
from lightcycle.diagrams.overlay import run_overlay
from lightcycle.diagrams.views import View, build, view_named, views
from lightcycle.states.declaration import LIFECYCLE
from lightcycle.states.model import Lifecycle

FORMATS = ("mermaid", "dot", "svg")
"""The lifecycle diagram formats, in the order files are written."""

EXTENSIONS = {"mermaid": "mmd", "dot": "dot", "svg": "svg"}
"""File extension by format."""

OUTLINE = "outline"
"""The pseudocode outline's format name: one file for the whole lifecycle, not one per view."""

ALL_FORMATS = (*FORMATS, OUTLINE)
"""What ``--format all`` writes: every view in every diagram format, and the outline."""

REGENERATE = "lightcycle diagram --entry all --format all -o diagrams/"
"""The command that rewrites the committed ``diagrams/`` folder (from the repository root)."""


def _lifecycle(lifecycle: Lifecycle | None) -> Lifecycle:
    return LIFECYCLE if lifecycle is None else lifecycle


def render_text(lifecycle: Lifecycle, view: View | str, fmt: str) -> str:
    """One view in one format.

    Args:
        lifecycle: the declaration.
        view: a view or a standard view's name.
        fmt: ``mermaid``, ``dot`` or ``svg`` (needs Graphviz).

    Returns:
        The diagram text.

    Raises:
        ValueError: unknown format or view.
        lightcycle.diagrams.dot.GraphvizNotFoundError: ``svg`` without Graphviz.
    """
    if isinstance(view, str):
        view = view_named(lifecycle, view)
    if fmt == "mermaid":
        return mermaid_mod.mermaid(lifecycle, view)
    if fmt == "dot":
        return dot_mod.dot(lifecycle, view)
    if fmt == "svg":
        return dot_mod.svg(lifecycle, view)
    raise ValueError(f"unknown diagram format {fmt!r}; known: {', '.join(FORMATS)}")


def overlay_text(
    lifecycle: Lifecycle, view: View, events: Sequence[Mapping[str, Any]], fmt: str, title: str | None = None
) -> str:
    """A recorded run drawn over one view, in one format.

    Args:
        lifecycle: the declaration.
        view: the view to draw over.
        events: a lightcycle HookRecorder trace.
        fmt: ``mermaid``, ``dot`` or ``svg`` (needs Graphviz).
        title: the title; the view's when omitted.

    Returns:
        The diagram text.

    Raises:
        ValueError: unknown format, or a trace without lifecycle states.
        lightcycle.diagrams.dot.GraphvizNotFoundError: ``svg`` without Graphviz.
    """
    graph = build(lifecycle, view)
    overlay = run_overlay(graph, events)
    if fmt == "mermaid":
        return mermaid_mod.render(graph, overlay, title)
    if fmt == "dot":
        return dot_mod.render(graph, overlay, title)
    if fmt == "svg":
        return dot_mod.svg_from_dot(dot_mod.render(graph, overlay, title))
    raise ValueError(f"unknown diagram format {fmt!r}; known: {', '.join(FORMATS)}")


def write_views(
    outdir: str | os.PathLike[str],
    lifecycle: Lifecycle | None = None,
    names: Iterable[str] | None = None,
    formats: Iterable[str] = ALL_FORMATS,
) -> list[Path]:
    """Write views as ``<outdir>/<view>.<ext>``; an SVG is re-rendered only when its DOT changed.

    Args:
        outdir: the folder (created when missing).
        lifecycle: the declaration; :data:`~lightcycle.states.LIFECYCLE` when omitted.
        names: the views to write; every standard view when omitted.
        formats: among :data:`ALL_FORMATS`; ``outline`` writes ``<outdir>/lifecycle.md``
            (every entry point, whatever ``names`` says).

    Returns:
        The files written (SVGs that were already current are not rewritten nor listed).

    Raises:
        lightcycle.diagrams.dot.GraphvizNotFoundError: an SVG needs rendering and Graphviz
            is missing (the Mermaid and DOT files are written first).
    """
    lc = _lifecycle(lifecycle)
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    chosen = [view_named(lc, n) for n in names] if names is not None else list(views(lc))
    fmts = list(formats)
    written: list[Path] = []
    if OUTLINE in fmts:
        fmts.remove(OUTLINE)
        path = out / OUTLINE_NAME
        text = outline(lc)
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
            written.append(path)
    pending_svg: list[tuple[Path, str]] = []
    for view in chosen:
        dot_text = dot_mod.dot(lc, view)
        for fmt in fmts:
            path = out / f"{view.name}.{EXTENSIONS[fmt]}"
            if fmt == "svg":
                if not (path.exists() and dot_mod.svg_source_hash(path.read_text()) == dot_mod.dot_hash(dot_text)):
                    pending_svg.append((path, dot_text))
                continue
            text = dot_text if fmt == "dot" else render_text(lc, view, fmt)
            if not path.exists() or path.read_text() != text:
                path.write_text(text)
                written.append(path)
    for path, dot_text in pending_svg:
        path.write_text(dot_mod.svg_from_dot(dot_text))
        written.append(path)
    return written


def stale_files(outdir: str | os.PathLike[str], lifecycle: Lifecycle | None = None) -> list[str]:
    """What in a diagrams folder differs from what the declaration generates.

    Mermaid, DOT and the outline are compared exactly; an SVG must exist and carry the
    hash of the current DOT text. Needs no Graphviz.

    Args:
        outdir: the folder (normally the repository's ``diagrams/``).
        lifecycle: the declaration; :data:`~lightcycle.states.LIFECYCLE` when omitted.

    Returns:
        One line per stale or missing file, e.g. ``fit.mmd: differs``; empty when current.
    """
    lc = _lifecycle(lifecycle)
    out = Path(outdir)
    problems: list[str] = []
    page = out / OUTLINE_NAME
    if not page.exists():
        problems.append(f"{OUTLINE_NAME}: missing")
    elif page.read_text() != outline(lc):
        problems.append(f"{OUTLINE_NAME}: differs")
    for view in views(lc):
        dot_text = dot_mod.dot(lc, view)
        expected = {"mermaid": mermaid_mod.mermaid(lc, view), "dot": dot_text}
        for fmt in FORMATS:
            name = f"{view.name}.{EXTENSIONS[fmt]}"
            path = out / name
            if not path.exists():
                problems.append(f"{name}: missing")
                continue
            text = path.read_text()
            if fmt == "svg":
                if dot_mod.svg_source_hash(text) != dot_mod.dot_hash(dot_text):
                    problems.append(f"{name}: not rendered from the current {view.name}.dot")
            elif text != expected[fmt]:
                problems.append(f"{name}: differs")
    return problems


def readme_mermaid(lifecycle: Lifecycle | None = None, view: str = "fit", fenced: bool = True) -> str:
    """The fit lifecycle as a Mermaid block for the README.

    The text is ``diagrams/fit.mmd``; embed either.

    Args:
        lifecycle: the declaration; :data:`~lightcycle.states.LIFECYCLE` when omitted.
        view: the view to embed.
        fenced: wrap it in a Markdown ```` ```mermaid ```` fence.

    Returns:
        The Markdown (or bare Mermaid) text, ending in a newline.
    """
    text = mermaid_mod.mermaid(_lifecycle(lifecycle), view)
    return f"```mermaid\n{text}```\n" if fenced else text
