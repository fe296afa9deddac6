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
* In a collapsed state, transitions that stay inside it are not drawn; the box says what
  it holds and how many hooks fire inside (:attr:`Node.summary`).
* A view of one nested state (:attr:`View.state`, a drill-down) draws the states outside
  it that its transitions come from or go to as dashed boxes (``outside`` nodes), each the
  largest state around that does not contain the drawn one.

The standard views pick their depth themselves: as deep as stays at most
:data:`MAX_STATES` boxes, so each reads at a screen's width; every state collapsed in an
entry point's view gets a drill-down view of its own (:func:`views`).
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs

from lightcycle.diagrams.labels import stage_text
from lightcycle.states.model import SEPARATOR, Lifecycle, State, Transition

INTERRUPT_VIEW = "interrupt"
"""The name of the overview that shows where runs end and where ``on_exception`` fires."""

MAX_STATES = 15
"""The most boxes a standard view draws (more do not read at GitHub's ~880 px width)."""


@attrs.frozen
class View:
    """What one diagram shows.

    Args:
        name: the view's name (file stem and ``--entry`` value).
        title: the diagram's title.
        roots: top-level composite states drawn (with their subtrees); top-level
            leaf states (idle, interrupted) are always drawn.
        depth: how many levels are drawn, counting the drawn top state as 1 (``fit``
            for an entry point, :attr:`state` for a drill-down); states deeper than that
            are drawn as one collapsed box. ``None`` draws every level.
        state: when given, the path of one nested state drawn alone (a drill-down, e.g.
            ``fit.train.epoch.batch``); ``roots`` is then ignored.
    """

    name: str
    title: str
    roots: tuple[str, ...]
    depth: int | None = None
    state: str | None = None


