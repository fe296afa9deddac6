"""Dataloaders: how many batches a loop runs, and iteration with a look-ahead.

Lightning's data fetcher pre-fetches one batch so that it knows, before the hooks of a
batch run, whether it is the last one (``trainer.is_last_batch``); :class:`Lookahead`
does the same.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from lightcycle.errors import InvalidTypeError, MisconfigurationException


def as_loader_list(loaders: Any, kind: str) -> list[Iterable[Any]]:
    """Normalise what a ``*_dataloader`` hook or argument returned into a list.

    Args:
        loaders: one iterable, or a list/tuple of them (several eval loaders).
        kind: ``train``, ``val``, ``test`` or ``predict`` (for messages).

    Returns:
        The loaders, in order.

    Raises:
        MisconfigurationException: for ``None`` (a :class:`~lightcycle.errors.InvalidTypeError`), dicts, or
            several train loaders.
    """
    if loaders is None:  # (Lightning: a TypeError)
        raise InvalidTypeError(
            f"`{kind}_dataloader` returned None. Return a DataLoader (or another iterable of batches)."
        )
    if isinstance(loaders, dict):
        raise MisconfigurationException(
            f"a dict of {kind} dataloaders is not supported here yet (Trainer(overfit_batches=...) and LoopDriver "
            "take one train loader or a list of evaluation loaders; elsewhere the Trainer reads it as Lightning's "
            "CombinedLoader)."
        )
    if isinstance(loaders, (list, tuple)):
        out = list(loaders)
        if kind == "train" and len(out) != 1:
            raise MisconfigurationException(
                "several train dataloaders are not supported here yet (Trainer(overfit_batches=...) and LoopDriver "
                "take one); return one DataLoader from train_dataloader."
            )
    else:
        out = [loaders]
    for dl in out:
        if not hasattr(dl, "__iter__"):
            raise MisconfigurationException(
                f"a {kind} dataloader must be iterable, got {type(dl).__name__}. Return a torch DataLoader."
            )
    return out


def length(loader: Any) -> int | float:
    """``len(loader)``, or ``inf`` for loaders without a length."""
    try:
        return len(loader)
    except TypeError:
        return math.inf


def num_batches(loader: Any, limit: int | float, what: str) -> int | float:
    """How many batches of ``loader`` a loop runs under ``limit_*_batches``.

    Args:
        loader: the dataloader.
        limit: an int (at most that many batches) or a float fraction in [0, 1].
        what: the Trainer argument's name, for the error message.

    Returns:
        The batch count (``inf`` for an unsized loader with limit 1.0).
    """
    n = length(loader)
    if isinstance(limit, int):
        return min(n, limit)
    prefix = what.removeprefix("limit_").removesuffix("_batches")  # Lightning's stage.dataloader_prefix
    if n == math.inf:
        if limit == 1.0:
            return n
        raise MisconfigurationException(  # Lightning's message, word for word
            f"When using an `IterableDataset`, `Trainer({what})` must be `1.0` or an int. An int specifies "
            f"`num_{prefix}_batches` to use."
        )
    batches = int(n * limit)
    if limit > 0 and batches == 0 and n > 0:
        raise MisconfigurationException(  # Lightning's message, word for word
            f"You requested to check {limit} of the `{prefix}_dataloader` but {limit} * {n} < 1. Please increase the "
            f"`{what}` argument. Try at least `{what}={1.0 / n}`"
        )
    return batches


def set_sampler_epoch(loader: Any, epoch: int) -> None:
    """Tell epoch-aware samplers (e.g. DistributedSampler) which epoch starts (each loader of a combined one)."""
    flattened = getattr(loader, "flattened", None)
    if isinstance(flattened, list):
        for dl in flattened:
            set_sampler_epoch(dl, epoch)
        return
    for owner in (loader, getattr(loader, "batch_sampler", None)):
        sampler = getattr(owner, "sampler", None)
        set_epoch = getattr(sampler, "set_epoch", None)
        if callable(set_epoch):
            set_epoch(epoch)


class Lookahead:
    """Iterate at most ``limit`` items and know whether each one is the last.

    Args:
        iterable: the dataloader.
        limit: how many items to yield at most.
        skip: the index of the first item (mid-epoch resume).
        consume: pull and drop the first ``skip`` items of ``iterable`` (replaying a
            deterministic loader); ``False`` when the loader already resumes by itself.
        state_fn: for loaders that can save their position (``state_dict``): called before
            each fetch. While item ``i`` is processed, :attr:`state` is the loader's state
            with ``i`` items consumed and :attr:`next_state` with ``i + 1`` (taken before
            the look-ahead fetch).
        wrap: wraps the loader's iterator once, before the first fetch (a profiler's
            fetch timer, :func:`lightcycle.profilers.wrapping.fetch_timer`); ``None``: none.
    """

    __slots__ = ("_index", "_it", "_lazy", "_limit", "_next", "_state_fn", "done", "next_state", "state")

    _END = object()

    def __init__(
        self,
        iterable: Iterable[Any],
        limit: int | float,
        skip: int = 0,
        consume: bool = True,
        state_fn: Callable[[], Any] | None = None,
        wrap: Callable[[Iterator[Any]], Iterator[Any]] | None = None,
    ) -> None:
        self._it: Iterator[Any] = iter(iterable) if wrap is None else wrap(iter(iterable))
        self._limit = limit
        self._index = skip
        self._state_fn = state_fn
        self.state: Any = None
        self.next_state: Any = None
        if consume:
            for _ in range(skip):
                if next(self._it, self._END) is self._END:
                    break
        # Lightning's data fetcher looks ahead only when the (limited) length is unknown. An
        # unsized loader under an int limit has a known length: the limit. Then no look-ahead:
        # an item is the last when the limit is reached, and a loader that runs out earlier
        # just stops (its real last item is not marked as last).
        self._lazy = limit != math.inf and length(iterable) == math.inf
        if self._lazy:
            self._next = None
            self.done = self._index >= limit
            return
        self._next = self._fetch()
        self.done = self._next is self._END

    def _fetch(self) -> Any:
        if self._index >= self._limit:
            return self._END
        if self._state_fn is not None:
            self.next_state = self._state_fn()
        return next(self._it, self._END)

    def __iter__(self) -> Iterator[tuple[int, Any]]:
        """The items as ``(index, item)``; after each, :attr:`done` says whether it was the last.

        One pass: iterate a Lookahead once. (A generator rather than ``__next__``: resuming
        it costs less than a method call per batch.)
        """
        return self._lazy_items() if self._lazy else self._eager_items()

    def _eager_items(self) -> Iterator[tuple[int, Any]]:
        # the loader, limit and state function are fixed for the pass: read once, not per batch
        end, it, state_fn = self._END, self._it, self._state_fn
        last = self._limit - 1  # the index of the last item the limit allows
        # the position (next index, look-ahead item) is kept in locals while the pass runs, and
        # stored when it stops or is closed: only a pass reads it (the same values as ever then)
        position = self._index
        following = item = self._next
        try:
            while item is not end:
                index = position
                position = index + 1
                # the look-ahead fetch: ``_fetch``, written out (it runs once per batch); without
                # a state function both states stay None
                if index >= last:
                    following = end
                    if state_fn is not None:
                        self.state = self.next_state
                else:
                    if state_fn is not None:
                        self.state = self.next_state
                        self.next_state = state_fn()
                    following = next(it, end)
                self.done = following is end
                yield index, item
                item = following
        finally:
            self._index, self._next = position, following

    def _lazy_items(self) -> Iterator[tuple[int, Any]]:
        it, limit, state_fn, end = self._it, self._limit, self._state_fn, self._END
        while self._index < limit:
            if state_fn is not None:
                self.state = state_fn()
            item = next(it, end)
            if item is end:
                self.done = True
                return
            if state_fn is not None:
                self.next_state = state_fn()
            index = self._index
            self._index = index + 1
            self.done = index + 1 >= limit
            yield index, item


def total(counts: Sequence[int | float]) -> int | float:
    """Sum of per-loader batch counts."""
    return sum(counts)
