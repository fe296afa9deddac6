"""Assertions on recorded runs: hooks in a relative order, and the trace checker as a function."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any, Union

from lightcycle.states.model import Lifecycle
from lightcycle.verify import VerifyResult, load_trace, verify_trace

Trace = Union[Sequence[Mapping[str, Any]], "os.PathLike[str]", str, Any]
"""A list of events, a JSON-lines file, or an object with ``.events`` (a HookRecorder)."""

_AROUND = 4  # events shown on either side of a mismatch


def events_of(trace: Trace) -> list[Mapping[str, Any]]:
    """The events of a trace given as a list, a path or a recorder.

    Args:
        trace: see :data:`Trace`.

    Returns:
        The events, in call order.

    Raises:
        TypeError: anything else.
    """
    if isinstance(trace, (str, os.PathLike)):
        return list(load_trace(trace))
    events = getattr(trace, "events", trace)
    if isinstance(events, Sequence) and all(isinstance(e, Mapping) for e in events):
        return list(events)
    raise TypeError(f"expected a list of trace events, a JSON-lines path or a HookRecorder, got {type(trace).__name__}")


def _matches(event: Mapping[str, Any], want: str) -> bool:
    src, dot, hook = want.rpartition(".")
    return event.get("hook") == hook and (not dot or event.get("src") == src)


def _show(events: Sequence[Mapping[str, Any]], at: int) -> str:
    lines = []
    for i in range(max(0, at - _AROUND), min(len(events), at + _AROUND + 1)):
        e = events[i]
        state = e.get("ctx", {}).get("state", "") if isinstance(e.get("ctx"), Mapping) else ""
        lines.append(f"  {'>>' if i == at else '  '} {i:5d}  {e.get('src')}.{e.get('hook')}  {state}")
    if at >= len(events):
        lines.append(f"  >> {at:5d}  (end of trace)")
    return "\n".join(lines)


def _find(events: Sequence[Mapping[str, Any]], pattern: Sequence[str], start: int, immediately: bool) -> int | None:
    """Match ``pattern`` from ``start``; returns the index after the match, or raises the mismatch."""
    pos = start
    for k, want in enumerate(pattern):
        if immediately and k > 0:
            if pos < len(events) and _matches(events[pos], want):
                pos += 1
                continue
            raise _Mismatch(pos, want, pattern[k - 1])
        while pos < len(events) and not _matches(events[pos], want):
            pos += 1
        if pos == len(events):
            raise _Mismatch(pos, want, pattern[k - 1] if k else None)
        pos += 1
    return pos


class _Mismatch(Exception):
    def __init__(self, at: int, want: str, previous: str | None) -> None:
        self.at, self.want, self.previous = at, want, previous


def assert_hook_order(
    trace_or_recorder: Trace, pattern: Sequence[str], *, each_time: bool = False, immediately: bool = False
) -> None:
    """Assert that a recorded run calls the hooks of ``pattern`` in that relative order.

    A pattern entry is a hook name (``"on_fit_start"``, any receiver) or ``"src.hook"``
    (``"module.training_step"``, ``"callback.on_train_batch_end"``, ``"datamodule.setup"``).

    Args:
        trace_or_recorder: the run (events, a JSON-lines path, or a HookRecorder).
        pattern: hook names, in the order they must come.
        each_time: every call of ``pattern[0]`` must be followed by the rest (before the
            next call of ``pattern[0]``); by default one occurrence of the whole pattern suffices.
        immediately: the hooks must be consecutive events (nothing in between).

    Raises:
        AssertionError: the order does not hold; the message shows the trace around the
            first mismatch.
        ValueError: an empty pattern.
    """
    if not pattern:
        raise ValueError("assert_hook_order needs at least one hook in the pattern")
    events = events_of(trace_or_recorder)
    pattern = list(pattern)
    how = " immediately" if immediately else ""
    try:
        if not each_time:
            _find(events, pattern, 0, immediately)
            return
        starts = [i for i, e in enumerate(events) if _matches(e, pattern[0])]
        if not starts:
            raise _Mismatch(len(events), pattern[0], None)
        for n, i in enumerate(starts):
            end = _find(events, pattern, i, immediately)
            limit = starts[n + 1] if n + 1 < len(starts) else len(events)
            if end is not None and end > limit and len(pattern) > 1:
                raise _Mismatch(limit, pattern[-1], pattern[0])
    except _Mismatch as m:
        after = f" after {m.previous!r}" if m.previous else ""
        raise AssertionError(
            f"hook order {pattern} does not hold{' each time' if each_time else ''}: expected {m.want!r}{how}"
            f"{after}, at event {m.at}:\n{_show(events, m.at)}"
        ) from None


def verify(trace: Trace, lifecycle: Lifecycle | None = None, *, partial: bool = False) -> VerifyResult:
    """Check a recorded run against the lifecycle declaration (``lightcycle verify`` as a function).

    Args:
        trace: the run (events, a JSON-lines path, or a HookRecorder).
        lifecycle: the declaration (default: :data:`lightcycle.LIFECYCLE`; an extended copy works).
        partial: accept a run cut short (a crashed process's live trace).

    Returns:
        The :class:`~lightcycle.verify.VerifyResult` (``.ok``, ``.report()``).
    """
    events = events_of(trace)
    if lifecycle is None:
        return verify_trace(events, partial=partial)
    return verify_trace(events, lifecycle, partial=partial)
