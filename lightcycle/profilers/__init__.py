"""Profilers with Lightning 2.6's interface and action names (``Trainer(profiler=...)``).

See ``docs/profiler.md``. :class:`Profiler` is the base class; ``"simple"``,
``"advanced"`` and ``"pytorch"`` name :class:`SimpleProfiler`, :class:`AdvancedProfiler`
and :class:`PyTorchProfiler`.
"""

from __future__ import annotations

from lightcycle.profilers.advanced import AdvancedProfiler
from lightcycle.profilers.profiler import PassThroughProfiler, Profiler
from lightcycle.profilers.pytorch import PyTorchProfiler
from lightcycle.profilers.select import select_profiler
from lightcycle.profilers.simple import SimpleProfiler

__all__ = [
    "AdvancedProfiler",
    "PassThroughProfiler",
    "Profiler",
    "PyTorchProfiler",
    "SimpleProfiler",
    "select_profiler",
]
