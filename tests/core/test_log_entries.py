"""The remembered ``log`` call sites (``core/log_entries.py``) as the store and ``LightningModule.log`` use them.

``LightningModule.log`` reads the store's ``_steady`` and ``MetricStore.log_site`` its ``_sites``:
the :class:`LogSites` dicts, which are changed in place. These tests hold the store's forgetting
points (a new run, a discarded stage, an epoch's reset) to forgetting what ``LightningModule.log``
then sees, and a forgotten site to being remembered again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import pytest
import torch

import lightcycle as L
from lightcycle.core.log_entries import LogSites, entry_for, new_entry
from lightcycle.core.metric_store import MetricStore
from lightcycle.core.results import _Collection, _Entry, _Meta
from lightcycle.errors import MisconfigurationException
from lightcycle.states.stages import RunningStage, TrainerState

STEP_ONLY: _Meta = (False, True, True, False, 0, True, None)


class _Trainer:
    """What ``LightningModule.log`` reads from its Trainer, around a real store."""

    def __init__(self, store: MetricStore, stage: RunningStage) -> None:
        self._results = store
        self._current_dataloader_idx: int | None = None
        self.state = TrainerState(stage=stage)
        self.logger = None


def _logging_module(store: MetricStore, stage: RunningStage, fx: str) -> tuple[L.LightningModule, list[int]]:
    """A module logging into ``store``, and a list that counts the calls reaching ``MetricStore.log``."""
    module = L.LightningModule()
    module.trainer = cast(Any, _Trainer(store, stage))
    module._current_fx_name = fx
    full = [0]
    original = store.log

    def counted(*args: Any, **kwargs: Any) -> None:
        full[0] += 1
        original(*args, **kwargs)

    store.log = counted  # type: ignore[method-assign]
    return module, full


def _restart_run(store: MetricStore) -> None:
    store.reset_run()
    store.start_epoch("train")
    store.start_batch("train", None, None)


def _next_epoch(store: MetricStore) -> None:
    store.end_batch("train")
    store.close_epoch("train")
    store.start_epoch("train")
    store.start_batch("train", None, None)


@pytest.mark.parametrize("forget", [_restart_run, _next_epoch], ids=["reset_run", "close_epoch"])
def test_a_training_site_is_forgotten_with_its_entries_then_steady_again(forget: Callable[[MetricStore], None]) -> None:
    store = MetricStore()
    _restart_run(store)
    module, full = _logging_module(store, RunningStage.TRAINING, "training_step")
    module.log("x", torch.tensor(1.0), on_step=True, on_epoch=False)
    module.log("x", torch.tensor(2.0), on_step=True, on_epoch=False)
    assert full[0] == 1  # the second call was steady
    forget(store)
    module.log("x", torch.tensor(3.0), on_step=True, on_epoch=False)
    assert full[0] == 2  # forgotten: the full path again (and the site remembered again) ...
    module.log("x", torch.tensor(4.0), on_step=True, on_epoch=False)
    module.log("x", torch.tensor(5.0), on_step=True, on_epoch=False)
    assert full[0] == 2  # ... in the dict LightningModule.log reads: steady from here on
    assert float(store.callback_metrics["x"]) == 5.0


def test_a_discarded_stage_forgets_every_site() -> None:
    store = MetricStore()
    store.reset_run()
    store.start_epoch("sanity_check")
    store.start_batch("sanity_check", None, None)
    module, full = _logging_module(store, RunningStage.SANITY_CHECKING, "validation_step")
    module.log("x", torch.tensor(1.0), on_step=True, on_epoch=False)  # steady
    module.log("y", torch.tensor(1.0), on_step=False, on_epoch=True)  # remembered, recorded by log_site
    module.log("x", torch.tensor(2.0), on_step=True, on_epoch=False)
    module.log("y", torch.tensor(2.0), on_step=False, on_epoch=True)
    assert full[0] == 2
    store.end_batch("sanity_check")
    store.close_epoch("sanity_check")
    store.discard_stage("sanity_check")
    assert store.callback_metrics == {}
    store.start_epoch("sanity_check")
    store.start_batch("sanity_check", None, None)
    module.log("x", torch.tensor(3.0), on_step=True, on_epoch=False)
    module.log("y", torch.tensor(3.0), on_step=False, on_epoch=True)
    assert full[0] == 4  # both full again: the entries they pointed to are gone
    module.log("x", torch.tensor(4.0), on_step=True, on_epoch=False)
    module.log("y", torch.tensor(5.0), on_step=False, on_epoch=True)
    assert full[0] == 4
    store.end_batch("sanity_check")
    store.end_epoch("sanity_check")
    assert float(store.callback_metrics["y"]) == 4.0  # (3 + 5) / 2: no value of the discarded epoch


def _entry(coll: _Collection, name: str, meta: _Meta = STEP_ONLY) -> _Entry:
    return new_entry(coll, ("training_step", name, None), meta)


def test_forget_steady_keeps_other_stages_and_the_sites_log_site_records() -> None:
    sites = LogSites()
    steady, recorded = sites.steady, sites.sites
    train, val = _Collection("train"), _Collection("validate")
    cpu = torch.tensor(1.0)
    site_a = ("training_step", "a", "train", cpu.dtype)
    site_b = ("training_step", "b", "train", cpu.dtype)
    site_v = ("validation_step", "v", "validate", cpu.dtype)
    sites.remember(site_a, train, _entry(train, "a"), cpu, True)
    sites.remember(site_b, train, _entry(train, "b", (False, True, False, True, 0, True, None)), cpu, True)
    sites.remember(site_v, val, _entry(val, "v"), cpu, True)
    assert steady[site_a] is not None and steady[site_b] is None and steady[site_v] is not None
    sites.forget_steady("train")
    assert steady == {site_b: None, site_v: val.entries[("training_step", "v", None)]}
    assert list(recorded) == [site_b]  # the epoch-reduced site still resolves through log_site
    sites.clear()
    assert sites.steady is steady and sites.sites is recorded  # in place: the store holds these dicts
    assert steady == {} and recorded == {}


def test_a_steady_site_needs_a_float_cpu_step_only_value_of_one_dtype() -> None:
    sites = LogSites()
    coll = _Collection("train")
    entry = _entry(coll, "x")
    sites.remember(("a",), coll, entry, torch.tensor(1, dtype=torch.int64), True)
    sites.remember(("b",), coll, entry, torch.tensor(1.0, dtype=torch.float64), True)
    sites.remember(("c",), coll, entry, torch.tensor(1.0, dtype=torch.float32), True)  # the entry's number is float64
    sites.remember(("d",), coll, entry, 1.0, True)
    assert sites.steady == {("a",): None, ("b",): entry, ("c",): None, ("d",): None}
    assert entry.step_dtype is torch.float64
    with pytest.raises(TypeError):
        sites.remember(([],), coll, entry, torch.tensor(1.0, dtype=torch.float64), True)


def test_entry_for_adds_checks_and_refuses_other_arguments() -> None:
    coll = _Collection("train")
    key = ("training_step", "x", None)
    entry = entry_for(coll, key, STEP_ONLY)
    assert coll.entries == {key: entry}
    assert entry_for(coll, key, STEP_ONLY) is entry
    with pytest.raises(MisconfigurationException):
        entry_for(coll, key, (True, *STEP_ONLY[1:]))
    with pytest.raises(MisconfigurationException, match="dataloader_idx"):
        new_entry(coll, ("training_step", "y/dataloader_idx_0", None), STEP_ONLY)
    with pytest.raises(TypeError, match="string name"):
        new_entry(coll, ("training_step", cast(str, 3), None), STEP_ONLY)
