"""Lightning's progress trackers as its checkpoints store them (``loops[...]["batch_progress"]``, ...).

Lightning counts each batch four times (``ready``, ``started``, ``processed``, ``completed``),
for the current run and in total. The loops here count batches once they are complete, when
all four are equal; the counts in between matter to Lightning only to restart inside a batch,
which lightcycle's own ``fit_loop`` fields describe (:mod:`lightcycle.runtime.checkpointing`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

_BATCH_KEYS = ("ready", "started", "processed", "completed")
_STEP_KEYS = ("ready", "completed")


@attrs.frozen
class Tracker:
    """One of Lightning's counters, read-only: how many were ready, started, processed, completed."""

    ready: int
    started: int
    processed: int
    completed: int


@attrs.frozen
class EpochProgress:
    """Lightning's ``fit_loop.epoch_progress``, read-only: epochs in total and in the current fit."""

    total: Tracker
    current: Tracker


class BatchProgress:
    """Batches of the current run and in total (Lightning's ``_BatchProgress``, or ``_Progress``).

    Args:
        last_batch_key: store ``is_last_batch`` (Lightning's evaluation loops do, its
            prediction loop does not).
    """

    __slots__ = ("current", "is_last_batch", "last_batch_key", "total")

    def __init__(self, last_batch_key: bool = True) -> None:
        self.last_batch_key = last_batch_key
        self.current = 0
        self.total = 0
        self.is_last_batch = False

    def start_run(self) -> None:
        """A new run: ``current`` from zero (Lightning's ``reset_on_run``)."""
        self.current = 0
        self.is_last_batch = False

    def add(self, batches: int, is_last_batch: bool) -> None:
        """Count ``batches`` completed batches.

        Args:
            batches: how many.
            is_last_batch: the last of them was the run's last batch.
        """
        self.current += batches
        self.total += batches
        self.is_last_batch = is_last_batch

    def state_dict(self) -> dict[str, Any]:
        """Lightning's layout: ``{"total": {...}, "current": {...}[, "is_last_batch": ...]}``."""
        state: dict[str, Any] = {"total": counts(self.total), "current": counts(self.current)}
        if self.last_batch_key:
            state["is_last_batch"] = self.is_last_batch
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`'s counts (their ``completed`` values)."""
        self.total = int(state.get("total", {}).get("completed", 0))
        self.current = int(state.get("current", {}).get("completed", 0))
        self.is_last_batch = bool(state.get("is_last_batch", False))


def counts(n: int, keys: tuple[str, ...] = _BATCH_KEYS) -> dict[str, int]:
    """One of Lightning's trackers with every count at ``n``.

    Args:
        n: the count.
        keys: the tracker's fields (a batch: ready/started/processed/completed; a step: ready/completed).

    Returns:
        ``{key: n}`` for each key.
    """
    return dict.fromkeys(keys, n)


def step_counts(total: int, current: int) -> dict[str, dict[str, int]]:
    """Lightning's ``_Progress`` of a ready/completed tracker (optimizer or scheduler steps).

    Args:
        total: steps since the fit began.
        current: steps in the current epoch.

    Returns:
        ``{"total": {...}, "current": {...}}``.
    """
    return {"total": counts(total, _STEP_KEYS), "current": counts(current, _STEP_KEYS)}
