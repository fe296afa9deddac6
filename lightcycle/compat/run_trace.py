"""``lightcycle run --trace``: a HookRecorder on every Trainer, one numbered file each.

``lightcycle run`` sets :data:`TRACE_ENV` to the trace path; every Trainer built in that
process, or in a process it starts (the variable is inherited), adds one
:class:`~lightcycle.callbacks.recorder.HookRecorder` writing to the first free file of
``FILE``, ``stem.1.suffix``, ``stem.2.suffix``, ... (``run.jsonl``, ``run.1.jsonl``, ...).
A file is claimed by creating it exclusively, so Trainers in several processes never
share one.
"""

from __future__ import annotations

import os
from typing import Any

TRACE_ENV = "LIGHTCYCLE_TRACE"
"""The environment variable holding the trace path (set by ``lightcycle run --trace``)."""


def numbered(path: str, index: int) -> str:
    """The ``index``-th file of the series starting at ``path`` (``run.jsonl`` → ``run.2.jsonl``).

    Args:
        path: the series' first file.
        index: 0 for ``path`` itself.

    Returns:
        The file name.
    """
    if index == 0:
        return path
    stem, suffix = os.path.splitext(path)
    return f"{stem}.{index}{suffix}"


def series(path: str) -> list[str]:
    """The files of the series starting at ``path`` that exist, in order (stops at the first gap)."""
    found: list[str] = []
    while os.path.exists(numbered(path, len(found))):
        found.append(numbered(path, len(found)))
    return found


def claim(path: str) -> str:
    """Create and return the first free file of the series starting at ``path``."""
    index = 0
    while True:
        candidate = numbered(path, index)
        try:
            fd = os.open(candidate, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            index += 1
            continue
        os.close(fd)
        return candidate


def recorders_from_env() -> list[Any]:
    """The recorder to add to a new Trainer: one when :data:`TRACE_ENV` is set, else none."""
    path = os.environ.get(TRACE_ENV)
    if not path:
        return []
    # deferred: torch for the CLI start-up (`lightcycle run` imports this module)
    from lightcycle.callbacks.recorder import HookRecorder

    return [HookRecorder(claim(path), keep=False)]
