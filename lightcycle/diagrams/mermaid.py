"""Mermaid ``stateDiagram-v2`` text of a lifecycle view.

Our own generator, not ``transitions``' mermaid graph engine: that engine labels edges
with trigger names only, and drops unlabelled edges between nested states (pytransitions
issue 706). Here every drawn transition is one line ``source --> dest : label``, labelled
with its trigger and the hooks it fires in order (notation in
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

from lightcycle.diagrams.labels import legend_rows, stage_colour, transition_text
from lightcycle.diagrams.views import Graph, Node, View, build, view_named
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


def _node_lines(node: Node, ids: _Ids, indent: str) -> list[str]:
    if node.kind == "composite":
        lines = [f'{indent}state "{node.label}" as {ids[node.path]}{{']
        for child in node.children:
            lines.extend(_node_lines(child, ids, indent + "    "))
        lines.append(f"{indent}}}")
        return lines
    label = node.label
    if node.kind == "collapsed":
        label = f"{node.label} (nested states)"
    return [f'{indent}state "{label}" as {ids[node.path]}']


def render(graph: Graph) -> str:
    """The Mermaid text of a built graph.

    Args:
        graph: from :func:`lightcycle.diagrams.views.build`.

    Returns:
        ``stateDiagram-v2`` text ending in a newline.
    """
    ids = _Ids(graph)
    lines = ["---", f'title: "{graph.view.title}"', "---", "stateDiagram-v2"]
    for node in graph.nodes:
        lines.extend(_node_lines(node, ids, "    "))
    lines.append("")
    lines.append(f"    [*] --> {ids[graph.initial]}")
    edges: dict[tuple[str, str], list[str]] = {}
    for arrow in graph.arrows:
        text = _label(transition_text(arrow.transition, HOOKS_PER_LINE, "<br/>"))
        for src in arrow.sources:
            dest = src if arrow.dest is None else arrow.dest
            edges.setdefault((ids[src], ids[dest]), []).append(text)
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
    lines.append("        Edge label: trigger, then the hooks it fires, in order, one per line")
    lines.extend(f"        {notation} = {meaning}" for _, notation, meaning in legend_rows(graph.transitions()))
    lines.append("        State colour = trainer.state.stage there")
    lines.append("    end note")
    classes: dict[str, list[str]] = {}
    for node in graph.all_nodes():
        if node.kind != "composite":
            classes.setdefault(node.stage, []).append(ids[node.path])
    if classes:
        lines.append("")
    for stage, members in classes.items():
        name = f"stage_{mermaid_id(stage)}"
        lines.append(f"    classDef {name} fill:{stage_colour(stage)},stroke:#6b7280,color:#111827")
        lines.append(f"    class {','.join(members)} {name}")
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
