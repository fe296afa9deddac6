"""The outcome of checking a hook trace, its report, and reading a trace file.

:func:`lightcycle.verify.verify_trace` returns a :class:`VerifyResult`; when the trace leaves
the lifecycle, its :class:`Violation` says where and why. :func:`load_trace` reads the
JSON-lines format that :class:`~lightcycle.callbacks.HookRecorder` writes.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["CONTEXT", "VerifyResult", "Violation", "load_trace", "nothing_checked"]

CONTEXT = 4
"""Events shown on either side of a violation."""


@dataclass(frozen=True)
class Violation:
    """The first place where a trace leaves the declared lifecycle.

    Attributes:
        index: position of the offending event in the trace (``len(trace)`` when the
            trace ends too early).
        event: the offending event, or ``None`` at the end of the trace.
        message: what is wrong, naming the hook.
        states: the state(s) the lifecycle was in just before the event.
        allowed: the hook events that could have come next, as ``src:hook``.
        context: ``(index, event)`` pairs around the offending event.
    """

    index: int
    event: Mapping[str, Any] | None
    message: str
    states: tuple[str, ...]
    allowed: tuple[str, ...]
    context: tuple[tuple[int, Mapping[str, Any]], ...]
    stages: tuple[str, ...] = ()


@dataclass(frozen=True)
class VerifyResult:
    """The outcome of :func:`verify_trace`.

    Attributes:
        ok: whether the declaration accepts the whole trace.
        checked: how many events were checked.
        counts: checked events per ``(src, hook)``.
        ignored: skipped events per reason.
        callbacks: the number(s) of recording callbacks the trace was read with.
        violation: the first violation, when not ok.
    """

    ok: bool
    checked: int
    counts: Mapping[tuple[str, str], int]
    ignored: Mapping[str, int]
    callbacks: tuple[int, ...]
    violation: Violation | None = None

    def report(self, name: str = "trace") -> str:
        """A human-readable report: ``OK`` with per-hook counts, or the violation."""
        lines: list[str] = []
        if self.ok:
            cbs = "/".join(str(n) for n in self.callbacks)
            lines.append(f"OK {name}: {self.checked} events follow the lifecycle ({cbs} recording callback(s))")
            width = max((len(h) for _, h in self.counts), default=0)
            for (src, hook), count in sorted(self.counts.items(), key=lambda kv: (kv[0][1], kv[0][0])):
                lines.append(f"  {hook:<{width}}  {src:<10}  {count}")
        else:
            v = self.violation
            assert v is not None
            lines.append(f"FAIL {name}: {v.message}")
            if v.states or v.event is not None:
                lines.append(f"  state before it: {', '.join(v.states) if v.states else '(none)'}")
            if v.stages:
                lines.append(f"  stage there:     {', '.join(v.stages)}")
            if v.allowed:
                lines.append(f"  allowed there:   {', '.join(v.allowed)}")
            if v.context:
                lines.append("  events around it:")
                for i, ev in v.context:
                    mark = ">>" if i == v.index else "  "
                    lines.append(f"  {mark} {i:5d}  {_describe(ev)}")
            if v.event is None:
                lines.append(f"  >> {v.index:5d}  (end of trace)")
        if self.ignored:
            skipped = ", ".join(f"{why}: {count}" for why, count in sorted(self.ignored.items()))
            lines.append(f"  skipped: {skipped}")
        return "\n".join(lines)


def load_trace(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Read a JSON-lines trace (blank lines are skipped).

    Raises:
        ValueError: a line is not a JSON object; the message names the line.
    """
    events: list[dict[str, Any]] = []
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                event = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"{os.fspath(path)}:{lineno}: not JSON: {err}") from None
            if not isinstance(event, dict):
                raise ValueError(f"{os.fspath(path)}:{lineno}: expected a JSON object, got {type(event).__name__}")
            events.append(event)
    return events


def _describe(event: Mapping[str, Any]) -> str:
    ctx = event.get("ctx") or {}
    extra = [f"{k}={ctx[k]}" for k in ("stage", "state") if isinstance(ctx, dict) and k in ctx]
    args = event.get("args") or {}
    if isinstance(args, dict):
        shown = [f"{k}={args[k]!r}" for k in ("stage", "batch_idx", "dataloader_idx") if k in args]
        if shown:
            extra.append(f"args({', '.join(shown)})")
    phase = f" ({event['phase']})" if event.get("phase") else ""
    return f"{event.get('src')!s:<10} {event.get('hook')}{phase}  {' '.join(extra)}".rstrip()


def nothing_checked(events: Sequence[Mapping[str, Any]], ignored: Mapping[str, int]) -> Violation:
    """The violation of a trace with no hook event: nothing was verified, which is no pass.

    A Lightning run records at least one hook event (an entry point that fails before its
    first hook still calls ``on_exception``); lightcycle records none only for a call it
    refused before any hook fired (bad arguments). Otherwise an empty trace comes from a
    recorder that was never attached, a wrong file, or a recording that filtered out the hooks.

    Args:
        events: the whole trace.
        ignored: the skipped events per reason (shown in the message).

    Returns:
        A :class:`Violation` at the end of the trace that says nothing was verified.
    """
    if not events:
        message = (
            "the trace is empty: nothing was verified (was the recorder attached? pass HookRecorder(path) "
            "in the Trainer's callbacks; or the run was refused before its first hook)"
        )
    else:
        skipped = ", ".join(f"{why}: {count}" for why, count in sorted(ignored.items()))
        message = (
            f"the trace has {len(events)} event(s) but no hook call of a callback, module or datamodule "
            f"({skipped}): nothing was verified"
        )
    context = tuple((j, events[j]) for j in range(max(0, len(events) - CONTEXT), len(events)))
    return Violation(len(events), None, message, (), (), context)
