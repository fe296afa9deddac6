"""How one value given to ``self.log`` becomes a tensor and is folded into its entry.

The two halves of Lightning's ``_ResultMetric.update`` that :class:`~lightcycle.core.metric_store.MetricStore`
runs off its steady path (the first call of a log site, epoch means, non-float values):
:func:`logged_tensor` checks and converts the value without a device synchronisation, and
:func:`accumulate` folds it into the entry's epoch accumulator with Lightning's arithmetic
(``value * batch_size`` summed in the value's dtype, in call order), so the epoch value is
bitwise Lightning's.
"""

from __future__ import annotations

import numbers
import warnings

import torch
from torch import Tensor

from lightcycle.core.batch_size import extract_batch_size
from lightcycle.core.results import (
    _MAX,
    _MEAN,
    _SUM,
    LogValue,
    _Collection,
    _Entry,
    _float_dtype,
    raise_bad_value,
)

__all__ = ["accumulate", "logged_tensor"]


def logged_tensor(entry: _Entry, value: LogValue) -> Tensor:
    """The detached 0-d floating tensor ``self.log`` keeps for ``value``.

    Args:
        entry: the log site's entry (its name, hook and flags; warned once per entry for a
            non-floating tensor).
        value: what the user logged: a one-element tensor or a real number.

    Returns:
        A tensor the caller's later in-place changes do not reach (cloned where it is kept
        as is), float32/float64 kept, other dtypes converted to the default float dtype.

    Raises:
        ValueError: a tensor of more than one element.
        TypeError: (through ``raise_bad_value``) a value that is neither.
    """
    name = entry.name
    on_step = entry.on_step
    # -- value: detached tensor of a floating dtype, no device sync
    if isinstance(value, Tensor):
        if value.numel() != 1:
            raise ValueError(
                f"`self.log({name!r}, ...)` was called with a tensor of shape"
                f" {tuple(value.shape)}, but the tensor must have a single element. Log a"
                f" reduction instead, e.g. `self.log({name!r}, value.mean())`."
            )
        tensor = value.detach()
        if tensor.ndim:
            tensor = tensor.reshape(())
        dtype = tensor.dtype
        if dtype is torch.float32 or dtype is torch.float64:
            # the caller may modify its tensor in place later; an epoch-only mean keeps no
            # alias of it (its accumulation, ``tensor * batch_size``, is a new tensor)
            if on_step or entry.reduce != _MEAN:
                tensor = tensor.clone()
        else:
            if not entry.warned_dtype and not tensor.is_floating_point():
                entry.warned_dtype = True
                warnings.warn(
                    f"You called `self.log({name!r}, ...)` in `{entry.fx}` with a {dtype} tensor,"
                    " but the value needs to be floating to be reduced; converting it to"
                    f" {_float_dtype()}. Convert it to floating point yourself to silence"
                    " this warning.",
                    stacklevel=5,  # the user's line: logged_tensor <- _record <- store.log|log_site <- module.log
                )
            tensor = tensor.to(_float_dtype())
    elif type(value) is float or type(value) is int or type(value) is bool:
        tensor = torch.tensor(value, dtype=_float_dtype())
    elif isinstance(value, numbers.Real):
        tensor = torch.tensor(float(value), dtype=_float_dtype())
    else:
        raise_bad_value(name, value)
    return tensor


def accumulate(coll: _Collection, entry: _Entry, tensor: Tensor, batch_size: int | None) -> None:
    """Fold ``tensor`` into ``entry``'s epoch accumulator (mean weighted by batch size, sum, max, min).

    Args:
        coll: the stage's collection (its batch, to infer the batch size once per batch).
        entry: the log site's entry.
        tensor: the value from :func:`logged_tensor`.
        batch_size: as given to ``self.log`` (``None``: inferred from the batch, else 1).
    """
    entry.computed = None
    acc = entry.acc
    reduce = entry.reduce
    if reduce == _MEAN:
        if batch_size is None:
            batch_size = coll.batch_size
            if batch_size is None:
                if coll.batch is not None:
                    batch_size = coll.batch_size = extract_batch_size(coll.batch)
                else:
                    batch_size = 1
        weighted = tensor * batch_size
        entry.acc = weighted if acc is None else acc + weighted
        entry.count += batch_size
    elif acc is None:
        entry.acc = tensor
    elif reduce == _SUM:
        entry.acc = acc + tensor
    elif reduce == _MAX:
        entry.acc = torch.maximum(acc, tensor)
    else:
        entry.acc = torch.minimum(acc, tensor)
