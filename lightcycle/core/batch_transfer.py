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
from functools import partial
from operator import attrgetter
from typing import Any

import torch

_BLOCKING_DEVICE_TYPES = ("cpu", "mps")
_TARGETS: dict[Any, tuple[bool, bool]] = {}
"""Per target device: (copy with ``non_blocking``, the target is the CPU). Reading
``torch.device.type`` builds a new string each time, so it is asked once per device."""
_Tensor = torch.Tensor
_CPU_TARGETS: set[Any] = set()
"""The CPU targets met so far (``"cpu"``, ``torch.device("cpu")``): the fastest path's test."""
ONLY_TENSORS = frozenset((_Tensor,))
"""``ONLY_TENSORS.issuperset(map(type, items))``: every item is a plain tensor (no subclass)."""
IS_CPU = attrgetter("is_cpu")
"""``all(map(IS_CPU, tensors))``: every tensor is on the CPU. With :data:`ONLY_TENSORS`, the
fastest path's test, asked in C; the generated batch start
(:func:`~lightcycle.runtime.fused_step.write_start`) writes the same test inline."""


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


def _target_facts(target: Any) -> tuple[bool, bool]:
    if not isinstance(target, torch.device):  # an int (a CUDA index): left to ``.to``
        return False, False
    return target.type not in _BLOCKING_DEVICE_TYPES, target.type == "cpu"


def is_cpu_target(device: Any) -> bool:
    """Whether ``device`` is a ``torch.device`` of the CPU (a target that keeps CPU tensors as they are)."""
    return _target_facts(device)[1]


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
    kind = type(batch)
    # Fastest path, the Trainer's on a CPU run: a flat tuple, list or dict of plain CPU
    # tensors to a CPU target. Every tensor is kept (``.to`` would return it unchanged,
    # through the dispatcher: ~10x the cost of asking ``is_cpu``) and the container is new,
    # as Lightning's walk makes it. The checks run in C (``map`` over ``type`` and an
    # attribute getter): no Python bytecode per item. A list first: collate's default output
    # (``default_collate`` turns a dataset's tuples into a list).
    if device in _CPU_TARGETS:
        if kind is list:
            if ONLY_TENSORS.issuperset(map(type, batch)) and all(map(IS_CPU, batch)):
                return [*batch]
        elif kind is tuple:
            if ONLY_TENSORS.issuperset(map(type, batch)) and all(map(IS_CPU, batch)):
                return (*batch,)
        elif kind is dict:
            values = batch.values()
            if ONLY_TENSORS.issuperset(map(type, values)) and all(map(IS_CPU, values)):
                return {**batch}
        elif kind is _Tensor and batch.is_cpu:
            return batch
    target = torch.device(device) if isinstance(device, str) else device
    known = _TARGETS.get(target)
    if known is None:
        known = _TARGETS[target] = _target_facts(target)
        if known[1]:
            _CPU_TARGETS.add(device)
            _CPU_TARGETS.add(target)
    non_blocking, cpu = known
    # Fast path for what collate functions return: a tensor, or a flat list, tuple or dict
    # of tensors. Exact type checks, so subclasses, namedtuples and anything else take the
    # general walk below, which gives the same result for these shapes. A tensor already on
    # a CPU target is kept without calling ``.to``; the containers are new, as ever.
    if kind is _Tensor:
        if cpu and batch.is_cpu:
            return batch
        return batch.to(target, non_blocking=True) if non_blocking else batch.to(target)
    if kind is list or kind is tuple:
        moved: list[Any] = []
        for item in batch:
            if type(item) is not _Tensor:
                break
            if cpu and item.is_cpu:
                moved.append(item)
            else:
                moved.append(item.to(target, non_blocking=True) if non_blocking else item.to(target))
        else:
            return moved if kind is list else tuple(moved)
    elif kind is dict:
        mapped: dict[Any, Any] = {}
        for key, item in batch.items():
            if type(item) is not _Tensor:
                break
            if cpu and item.is_cpu:
                mapped[key] = item
            else:
                mapped[key] = item.to(target, non_blocking=True) if non_blocking else item.to(target)
        else:
            return mapped
    return apply_to_collection(batch, _is_transferable, partial(_move, target, non_blocking))


def _move(target: Any, non_blocking: bool, data: Any) -> Any:
    """One leaf of the general walk: ``data.to(target)``, or ``data`` when ``to`` returns ``None``."""
    moved = data.to(target, non_blocking=True) if non_blocking and isinstance(data, torch.Tensor) else data.to(target)
    return data if moved is None else moved
