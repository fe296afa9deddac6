"""Lightning's ``CombinedLoader``: several iterables read together, in one of four modes.

A program passes a :class:`CombinedLoader` (or a dict/list of loaders, which the Trainer wraps
in one: ``"max_size_cycle"`` for training, ``"sequential"`` for evaluation) and iterating it
yields ``(batch, batch_idx, dataloader_idx)`` as Lightning 2.6's does:

- ``min_size``: one batch of every iterable per step, until the shortest runs out.
- ``max_size_cycle``: until the longest runs out; a shorter one starts over when it ends.
- ``max_size``: until the longest runs out; an exhausted one gives ``None``.
- ``sequential``: each iterable to its end (or its limit) in turn; ``batch_idx`` restarts and
  ``dataloader_idx`` says which iterable the batch came from.

In the first three modes a batch is the collection the iterables were given in (a dict of
batches for a dict of loaders) and ``dataloader_idx`` is 0. ``limits`` (one per iterable, set by
the Trainer from ``limit_*_batches``) cut ``len()``; only ``sequential`` also stops each iterable
at its limit while iterating (Lightning's loops stop the other modes after ``len()`` batches).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from typing import Any

from torch.utils import _pytree

MODES = ("min_size", "max_size_cycle", "max_size", "sequential")
"""The modes, in Lightning's order (its error message lists them so)."""

_Batch = tuple[Any, int, int]


def _is_leaf(node: Any) -> bool:
    """Lightning's leaf test: not a pytree container, or a container of plain numbers/strings
    (``CombinedLoader([1, 2, 3])`` is one iterable, not three)."""
    kind = _pytree._get_node_type(node)
    if kind not in _pytree.SUPPORTED_NODES:
        return True
    children, _ = _pytree.SUPPORTED_NODES[kind].flatten_fn(node)
    return all(isinstance(child, (int, float, str)) for child in children)


def _length(iterable: Any) -> int | float:
    try:
        return len(iterable)
    except (TypeError, NotImplementedError):
        return math.inf


