"""Per-rank traces of one distributed run, checked against each other.

Each rank's trace is checked against the declaration by :mod:`lightcycle.verify`; this
module adds what only the set of ranks shows (a hang waiting to happen, or a rank left
behind): every rank of the run is there, all ranks began the same collectives in the same
order (``src`` ``strategy``/``loop`` events: barriers, broadcasts, reduces; an interrupted
rank's sequence may stop early, at the collective that failed), no collective was begun
on an interruption path (after ``on_exception``: it would pair with a healthy rank's
pending one), and either every rank finished or every rank was interrupted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

COLLECTIVES = frozenset(
    {
        "barrier",
        "broadcast",
        "reduce",
        "all_gather",
        "all_gather_object",
        "all_reduce",
        "reduce_boolean_decision",
        "_broadcast_sigterm_tensor",
    }
)
"""Event names (``src`` ``strategy`` or ``loop``) that every rank must begin alike."""


def rank_of(events: Sequence[Mapping[str, Any]]) -> tuple[int, int] | None:
    """``(rank, world_size)`` from a trace's first event that carries them, or ``None``."""
    for event in events:
        ctx = event.get("ctx") or {}
        if "rank" in ctx and "world_size" in ctx:
            return int(ctx["rank"]), int(ctx["world_size"])
    return None


def _collectives(events: Sequence[Mapping[str, Any]]) -> tuple[list[tuple[str, Any]], list[tuple[str, Any]]]:
    """The collectives begun before and after the first ``on_exception``."""
    before: list[tuple[str, Any]] = []
    after: list[tuple[str, Any]] = []
    out = before
    for event in events:
        hook = event.get("hook")
        if hook == "on_exception":
            out = after
        elif event.get("src") in ("strategy", "loop") and hook in COLLECTIVES:
            out.append((str(hook), (event.get("args") or {}).get("name")))
    return before, after


def _interrupted(events: Sequence[Mapping[str, Any]]) -> bool:
    return any(e.get("hook") == "on_exception" for e in events)


def verify_ranks(traces: Mapping[str, Sequence[Mapping[str, Any]]]) -> list[str]:
    """Check the traces of one run's ranks against each other.

    Args:
        traces: each rank's events, by file name (traces without ``ctx.rank`` are ignored).

    Returns:
        The problems found, one sentence each (empty: the ranks agree). Fewer than two
        rank traces: nothing to compare, no problem.
    """
    ranked: dict[int, tuple[str, Sequence[Mapping[str, Any]]]] = {}
    worlds: set[int] = set()
    problems: list[str] = []
    for path, events in traces.items():
        found = rank_of(events)
        if found is None:
            continue
        rank, world = found
        worlds.add(world)
        if rank in ranked:
            problems.append(f"{path} and {ranked[rank][0]} are both rank {rank}: give one trace per rank of one run")
        ranked[rank] = (path, events)
    if len(ranked) < 2:
        return problems
    if len(worlds) > 1:
        problems.append(f"the traces come from runs of different sizes (world_size {sorted(worlds)})")
        return problems
    world = worlds.pop()
    missing = sorted(set(range(world)) - set(ranked))
    if missing:
        problems.append(f"world_size is {world} but there is no trace of rank(s) {missing}")
    first = min(ranked)
    base_path, base_events = ranked[first]
    base, _ = _collectives(base_events)
    stopped = {r: _interrupted(ev) for r, (_, ev) in ranked.items()}
    for rank, (path, events) in sorted(ranked.items()):
        seq, after = _collectives(events)
        if after:
            problems.append(
                f"rank {rank} ({path}) began {after[0][0]} after on_exception: a collective on the interruption "
                "path pairs with another rank's pending one (or waits for ever)"
            )
        if rank == first:
            continue
        n = min(len(seq), len(base)) if stopped[rank] or stopped[first] else max(len(seq), len(base))
        for i in range(n):
            mine = seq[i] if i < len(seq) else None
            theirs = base[i] if i < len(base) else None
            if mine != theirs:
                problems.append(
                    f"collective #{i + 1} differs: rank {first} ({base_path}) began {_show(theirs)}, rank {rank} "
                    f"({path}) began {_show(mine)}"
                )
                break
    if any(stopped.values()) and not all(stopped.values()):
        done = sorted(r for r, s in stopped.items() if not s)
        hit = sorted(r for r, s in stopped.items() if s)
        problems.append(f"rank(s) {hit} were interrupted but rank(s) {done} finished: a rank was left behind")
    return problems


def _show(item: tuple[str, Any] | None) -> str:
    if item is None:
        return "nothing (its trace ends)"
    op, name = item
    return f"{op}({name!r})" if name is not None else op
