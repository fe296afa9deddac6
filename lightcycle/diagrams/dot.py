"""Graphviz DOT text of a lifecycle view, and SVG/PNG rendered by Graphviz's ``dot``.

Nested states are clusters; each edge is labelled with its event (bold) and the hooks
it fires, one per line, coloured by who receives them (callbacks blue, module amber,
datamodule green, "datamodule else module" violet, runtime actions grey), with the
notation of :mod:`lightcycle.diagrams.labels` so the colours are a help, not a need.

A transition with several sources is drawn once: its sources join in a small dot and one
labelled arrow leaves it. A transition leaving from every state of a nested state starts
at that cluster's border (``ltail``). Edges into the state with stage ``KEEP``
(``interrupted``) are red; edges back to the initial state (``finish``) are dashed.

SVG files carry the SHA-256 of the DOT text they were rendered from in a comment
(:data:`HASH_COMMENT`), so a check can tell a stale SVG without running Graphviz, and
the version comment Graphviz writes is removed.
"""

from __future__ import annotations

import hashlib
import html
import re
import shutil
import subprocess
from collections.abc import Sequence
from typing import TYPE_CHECKING

from lightcycle.diagrams.labels import HOOK_COLOURS, legend_rows, stage_colour, steps
from lightcycle.diagrams.views import Arrow, Graph, Node, View, build, view_named
from lightcycle.states.model import SEPARATOR, Lifecycle, Transition

if TYPE_CHECKING:
    from lightcycle.diagrams.overlay import Overlay

FONT = "Helvetica"
"""Font of every text in the drawings."""

HASH_COMMENT = "lightcycle-dot-sha256"
"""The SVG comment ``<!-- lightcycle-dot-sha256: HEX -->`` naming the DOT source's hash."""

INSTALL_HINT = (
    "Graphviz's `dot` program is needed to render SVG/PNG diagrams and was not found on PATH. "
    "Install Graphviz: `apt-get install -y graphviz` (Debian/Ubuntu), `brew install graphviz` (macOS), "
    "`conda install -c conda-forge graphviz`, or see https://graphviz.org/download/. "
    "Mermaid and DOT text need no Graphviz: use --format mermaid or --format dot."
)
"""What to do when ``dot`` is missing."""

_INTERRUPT_COLOUR = "#b91c1c"
_EDGE_COLOUR = "#4b5563"
_CLUSTER_COLOURS = ("#9ca3af", "#9ca3af", "#d1d5db")
_UNREACHED = 'style="rounded,filled", fillcolor="#f9fafb", color="#d1d5db", fontcolor="#9ca3af"'
_COUNT_COLOUR = "#be185d"  # a run's counts: a colour no hook or stage uses


class GraphvizNotFoundError(RuntimeError):
    """Graphviz's ``dot`` program is not installed; the message says how to get it."""