class CombinedLoader(Iterable[_Batch]):
    """Combines iterables (a collection of them, or one) under a sampling mode.

    Args:
        iterables: one iterable, or a dict/list/tuple (nested as you like) of them.
        mode: ``"min_size"`` (default), ``"max_size_cycle"``, ``"max_size"`` or ``"sequential"``.

    Raises:
        ValueError: an unknown mode.
    """

    def __init__(self, iterables: Any, mode: str = "min_size") -> None:
        if mode not in MODES:
            raise ValueError(f"Unsupported mode {mode!r}, please select one of: {list(MODES)}.")
        self._iterables = iterables
        self._flattened, self._spec = _pytree.tree_flatten(iterables, is_leaf=_is_leaf)
        self._mode = mode
        self._limits: list[int | float] | None = None
        self._it: Iterator[_Batch] | None = None

    @property
    def iterables(self) -> Any:
        """The collection of iterables as given (after :attr:`flattened` was set: the new ones)."""
        return self._iterables

    @property
    def flattened(self) -> list[Any]:
        """The iterables as a flat list, in the collection's order (``dataloader_idx`` order)."""
        return self._flattened

    @flattened.setter
    def flattened(self, flattened: list[Any]) -> None:
        if len(flattened) != len(self._flattened):
            raise ValueError(
                f"Mismatch in flattened length ({len(flattened)}) and existing length ({len(self._flattened)})"
            )
        self._iterables = _pytree.tree_unflatten(flattened, self._spec)
        self._flattened = list(flattened)

    @property
    def limits(self) -> list[int | float] | None:
        """The most batches to take from each iterable (``None``: no limit)."""
        return self._limits

    @limits.setter
    def limits(self, limits: int | float | list[int | float] | None) -> None:
        if isinstance(limits, (int, float)):
            limits = [limits] * len(self._flattened)
        elif isinstance(limits, list) and len(limits) != len(self._flattened):
            raise ValueError(
                f"Mismatch in number of limits ({len(limits)}) and number of iterables ({len(self._flattened)})"
            )
        self._limits = limits

    @property
    def sampler(self) -> Any:
        """Each iterable's ``sampler`` (``None`` where it has none), in the collection's shape."""
        return _pytree.tree_unflatten([getattr(x, "sampler", None) for x in self._flattened], self._spec)

    @property
    def batch_sampler(self) -> Any:
        """Each iterable's ``batch_sampler`` (``None`` where it has none), in the collection's shape."""
        return _pytree.tree_unflatten([getattr(x, "batch_sampler", None) for x in self._flattened], self._spec)

    def __iter__(self) -> CombinedLoader:
        """Start a pass (the iterables' iterators are created now, as Lightning does).

        Returns:
            ``self``; :meth:`__next__` gives the batches.
        """
        flat = self._flattened
        if self._mode == "sequential":
            self._it = _sequential(flat, self._limits)
        else:
            iterators = [iter(x) for x in flat]
            if self._mode == "min_size":
                it = _min_size(iterators)
            elif self._mode == "max_size":
                it = _max_size(iterators)
            else:
                it = _max_size_cycle(flat, iterators)
            self._it = ((_pytree.tree_unflatten(out, self._spec), i, 0) for out, i in it)
        return self

    def __next__(self) -> _Batch:
        """The next ``(batch, batch_idx, dataloader_idx)``.

        Raises:
            StopIteration: the pass is over.
        """
        assert self._it is not None, "call iter(combined_loader) first"
        return next(self._it)

    def total(self) -> int | float:
        """The number of batches of a pass under :attr:`limits` (``inf`` for unsized iterables).

        Returns:
            What ``len()`` gives, without needing :meth:`__iter__` first.
        """
        lengths = [_length(x) for x in self._flattened]
        limits = self._limits
        if self._mode == "min_size":
            return min(lengths + limits) if limits is not None else min(lengths)
        if limits is not None:
            lengths = [min(n, limit) for n, limit in zip(lengths, limits, strict=True)]
        return sum(lengths) if self._mode == "sequential" else max(lengths)

    def __len__(self) -> int:
        """The number of batches (Lightning's rule: only after ``iter()``).

        Raises:
            RuntimeError: before the first ``iter()``.
            TypeError: an unsized iterable makes the total unknown.
        """
        if self._it is None:
            raise RuntimeError("Please call `iter(combined_loader)` first.")
        n = self.total()
        if n == math.inf:
            raise TypeError("this CombinedLoader has an iterable without a length")
        return int(n)

    def reset(self) -> None:
        """Forget the current pass."""
        self._it = None


def _min_size(iterators: list[Iterator[Any]]) -> Iterator[tuple[list[Any], int]]:
    index = 0
    while True:
        try:
            out = [next(it) for it in iterators]
        except StopIteration:
            return
        yield out, index
        index += 1


def _max_size(iterators: list[Iterator[Any]]) -> Iterator[tuple[list[Any], int]]:
    index = 0
    end = object()
    while True:
        out = [next(it, end) for it in iterators]
        if all(x is end for x in out):
            return
        yield [None if x is end else x for x in out], index
        index += 1


def _max_size_cycle(iterables: list[Any], iterators: list[Iterator[Any]]) -> Iterator[tuple[list[Any], int]]:
    index = 0
    consumed = [False] * len(iterables)
    while True:
        out: list[Any] = []
        for i, it in enumerate(iterators):
            try:
                out.append(next(it))
            except StopIteration:
                # The pass ends when the last unfinished iterable finishes; a finished one
                # starts over (Lightning re-creates its iterator at that moment).
                consumed[i] = True
                if all(consumed):
                    return
                iterators[i] = iter(iterables[i])
                try:
                    out.append(next(iterators[i]))
                except StopIteration:  # an empty iterable: Lightning's pass ends here too
                    return
        yield out, index
        index += 1


def _sequential(iterables: list[Any], limits: list[int | float] | None) -> Iterator[_Batch]:
    # Lightning creates the first iterator when the pass starts and each next one when the
    # previous one ends, also for an iterable whose limit is 0 (it is skipped right after).
    its = [iter(iterables[0])] if iterables else []

    def run() -> Iterator[_Batch]:
        for k, iterable in enumerate(iterables):
            it = its[0] if k == 0 else iter(iterable)
            limit = math.inf if limits is None else limits[k]
            index = 0
            while index < limit:
                try:
                    batch = next(it)
                except StopIteration:
                    break
                yield batch, index, k
                index += 1

    return run()
