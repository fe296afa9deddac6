"""Mermaid ``sequenceDiagram`` of a recorded run (a HookRecorder trace).

A trace is JSON lines ``{"src", "hook", "args", "ctx"[, "phase"]}`` as
:class:`lightcycle.callbacks.recorder.HookRecorder` writes them (and as the Lightning
reference traces in ``shared/traces`` are). The diagram has the participants: the
callbacks (one per callback name when events carry a ``name``, else one "Callbacks") to
the left of the Trainer, the LightningModule and the LightningDataModule to its right;
every hook call is an arrow from the Trainer. The title says what the run was
(:func:`run_title`: entry points and model class).

Repetition is folded: runs of identical hook sequences (same source, hook, stage and
arguments apart from the counters ``batch_idx``/``epoch``/``global_step``) become
``loop`` blocks with their count and the range of ``epoch`` / ``batch_idx`` they cover,
nested (epochs around batches), so a two-epoch run stays readable. Inside a loop the
counters are shown by name; outside, with their value. ``phase: "return"`` events
(wrapping hooks returning) are dashed arrows back, and the wrapped calls are drawn on
an activation bar. A note marks each change of ``trainer.state`` (stage, fn, status).
"""

from __future__ import annotations

import bisect
import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs

COUNTERS = frozenset({"batch_idx", "epoch", "global_step"})
"""Argument names that count batches/epochs/steps: ignored when comparing repetitions."""

SHOWN_VALUES = frozenset(
    {"stage", "dataloader_idx", "exception", "gradient_clip_val", "gradient_clip_algorithm", "_return", "_action"}
)
"""Arguments whose values are shown on the arrows (others are left out)."""

_PARTICIPANTS = {"module": ("Module", "LightningModule"), "datamodule": ("DataModule", "LightningDataModule")}


