"""``DistributedSampler`` injection, by Lightning's rules (its ``_DataConnector``).

A ``DataLoader`` gets a sampler that gives each rank its share when
``use_distributed_sampler`` is on, the run is distributed, the loader's sampler is not a
``DistributedSampler`` already and the dataset is not iterable. Training always shuffles
(Lightning's ``_request_dataloader`` passes ``shuffle=True`` for every training loader),
evaluation only when the user's loader did; the seed is ``PL_GLOBAL_SEED`` (``seed_everything``'s) or 0.
Random and sequential samplers are replaced; a custom sampler is wrapped so each rank
draws its share of that sampler's order; prediction never pads (each sample once).
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import (
    DataLoader,
    Dataset,
    DistributedSampler,
    IterableDataset,
    RandomSampler,
    Sampler,
    SequentialSampler,
)


class _SamplerAsDataset(Dataset[Any]):
    """A sampler's indices as a dataset, so that ``DistributedSampler`` can split them."""

    def __init__(self, sampler: Any) -> None:
        self._sampler = sampler
        self._items: list[Any] | None = None

    def refresh(self) -> None:
        self._items = list(self._sampler)

    def __getitem__(self, index: int) -> Any:
        if self._items is None:
            self.refresh()
        assert self._items is not None
        return self._items[index]

    def __len__(self) -> int:
        return len(self._sampler)


class DistributedSamplerWrapper(DistributedSampler[Any]):
    """Each rank's share of a custom sampler's order (Lightning's wrapper of the same name)."""

    def __init__(self, sampler: Sampler[Any] | Any, *args: Any, **kwargs: Any) -> None:
        self._source = _SamplerAsDataset(sampler)
        super().__init__(self._source, *args, **kwargs)

    def __iter__(self) -> Iterator[Any]:
        self._source.refresh()
        source = self._source
        return (source[i] for i in super().__iter__())