@attrs.frozen
class Node:
    """A drawn state.

    Args:
        path: the state's full path.
        label: the state's own name.
        kind: ``leaf``, ``composite`` (drawn with its children), ``collapsed`` or
            ``outside`` (a state around a drill-down's state, drawn dashed).
        children: drawn children of a composite.
        doc: the state's doc line.
        stage: the stage that holds there (see :func:`~lightcycle.diagrams.labels.stage_text`);
            for composites and collapsed states, the stage their first leaf has.
        summary: for a collapsed state, its children's names and the hooks that fire
            inside it, e.g. ``("running, batch, cut, validation", "22 hooks inside")``.
    """

    path: str
    label: str
    kind: str
    children: tuple[Node, ...] = ()
    doc: str = ""
    stage: str = "none"
    summary: tuple[str, ...] = ()

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
        nodes: the top-level drawn states, in declaration order (a drill-down's
            ``outside`` nodes after its state).
        initial: the path of the initial state; ``None`` in a drill-down, which does
            not draw it.
        arrows: drawn transitions, in declaration order.
        anywhere: internal transitions listed in a note.
    """

    view: View
    nodes: tuple[Node, ...]
    initial: str | None
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
    """The standard views of a lifecycle: entry points, their drill-downs, the interruption overview.

    An entry point is a top-level nested state (``fit``, ``validate``, ``test``,
    ``predict``); its view shows that subtree with the top-level leaf states, as deep as
    stays within :data:`MAX_STATES` boxes. Each state collapsed there gets a drill-down
    view named by its path (e.g. ``fit.train``), again as deep as fits, and so on. The
    ``interrupt`` view shows every entry point two levels deep.

    Args:
        lifecycle: the declaration.

    Returns:
        The views: each entry point followed by its drill-downs, ``interrupt`` last.
    """
    cached = _VIEWS.get(id(lifecycle))
    if cached is not None and cached[0] is lifecycle:
        return cached[1]
    entries = tuple(s.name for s in lifecycle.states if s.children)
    out: list[View] = []
    for name in entries:
        todo = [fitted(lifecycle, View(name, f"lightcycle lifecycle, {name}", (name,)))]
        while todo:
            view = todo.pop(0)
            out.append(view)
            collapsed = [n.path for n in build(lifecycle, view).all_nodes() if n.kind == "collapsed"]
            todo.extend(fitted(lifecycle, drill_down(path)) for path in collapsed)
    out.append(View(INTERRUPT_VIEW, "lightcycle lifecycle, interruption and run endings", entries, depth=2))
    _VIEWS[id(lifecycle)] = (lifecycle, tuple(out))
    return _VIEWS[id(lifecycle)][1]


_VIEWS: dict[int, tuple[Lifecycle, tuple[View, ...]]] = {}
"""views() by lifecycle: fitting them builds some 40 graphs, and a command asks more than once.
A lifecycle is frozen; the entry keeps it alive, so its id is not reused while cached."""


def drill_down(path: str, depth: int | None = None) -> View:
    """The view of one nested state alone, named by its path.

    Args:
        path: the state's path, e.g. ``fit.train.epoch.batch``.
        depth: levels drawn, the state itself counting as 1; ``None`` draws every level.

    Returns:
        The view.
    """
    return View(path, f"lightcycle lifecycle, {path}", (), depth=depth, state=path)


def fitted(lifecycle: Lifecycle, view: View, max_states: int = MAX_STATES) -> View:
    """``view`` at the largest depth that draws at most ``max_states`` boxes (at least 2 levels).

    Args:
        lifecycle: the declaration.
        view: the view; its own depth is ignored.
        max_states: the most boxes drawn (composite states' frames are not counted).

    Returns:
        The view with its depth set; ``None`` when every level fits.
    """
    depth = 2
    graph = build(lifecycle, attrs.evolve(view, depth=depth))
    while True:
        if not any(n.kind == "collapsed" for n in graph.all_nodes()):
            return attrs.evolve(view, depth=None)
        deeper = build(lifecycle, attrs.evolve(view, depth=depth + 1))
        if sum(n.kind != "composite" for n in deeper.all_nodes()) > max_states:
            return attrs.evolve(view, depth=depth)
        depth, graph = depth + 1, deeper


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


def with_depth(lifecycle: Lifecycle, name: str, depth: int | None) -> View:
    """The standard view called ``name``, or the drill-down of the nested state ``name``, at ``depth``.

    Args:
        lifecycle: the declaration.
        name: a view name (``fit``) or a nested state's path (``fit.train.epoch.batch``).
        depth: levels drawn (at least 1); ``None`` keeps the standard view's depth (a
            state that has no standard view is then fitted to :data:`MAX_STATES`).

    Returns:
        The view.

    Raises:
        ValueError: ``name`` is neither a view nor a nested state; or ``depth`` < 1.
    """
    if depth is not None and depth < 1:
        raise ValueError(f"--depth must be 1 or more (levels drawn, the top state counting as 1), got {depth}")
    found = {v.name: v for v in views(lifecycle)}
    if name in found:
        view = found[name]
    else:
        state = lifecycle.paths().get(name)
        if state is None or not state.children:
            nested = [p for p, s in lifecycle.paths().items() if s.children]
            raise ValueError(
                f"no view or nested state {name!r}; views: {', '.join(found)}; states: {', '.join(nested)}"
            )
        view = fitted(lifecycle, drill_down(name))
    return view if depth is None else attrs.evolve(view, depth=depth)


def _leaves_under(state: State, path: str) -> list[str]:
    if not state.children:
        return [path]
    return [leaf for c in state.children for leaf in _leaves_under(c, f"{path}{SEPARATOR}{c.name}")]


_SOURCES: dict[int, tuple[Lifecycle, dict[Transition, tuple[str, ...]]]] = {}
"""The leaf sources of each transition, by lifecycle (``Lifecycle.sources`` walks the tree each call)."""


def _sources_of(lifecycle: Lifecycle) -> dict[Transition, tuple[str, ...]]:
    cached = _SOURCES.get(id(lifecycle))
    if cached is None or cached[0] is not lifecycle:
        cached = (lifecycle, {t: lifecycle.sources(t) for t in lifecycle.transitions})
        _SOURCES[id(lifecycle)] = cached
    return cached[1]


class _Builder:
    """Maps leaf states to drawn nodes for one view."""

    def __init__(self, lifecycle: Lifecycle, view: View) -> None:
        self.lifecycle = lifecycle
        self.view = view
        self.paths = lifecycle.paths()
        self.sources = _sources_of(lifecycle)
        self.leaf_stage = {p: stage_text(s) for p, s in lifecycle.leaves().items()}
        self.shown: dict[str, str] = {}  # leaf path -> drawn node path
        self.leaves_of: dict[str, list[str]] = {}  # drawn node path -> leaf paths
        self.outside: dict[str, Node] = {}  # a drill-down's outside nodes, by path
        if view.state is None:
            self.top = 1
            self.nodes = tuple(self._node(s, s.name, 1) for s in lifecycle.states if self._drawn(s))
        else:
            state = self.paths.get(view.state)
            if state is None or not state.children:
                raise ValueError(f"no nested state {view.state!r} to draw")
            self.top = view.state.count(SEPARATOR) + 1
            self.nodes = (self._node(state, view.state, self.top),)
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
        if self.view.depth is not None and level - self.top + 1 >= self.view.depth:
            for leaf in leaves:
                self.shown[leaf] = path
            return Node(path, state.name, "collapsed", doc=state.doc, stage=stage, summary=self._summary(state, leaves))
        children = tuple(self._node(c, f"{path}{SEPARATOR}{c.name}", level + 1) for c in state.children)
        return Node(path, state.name, "composite", children, doc=state.doc, stage=stage)

    def _summary(self, state: State, leaves: list[str]) -> tuple[str, ...]:
        """What a collapsed box says: its children, and the hook calls its inner transitions declare."""
        inside = set(leaves)
        hooks = 0
        for t in self.lifecycle.transitions:
            if set(self.sources[t]) <= inside and (t.dest is None or t.dest in inside):
                hooks += len(t.hooks)
        names = [c.name for c in state.children]
        rows = [", ".join(names[i : i + 3]) for i in range(0, len(names), 3)]
        return (*rows, f"{hooks} hooks inside")

    def outside_node(self, leaf: str) -> str:
        """A drill-down's drawn node for a leaf outside its state: the largest state around it not holding the state."""
        assert self.view.state is not None
        mine = self.view.state.split(SEPARATOR)
        parts = leaf.split(SEPARATOR)
        cut = 1
        while cut < len(parts) and cut <= len(mine) and parts[:cut] == mine[:cut]:
            cut += 1
        path = SEPARATOR.join(parts[:cut])
        if path not in self.outside:
            state = self.paths[path]
            stage = self.leaf_stage[_leaves_under(state, path)[0]]
            self.outside[path] = Node(path, path, "outside", doc=state.doc, stage=stage)
        return path

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
        declared = self.sources[transition]
        sources = self.cover(declared)
        dest = None if transition.dest is None else self.shown.get(transition.dest)
        if self.view.state is not None:
            if dest is not None:
                # entering the drill-down's state: from the states around it
                entering = [self.outside_node(leaf) for leaf in declared if leaf not in self.shown]
                sources = list(dict.fromkeys([*sources, *entering]))
            elif sources and transition.dest is not None and dest is None:
                dest = self.outside_node(transition.dest)  # leaving it
        if not sources:
            return None
        if transition.dest is None:
            if any(self.kind[s] == "composite" for s in sources):
                return Anywhere(transition, tuple(sources))
            loops = tuple(s for s in sources if self.kind[s] == "leaf")
            return Arrow(transition, loops, None) if loops else None
        if dest is None:
            return None
        kept = tuple(s for s in sources if not (s == dest and self.kind.get(s) == "collapsed"))
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
    if view.state is not None:
        outside = tuple(b.outside.values())
        return Graph(view, b.nodes + outside, None, tuple(arrows), tuple(anywhere))
    return Graph(view, b.nodes, lifecycle.initial, tuple(arrows), tuple(anywhere))
