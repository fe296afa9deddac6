"""``Trainer(profiler=...)``: a name or a Profiler, checked at construction."""

from __future__ import annotations

from typing import Any

from lightcycle.errors import MisconfigurationException
from lightcycle.profilers.advanced import AdvancedProfiler
from lightcycle.profilers.profiler import PassThroughProfiler, Profiler
from lightcycle.profilers.pytorch import PyTorchProfiler
from lightcycle.profilers.simple import SimpleProfiler

PROFILERS: dict[str, type[Profiler]] = {
    "simple": SimpleProfiler,
    "advanced": AdvancedProfiler,
    "pytorch": PyTorchProfiler,
}
"""The names ``Trainer(profiler=...)`` takes (Lightning's, less ``"xla"``)."""


def select_profiler(profiler: Any) -> Profiler:
    """The profiler a Trainer runs with.

    Args:
        profiler: ``None``, a name (any case) from :data:`PROFILERS`, or a :class:`Profiler`.

    Returns:
        A :class:`PassThroughProfiler` for ``None`` (as Lightning: ``trainer.profiler`` is
        always a profiler, so user code may call ``trainer.profiler.profile(...)``).

    Raises:
        MisconfigurationException: an unknown name (Lightning's message, listing the
            names), or neither a name nor a Profiler.
    """
    if isinstance(profiler, str):
        name = profiler.lower()
        if name == "xla":
            raise MisconfigurationException(
                "Trainer(profiler='xla') is not supported: lightcycle runs on CPU and CUDA only. "
                f"Use one of {list(PROFILERS)}."
            )
        if name not in PROFILERS:
            raise MisconfigurationException(
                "When passing string value for the `profiler` parameter of `Trainer`,"
                f" it can only be one of {[*PROFILERS, 'xla']}"
            )
        return PROFILERS[name]()
    if profiler is None or profiler is False:
        return PassThroughProfiler()
    if isinstance(profiler, Profiler) or _is_lightning_profiler(profiler):
        return profiler  # type: ignore[no-any-return]
    raise MisconfigurationException(
        f"Trainer(profiler={profiler!r}) is invalid: expected None, one of {list(PROFILERS)} or a Profiler instance."
    )


def _is_lightning_profiler(obj: Any) -> bool:
    """A profiler object with Lightning's interface (e.g. a ``lightning.pytorch`` Profiler subclass)."""
    return all(callable(getattr(obj, name, None)) for name in ("start", "stop", "profile", "describe", "setup"))
