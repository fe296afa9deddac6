"""AdvancedProfiler: a ``cProfile`` profile per action, reported with ``pstats`` as Lightning's."""

from __future__ import annotations

import cProfile
import io
import os
import pstats
from pathlib import Path
from typing import Any

from lightcycle.profilers.profiler import Profiler


class AdvancedProfiler(Profiler):
    """Record every Python function call made during each action, one ``cProfile`` per action.

    Only one action's profile collects at a time: starting an action pauses the others
    (a nested action's calls are not counted in the enclosing one, as in Lightning).

    Args:
        dirpath: folder of the report file (see :class:`~lightcycle.profilers.Profiler`).
        filename: the report's file name; ``None`` logs the report.
        line_count_restriction: how many functions to list per action: an int (a count)
            or a float in ``[0.0, 1.0]`` (a fraction), as ``pstats.Stats.print_stats`` takes it.
        dump_stats: also write each action's raw profile to
            ``dirpath/<stage>-<filename>-<action>.prof`` (needs ``dirpath``).

    Raises:
        ValueError: from :meth:`stop`, an action never started.
    """

    def __init__(
        self,
        dirpath: str | Path | None = None,
        filename: str | None = None,
        line_count_restriction: float = 1.0,
        dump_stats: bool = False,
    ) -> None:
        super().__init__(dirpath=dirpath, filename=filename)
        self.profiled_actions: dict[str, cProfile.Profile] = {}
        self.line_count_restriction = line_count_restriction
        self.dump_stats = dump_stats

    def start(self, action_name: str) -> None:
        """Pause every action's profile and resume (or begin) ``action_name``'s.

        Args:
            action_name: the action's name.
        """
        for profile in self.profiled_actions.values():
            profile.disable()
        current = self.profiled_actions.get(action_name)
        if current is None:
            current = self.profiled_actions[action_name] = cProfile.Profile()
        current.enable()

    def stop(self, action_name: str) -> None:
        """Pause ``action_name``'s profile.

        Args:
            action_name: the action's name.

        Raises:
            ValueError: it was never started.
        """
        profile = self.profiled_actions.get(action_name)
        if profile is None:
            raise ValueError(f"Attempting to stop recording an action ({action_name}) which was never started.")
        profile.disable()

    def _dump(self, action_name: str, profile: cProfile.Profile) -> None:
        if not self.dirpath:
            raise ValueError("AdvancedProfiler(dump_stats=True) needs a dirpath to write the .prof files to.")
        os.makedirs(self.dirpath, exist_ok=True)
        profile.dump_stats(os.path.join(self.dirpath, self._prepare_filename(action_name, extension=".prof")))

    def summary(self) -> str:
        """Each action's ``pstats`` listing (directories stripped, sorted by cumulative time).

        Returns:
            The report, one ``Profile stats for: <action>`` section per action.
        """
        stats: dict[str, str] = {}
        for action_name, profile in self.profiled_actions.items():
            if self.dump_stats:
                self._dump(action_name, profile)
            text = io.StringIO()
            listing = pstats.Stats(profile, stream=text).strip_dirs().sort_stats("cumulative")
            listing.print_stats(self.line_count_restriction)
            stats[action_name] = text.getvalue()
        return self._stats_to_str(stats)

    def teardown(self, stage: str | None) -> None:
        """Close the report file and drop the recorded profiles.

        Args:
            stage: the run's stage.
        """
        super().teardown(stage=stage)
        self.profiled_actions.clear()

    def __reduce__(self) -> tuple[Any, ...]:
        # a cProfile.Profile cannot be pickled: a copy starts with no recordings (as Lightning's)
        state = {
            "dirpath": self.dirpath,
            "filename": self.filename,
            "line_count_restriction": self.line_count_restriction,
        }
        return (self.__class__, (), state)
