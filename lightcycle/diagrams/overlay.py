"""A recorded run drawn over the lifecycle: how often it was in each state and took each arrow.

:func:`run_overlay` reads a lightcycle :class:`~lightcycle.callbacks.HookRecorder` trace
(its events carry ``ctx.state``, the lifecycle state a hook fired in, which is the state
its transition entered) against a built :class:`~lightcycle.diagrams.views.Graph`:

* a drawn state's count is how many times the run entered it (a collapsed state or a
  composite counts entries from outside it), with the hook calls that fired in it;
* an arrow's count is how many times the run went from its source(s) to its
  destination. A transition whose hooks did not fire (none declared, or only hooks called
  when overridden) leaves no event: when the run went from one drawn state to another
  with no arrow between them, the shortest way through such silent arrows is counted;
* with ``HookRecorder(timings=True)``, each event's ``t`` gives the time spent in a state:
  the time from each of its events to the next event;
* states the run never reached, and arrows it never took, are drawn grey.

The renderers (:mod:`.mermaid`, :mod:`.dot`) take the result as their ``overlay``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from lightcycle.diagrams.views import Arrow, Graph, Node
from lightcycle.states.model import SEPARATOR, Lifecycle


class TraceWithoutStatesError(ValueError):
    """The trace has no ``ctx.state`` (e.g. one recorded from Lightning): nothing to place on the lifecycle."""


@attrs.frozen
class Overlay:
    """What a run did in each drawn state and on each drawn arrow.

    Args:
        entered: drawn node path -> times the run entered it.
        hooks: drawn node path -> hook calls that fired in it.
        seconds: drawn node path -> seconds spent in it; ``None`` without timings.
        taken_from: ``(arrow, one of its drawn sources)`` -> times the run went that way.
    """

    entered: Mapping[str, int]
    hooks: Mapping[str, int]
    seconds: Mapping[str, float] | None
    taken_from: Mapping[tuple[Arrow, str], int]

    def reached(self, path: str) -> bool:
        """Whether the run was ever in this drawn state.

        Args:
            path: a drawn node's path.

        Returns:
            True when it entered it or a hook fired there.
        """
        return self.entered.get(path, 0) > 0 or self.hooks.get(path, 0) > 0

    def node_text(self, path: str) -> str:
        """The count line of a state, e.g. ``×3 · 12 hooks · 0.41 s``.

        Args:
            path: a drawn node's path.

        Returns:
            The text; ``never reached`` for states the run did not reach.
        """
        if not self.reached(path):
            return "never reached"
        parts = [f"×{self.entered.get(path, 0)}", f"{self.hooks.get(path, 0)} hooks"]
        if self.seconds is not None:
            parts.append(_seconds(self.seconds.get(path, 0.0)))
        return " · ".join(parts)

    def taken(self, arrow: Arrow, source: str | None = None) -> int:
        """How many times the run went along an arrow.

        Args:
            arrow: a drawn arrow.
            source: count only the moves from this one of its sources.

        Returns:
            The count; 0 for a self-loop (its hooks are counted on the state).
        """
        sources = arrow.sources if source is None else (source,)
        return sum(self.taken_from.get((arrow, src), 0) for src in sources)


def _seconds(value: float) -> str:
    return f"{value:.3g} s" if value >= 0.001 else f"{value * 1000:.2g} ms"


def _drawn_of(graph: Graph) -> tuple[dict[str, Node], dict[str, str]]:
    """Drawn nodes that a leaf maps to (non-composites), and each node's drawn parent."""
    targets: dict[str, Node] = {}
    parent: dict[str, str] = {}

    def visit(node: Node, up: str | None) -> None:
        if up is not None:
            parent[node.path] = up
        if node.kind == "composite":
            for child in node.children:
                visit(child, node.path)
        else:
            targets[node.path] = node

    for top in graph.nodes:
        visit(top, None)
    return targets, parent


