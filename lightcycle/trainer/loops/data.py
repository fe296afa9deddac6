"""What every loop does with the loaders it is given: normalise them and count their batches."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lightcycle.runtime.data import as_loader_list, num_batches

Preparer = Callable[[Any, str], Any]
"""The strategy's loader step under several processes: ``prepare(loader, kind)``."""


def load_loaders(
    value: Any, kind: str, limit: int | float, what: str, prepare: Preparer | None = None
) -> tuple[list[Any], list[int | float]]:
    """Normalise loaders (through ``prepare`` when given) and count their batches.

    Args:
        value: what the ``*_dataloader`` hook returned, or the loaders passed to the entry point.
        kind: ``"train"``, ``"val"``, ``"test"`` or ``"predict"``.
        limit: the ``limit_<kind>_batches`` setting.
        what: the setting's name, for the error messages.
        prepare: the strategy's loader step (``None``: one process).

    Returns:
        The loaders and the number of batches each runs (``inf`` for an unsized loader).
    """
    loaders = as_loader_list(value, kind)
    if prepare is not None:
        loaders = [prepare(dl, kind) for dl in loaders]
    return loaders, [num_batches(dl, limit, what) for dl in loaders]