def _q(text: str) -> str:
    """A DOT double-quoted string."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _h(text: str) -> str:
    """Text escaped for a DOT HTML-like label."""
    return html.escape(text, quote=False)


def _transition_html(transition: Transition, size: int = 10) -> str:
    """Bold event, then each step on its own left-aligned line in its colour."""
    parts = [f"<b>{_h(transition.trigger.name)}</b>"]
    for kind, text in steps(transition):
        parts.append(f'<font color="{HOOK_COLOURS[kind]}" point-size="{size}">{_h(text)}</font>')
    return '<br align="left"/>'.join(parts) + '<br align="left"/>'


def _cluster(path: str) -> str:
    return f"cluster_{path}"


class _Writer:
    """Accumulates DOT lines for one graph."""

    def __init__(self, graph: Graph, overlay: Overlay | None = None, title: str | None = None) -> None:
        self.graph = graph
        self.overlay = overlay
        self.title = title or graph.view.title
        self.nodes = {n.path: n for n in graph.all_nodes()}
        self.lines: list[str] = []
        self.junctions: dict[str, list[str]] = {}  # cluster path ("" top level) -> lines
        self.anchor: dict[str, str] = {}
        for node in graph.all_nodes():
            if node.kind == "composite":
                self.anchor[node.path] = self._anchor(node)
        self.keep = {n.path for n in graph.all_nodes() if n.stage == "keep" and n.kind != "composite"}

    def _anchor(self, node: Node) -> str:
        """A drawn non-composite node inside ``node``, from its middle: edges from a cluster start there."""
        inner = [n.path for n in node.walk() if n.kind != "composite"]
        return inner[len(inner) // 2]

    def endpoint(self, path: str) -> tuple[str, str]:
        """The DOT node of a drawn node and the ``ltail`` attribute text when it is a cluster."""
        if self.nodes[path].kind == "composite":
            return self.anchor[path], f"ltail={_q(_cluster(path))}"
        return path, ""

    def node_line(self, node: Node, indent: str) -> str:
        label = _h(node.label)
        shape = "box"
        style = ""
        if node.kind == "collapsed":
            rows = "".join(f'<br/><font point-size="10">{_h(row)}</font>' for row in node.summary)
            label = f"<b>{label}</b>{rows}"
            shape = "box3d"
        elif node.kind == "outside":
            label = f"<i>{label}</i>"
            style = 'style="rounded,dashed", fillcolor="white", fontcolor="#4b5563"'
        if self.overlay is not None:
            label += (
                f'<br/><font point-size="10" color="{_COUNT_COLOUR}">{_h(self.overlay.node_text(node.path))}</font>'
            )
            if not self.overlay.reached(node.path):
                style = _UNREACHED
        tooltip = node.path + (f": {node.doc}" if node.doc else "") + f" (stage: {node.stage})"
        attrs = [
            f"label=<{label}>",
            f"shape={shape}",
            f'fillcolor="{stage_colour(node.stage)}"',
            f"tooltip={_q(tooltip)}",
        ]
        if style:
            attrs[2] = style
        if node.path == self.graph.initial:
            attrs.append("penwidth=2")
        return f"{indent}{_q(node.path)} [{', '.join(attrs)}];"

    def tree(self, node: Node, depth: int) -> list[str]:
        indent = "    " * depth
        if node.kind != "composite":
            return [self.node_line(node, indent)]
        colour = _CLUSTER_COLOURS[min(depth - 1, len(_CLUSTER_COLOURS) - 1)]
        out = [
            f"{indent}subgraph {_q(_cluster(node.path))} {{",
            f"{indent}    label=<<b>{_h(node.label)}</b>{self._cluster_counts(node)}>; labelloc=t; labeljust=c;",
            f'{indent}    style="rounded"; color="{colour}"; fontsize={max(16 - 2 * depth, 10)};',
            f"{indent}    tooltip={_q(node.path + (': ' + node.doc if node.doc else ''))};",
        ]
        for child in node.children:
            out.extend(self.tree(child, depth + 1))
        out.extend(self.junctions.get(node.path, []))
        out.append(f"{indent}}}")
        return out

    def _cluster_counts(self, node: Node) -> str:
        if self.overlay is None:
            return ""
        return f' <font point-size="10" color="{_COUNT_COLOUR}">{_h(self.overlay.node_text(node.path))}</font>'

    def common_cluster(self, paths: list[str]) -> str:
        """The deepest composite containing every path ("" for the top level)."""
        split = [p.split(SEPARATOR) for p in paths]
        common: list[str] = []
        for parts in zip(*split, strict=False):
            if len(set(parts)) != 1:
                break
            common.append(parts[0])
        while common:
            candidate = SEPARATOR.join(common)
            if candidate in self.nodes and self.nodes[candidate].kind == "composite":
                return candidate
            common.pop()
        return ""

    def edge_style(self, arrow: Arrow) -> list[str]:
        out = []
        if arrow.dest in self.keep:
            out += [f'color="{_INTERRUPT_COLOUR}"', f'fontcolor="{_INTERRUPT_COLOUR}"', "penwidth=1.6"]
        elif arrow.dest == self.graph.initial:
            out += ["style=dashed"]
        if arrow.transition.trigger.doc:
            out.append(f"tooltip={_q(arrow.transition.trigger.name + ': ' + arrow.transition.trigger.doc)}")
        return out

    def edges(self) -> list[str]:
        out: list[str] = []
        loops: dict[str, list[Transition]] = {}
        for i, arrow in enumerate(self.graph.arrows):
            if arrow.dest is None:
                for src in arrow.sources:
                    loops.setdefault(src, []).append(arrow.transition)
                continue
            # the label is a node of its own: dot never lets two labels overlap, and the
            # sources of a multi-source transition join there
            label_node = f"t{i}:{arrow.transition.trigger.name}"
            where = self.common_cluster([*arrow.sources, arrow.dest])
            style = self.edge_style(arrow)
            tooltip = [a for a in style if a.startswith("tooltip=")]
            colour = [a for a in style if not a.startswith("tooltip=")]
            font = [f'fontcolor="{_INTERRUPT_COLOUR}"'] if arrow.dest in self.keep else []
            text = _transition_html(arrow.transition)
            if self.overlay is not None:
                taken = self.overlay.taken(arrow)
                text = f'<font color="{_COUNT_COLOUR}"><b>×{taken}</b></font> ' + text
                if not taken:
                    colour = ['color="#d1d5db"']
                    font = ['fontcolor="#9ca3af"']
            node_attrs = ["shape=plain", 'style=""', f"label=<{text}>", *tooltip, *font]
            self.junctions.setdefault(where, []).append(f"        {_q(label_node)} [{', '.join(node_attrs)}];")
            for src in arrow.sources:
                tail, ltail = self.endpoint(src)
                attrs = ", ".join(a for a in ("arrowhead=none", ltail, *colour) if a)
                out.append(f"    {_q(tail)} -> {_q(label_node)} [{attrs}];")
            out.append(f"    {_q(label_node)} -> {_q(arrow.dest)} [{', '.join(colour)}];")
        for src, transitions in loops.items():
            label = '<br align="left"/>'.join(_transition_html(t) for t in transitions)
            out.append(f'    {_q(src)} -> {_q(src)} [label=<{label}>, color="#6b7280", style=dotted];')
        return out

    def legend(self) -> list[str]:
        rows = ['<tr><td colspan="2" align="left"><b>Legend</b></td></tr>']
        rows.append(
            '<tr><td colspan="2" align="left"><font point-size="10">edge: <b>event</b>, '
            "then the hooks it fires, in order</font></td></tr>"
        )
        for kind, notation, meaning in legend_rows(self.graph.transitions()):
            rows.append(
                f'<tr><td align="left"><font color="{HOOK_COLOURS[kind]}">{_h(notation)}</font></td>'
                f'<td align="left"><font point-size="10">{_h(meaning)}</font></td></tr>'
            )
        stages = sorted({n.stage for n in self.graph.all_nodes() if n.kind != "composite"}, key=_stage_order)
        cells = "".join(f'<td bgcolor="{stage_colour(s)}"><font point-size="10">{_h(s)}</font></td>' for s in stages)
        rows.append(
            '<tr><td align="left"><font point-size="10">state fill = stage</font></td>'
            f'<td><table border="0" cellspacing="2" cellpadding="2"><tr>{cells}</tr></table></td></tr>'
        )
        rows.append(
            f'<tr><td align="left"><font color="{_INTERRUPT_COLOUR}">red edge</font></td>'
            '<td align="left"><font point-size="10">interruption (on_exception fires)</font></td></tr>'
        )
        rows.append(
            '<tr><td align="left">dashed edge</td><td align="left"><font point-size="10">the run ends: '
            "back to the initial state</font></td></tr>"
        )
        if self.overlay is not None:
            timed = ", time spent" if self.overlay.seconds is not None else ""
            rows.append(
                f'<tr><td align="left"><font color="{_COUNT_COLOUR}"><b>×N</b></font></td><td align="left">'
                f'<font point-size="10">the run: times it entered a state (hook calls there{timed}) '
                "or took an edge; grey = never</font></td></tr>"
            )
        kinds = {n.kind for n in self.graph.all_nodes()}
        if "collapsed" in kinds:
            rows.append(
                '<tr><td align="left"><b>3-D box</b></td><td align="left"><font point-size="10">nested states '
                "drawn as one: see the diagram named by its path</font></td></tr>"
            )
        if "outside" in kinds:
            rows.append(
                '<tr><td align="left"><i>dashed box</i></td><td align="left"><font point-size="10">'
                "a state outside the one drawn</font></td></tr>"
            )
        rows.append(
            '<tr><td align="left">dotted loop</td><td align="left"><font point-size="10">'
            "internal event: hooks fire, the state stays</font></td></tr>"
        )
        rows.extend(self.anywhere())
        table = '<table border="0" cellborder="0" cellspacing="1" cellpadding="1">' + "".join(rows) + "</table>"
        return [f"<{table}>"]

    def anywhere(self) -> list[str]:
        """Rows of the legend's table listing the internal events allowed in whole nested states.

        They share the legend's box (not a note of their own beside it): two boxes side by
        side at the top made every view wider than its states and its text smaller.
        """
        groups: dict[tuple[str, ...], list[Transition]] = {}
        for item in self.graph.anywhere:
            groups.setdefault(item.where, []).append(item.transition)
        rows = []
        for where, transitions in groups.items():
            rows.append(
                '<tr><td colspan="2" align="left" bgcolor="#fffbeb">'
                f"<b>No state change, allowed in every state of {_h(', '.join(where))}:</b></td></tr>"
            )
            for t in transitions:
                hooks = "<br/>".join(f'<font color="{HOOK_COLOURS[kind]}">{_h(text)}</font>' for kind, text in steps(t))
                rows.append(
                    f'<tr><td align="left" valign="top" bgcolor="#fffbeb"><b>{_h(t.trigger.name)}</b></td>'
                    f'<td align="left" bgcolor="#fffbeb" balign="left">{hooks}</td></tr>'
                )
        return rows

    def write(self) -> str:
        g = self.graph
        edges = self.edges()  # first: fills self.junctions
        lines = [
            f"digraph {_q('lightcycle_' + g.view.name)} {{",
            # the legend is the graph's label, under the states: beside them it made every
            # drawing wider, and at a page's width a wider drawing has smaller text
            f"    graph [label={self.legend()[0]}, labelloc=b, labeljust=l, fontsize=12, fontname={_q(FONT)},",
            "           compound=true, newrank=true, rankdir=TB, nodesep=0.25, ranksep=0.28,",
            '           bgcolor="white", tooltip=" "];',
            f'    node [shape=box, style="rounded,filled", fontname={_q(FONT)}, fontsize=12, color="#6b7280",'
            ' margin="0.12,0.04", height=0.3];',
            f'    edge [fontname={_q(FONT)}, fontsize=10, color="{_EDGE_COLOUR}", arrowsize=0.7];',
        ]
        if g.initial is not None:
            lines.append(
                '    "__start" [shape=circle, style=filled, fillcolor=black, width=0.18, label="", tooltip="start"];'
            )
        for node in g.nodes:
            lines.extend(self.tree(node, 1))
        lines.extend(self.junctions.get("", []))
        lines.append(
            f'    "__title" [shape=plain, style="", fontsize=20, label=<<b>{_h(self.title)}</b>>, tooltip=" "];'
        )
        if g.initial is not None:
            lines.append(f"    {_q('__start')} -> {_q(g.initial)};")
        lines.extend(edges)
        top = ['"__title"', '"__start"'] if g.initial is not None else ['"__title"']
        lines.append(f"    {{rank=min; {'; '.join(top)};}}")
        lines.append("}")
        return "\n".join(lines) + "\n"


def _stage_order(stage: str) -> tuple[int, str]:
    order = ["none", "train", "sanity_check", "validate", "test", "predict", "keep"]
    return (order.index(stage), "") if stage in order else (len(order), stage)


def render(graph: Graph, overlay: Overlay | None = None, title: str | None = None) -> str:
    """The DOT text of a built graph.

    Args:
        graph: from :func:`lightcycle.diagrams.views.build`.
        overlay: a run to draw over it (:func:`lightcycle.diagrams.overlay.run_overlay`):
            counts on states and arrows, what it never reached in grey.
        title: the title; the view's when omitted.

    Returns:
        A ``digraph``, ending in a newline.
    """
    return _Writer(graph, overlay, title).write()


def dot(lifecycle: Lifecycle, view: View | str) -> str:
    """The Graphviz DOT text of one view of a lifecycle.

    Args:
        lifecycle: the declaration (:data:`~lightcycle.states.LIFECYCLE` or an extended copy).
        view: a :class:`View` or the name of a standard view.

    Returns:
        The DOT text, ending in a newline.
    """
    if isinstance(view, str):
        view = view_named(lifecycle, view)
    return render(build(lifecycle, view))


def dot_program() -> str:
    """The path of Graphviz's ``dot``.

    Returns:
        The executable's path.

    Raises:
        GraphvizNotFoundError: ``dot`` is not on ``PATH``; the message says how to install it.
    """
    found = shutil.which("dot")
    if found is None:
        raise GraphvizNotFoundError(INSTALL_HINT)
    return found


def run_dot(dot_text: str, fmt: str, options: Sequence[str] = (), timeout: float = 60.0) -> bytes:
    """Render DOT text with Graphviz.

    Args:
        dot_text: the graph.
        fmt: a ``dot -T`` format, e.g. ``svg`` or ``png``.
        options: more ``dot`` arguments, e.g. ``["-Gdpi=48"]``.
        timeout: seconds before giving up.

    Returns:
        What ``dot`` wrote.

    Raises:
        GraphvizNotFoundError: ``dot`` is not installed.
        RuntimeError: ``dot`` failed; the message has its stderr.
    """
    proc = subprocess.run(
        [dot_program(), f"-T{fmt}", *options],
        input=dot_text.encode(),
        capture_output=True,
        timeout=timeout,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"dot -T{fmt} failed ({proc.returncode}): {proc.stderr.decode(errors='replace')}")
    return proc.stdout


def dot_hash(dot_text: str) -> str:
    """The hash an SVG carries of the DOT text it was rendered from.

    Args:
        dot_text: the DOT source.

    Returns:
        Its SHA-256, hex.
    """
    return hashlib.sha256(dot_text.encode()).hexdigest()


_HASH_RE = re.compile(rf"<!-- {HASH_COMMENT}: ([0-9a-f]{{64}}) -->")
_GENERATOR_RE = re.compile(r"<!-- Generated by graphviz.*?-->\n", re.DOTALL)


def svg_source_hash(svg_text: str) -> str | None:
    """The DOT hash an SVG written by :func:`svg_from_dot` carries.

    Args:
        svg_text: the SVG.

    Returns:
        The hex hash, or ``None`` when the SVG carries none.
    """
    found = _HASH_RE.search(svg_text)
    return found.group(1) if found else None


def svg_from_dot(dot_text: str) -> str:
    """Render DOT text to SVG, tagged with the DOT's hash, without Graphviz's version comment.

    Args:
        dot_text: the DOT source.

    Returns:
        The SVG text.

    Raises:
        GraphvizNotFoundError: ``dot`` is not installed.
    """
    out = run_dot(dot_text, "svg").decode()
    out = _GENERATOR_RE.sub("", out, count=1)
    tag = f"<!-- {HASH_COMMENT}: {dot_hash(dot_text)} -->\n"
    at = out.find("<svg")
    return out[:at] + tag + out[at:] if at >= 0 else tag + out


def svg(lifecycle: Lifecycle, view: View | str) -> str:
    """One view of a lifecycle as SVG, rendered by Graphviz's ``dot``.

    Args:
        lifecycle: the declaration.
        view: a :class:`View` or the name of a standard view.

    Returns:
        The SVG text.

    Raises:
        GraphvizNotFoundError: ``dot`` is not installed; the message says how to get it.
    """
    return svg_from_dot(dot(lifecycle, view))


def png(lifecycle: Lifecycle, view: View | str) -> bytes:
    """One view of a lifecycle as PNG, rendered by Graphviz's ``dot``.

    Args:
        lifecycle: the declaration.
        view: a :class:`View` or the name of a standard view.

    Returns:
        The PNG bytes.

    Raises:
        GraphvizNotFoundError: ``dot`` is not installed.
    """
    return run_dot(dot(lifecycle, view), "png")


__all__ = [
    "HASH_COMMENT",
    "INSTALL_HINT",
    "GraphvizNotFoundError",
    "dot",
    "dot_hash",
    "dot_program",
    "png",
    "render",
    "run_dot",
    "svg",
    "svg_from_dot",
    "svg_source_hash",
]
