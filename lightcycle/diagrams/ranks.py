"""The ranks of a distributed run side by side: a Mermaid ``sequenceDiagram`` with one lane per rank.

``lightcycle diagram --trace trace.rank0.jsonl trace.rank1.jsonl`` draws this. The ranks'
events are aligned (rank 0 is the reference; each other rank is matched to it with
:class:`difflib.SequenceMatcher` on who, which hook, the stage and the shown arguments:
:func:`rank_key`), so that one row holds the same event on every rank:

- an event that every rank has is one note spanning all lanes; a collective (barrier,
  broadcast, reduce..., :data:`~lightcycle.verify_ranks.COLLECTIVES`, and ``dist`` events)
  is drawn as an arrow across the lanes;
- an event that only some ranks have (``prepare_data`` on local rank 0, an exception on
  the failing rank, a rank that stopped early) is a note over those lanes only, inside a
  red block: the differences stand out;
- runs of identical rows are folded into ``loop`` blocks (epochs around batches), as in
  the single-trace diagram.

Only ``phase: "return"`` events are left out (their call is shown).
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from lightcycle.diagrams.sequence import Loop, fold
from lightcycle.diagrams.sequence import _escape as escape_text  # one escaping rule for both diagrams
from lightcycle.verify_ranks import COLLECTIVES

DIFFERENCE_FILL = "rgb(254, 226, 226)"
"""Background of the rows that not every rank has."""

_PREFIX = {"callback": "cb.", "module": "lm.", "datamodule": "dm."}
_SHOWN_ARGS = ("stage", "name", "exception", "dataloader_idx")

Row = tuple[Mapping[str, Any] | None, ...]
"""One aligned position: each rank's event there, or ``None`` where that rank has none."""


