"""What every loop does with the loaders it is given: normalise them and count their batches.

Several loaders (a dict or list, or a :class:`~lightcycle.utilities.combined_loader.CombinedLoader`)
are read as Lightning's loops read them: training wraps a collection in a ``"max_size_cycle"``
CombinedLoader and runs its combined batches; evaluation wraps it in a ``"sequential"`` one
and runs each loader in turn (a CombinedLoader of another mode runs as one loader of combined
batches).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

from lightcycle.errors import MisconfigurationException
from lightcycle.runtime.data import as_loader_list, num_batches
from lightcycle.utilities.combined_loader import MODES, CombinedLoader

Preparer = Callable[[Any, str], Any]
"""The strategy's loader step under several processes: ``prepare(loader, kind)``."""


class CombinedBatches:
    """A CombinedLoader seen as one loader of its batches (``batch_idx``/``dataloader_idx`` dropped).

    Args:
        combined: the CombinedLoader, its limits set.
    """

    __slots__ = ("combined",)

    def __init__(self, combined: CombinedLoader) -> None:
        self.combined = combined

    @property
    def flattened(self) -> list[Any]:
        """The combined loaders (for per-loader work such as the sampler's epoch)."""
        return self.combined.flattened

    @property
    def sequential(self) -> bool:
        """Whether the CombinedLoader is in ``"sequential"`` mode (refused for training)."""
        return self.combined._mode == "sequential"

    def __iter__(self) -> Iterator[Any]:
        """The batches of one pass."""
        for batch, _, _ in iter(self.combined):
            yield batch

    def __len__(self) -> int:
        """The pass's batches under the limits (``TypeError`` when unknown, as for an unsized loader)."""
        n = self.combined.total()
        if n == math.inf:
            raise TypeError("a CombinedLoader over an unsized loader has no length")
        return int(n)


def sequential_train_error(loop_name: str) -> ValueError:
    """Lightning's error for a ``"sequential"`` CombinedLoader given to fit (raised after ``on_train_epoch_start``)."""
    return ValueError(
        f'`{loop_name}` does not support the `CombinedLoader(mode="sequential")` mode.'
        f" The available modes are: {[m for m in MODES if m != 'sequential']}"
    )


def _checked(loaders: list[Any], kind: str, prepare: Preparer | None) -> list[Any]:
    for dl in loaders:
        if not hasattr(dl, "__iter__"):
            raise MisconfigurationException(
                f"a {kind} dataloader must be iterable, got {type(dl).__name__}. Return a torch DataLoader."
            )
    return [prepare(dl, kind) for dl in loaders] if prepare is not None else loaders


def is_combined(value: Any) -> bool:
    """Whether ``value`` is more than one plain loader: a CombinedLoader, a dict, a list or tuple."""
    return isinstance(value, (CombinedLoader, dict, list, tuple))


def load_train(
    value: Any, limit: int | float, what: str, prepare: Preparer | None = None
) -> tuple[Any, int | float, Any]:
    """The train loader to iterate, its batch count, and what ``trainer.train_dataloader`` shows.

    Args:
        value: what ``train_dataloader`` returned, or the loaders passed to ``fit``.
        limit: ``limit_train_batches``.
        what: the setting's name, for the error messages.
        prepare: the strategy's loader step (``None``: one process).

    Returns:
        ``(loader, count, shown)``: a plain loader is itself; a collection or CombinedLoader is
        a :class:`CombinedBatches` counted as Lightning counts it (each loader's count under
        ``limit``, then the mode's min/max/sum), shown as the collection.
    """
    if not is_combined(value):
        loaders, counts = load_loaders(value, "train", limit, what, prepare)
        return loaders[0], counts[0], loaders[0]
    combined = value if isinstance(value, CombinedLoader) else CombinedLoader(value, "max_size_cycle")
    combined.flattened = _checked(combined.flattened, "train", prepare)
    combined.limits = [num_batches(dl, limit, what) for dl in combined.flattened]
    return CombinedBatches(combined), combined.total(), combined.iterables


def load_eval(
    value: Any, kind: str, limit: int | float, what: str, prepare: Preparer | None = None
) -> tuple[list[Any], list[int | float], list[int | float], Any]:
    """An evaluation loop's loaders, their batch counts, the per-loader counts and what the trainer shows.

    Args:
        value: what the ``*_dataloader`` hook returned, or the loaders passed to the entry point.
        kind: ``"val"``, ``"test"`` or ``"predict"``.
        limit: the ``limit_<kind>_batches`` setting.
        what: the setting's name, for the error messages.
        prepare: the strategy's loader step (``None``: one process).

    Returns:
        ``(loaders, counts, per_loader, shown)``: the loaders run in sequence and their
        counts; ``per_loader`` is ``trainer.num_<kind>_batches`` (one per combined loader,
        Lightning's); ``shown`` is ``trainer.<kind>_dataloaders``. A non-sequential
        CombinedLoader is one :class:`CombinedBatches` loader.
    """
    if isinstance(value, dict) or (isinstance(value, CombinedLoader) and value._mode == "sequential"):
        combined = value if isinstance(value, CombinedLoader) else CombinedLoader(value, "sequential")
        flat = combined.flattened
        if not flat:
            raise MisconfigurationException(f"the {kind} CombinedLoader has no dataloaders")
        loaders, counts = load_loaders(list(flat), kind, limit, what, prepare)
        combined.flattened = loaders
        return loaders, counts, counts, combined.iterables
    if isinstance(value, CombinedLoader):
        value.flattened = _checked(value.flattened, kind, prepare)
        per_loader = [num_batches(dl, limit, what) for dl in value.flattened]
        value.limits = per_loader
        return [CombinedBatches(value)], [value.total()], per_loader, value.iterables
    loaders, counts = load_loaders(value, kind, limit, what, prepare)
    # Lightning shows the collection as given: a one-element list stays a list
    shown = (list if isinstance(value, list) else tuple)(loaders) if isinstance(value, (list, tuple)) else loaders[0]
    return loaders, counts, counts, shown


def combined_count(loader: Any, per_loader: list[int | float]) -> int | float:
    """A :class:`CombinedBatches` loader's batch count under other per-loader limits (the sanity check's).

    Args:
        loader: the CombinedBatches.
        per_loader: the new limits, one per combined loader.

    Returns:
        The number of combined batches.
    """
    combined: CombinedLoader = loader.combined
    combined.limits = list(per_loader)
    return combined.total()


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
