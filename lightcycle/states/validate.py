"""Static checks of a lifecycle declaration, run before anything is compiled."""

from __future__ import annotations

from collections import deque

from lightcycle.states.model import Lifecycle, Result, Target


class DeclarationError(ValueError):
    """A lifecycle declaration is inconsistent; the message lists every problem."""


def validate(lifecycle: Lifecycle) -> None:
    """Check that a lifecycle is well formed and deterministic.

    Checks: every source and destination is a leaf state; no two transitions share a
    (source, trigger) pair; every hook argument is one of its trigger's parameters; at
    most one hook per transition produces the trigger's result; every leaf is reachable
    from the initial state and can get back to it.

    Args:
        lifecycle: the declaration to check.

    Raises:
        DeclarationError: naming each problem found.
    """
    problems: list[str] = []
    leaves = lifecycle.leaves()
    if lifecycle.initial not in leaves:
        problems.append(f"initial state {lifecycle.initial!r} is not a leaf state")
    seen: dict[tuple[str, str], int] = {}
    edges: dict[str, set[str]] = {p: set() for p in leaves}
    triggers: dict[str, object] = {}
    for i, t in enumerate(lifecycle.transitions):
        name = t.trigger.name
        if triggers.setdefault(name, t.trigger) != t.trigger:
            problems.append(f"transition {i}: trigger {name!r} is declared twice with different parameters")
        if t.dest is not None and t.dest not in leaves:
            problems.append(f"transition {i} ({name}): destination {t.dest!r} is not a leaf state")
        for src in lifecycle.sources(t):
            if src not in leaves:
                problems.append(f"transition {i} ({name}): source {src!r} is not a leaf state")
                continue
            if (src, name) in seen:
                problems.append(
                    f"transition {i} ({name}): state {src!r} already has this trigger (transition {seen[src, name]})"
                )
            seen[src, name] = i
            edges[src].add(t.dest if t.dest is not None else src)
        params = set(t.trigger.params)
        producers = 0
        for h in t.hooks:
            missing = [a for a in (*h.args, *h.kwargs) if a not in params]
            if missing:
                problems.append(
                    f"transition {i} ({name}): hook {h.name!r} takes {missing}, which trigger {name!r} "
                    f"does not have (its parameters: {list(t.trigger.params)})"
                )
            if h.result in (Result.RETURN, Result.COLLECT) and h.target is not Target.DATAMODULE:
                producers += 1
            if h.result is Result.PIPE and (not t.trigger.params or t.trigger.params[0] != "batch"):
                problems.append(f"transition {i} ({name}): PIPE hook {h.name!r} needs 'batch' as first parameter")
        if producers > 1:
            problems.append(f"transition {i} ({name}): {producers} hooks produce the result; at most one may")
    if not problems:
        problems.extend(_reachability(lifecycle.initial, edges))
    if problems:
        raise DeclarationError("invalid lifecycle declaration:\n  - " + "\n  - ".join(problems))


def _reachability(initial: str, edges: dict[str, set[str]]) -> list[str]:
    def closure(start: str, graph: dict[str, set[str]]) -> set[str]:
        seen = {start}
        todo = deque([start])
        while todo:
            for nxt in graph[todo.popleft()]:
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    reverse: dict[str, set[str]] = {p: set() for p in edges}
    for src, dests in edges.items():
        for d in dests:
            reverse[d].add(src)
    forward = closure(initial, edges)
    back = closure(initial, reverse)
    out = [f"state {p!r} cannot be reached from {initial!r}" for p in edges if p not in forward]
    out += [f"state {p!r} is a dead end: no path leads back to {initial!r}" for p in edges if p not in back]
    return out
