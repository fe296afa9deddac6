"""SimpleProfiler: the wall time of every action, reported as Lightning's table."""

from __future__ import annotations

import math
import os
import time
from collections import defaultdict
from pathlib import Path

from lightcycle.profilers.profiler import Profiler

_Row = tuple[str, float, int, float, float]
"""action, mean duration, number of calls, total time, percentage of the run."""


class SimpleProfiler(Profiler):
    """Record how long each action takes; report the mean and total per action.

    Args:
        dirpath: folder of the report file (see :class:`~lightcycle.profilers.Profiler`).
        filename: the report's file name; ``None`` logs the report.
        extended: also report the number of calls and each action's share of the run's
            wall time (the default, as Lightning's).

    Raises:
        ValueError: from :meth:`start`, an action already running; from :meth:`stop`, an
            action never started.
    """

    def __init__(self, dirpath: str | Path | None = None, filename: str | None = None, extended: bool = True) -> None:
        super().__init__(dirpath=dirpath, filename=filename)
        self.current_actions: dict[str, float] = {}
        self.recorded_durations: defaultdict[str, list[float]] = defaultdict(list)
        self.extended = extended
        self.start_time = time.perf_counter()

    def start(self, action_name: str) -> None:
        """Note the start time of ``action_name``.

        Args:
            action_name: the action's name.

        Raises:
            ValueError: it is already running (a nested call of the same action).
        """
        if action_name in self.current_actions:
            raise ValueError(f"Attempted to start {action_name} which has already started.")
        self.current_actions[action_name] = time.perf_counter()

    def stop(self, action_name: str) -> None:
        """Record the duration of ``action_name`` since its :meth:`start`.

        Args:
            action_name: the action's name.

        Raises:
            ValueError: it was never started.
        """
        end = time.perf_counter()
        started = self.current_actions.pop(action_name, None)
        if started is None:
            raise ValueError(f"Attempting to stop recording an action ({action_name}) which was never started.")
        self.recorded_durations[action_name].append(end - started)

    def _rows(self) -> tuple[list[_Row], int, float]:
        """The actions by share of the run's wall time (largest first), the calls and the wall time."""
        wall = time.perf_counter() - self.start_time
        rows: list[_Row] = []
        for action, durations in self.recorded_durations.items():
            total = math.fsum(durations)
            rows.append((action, total / len(durations), len(durations), total, 100.0 * total / wall))
        rows.sort(key=lambda row: row[4], reverse=True)
        return rows, sum(row[2] for row in rows), wall

    def summary(self) -> str:
        """Lightning's table: one row per action, a ``Total`` row first when extended.

        Returns:
            The report, headed ``<STAGE> Profiler Report``.
        """
        sep = os.linesep
        out = (f"{self._stage.upper()} " if self._stage is not None else "") + f"Profiler Report{sep}"
        if not self.recorded_durations:
            return out + sep  # (Lightning's own non-extended report raises here)
        width = max(len(k) for k in self.recorded_durations)

        def row(*cells: str) -> str:
            text = f"{sep}|  {cells[0]:<{width}s}\t|"
            return text + "".join(f"  {cell:<15}\t|" for cell in cells[1:])

        if self.extended:
            header = row("Action", "Mean duration (s)", "Num calls", "Total time (s)", "Percentage %")
        else:
            header = row("Action", "Mean duration (s)", "Total time (s)")
        rule = f"{sep}{'-' * len(header.expandtabs())}"
        out += rule + header + rule
        if self.extended:
            rows, calls, wall = self._rows()
            out += row("Total", "-", f"{calls}", f"{wall:.5}", "100 %") + rule
            for action, mean, n, total, share in rows:
                out += row(action, f"{mean:.5}", f"{n}", f"{total:.5}", f"{share:.5}")
        else:
            by_mean = sorted(
                ((a, math.fsum(d) / len(d), math.fsum(d)) for a, d in self.recorded_durations.items()),
                key=lambda r: r[1],
                reverse=True,
            )
            for action, mean, total in by_mean:
                out += row(action, f"{mean:.5}", f"{total:.5}")
        return out + rule + sep