def run_overlay(graph: Graph, events: Sequence[Mapping[str, Any]]) -> Overlay:
    """Place a recorded run on a drawn lifecycle view.

    Args:
        graph: the view, from :func:`~lightcycle.diagrams.views.build`.
        events: a lightcycle HookRecorder trace (each event's ``ctx.state`` is read; its
            ``t``, when every event has one, gives the times).

    Returns:
        The counts (and times) per drawn state and move.

    Raises:
        TraceWithoutStatesError: no event has ``ctx.state``; the message says how to record one.
    """
    targets, parent = _drawn_of(graph)
    cache: dict[str, str | None] = {}

    def drawn(state: str) -> str | None:
        if state not in cache:
            parts = state.split(SEPARATOR)
            found = None
            for n in range(len(parts), 0, -1):
                prefix = SEPARATOR.join(parts[:n])
                if prefix in targets:
                    found = prefix
                    break
            cache[state] = found
        return cache[state]

    states: list[str | None] = []
    for event in events:
        ctx = event.get("ctx")
        state = ctx.get("state") if isinstance(ctx, dict) else None
        states.append(drawn(state) if isinstance(state, str) else None)
    if not any(isinstance((e.get("ctx") or {}).get("state"), str) for e in events):
        raise TraceWithoutStatesError(
            "the trace has no lifecycle states (ctx.state): record the run with lightcycle's "
            "HookRecorder (lightcycle.callbacks.HookRecorder(path, timings=True)) to draw it over the lifecycle"
        )
    times = [e.get("t") for e in events]
    timed = bool(events) and all(isinstance(t, (int, float)) for t in times)
    entered: Counter[str] = Counter()
    hooks: Counter[str] = Counter()
    seconds: dict[str, float] = {}
    moves: Counter[tuple[str, str]] = Counter()  # (drawn state, next drawn state)
    # a run starts and (when complete) ends in the initial state, where no hook fires
    initial = graph.initial if graph.initial in targets else None
    previous: str | None = initial
    if initial is not None:
        entered[initial] += 1
    for i, here in enumerate(states):
        if here is None:
            continue
        ups = _ancestry(here, parent)
        for path in ups:
            hooks[path] += 1
        if timed and i + 1 < len(events):
            gap = float(times[i + 1]) - float(times[i])  # type: ignore[arg-type]
            for path in ups:
                seconds[path] = seconds.get(path, 0.0) + gap
        if here != previous and previous is not None:
            moves[(previous, here)] += 1
        if here != previous:
            left = set(_ancestry(previous, parent)) if previous is not None else set()
            for path in ups:
                if path not in left:
                    entered[path] += 1
        previous = here
    if initial is not None and previous not in (None, initial):
        moves[(previous, initial)] += 1
        entered[initial] += 1
    taken_from: Counter[tuple[Arrow, str]] = Counter()
    ways = _Ways(graph, parent)
    for (src, dest), n in moves.items():
        for arrow, source, via in ways.find(src, dest):
            taken_from[(arrow, source)] += n
            if via is not None:
                entered[via] += n
    return Overlay(dict(entered), dict(hooks), seconds if timed else None, dict(taken_from))


def _silent(arrow: Arrow) -> bool:
    """Whether taking the arrow can leave no event (no hook, or only hooks called when overridden)."""
    return all(h.only_if_overridden for h in arrow.transition.hooks)


class _Ways:
    """The arrows a move between two drawn states went along."""

    def __init__(self, graph: Graph, parent: Mapping[str, str]) -> None:
        self.parent = parent
        self.arrows = [a for a in graph.arrows if a.dest is not None]

    def _out(self, node: str) -> list[tuple[Arrow, str]]:
        ups = _ancestry(node, self.parent)
        return [(a, s) for a in self.arrows for s in a.sources if s in ups]

    def find(self, src: str, dest: str, max_hops: int = 6) -> list[tuple[Arrow, str, str | None]]:
        """``(arrow, source, state it led to when that is not dest)`` along the shortest way; empty if none."""
        frontier: list[tuple[str, list[tuple[Arrow, str, str | None]]]] = [(src, [])]
        seen = {src}
        for _ in range(max_hops):
            following: list[tuple[str, list[tuple[Arrow, str, str | None]]]] = []
            for node, path in frontier:
                for arrow, source in self._out(node):
                    assert arrow.dest is not None
                    if arrow.dest == dest:
                        return [*path, (arrow, source, None)]
                    if _silent(arrow) and arrow.dest not in seen:
                        seen.add(arrow.dest)
                        following.append((arrow.dest, [*path, (arrow, source, arrow.dest)]))
            frontier = following
        return []


def _ancestry(path: str, parent: Mapping[str, str]) -> list[str]:
    out = [path]
    while path in parent:
        path = parent[path]
        out.append(path)
    return out


def entry_of(events: Sequence[Mapping[str, Any]], lifecycle: Lifecycle) -> str:
    """The standard view to draw a run over: the entry point of its first lifecycle state.

    Args:
        events: the trace.
        lifecycle: the declaration.

    Returns:
        A top-level nested state's name (``fit`` when the trace names none).
    """
    entries = {s.name for s in lifecycle.states if s.children}
    for e in events:
        state = (e.get("ctx") or {}).get("state")
        if isinstance(state, str) and state.split(SEPARATOR)[0] in entries:
            return state.split(SEPARATOR)[0]
    return "fit"
