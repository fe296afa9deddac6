"""The profiler interface of Lightning 2.6: actions started and stopped by name, a report at the end.

A profiler times *actions*: every hook call the run's declaration binds and a few loop
spans, named as Lightning names them (``[Callback]<state_key>.<hook>``,
``[LightningModule]<Class>.<hook>``, ``[Strategy]<Class>.training_step``,
``run_training_batch``...; :mod:`lightcycle.profilers.wrapping` gives the names). The
Trainer calls :meth:`Profiler.setup` when a run starts and :meth:`Profiler.describe` after
its teardown hooks, which writes :meth:`Profiler.summary` to ``dirpath/<stage>-<filename>.txt``
when a ``filename`` is given, else to the log (rank 0 only).
"""

from __future__ import annotations

import logging
import os
import re
import sys
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

log = logging.getLogger(__name__)

_UNSAFE = re.compile(r"[\\/:*?\"<>|\n\r\t]")
"""Characters replaced by ``_`` in file names, on every platform (Lightning's set)."""


class Profiler(ABC):
    """Base class of profilers; subclass it to write your own (implement ``start`` and ``stop``).

    Args:
        dirpath: folder of the report file; ``None``: the trainer's ``log_dir`` (set in
            :meth:`setup`).
        filename: the report's file name (``.txt`` added, prefixed with the stage and,
            under several processes, suffixed with the local rank). ``None``: the report
            goes to the log instead.
    """

    def __init__(self, dirpath: str | Path | None = None, filename: str | None = None) -> None:
        self.dirpath = dirpath
        self.filename = filename
        self._output_file: TextIO | None = None
        self._write_stream: Callable[[str], Any] | None = None
        self._local_rank: int | None = None
        self._stage: str | None = None
        self._lightning_module: Any = None

    @abstractmethod
    def start(self, action_name: str) -> None:
        """Start timing ``action_name``.

        Args:
            action_name: the action's name.
        """

    @abstractmethod
    def stop(self, action_name: str) -> None:
        """Stop timing ``action_name`` and record its duration.

        Args:
            action_name: the action's name, as given to :meth:`start`.
        """

    def summary(self) -> str:
        """The report of what was recorded (empty for a profiler that records nothing).

        Returns:
            The report's text.
        """
        return ""

    @contextmanager
    def profile(self, action_name: str) -> Iterator[str]:
        """Time the block of a ``with`` statement as ``action_name`` (stopped even when it raises).

        Args:
            action_name: the action's name.

        Yields:
            ``action_name``.
        """
        try:
            self.start(action_name)
            yield action_name
        finally:
            self.stop(action_name)

    def _rank_zero_info(self, text: str) -> None:
        if self._local_rank not in (None, 0):
            return
        if log.hasHandlers():
            log.info(text)
        else:  # logging not configured: stderr, as Lightning's own handler shows its report
            sys.stderr.write(text)

    def _prepare_filename(self, action_name: str | None = None, extension: str = ".txt") -> str:
        """``<stage>-<filename>[-<local rank>][-<action>]<extension>``, with path-unsafe characters replaced."""
        parts = [p for p in (self._stage, self.filename) if p]
        if self._local_rank is not None:
            parts.append(str(self._local_rank))
        if action_name is not None:
            parts.append(action_name)
        base = re.sub(r"_+", "_", _UNSAFE.sub("_", "-".join(parts))).strip()
        return (base or "profile") + extension

    def _prepare_streams(self) -> None:
        if self._write_stream is not None:
            return
        if self.filename and self.dirpath:
            os.makedirs(self.dirpath, exist_ok=True)
            # appended, as Lightning: a later fit with the same trainer adds its report
            file = open(os.path.join(self.dirpath, self._prepare_filename()), "a")  # noqa: SIM115 (closed in teardown)
            self._output_file = file
            self._write_stream = file.write
        else:
            self._write_stream = self._rank_zero_info

    def describe(self) -> None:
        """Write the report (to the file, else to the log), then close the file (:meth:`teardown`)."""
        self._prepare_streams()
        summary = self.summary()
        if summary and self._write_stream is not None:
            self._write_stream(summary)
        if self._output_file is not None:
            self._output_file.flush()
        self.teardown(stage=self._stage)

    def _stats_to_str(self, stats: dict[str, str]) -> str:
        """One report section per action: ``<STAGE> Profiler Report`` then ``Profile stats for: <action>``."""
        stage = f"{self._stage.upper()} " if self._stage is not None else ""
        lines = [stage + "Profiler Report"]
        for action, value in stats.items():
            header = f"Profile stats for: {action}"
            if self._local_rank is not None:
                header += f" rank: {self._local_rank}"
            lines.extend((header, value))
        return os.linesep.join(lines)

    def setup(self, stage: str, local_rank: int | None = None, log_dir: str | None = None) -> None:
        """Called by the Trainer when a run starts.

        Args:
            stage: ``fit``, ``validate``, ``test`` or ``predict``.
            local_rank: the process's local rank, ``None`` in a single process.
            log_dir: the trainer's ``log_dir``, the report's folder when ``dirpath`` is not set.
        """
        self._stage = stage
        self._local_rank = local_rank
        self.dirpath = self.dirpath or log_dir

    def teardown(self, stage: str | None) -> None:
        """Close the report file and forget the stream.

        Args:
            stage: the run's stage.
        """
        self._write_stream = None
        if self._output_file is not None:
            self._output_file.close()
            self._output_file = None

    def __del__(self) -> None:
        self.teardown(stage=self._stage)

    @property
    def local_rank(self) -> int:
        """The local rank given to :meth:`setup` (0 in a single process)."""
        return 0 if self._local_rank is None else self._local_rank


class PassThroughProfiler(Profiler):
    """Records nothing. The Trainer treats it as "no profiler": nothing is wrapped, nothing is timed."""

    def start(self, action_name: str) -> None:
        """Do nothing."""

    def stop(self, action_name: str) -> None:
        """Do nothing."""
