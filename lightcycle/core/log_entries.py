"""How a ``self.log`` call finds the entry it records into.

:class:`~lightcycle.core.metric_store.MetricStore` resolves each call to an entry of its stage's
collection (:mod:`lightcycle.core.results`). A key logged for the first time is checked here
(:func:`new_entry`); a call that succeeded has its call site remembered in a :class:`LogSites`,
so that the same call again skips the resolution (``MetricStore.log_site``) or, for a step-only
float CPU value, the store altogether (``LightningModule.log``'s steady path).
"""

from __future__ import annotations

from typing import Any, NoReturn

import torch
from torch import Tensor

from lightcycle.core.results import LogValue, _Collection, _Entry, _Key, _Meta, raise_meta_mismatch
from lightcycle.errors import MisconfigurationException

__all__ = ["LogSites", "entry_for", "new_entry", "refuse_no_step_no_epoch"]

# the dtypes a logged tensor keeps (others are converted, see metric_values.logged_tensor)
_KEPT_DTYPES = (torch.float32, torch.float64)


def refuse_no_step_no_epoch(name: str) -> NoReturn:
    """Refuse a ``log`` call with ``on_step=False, on_epoch=False`` (nothing would be kept).

    Raises:
        MisconfigurationException: always.
    """
    raise MisconfigurationException(
        f"`self.log({name!r}, on_step=False, on_epoch=False)` is not useful: set `on_step=True` and/or `on_epoch=True`."
    )


def new_entry(coll: _Collection, key: _Key, meta: _Meta) -> _Entry:
    """Check a key logged for the first time in ``coll`` and add its entry.

    Raises:
        TypeError: the name is not a string.
        MisconfigurationException: the name carries the dataloader suffix that
            ``add_dataloader_idx`` (``meta[5]``) would add.
    """
    fx, name, _ = key
    if not isinstance(name, str):
        raise TypeError(f"`self.log` needs a string name, got {name!r}.")
    if meta[5] and "/dataloader_idx_" in name:
        raise MisconfigurationException(
            f"You called `self.log` with the key `{name}` but it should not contain information"
            " about `dataloader_idx` when `add_dataloader_idx=True`: the suffix is added for"
            " you. Drop it from the name, or pass `add_dataloader_idx=False`."
        )
    entry = _Entry(fx, name, meta)
    coll.add(key, entry)
    return entry


def entry_for(coll: _Collection, key: _Key, meta: _Meta) -> _Entry:
    """The entry of ``key`` in ``coll``, added when new (``MetricStore.log`` inlines this).

    Raises:
        MisconfigurationException: as :func:`new_entry`, or ``key`` was logged with other
            arguments (``meta``).
        TypeError: as :func:`new_entry`.
    """
    entry = coll.entries.get(key)
    if entry is None:
        return new_entry(coll, key, meta)
    if entry.meta != meta:
        raise_meta_mismatch(entry, meta)
    return entry


class LogSites:
    """The ``log`` call sites a store accepted, for the calls that skip the checks.

    A site is ``LightningModule.log``'s key for a call (hook, name, stage, dataloader, arguments,
    dtype, is_cpu). :attr:`steady` holds every remembered site: a step-only float CPU one maps to
    its entry, recorded by ``LightningModule.log`` itself, the others to None (recorded by
    ``MetricStore.log_site`` from :attr:`sites`: site -> (collection, entry)).

    Both dicts are changed in place, never replaced: the store keeps them as its own attributes
    too, since they are read on every ``log`` call (one attribute lookup fewer).
    """

    __slots__ = ("sites", "steady")

    def __init__(self) -> None:
        self.steady: dict[tuple[Any, ...], _Entry | None] = {}
        self.sites: dict[tuple[Any, ...], tuple[_Collection, _Entry]] = {}

    def remember(
        self, site: tuple[Any, ...], coll: _Collection, entry: _Entry, value: LogValue, idx_from_coll: bool
    ) -> None:
        """Remember a call site ``MetricStore.log`` accepted, for ``LightningModule.log``'s steady path.

        Steady (``LightningModule.log`` stores the number and bumps the generation, nothing else)
        where that is all ``MetricStore._record`` would do but the copy: a step-only entry, a float
        CPU tensor (``site`` holds dtype and ``is_cpu``). It relies on the entry staying active (the
        stage's steady sites are forgotten when its entries are reset), on one dtype per entry
        for its stored number (``step_dtype``; another steady site of the entry with another
        dtype records tensors), and, for an entry resolved from the collection's dataloader
        index, on that index staying None (``MetricStore.start_batch`` forgets the sites when it
        is set).

        Raises:
            TypeError: an unhashable argument in ``site`` (such a site is never remembered).
        """
        if (
            type(value) is Tensor
            and entry.on_step
            and not entry.on_epoch
            and entry.metric is None
            and value.is_cpu
            and value.dtype in _KEPT_DTYPES
            and (entry.step_dtype is None or entry.step_dtype is value.dtype)
            and not (idx_from_coll and entry.dl_idx is not None)
        ):
            entry.step_dtype = value.dtype
            self.steady[site] = entry
        else:
            self.sites[site] = (coll, entry)
            self.steady[site] = None

    def forget_steady(self, stage: str) -> None:
        """Forget the steady sites of ``stage`` (its entries were reset, or its dataloader index set)."""
        steady = self.steady
        if steady:
            for site, entry in list(steady.items()):
                if entry is not None and site[2] == stage:
                    del steady[site]

    def clear(self) -> None:
        """Forget every site (a new run, or a stage's entries discarded)."""
        self.steady.clear()
        self.sites.clear()