def _kept(events: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [e for e in events if e.get("phase") != "return"]


def rank_key(event: Mapping[str, Any]) -> str:
    """What makes two ranks' events "the same event": who, which hook, the stage and the shown arguments.

    The other arguments (a batch's dataset indices, a rank number) differ between ranks by
    design and are left out.

    Args:
        event: a trace event.

    Returns:
        A string key.
    """
    ctx = event.get("ctx") or {}
    args = event.get("args") or {}
    shown = {k: str(args[k]) for k in _SHOWN_ARGS if k in args}
    return json.dumps(
        [
            event.get("src"),
            event.get("name"),
            event.get("hook"),
            event.get("phase"),
            ctx.get("stage"),
            ctx.get("fn"),
            shown,
        ],
        sort_keys=True,
    )


def align(traces: Sequence[Sequence[Mapping[str, Any]]]) -> list[Row]:
    """Align the ranks' events into rows, rank 0's order leading.

    Args:
        traces: one event list per rank, rank 0 first.

    Returns:
        The rows, in order; every event of every rank appears in exactly one row.

    Raises:
        ValueError: fewer than two traces.
    """
    if len(traces) < 2:
        raise ValueError("draw ranks side by side from two or more traces (one per rank)")
    ranks = [_kept(t) for t in traces]
    reference = ranks[0]
    ref_keys = [rank_key(e) for e in reference]
    # for every other rank: which of its events matches each reference event, and which come
    # before the reference event they precede (unmatched, drawn on their own rows)
    matched: list[dict[int, int]] = []
    before: list[dict[int, list[int]]] = []
    for other in ranks[1:]:
        keys = [rank_key(e) for e in other]
        pairs: dict[int, int] = {}
        for block in difflib.SequenceMatcher(None, ref_keys, keys, autojunk=False).get_matching_blocks():
            for k in range(block.size):
                pairs[block.a + k] = block.b + k
        pending: dict[int, list[int]] = {}
        position = 0
        for ref_index in [*sorted(pairs), len(reference)]:
            until = pairs.get(ref_index, len(other))
            if position < until:
                pending.setdefault(ref_index, []).extend(range(position, until))
            position = max(position, until + 1)
        matched.append(pairs)
        before.append(pending)
    n = len(ranks)
    rows: list[Row] = []
    for ref_index in range(len(reference) + 1):
        for r in range(1, n):
            for j in before[r - 1].get(ref_index, []):
                rows.append(tuple(ranks[r][j] if k == r else None for k in range(n)))
        if ref_index == len(reference):
            break
        row: list[Mapping[str, Any] | None] = [reference[ref_index]]
        for r in range(1, n):
            found = matched[r - 1].get(ref_index)
            row.append(ranks[r][found] if found is not None else None)
        rows.append(tuple(row))
    return rows


def _label(event: Mapping[str, Any]) -> str:
    src = str(event.get("src", "?"))
    args = event.get("args") or {}
    shown = [f"{k}={args[k]}" for k in _SHOWN_ARGS if k in args and args[k] is not None]
    text = f"{_PREFIX.get(src, src + '.')}{event.get('hook')}"
    if shown:
        text += f"({', '.join(str(s) for s in shown)})"
    return text


class _Renderer:
    def __init__(self, rows: Sequence[Row], names: Sequence[str]) -> None:
        self.rows = rows
        self.lanes = [f"R{r}" for r in range(len(names))]
        self.names = names
        self.lines: list[str] = []

    def render(self, title: str) -> str:
        self.lines = ["---", f'title: "{title.replace(chr(34), chr(39))}"', "---", "sequenceDiagram"]
        for lane, name in zip(self.lanes, self.names, strict=True):
            self.lines.append(f"    participant {lane} as {escape_text(name)}")
        keys: dict[str, int] = {}
        row_keys = [
            keys.setdefault(json.dumps([None if e is None else rank_key(e) for e in row]), len(keys))
            for row in self.rows
        ]
        self._items(fold(row_keys), 1)
        return "\n".join(self.lines) + "\n"

    def _items(self, items: Sequence[int | Loop], depth: int) -> None:
        indent = "    " * depth
        in_difference = False
        for item in items:
            if isinstance(item, Loop):
                if in_difference:
                    self.lines.append(f"{indent}end")
                    in_difference = False
                self.lines.append(f"{indent}loop ×{item.count}")
                self._items(item.body, depth + 1)
                self.lines.append(f"{indent}end")
                continue
            row = self.rows[item]
            differs = any(e is None for e in row) or len({rank_key(e) for e in row if e is not None}) > 1
            if differs and not in_difference:
                self.lines.append(f"{indent}rect {DIFFERENCE_FILL}")
                in_difference = True
            elif not differs and in_difference:
                self.lines.append(f"{indent}end")
                in_difference = False
            self._row(row, indent + ("    " if differs else ""))
        if in_difference:
            self.lines.append(f"{indent}end")

    def _row(self, row: Row, indent: str) -> None:
        present = [r for r, e in enumerate(row) if e is not None]
        first = row[present[0]]
        assert first is not None
        same = all(row[r] is not None and rank_key(row[r]) == rank_key(first) for r in present)  # type: ignore[arg-type]
        if same and len(present) == len(row):
            text = escape_text(_label(first))
            if first.get("src") == "dist" or first.get("hook") in COLLECTIVES:
                self.lines.append(f"{indent}{self.lanes[0]}->>{self.lanes[-1]}: {text}")
            else:
                self.lines.append(f"{indent}Note over {self.lanes[0]},{self.lanes[-1]}: {text}")
            return
        for r in present:
            event = row[r]
            assert event is not None
            self.lines.append(f"{indent}Note over {self.lanes[r]}: {escape_text(_label(event))}")


def ranks_diagram(traces: Sequence[Sequence[Mapping[str, Any]]], names: Sequence[str], title: str) -> str:
    """The Mermaid sequence diagram of several ranks' traces, one lane per rank.

    Args:
        traces: one event list per rank, rank 0 first.
        names: each lane's label (the trace file, its rank).
        title: the diagram's title.

    Returns:
        ``sequenceDiagram`` text ending in a newline.

    Raises:
        ValueError: fewer than two traces, or not one name per trace.
    """
    if len(names) != len(traces):
        raise ValueError(f"{len(traces)} traces but {len(names)} lane names")
    return _Renderer(align(traces), names).render(title)


def differing_rows(rows: Sequence[Row]) -> list[Row]:
    """The rows that not every rank has alike (what the diagram highlights).

    Args:
        rows: from :func:`align`.

    Returns:
        Those rows, in order.
    """
    return [row for row in rows if any(e is None for e in row) or len({rank_key(e) for e in row if e is not None}) > 1]