class UnrepeatedDistributedSamplerWrapper(DistributedSamplerWrapper):
    """Prediction: the shares of a sampler's order, without padding (each index once)."""

    def __init__(self, sampler: Sampler[Any] | Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(sampler, *args, **kwargs)
        n = len(self._source)
        self.num_samples = len(range(self.rank, n, self.num_replicas))
        self.total_size = n

    def __iter__(self) -> Iterator[Any]:
        self._source.refresh()
        source = self._source
        return (source[i] for i in self._order())

    def _order(self) -> list[int]:
        n = len(self._source)
        if self.shuffle:
            g = torch.Generator()
            g.manual_seed(self.seed + self.epoch)
            indices = torch.randperm(n, generator=g).tolist()
        else:
            indices = list(range(n))
        return indices[self.rank : n : self.num_replicas]


def requires_distributed_sampler(loader: Any, enabled: bool, distributed: bool) -> bool:
    """Lightning's ``_requires_distributed_sampler``.

    Args:
        loader: what a ``*_dataloader()`` returned.
        enabled: the Trainer's ``use_distributed_sampler``.
        distributed: whether the run has more than one process.

    Returns:
        Whether the loader's sampler is replaced.
    """
    return (
        enabled
        and distributed
        and isinstance(loader, DataLoader)
        and not isinstance(loader.sampler, DistributedSampler)
        and not isinstance(loader.dataset, IterableDataset)
    )


def is_shuffled(loader: DataLoader[Any]) -> bool:
    """Whether ``loader`` draws in random order (Lightning's ``_is_dataloader_shuffled``)."""
    sampler = loader.sampler
    batch_sampler = loader.batch_sampler
    if batch_sampler is not None and hasattr(batch_sampler, "sampler") and batch_sampler.sampler is not sampler:
        sampler = batch_sampler.sampler
    return isinstance(sampler, RandomSampler)


def distributed_sampler(loader: DataLoader[Any], shuffle: bool, predicting: bool, rank: int, world: int) -> Any:
    """The sampler Lightning puts into ``loader`` (``_get_distributed_sampler``).

    Args:
        loader: the user's loader.
        shuffle: whether to shuffle (training loaders that shuffled).
        predicting: the predict loop (no padding).
        rank: this process's global rank.
        world: the number of processes.

    Returns:
        A ``DistributedSampler``, or a wrapper of the user's sampler.
    """
    kwargs: dict[str, Any] = {
        "num_replicas": world,
        "rank": rank,
        "shuffle": shuffle,
        "seed": int(os.environ.get("PL_GLOBAL_SEED", "0")),
    }
    if predicting:
        return UnrepeatedDistributedSamplerWrapper(loader.sampler, **kwargs)
    if isinstance(loader.sampler, (RandomSampler, SequentialSampler)):
        return DistributedSampler(loader.dataset, **kwargs)
    return DistributedSamplerWrapper(loader.sampler, **kwargs)


def with_sampler(loader: DataLoader[Any], sampler: Any) -> DataLoader[Any]:
    """A new loader like ``loader`` drawing from ``sampler`` (Lightning's ``_update_dataloader``).

    Args:
        loader: the user's loader.
        sampler: the sampler to use.

    Returns:
        A loader of the same class with the same settings.

    Raises:
        TypeError: the loader's class cannot be rebuilt from its attributes; the message says
            to add the sampler yourself or set ``use_distributed_sampler=False``.
    """
    batch_sampler: Any = loader.batch_sampler
    kwargs: dict[str, Any] = {
        name: getattr(loader, name)
        for name in (
            "num_workers",
            "collate_fn",
            "pin_memory",
            "timeout",
            "worker_init_fn",
            "multiprocessing_context",
            "generator",
            "prefetch_factor",
            "persistent_workers",
            "pin_memory_device",
            "in_order",
        )
        if hasattr(loader, name)
    }
    if loader.num_workers == 0:
        kwargs.pop("prefetch_factor", None)
        kwargs["persistent_workers"] = False
    if batch_sampler is not None and type(batch_sampler).__name__ != "BatchSampler":
        try:
            new_bs = type(batch_sampler)(
                sampler, batch_size=batch_sampler.batch_size, drop_last=batch_sampler.drop_last
            )
        except TypeError as err:
            raise TypeError(
                f"lightcycle cannot add a DistributedSampler to your {type(batch_sampler).__name__} batch sampler. "
                "Add a DistributedSampler yourself, or set Trainer(use_distributed_sampler=False)."
            ) from err
        kwargs["batch_sampler"] = new_bs
    else:
        kwargs.update(sampler=sampler, batch_size=loader.batch_size, drop_last=loader.drop_last)
    allowed = inspect.signature(type(loader).__init__).parameters
    if type(loader) is not DataLoader and "kwargs" not in allowed:
        missing = [k for k in ("sampler", "batch_size") if k not in allowed]
        if missing:
            raise TypeError(
                f"lightcycle cannot rebuild your {type(loader).__name__} with a DistributedSampler: its __init__ "
                f"lacks {missing}. Add a DistributedSampler yourself, or set Trainer(use_distributed_sampler=False)."
            )
    return type(loader)(loader.dataset, **kwargs)


def prepare(loader: Any, kind: str, enabled: bool, rank: int, world: int) -> Any:
    """The loader a rank iterates: the user's, or one with a distributed sampler.

    Args:
        loader: what the ``*_dataloader()`` hook returned (one loader).
        kind: ``train``, ``val``, ``test`` or ``predict``.
        enabled: the Trainer's ``use_distributed_sampler``.
        rank: this process's global rank.
        world: the number of processes.

    Returns:
        The loader to iterate.
    """
    if not requires_distributed_sampler(loader, enabled, world > 1):
        return loader
    shuffle = kind == "train" or is_shuffled(loader)  # Lightning: a training loader always shuffles
    sampler = distributed_sampler(loader, shuffle, kind == "predict", rank, world)
    return with_sampler(loader, sampler)