def read_trace(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Read a JSON-lines hook trace.

    Args:
        path: the ``.jsonl`` file.

    Returns:
        The events, in order (blank lines skipped).

    Raises:
        ValueError: a line is not a JSON object with ``src`` and ``hook``; names the line.
    """
    events: list[dict[str, Any]] = []
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                event = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{os.fspath(path)}:{number}: not JSON ({exc})") from None
            if not isinstance(event, dict) or "src" not in event or "hook" not in event:
                raise ValueError(f"{os.fspath(path)}:{number}: not a hook event (needs 'src' and 'hook')")
            events.append(event)
    return events


@attrs.frozen
class Loop:
    """A folded repetition.

    Args:
        count: how many times the body repeats.
        body: the first repetition, itself folded (event indices and loops).
        starts: the index of the first event of each repetition.
        size: events per repetition.
    """

    count: int
    body: tuple[int | Loop, ...]
    starts: tuple[int, ...]
    size: int


def _strip_counters(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_counters(v) for k, v in sorted(value.items()) if k not in COUNTERS}
    if isinstance(value, list):
        return [_strip_counters(v) for v in value]
    return value


def _participant_key(event: Mapping[str, Any]) -> str:
    src = str(event.get("src", "?"))
    if src == "callback":
        return f"callback:{event.get('name') or 'Callbacks'}"
    return src


def signature(event: Mapping[str, Any]) -> str:
    """What makes two events "the same" when folding repetitions.

    Args:
        event: a trace event.

    Returns:
        A string built from participant, hook, phase, stage and the arguments
        without counters.
    """
    ctx = event.get("ctx") or {}
    return json.dumps(
        [
            _participant_key(event),
            event.get("hook"),
            event.get("phase"),
            ctx.get("stage"),
            ctx.get("fn"),
            _strip_counters(event.get("args") or {}),
        ],
        sort_keys=True,
        default=str,
    )


_MOD = (1 << 61) - 1
_BASE = 1_000_003


class _Folder:
    """Finds tandem repeats fast: candidate sizes come from the next occurrences of the
    first key, and segments are compared by rolling hash (then verified)."""

    def __init__(self, keys: Sequence[int]) -> None:
        self.keys = list(keys)
        n = len(self.keys)
        self.prefix = [0] * (n + 1)
        self.power = [1] * (n + 1)
        for i, key in enumerate(self.keys):
            self.prefix[i + 1] = (self.prefix[i] * _BASE + key + 1) % _MOD
            self.power[i + 1] = (self.power[i] * _BASE) % _MOD
        self.where: dict[int, list[int]] = {}
        for i, key in enumerate(self.keys):
            self.where.setdefault(key, []).append(i)

    def _hash(self, i: int, size: int) -> int:
        return (self.prefix[i + size] - self.prefix[i] * self.power[size]) % _MOD

    def _same(self, i: int, j: int, size: int) -> bool:
        return self._hash(i, size) == self._hash(j, size) and self.keys[i : i + size] == self.keys[j : j + size]

    def fold(self, start: int, stop: int) -> tuple[int | Loop, ...]:
        out: list[int | Loop] = []
        i = start
        while i < stop:
            best: tuple[int, int, int] | None = None  # (covered, size, count)
            places = self.where[self.keys[i]]
            for j in places[bisect.bisect_right(places, i) :]:
                size = j - i
                if i + 2 * size > stop:
                    break
                count = 1
                while i + (count + 1) * size <= stop and self._same(i, i + count * size, size):
                    count += 1
                if count >= 2 and (best is None or count * size > best[0]):
                    best = (count * size, size, count)
            if best is None:
                out.append(i)
                i += 1
                continue
            covered, size, count = best
            starts = tuple(i + n * size for n in range(count))
            out.append(Loop(count, self.fold(i, i + size), starts, size))
            i += covered
        return tuple(out)


def fold(keys: Sequence[int], start: int = 0, stop: int | None = None) -> tuple[int | Loop, ...]:
    """Fold runs of repeated key sequences into loops, greedily from the left.

    At each position the repetition covering the most events wins (the shortest body on
    a tie); the body of a loop is folded again (batches inside epochs).

    Args:
        keys: one integer per event (equal for events with the same :func:`signature`).
        start: first event index to fold.
        stop: one past the last event index (default: the end).

    Returns:
        Event indices and :class:`Loop` s, in order.
    """
    return _Folder(keys).fold(start, len(keys) if stop is None else stop)


def _escape(text: str) -> str:
    """Text safe in a Mermaid message or loop label (``#`` and ``;`` as entity codes)."""
    return re.sub(r"[#;]", lambda m: f"#{ord(m.group())};", text).replace("\n", " ")


def _value(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return "None"
    return json.dumps(value, default=str)


class _Renderer:
    def __init__(self, events: Sequence[Mapping[str, Any]]) -> None:
        self.events = events
        self.ids: dict[str, str] = {}
        self.lines: list[str] = []
        self.stage: Any = "<unset>"
        callbacks: list[str] = []
        others: set[str] = set()
        for e in events:
            key = _participant_key(e)
            if key.startswith("callback:"):
                if key not in callbacks:
                    callbacks.append(key)
            else:
                others.add(key)
        # the Trainer in the middle: callbacks to its left (the first nearest), module and
        # datamodule to its right. Mermaid centres a message's label between the two
        # lifelines, so with every participant on one side the module's labels sat on the
        # callbacks' lifeline.
        left: list[tuple[str, str]] = []
        for n, key in enumerate(callbacks):
            name = key.split(":", 1)[1]
            pid = "Callbacks" if name == "Callbacks" else f"CB{n}"
            self.ids[key] = pid
            left.insert(0, (pid, name))
        self.participants: list[tuple[str, str]] = [*left, ("Trainer", "Trainer")]
        for key in ("module", "datamodule"):
            if key in others:
                pid, alias = _PARTICIPANTS[key]
                self.ids[key] = pid
                self.participants.append((pid, alias))
        for n, key in enumerate(sorted(others - set(_PARTICIPANTS))):
            self.ids[key] = f"P{n}"
            self.participants.append((f"P{n}", key))

    def message(self, index: int, offsets: Sequence[int], mark: str) -> str:
        e = self.events[index]
        args = e.get("args") or {}
        shown = []
        for name, value in args.items():
            if name in COUNTERS:
                same = all((self.events[index + o].get("args") or {}).get(name) == value for o in offsets)
                shown.append(f"{name}={_value(value)}" if same else name)
            elif name in SHOWN_VALUES:
                shown.append(f"{name}={_value(value)}")
        text = f"{e.get('hook')}({', '.join(shown)})"
        who = self.ids[_participant_key(e)]
        if e.get("phase") == "return":
            return f"{who}-->>{'-' if mark else ''}Trainer: {_escape(str(e.get('hook')))} returned"
        return f"Trainer->>{'+' if mark else ''}{who}: {_escape(text)}"

    def stage_note(self, index: int, indent: str) -> None:
        ctx = self.events[index].get("ctx") or {}
        stage, fn, status = ctx.get("stage"), ctx.get("fn"), ctx.get("status")
        if (stage, fn, status) == self.stage:
            return
        self.stage = (stage, fn, status)
        first, last = self.participants[0][0], self.participants[-1][0]
        span = first if first == last else f"{first},{last}"
        text = (
            f"stage = {stage}" + (f" ({fn})" if fn else "") + (f", {status}" if status not in (None, "running") else "")
        )
        self.lines.append(f"{indent}Note over {span}: {_escape(text)}")

    def pairs(self, items: Sequence[int | Loop]) -> set[int]:
        """Calls and returns matched in the same block: they get activation marks."""
        marked: set[int] = set()
        open_calls: list[int] = []
        for item in items:
            if isinstance(item, Loop):
                continue
            e = self.events[item]
            if e.get("phase") == "return":
                for pos in range(len(open_calls) - 1, -1, -1):
                    call = self.events[open_calls[pos]]
                    if call.get("hook") == e.get("hook") and _participant_key(call) == _participant_key(e):
                        marked.update((open_calls.pop(pos), item))
                        break
            else:
                open_calls.append(item)
        return marked

    def block(self, items: Sequence[int | Loop], indent: str, offsets: Sequence[int]) -> None:
        """Render folded items; ``offsets`` map an event of the drawn repetition to the others."""
        marked = self.pairs(items)
        for item in items:
            if isinstance(item, Loop):
                self.lines.append(f"{indent}loop {_escape(self.loop_label(item))}")
                inner = [o + s - item.starts[0] for o in offsets for s in item.starts]
                self.block(item.body, indent + "    ", inner)
                self.lines.append(f"{indent}end")
                continue
            self.stage_note(item, indent)
            self.lines.append(indent + self.message(item, offsets, "+" if item in marked else ""))

    def loop_label(self, loop: Loop) -> str:
        """``N×``, then each counter that differs between repetitions with the range it spans."""
        parts = [f"{loop.count}×"]
        for name in ("epoch", "batch_idx"):
            per_pass: list[list[int]] = []
            for s in loop.starts:
                values = []
                for e in self.events[s : s + loop.size]:
                    value = (e.get("ctx") or {}).get(name) if name == "epoch" else (e.get("args") or {}).get(name)
                    if isinstance(value, int) and not isinstance(value, bool):
                        values.append(value)
                per_pass.append(values)
            if all(per_pass) and len({tuple(v) for v in per_pass}) > 1:
                flat = [v for values in per_pass for v in values]
                parts.append(f"{name} {min(flat)}–{max(flat)}")
        return " ".join(parts)

    def render(self, title: str | None) -> str:
        keys: dict[str, int] = {}
        ints = [keys.setdefault(signature(e), len(keys)) for e in self.events]
        if title:
            self.lines += ["---", f'title: "{title}"', "---"]
        self.lines.append("sequenceDiagram")
        for pid, alias in self.participants:
            self.lines.append(
                f"    participant {pid} as {_escape(alias)}" if pid != alias else f"    participant {pid}"
            )
        self.block(fold(ints), "    ", [0])
        return "\n".join(self.lines) + "\n"


def run_title(events: Sequence[Mapping[str, Any]]) -> str | None:
    """What the run was, from its events: entry points and model class, e.g. ``trainer.fit(MyModel)``.

    Args:
        events: trace events.

    Returns:
        The title, with the number of hook calls; ``None`` when no event names its entry point.
    """
    fns: list[str] = []
    model = None
    for e in events:
        ctx = e.get("ctx") or {}
        fn = ctx.get("fn")
        if isinstance(fn, str) and (not fns or fns[-1] != fn):
            fns.append(fn)
        if model is None and isinstance(ctx.get("model"), str):
            model = ctx["model"]
    if not fns:
        return None
    what = ", ".join(f"trainer.{fn}({model})" if model else f"trainer.{fn}" for fn in fns)
    return f"{what}: {len(events)} hook calls"


def sequence_diagram(events: Iterable[Mapping[str, Any]], title: str | None = None) -> str:
    """The Mermaid sequence diagram of a recorded run.

    Args:
        events: trace events (see :func:`read_trace`), in call order.
        title: a title for the diagram; by default what the run was (:func:`run_title`).

    Returns:
        ``sequenceDiagram`` text ending in a newline.
    """
    listed = list(events)
    return _Renderer(listed).render(title or run_title(listed))
