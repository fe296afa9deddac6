"""Moving a batch to a device: a walk over nested collections, and its fast path for collated batches.

:meth:`~lightcycle.core.hooks.DataHooks.transfer_batch_to_device` moves every batch with
:func:`move_data_to_device`; :func:`apply_to_collection` is the walk it (and the progress bars'
metric formatting) uses, Lightning's ``apply_to_collection`` without its options.
"""

from __future__ import annotations

import copy
import dataclasses
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

_BLOCKING_DEVICE_TYPES = ("cpu", "mps")
# Per target device: may copies to it be non-blocking? Asked once per device, since
# ``torch.device.type`` builds a new string on every read (a C++ stream per batch).
_NON_BLOCKING: dict[Any, bool] = {}
_Tensor = torch.Tensor


def apply_to_collection(data: Any, is_leaf: Callable[[Any], bool], fn: Callable[[Any], Any]) -> Any:
    """Apply ``fn`` to every leaf of a nested collection, rebuilding the containers.

    Containers walked: dataclass instances (copied, fields replaced), mappings (type kept,
    ``defaultdict`` factories kept), namedtuples, and other sequences except ``str``/``bytes``.

    Args:
        data: the (possibly nested) collection.
        is_leaf: says which objects ``fn`` applies to; checked before walking into them.
        fn: the function to apply.

    Returns:
        A collection of the same shape holding ``fn``'s results.
    """
    if is_leaf(data):
        return fn(data)
    if dataclasses.is_dataclass(data) and not isinstance(data, type):
        values = {f.name: getattr(data, f.name) for f in dataclasses.fields(data)}
        result = copy.deepcopy(data, memo={id(v): v for v in values.values()})
        for field in dataclasses.fields(data):
            if not field.init:
                continue
            try:
                setattr(result, field.name, apply_to_collection(values[field.name], is_leaf, fn))
            except dataclasses.FrozenInstanceError as err:
                raise ValueError(
                    "A frozen dataclass was passed to `apply_to_collection` but this is not allowed."
                ) from err
        return result
    if isinstance(data, Mapping):
        items = [(k, apply_to_collection(v, is_leaf, fn)) for k, v in data.items()]
        mapping_type: Any = type(data)
        if isinstance(data, defaultdict):
            return mapping_type(data.default_factory, OrderedDict(items))
        return mapping_type(OrderedDict(items))
    if isinstance(data, tuple) and hasattr(data, "_fields") and hasattr(data, "_asdict"):
        return type(data)(*(apply_to_collection(d, is_leaf, fn) for d in data))
    if isinstance(data, Sequence) and not isinstance(data, (str, bytes)):
        sequence_type: Any = type(data)
        return sequence_type([apply_to_collection(d, is_leaf, fn) for d in data])
    return data


def _is_transferable(obj: Any) -> bool:
    return not isinstance(obj, type) and callable(getattr(type(obj), "to", None))


def move_data_to_device(batch: Any, device: torch.device | str | int) -> Any:
    """Move every object with a ``.to`` method inside ``batch`` to ``device``.

    Tensors are moved with ``non_blocking=True`` unless the target is the CPU (or MPS).
    An object whose ``to`` returns ``None`` is kept as is.

    Args:
        batch: a tensor, an object with ``.to``, or a nested collection of them.
        device: the target device.

    Returns:
        The same structure with its contents on ``device``.
    """
    target = torch.device(device) if isinstance(device, str) else device
    non_blocking = _NON_BLOCKING.get(target)
    if non_blocking is None:
        non_blocking = _NON_BLOCKING[target] = (
            isinstance(target, torch.device) and target.type not in _BLOCKING_DEVICE_TYPES
        )
    # Fast path for what collate functions return: a tensor, or a flat list, tuple or dict
    # of tensors. Exact type checks, so subclasses, namedtuples and anything else take the
    # general walk below, which gives the same result for these shapes.
    kind = type(batch)
    if kind is _Tensor:
        return batch.to(target, non_blocking=True) if non_blocking else batch.to(target)
    if kind is list or kind is tuple:
        moved: list[Any] = []
        for item in batch:
            if type(item) is not _Tensor:
                break
            moved.append(item.to(target, non_blocking=True) if non_blocking else item.to(target))
        else:
            return moved if kind is list else tuple(moved)
    elif kind is dict:
        mapped: dict[Any, Any] = {}
        for key, item in batch.items():
            if type(item) is not _Tensor:
                break
            mapped[key] = item.to(target, non_blocking=True) if non_blocking else item.to(target)
        else:
            return mapped

    def move(data: Any) -> Any:
        kwargs: dict[str, Any] = {}
        if non_blocking and isinstance(data, torch.Tensor):
            kwargs["non_blocking"] = True
        moved = data.to(target, **kwargs)
        return data if moved is None else moved

    return apply_to_collection(batch, _is_transferable, move)
