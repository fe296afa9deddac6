"""Batch size inference for ``self.log``'s mean reduction (Lightning's ``extract_batch_size``).

Mirrors ``pytorch_lightning/utilities/data.py::extract_batch_size``.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Iterator, Mapping
from typing import Any

from torch import Tensor

from lightcycle.errors import MisconfigurationException

__all__ = ["extract_batch_size"]


def _iter_batch_sizes(batch: Any) -> Iterator[int | None]:
    if isinstance(batch, Tensor):
        yield 1 if batch.ndim == 0 else int(batch.size(0))
    elif isinstance(batch, Mapping):
        for sample in batch.values():
            yield from _iter_batch_sizes(sample)
    elif isinstance(batch, (list, tuple)) or (hasattr(batch, "__iter__") and not isinstance(batch, (str, bytes))):
        for sample in batch:
            yield from _iter_batch_sizes(sample)
    elif dataclasses.is_dataclass(batch) and not isinstance(batch, type):
        for field in dataclasses.fields(batch):
            yield from _iter_batch_sizes(getattr(batch, field.name))
    else:
        yield None


def extract_batch_size(batch: Any) -> int:
    """Infer the batch size from a batch as Lightning does: ``len`` of the first tensor.

    Only tensor metadata (shapes) is read, so this never synchronises with a device.

    Args:
        batch: a tensor or a (nested) list, tuple, mapping or dataclass of them.

    Returns:
        ``tensor.size(0)`` of the first tensor found (1 for a 0-dim tensor).

    Raises:
        MisconfigurationException: no tensor could be found in ``batch``.
    """
    cls = type(batch)
    if (cls is tuple or cls is list) and batch and type(batch[0]) is Tensor:
        # The usual batch, ``(x, y)`` or ``[x, y]`` of plain tensors: their sizes read directly,
        # without the generators below. Any other item (or a size that differs, which warns)
        # leaves it to the general walk, which reads shapes only, so starting again is harmless.
        first = batch[0]
        first_size = 1 if first.ndim == 0 else int(first.size(0))
        for item in batch[1:]:
            if type(item) is not Tensor or (1 if item.ndim == 0 else int(item.size(0))) != first_size:
                break
        else:
            return first_size
    error = (
        "We could not infer the batch_size from the batch. Either simplify its structure"
        " or provide the batch_size as `self.log(..., batch_size=batch_size)`."
    )
    size: int | None = None
    try:
        for found in _iter_batch_sizes(batch):
            if size is None:
                size = found
            elif size != found:
                warnings.warn(
                    "Trying to infer the `batch_size` from an ambiguous collection. The batch size"
                    f" we found is {size}. To avoid any miscalculations, use"
                    " `self.log(..., batch_size=batch_size)`.",
                    stacklevel=2,
                )
                break
    except RecursionError:
        raise MisconfigurationException(error) from None
    if size is None:
        raise MisconfigurationException(error)
    return size
