"""Mermaid ``stateDiagram-v2`` text of a lifecycle view.

Our own generator, not ``transitions``' mermaid graph engine: that engine labels edges
with event names only, and drops unlabelled edges between nested states (pytransitions
issue 706). Here every drawn transition is one line ``source --> dest : label``, labelled
with its event and the hooks it fires in order (notation in
:mod:`lightcycle.diagrams.labels`); transitions between the same two states share one
line, their labels joined by line breaks (Mermaid draws parallel self-loops on top of
each other).

Mermaid's grammar shapes the text: state ids may not contain ``.`` or ``-`` (paths are
joined with ``_``), edge labels may not contain ``:`` or ``;``, and a nested state is
written ``state "label" as id{`` with no space before the brace (older parsers keep the
space in the id).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from lightcycle.diagrams.labels import legend_rows, stage_colour, transition_text
from lightcycle.diagrams.views import Graph, Node, View, build, view_named

if TYPE_CHECKING:
    from lightcycle.diagrams.overlay import Overlay
from lightcycle.states.model import Lifecycle

HOOKS_PER_LINE = 1
"""Hooks per line in an edge label (Mermaid wraps long labels itself, so one per line reads best)."""

_UNSAFE = re.compile(r"[^A-Za-z0-9_]")


class _Ids:
    """Mermaid ids for state paths: ``.`` and other unsafe characters become ``_``."""

    def __init__(self, graph: Graph) -> None:
        self.ids: dict[str, str] = {}
        taken: set[str] = set()
        for node in graph.all_nodes():
            base = mermaid_id(node.path)
            candidate, n = base, 1
            while candidate in taken:
                n += 1
                candidate = f"{base}_{n}"
            taken.add(candidate)
            self.ids[node.path] = candidate

    def __getitem__(self, path: str) -> str:
        return self.ids[path]


def mermaid_id(path: str) -> str:
    """The Mermaid id of a state path (``fit.train.loaded`` → ``fit_train_loaded``).

    Args:
        path: a state's full path.

    Returns:
        The id (unique within a diagram unless two paths differ only in unsafe characters,
        which the renderer then numbers).
    """
    return _UNSAFE.sub("_", path)


def _label(text: str) -> str:
    """An edge label Mermaid accepts: no ``:`` or ``;``, which end a label."""
    return text.replace(":", "∶").replace(";", ",")


def _node_lines(node: Node, ids: _Ids, indent: str, overlay: Overlay | None = None) -> list[str]:
    counts = f" ({overlay.node_text(node.path)})" if overlay is not None else ""
    if node.kind == "composite":
        lines = [f'{indent}state "{node.label}{counts}" as {ids[node.path]}{{']
        for child in node.children:
            lines.extend(_node_lines(child, ids, indent + "    ", overlay))
        lines.append(f"{indent}}}")
        return lines
    label = node.label
    if node.kind == "collapsed":
        # plain text and <br/> only: other HTML in a state's name is not rendered everywhere
        label = "<br/>".join([f"{node.label} ▸", *node.summary])
    if overlay is not None:
        label += f"<br/>{overlay.node_text(node.path)}"
    return [f'{indent}state "{label}" as {ids[node.path]}']


def render(graph: Graph, overlay: Overlay | None = None, title: str | None = None) -> str:
    """The Mermaid text of a built graph.

    Args:
        graph: from :func:`lightcycle.diagrams.views.build`.
        overlay: a run to draw over it (:func:`lightcycle.diagrams.overlay.run_overlay`):
            counts on states and arrows, what it never reached in grey.
        title: the title; the view's when omitted.

    Returns:
        ``stateDiagram-v2`` text ending in a newline.
    """
    ids = _Ids(graph)
    lines = ["---", f'title: "{title or graph.view.title}"', "---", "stateDiagram-v2"]
    for node in graph.nodes:
        lines.extend(_node_lines(node, ids, "    ", overlay))
    lines.append("")
    if graph.initial is not None:
        lines.append(f"    [*] --> {ids[graph.initial]}")
    edges: dict[tuple[str, str], list[str]] = {}
    for arrow in graph.arrows:
        text = _label(transition_text(arrow.transition, HOOKS_PER_LINE, "<br/>"))
        for src in arrow.sources:
            dest = src if arrow.dest is None else arrow.dest
            counted = text if overlay is None or arrow.dest is None else f"×{overlay.taken(arrow, src)} {text}"
            edges.setdefault((ids[src], ids[dest]), []).append(counted)
    for (src, dest), texts in edges.items():
        lines.append(f"    {src} --> {dest} : {'<br/>'.join(texts)}")
    anchor = ids[graph.nodes[0].path]
    if graph.anywhere:
        lines.append("")
        lines.append(f"    note right of {anchor}")
        groups: dict[tuple[str, ...], list[str]] = {}
        for item in graph.anywhere:
            groups.setdefault(item.where, []).append(transition_text(item.transition, 0, " / "))
        for where, texts in groups.items():
            lines.append(f"        No state change, allowed in every state of {', '.join(where)}")
            lines.extend(f"        {text}" for text in texts)
        lines.append("    end note")
    lines.append("")
    lines.append(f"    note left of {anchor}")
    lines.append("        Edge label: event, then the hooks it fires, in order, one per line")
    lines.extend(f"        {notation} = {meaning}" for _, notation, meaning in legend_rows(graph.transitions()))
    lines.append("        State colour = trainer.state.stage there")
    if overlay is not None:
        lines.append("        ×N on a state = times the run entered it, then hook calls there (and time)")
        lines.append("        ×N on an edge = times the run went that way, grey = never reached")
    if any(n.kind == "collapsed" for n in graph.all_nodes()):
        lines.append("        name ▸ = nested states drawn as one box (see the diagram named by its path)")
    if any(n.kind == "outside" for n in graph.all_nodes()):
        lines.append("        Dashed box = a state outside the one drawn")
    lines.append("    end note")
    classes: dict[str, list[str]] = {}
    outside: list[str] = []
    unreached: list[str] = []
    for node in graph.all_nodes():
        if overlay is not None and not overlay.reached(node.path) and node.kind != "composite":
            unreached.append(ids[node.path])
        elif node.kind == "outside":
            outside.append(ids[node.path])
        elif node.kind != "composite":
            classes.setdefault(node.stage, []).append(ids[node.path])
    if classes:
        lines.append("")
    for stage, members in classes.items():
        name = f"stage_{mermaid_id(stage)}"
        lines.append(f"    classDef {name} fill:{stage_colour(stage)},stroke:#6b7280,color:#111827")
        lines.append(f"    class {','.join(members)} {name}")
    if outside:
        lines.append("    classDef outside fill:#ffffff,stroke:#9ca3af,stroke-dasharray:4 3,color:#4b5563")
        lines.append(f"    class {','.join(outside)} outside")
    if unreached:
        lines.append("    classDef unreached fill:#f9fafb,stroke:#d1d5db,color:#9ca3af")
        lines.append(f"    class {','.join(unreached)} unreached")
    return "\n".join(lines) + "\n"


def mermaid(lifecycle: Lifecycle, view: View | str) -> str:
    """The Mermaid ``stateDiagram-v2`` text of one view of a lifecycle.

    Args:
        lifecycle: the declaration (:data:`~lightcycle.states.LIFECYCLE` or an extended copy).
        view: a :class:`View` or the name of a standard view (``fit``, ``validate``,
            ``test``, ``predict``, ``interrupt``).

    Returns:
        The diagram text, ending in a newline.
    """
    if isinstance(view, str):
        view = view_named(lifecycle, view)
    return render(build(lifecycle, view))
