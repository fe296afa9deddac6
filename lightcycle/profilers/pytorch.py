"""PyTorchProfiler: ``torch.profiler`` over the run, each action a ``record_function`` range.

A deliberately small version of Lightning's: one ``torch.profiler.profile`` is entered at
the first action and left at :meth:`PyTorchProfiler.summary`; it records every operator
(no wait/warm-up schedule), each action appears in the trace as ``[pl][profile]<action>``
(Lightning's label), and the report is ``key_averages().table(...)``. Lightning's schedule,
its nvtx mode, per-module labels and flame graphs are not offered.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch.autograd.profiler import record_function

from lightcycle.profilers.profiler import Profiler

_SORT_KEYS = {
    "cpu_time",
    "cuda_time",
    "cpu_time_total",
    "cuda_time_total",
    "cpu_memory_usage",
    "cuda_memory_usage",
    "self_cpu_memory_usage",
    "self_cuda_memory_usage",
    "count",
}
"""The ``sort_by`` keys Lightning's PyTorchProfiler accepts."""


class PyTorchProfiler(Profiler):
    """Profile the operators torch runs, labelled by action.

    Args:
        dirpath: folder of the report file and the Chrome trace (see
            :class:`~lightcycle.profilers.Profiler`).
        filename: the report's file name; ``None`` logs the report.
        group_by_input_shapes: group the table's rows by operator input shapes (needs
            ``record_shapes=True``).
        export_to_chrome: write the trace as Chrome JSON to
            ``dirpath/<stage>-<filename>[-<rank>].pt.trace.json`` at the end (when ``dirpath`` is known).
        row_limit: rows in the table (``-1``: all).
        sort_by_key: the table's sort key; default ``cuda_time_total`` when CUDA is
            profiled, else ``cpu_time_total``.
        **profiler_kwargs: passed to ``torch.profiler.profile`` (``activities``,
            ``record_shapes``, ``profile_memory``, ``with_stack``...).

    Raises:
        ValueError: ``sort_by_key`` is not one of Lightning's keys.
    """

    def __init__(
        self,
        dirpath: str | Path | None = None,
        filename: str | None = None,
        group_by_input_shapes: bool = False,
        export_to_chrome: bool = True,
        row_limit: int = 20,
        sort_by_key: str | None = None,
        **profiler_kwargs: Any,
    ) -> None:
        super().__init__(dirpath=dirpath, filename=filename)
        self.profiler: torch.profiler.profile | None = None
        self.function_events: Any = None
        self._recording_map: dict[str, record_function] = {}
        activities = profiler_kwargs.get("activities")
        if activities is None:
            activities = [torch.profiler.ProfilerActivity.CPU]
            if torch.cuda.is_available():
                activities.append(torch.profiler.ProfilerActivity.CUDA)
            profiler_kwargs["activities"] = activities
        cuda = torch.profiler.ProfilerActivity.CUDA in activities
        self._sort_by_key = sort_by_key or ("cuda_time_total" if cuda else "cpu_time_total")
        if self._sort_by_key not in _SORT_KEYS:
            raise ValueError(f"Found sort_by_key: {self._sort_by_key}. Should be within {sorted(_SORT_KEYS)}. ")
        self._group_by_input_shapes = group_by_input_shapes and profiler_kwargs.get("record_shapes", False)
        self._export_to_chrome = export_to_chrome
        self._row_limit = row_limit
        self._profiler_kwargs = profiler_kwargs

    def start(self, action_name: str) -> None:
        """Enter the torch profiler at the first action; open a ``record_function`` range for this one.

        Args:
            action_name: the action's name.
        """
        if self.profiler is None:
            self.profiler = torch.profiler.profile(**self._profiler_kwargs)
            self.profiler.__enter__()  # type: ignore[no-untyped-call]
        if action_name not in self._recording_map:
            recording = record_function("[pl][profile]" + action_name)
            recording.__enter__()  # type: ignore[no-untyped-call]
            self._recording_map[action_name] = recording

    def stop(self, action_name: str) -> None:
        """Close the action's ``record_function`` range.

        Args:
            action_name: the action's name.
        """
        recording = self._recording_map.pop(action_name, None)
        if recording is not None:
            recording.__exit__(None, None, None)

    def _close(self) -> None:
        for name in list(self._recording_map):
            self.stop(name)
        if self.profiler is not None:
            self.profiler.__exit__(None, None, None)  # type: ignore[no-untyped-call]
            self.function_events = self.profiler.events()  # type: ignore[no-untyped-call]
            if self._export_to_chrome and self.dirpath is not None:
                os.makedirs(self.dirpath, exist_ok=True)
                path = os.path.join(self.dirpath, self._prepare_filename(extension=".pt.trace.json"))
                self.profiler.export_chrome_trace(path)
            self.profiler = None

    def summary(self) -> str:
        """Stop profiling and tabulate the operators (``key_averages().table``).

        Returns:
            The report, a ``Profile stats for: records`` section; empty when nothing was recorded.
        """
        if not self._profiler_kwargs.get("enabled", True):
            return ""
        self._close()
        if not self.function_events:
            return ""
        averages = self.function_events.key_averages(group_by_input_shapes=self._group_by_input_shapes)
        table = averages.table(sort_by=self._sort_by_key, row_limit=self._row_limit)
        return self._stats_to_str({"records": table})

    def teardown(self, stage: str | None) -> None:
        """Stop profiling and close the report file.

        Args:
            stage: the run's stage.
        """
        self._close()
        super().teardown(stage=stage)
