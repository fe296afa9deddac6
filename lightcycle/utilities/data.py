"""Lightning's public data helpers (``lightning.pytorch.utilities.data``).

``extract_batch_size`` is the one ``self.log`` uses (:mod:`lightcycle.core.batch_size`);
the length helpers answer as Lightning's do.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import IterableDataset

from lightcycle.core.batch_size import extract_batch_size
from lightcycle.utilities.rank_zero import rank_zero_warn

__all__ = ["extract_batch_size", "has_iterable_dataset", "has_len_all_ranks", "sized_len"]


def sized_len(dataloader: object) -> int | None:
    """``len(dataloader)``, or None when it has no length.

    Args:
        dataloader: a loader or any object.

    Returns:
        The length, or None when ``len`` raises ``TypeError`` or ``NotImplementedError``.
    """
    try:
        return len(dataloader)  # type: ignore[arg-type]
    except (TypeError, NotImplementedError):
        return None


def has_iterable_dataset(dataloader: object) -> bool:
    """Whether ``dataloader.dataset`` is a ``torch.utils.data.IterableDataset``.

    Args:
        dataloader: a loader or any object.

    Returns:
        True when it has such a dataset.
    """
    return isinstance(getattr(dataloader, "dataset", None), IterableDataset)


def has_len_all_ranks(
    dataloader: object, strategy: Any, allow_zero_length_dataloader_with_multiple_devices: bool = False
) -> bool:
    """Whether ``dataloader`` has a length, warning or failing on empty ranks as Lightning does.

    Args:
        dataloader: the loader.
        strategy: the Trainer's strategy (its ``reduce`` sums the lengths over the ranks, and
            ``root_device`` holds the tensor).
        allow_zero_length_dataloader_with_multiple_devices: warn instead of failing when this
            rank's loader is empty but another's is not.

    Returns:
        False when the loader has no length, else True.

    Raises:
        RuntimeError: this rank's loader is empty while others are not, and that is not allowed.
    """
    local_length = sized_len(dataloader)
    if local_length is None:
        return False
    total = strategy.reduce(torch.tensor(local_length, device=strategy.root_device), reduce_op="sum")
    name = type(dataloader).__name__
    if total == 0:
        rank_zero_warn(f"Total length of `{name}` across ranks is zero. Please make sure this was your intention.")
    if total > 0 and local_length == 0:
        if not allow_zero_length_dataloader_with_multiple_devices:
            raise RuntimeError(
                f"`{name}` within local rank has zero length. Please make sure that it returns at least 1 batch."
            )
        rank_zero_warn(
            f"Total length of `{name}` across ranks is zero, but local rank has zero length."
            " Please be cautious of uneven batch length."
        )
    if has_iterable_dataset(dataloader):
        rank_zero_warn(
            "Your `IterableDataset` has `__len__` defined. In combination with multi-process data loading"
            " (when num_workers > 1), `__len__` could be inaccurate if each worker is not configured"
            " independently to avoid having duplicate data."
        )
    return True
