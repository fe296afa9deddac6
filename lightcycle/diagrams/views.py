"""Views of a lifecycle: which states and transitions one diagram shows.

A :class:`View` picks top-level states to draw expanded (an entry point's subtree, e.g.
``fit``) and how deep nested states are drawn before they are collapsed into one box.
:func:`build` turns a lifecycle and a view into a :class:`Graph`, the format-neutral
drawing that :mod:`lightcycle.diagrams.mermaid` and :mod:`lightcycle.diagrams.dot` render.

Rules that keep the drawings readable:

* A transition whose sources include every leaf of a nested state is drawn once, from
  that state (the ``ANY`` interrupt edge becomes one arrow from ``fit`` to
  ``interrupted``, not eighty).
* An internal transition (destination ``None``) is a self-loop on each source, unless
  it is allowed in whole nested states (checkpoint events): then it is listed in a note
  (:attr:`Graph.anywhere`).
* In a collapsed state, transitions that stay inside it are not drawn.
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs

from lightcycle.diagrams.labels import stage_text
from lightcycle.states.model import SEPARATOR, Lifecycle, State, Transition

INTERRUPT_VIEW = "interrupt"
"""The name of the overview that shows where runs end and where ``on_exception`` fires."""


@attrs.frozen
class View:
    """What one diagram shows.

    Args:
        name: the view's name (file stem and ``--entry`` value).
        title: the diagram's title.
        roots: top-level composite states drawn (with their subtrees); top-level
            leaf states (idle, interrupted) are always drawn.
        depth: nested states whose path has this many parts or more are drawn as one
            collapsed box; ``None`` draws every level.
    """

    name: str
    title: str
    roots: tuple[str, ...]
    depth: int | None = None


@attrs.frozen
class Node:
    """A drawn state.

    Args:
        path: the state's full path.
        label: the state's own name.
        kind: ``leaf``, ``composite`` (drawn with its children) or ``collapsed``.
        children: drawn children of a composite.
        doc: the state's doc line.
        stage: the stage that holds there (see :func:`~lightcycle.diagrams.labels.stage_text`);
            for composites and collapsed states, the stage their first leaf has.
    """

    path: str
    label: str
    kind: str
    children: tuple[Node, ...] = ()
    doc: str = ""
    stage: str = "none"

    def walk(self) -> Iterable[Node]:
        """This node, then its descendants, depth first.

        Returns:
            An iterator over the nodes.
        """
        yield self
        for child in self.children:
            yield from child.walk()


@attrs.frozen
class Arrow:
    """A drawn transition.

    Args:
        transition: the declared transition.
        sources: drawn node paths it starts from (a composite when the transition
            leaves from every state inside it), in declaration order.
        dest: the drawn node path it ends in; ``None`` for a self-loop on each source.
    """

    transition: Transition
    sources: tuple[str, ...]
    dest: str | None


@attrs.frozen
class Anywhere:
    """An internal transition allowed in whole nested states, listed in a note.

    Args:
        transition: the declared transition.
        where: the drawn nodes it is allowed in.
    """

    transition: Transition
    where: tuple[str, ...]


@attrs.frozen
class Graph:
    """A view of a lifecycle, ready to render.

    Args:
        view: the view drawn.
        nodes: the top-level drawn states, in declaration order.
        initial: the path of the initial state.
        arrows: drawn transitions, in declaration order.
        anywhere: internal transitions listed in a note.
    """

    view: View
    nodes: tuple[Node, ...]
    initial: str
    arrows: tuple[Arrow, ...]
    anywhere: tuple[Anywhere, ...]

    def transitions(self) -> list[Transition]:
        """Every transition the graph draws, as an arrow or in a note, in declaration order.

        Returns:
            The declared transitions.
        """
        return [a.transition for a in self.arrows] + [a.transition for a in self.anywhere]

    def all_nodes(self) -> list[Node]:
        """Every drawn node, parents before children.

        Returns:
            The nodes, depth first in declaration order.
        """
        return [n for top in self.nodes for n in top.walk()]


def views(lifecycle: Lifecycle) -> tuple[View, ...]:
    """The standard views of a lifecycle: one per entry point, then the interruption overview.

    An entry point is a top-level nested state (``fit``, ``validate``, ``test``,
    ``predict``); its view shows that subtree with the top-level leaf states. The
    ``interrupt`` view shows every entry point two levels deep.

    Args:
        lifecycle: the declaration.

    Returns:
        The views, entry points in declaration order, ``interrupt`` last.
    """
    entries = tuple(s.name for s in lifecycle.states if s.children)
    out = [View(name, f"lightcycle lifecycle, {name}", (name,)) for name in entries]
    out.append(View(INTERRUPT_VIEW, "lightcycle lifecycle, interruption and run endings", entries, depth=2))
    return tuple(out)


def view_named(lifecycle: Lifecycle, name: str) -> View:
    """The standard view called ``name``.

    Args:
        lifecycle: the declaration.
        name: a view name, e.g. ``fit`` or ``interrupt``.

    Returns:
        The view.

    Raises:
        ValueError: no view has that name; the message lists the names.
    """
    found = {v.name: v for v in views(lifecycle)}
    if name not in found:
        raise ValueError(f"no diagram view {name!r}; known views: {', '.join(found)}")
    return found[name]


def _leaves_under(state: State, path: str) -> list[str]:
    if not state.children:
        return [path]
    return [leaf for c in state.children for leaf in _leaves_under(c, f"{path}{SEPARATOR}{c.name}")]


class _Builder:
    """Maps leaf states to drawn nodes for one view."""

    def __init__(self, lifecycle: Lifecycle, view: View) -> None:
        self.lifecycle = lifecycle
        self.view = view
        self.paths = lifecycle.paths()
        self.leaf_stage = {p: stage_text(s) for p, s in lifecycle.leaves().items()}
        self.shown: dict[str, str] = {}  # leaf path -> drawn node path
        self.leaves_of: dict[str, list[str]] = {}  # drawn node path -> leaf paths
        self.nodes = tuple(self._node(s, s.name, 1) for s in lifecycle.states if self._drawn(s))
        self.kind = {n.path: n.kind for top in self.nodes for n in top.walk()}

    def _drawn(self, state: State) -> bool:
        return not state.children or state.name in self.view.roots

    def _node(self, state: State, path: str, level: int) -> Node:
        leaves = _leaves_under(state, path)
        self.leaves_of[path] = leaves
        stage = self.leaf_stage[leaves[0]]
        if not state.children:
            self.shown[path] = path
            return Node(path, state.name, "leaf", doc=state.doc, stage=stage)
        if self.view.depth is not None and level >= self.view.depth:
            for leaf in leaves:
                self.shown[leaf] = path
            return Node(path, state.name, "collapsed", doc=state.doc, stage=stage)
        children = tuple(self._node(c, f"{path}{SEPARATOR}{c.name}", level + 1) for c in state.children)
        return Node(path, state.name, "composite", children, doc=state.doc, stage=stage)

    def cover(self, leaves: Iterable[str]) -> list[str]:
        """The fewest drawn nodes whose leaves are exactly the drawn ones of ``leaves``."""
        wanted = {leaf for leaf in leaves if leaf in self.shown}
        out: list[str] = []

        def visit(node: Node) -> None:
            mine = self.leaves_of[node.path]
            if not wanted.intersection(mine):
                return
            if node.kind != "leaf" and wanted.issuperset(mine):
                out.append(node.path)
                return
            if node.kind == "composite":
                for child in node.children:
                    visit(child)
                return
            # a leaf, or a collapsed state only partly covered: drawn as that node
            out.append(node.path)

        for top in self.nodes:
            visit(top)
        return out

    def arrow(self, transition: Transition) -> Arrow | Anywhere | None:
        sources = self.cover(self.lifecycle.sources(transition))
        if not sources:
            return None
        if transition.dest is None:
            if any(self.kind[s] == "composite" for s in sources):
                return Anywhere(transition, tuple(sources))
            loops = tuple(s for s in sources if self.kind[s] == "leaf")
            return Arrow(transition, loops, None) if loops else None
        dest = self.shown.get(transition.dest)
        if dest is None:
            return None
        kept = tuple(s for s in sources if not (s == dest and self.kind[s] == "collapsed"))
        return Arrow(transition, kept, dest) if kept else None


def build(lifecycle: Lifecycle, view: View) -> Graph:
    """Draw ``lifecycle`` as ``view`` shows it.

    Args:
        lifecycle: the declaration (:data:`~lightcycle.states.LIFECYCLE` or an extended copy).
        view: what to show.

    Returns:
        The format-neutral graph.
    """
    b = _Builder(lifecycle, view)
    arrows: list[Arrow] = []
    anywhere: list[Anywhere] = []
    for t in lifecycle.transitions:
        drawn = b.arrow(t)
        if isinstance(drawn, Arrow):
            arrows.append(drawn)
        elif isinstance(drawn, Anywhere):
            anywhere.append(drawn)
    return Graph(view, b.nodes, lifecycle.initial, tuple(arrows), tuple(anywhere))
