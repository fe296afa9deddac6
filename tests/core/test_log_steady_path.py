"""The steady path of ``self.log``: a tensor logged again from a call site already accepted.

``MetricStore.log_site`` keeps a CPU float step value as its number and makes it a tensor when
a view reads it; these tests hold it to what the full path (a detached clone) records, bit for
bit, and check that it makes no tensor (no clone, no detach) while recording.
"""

from __future__ import annotations

import math
import struct
import warnings
from typing import Any, cast

import pytest
import torch
from torch import Tensor

import lightcycle as L
from lightcycle.core.metric_store import MetricStore
from lightcycle.errors import MisconfigurationException
from lightcycle.states.stages import RunningStage, TrainerState
from tests import kit

SITE = ("training_step", "x", "train", None, False, None, None, None, "mean", True, False, torch.float32, True)


def _store() -> MetricStore:
    store = MetricStore()
    store.reset_run()
    store.start_epoch("train")
    store.start_batch("train", None, None)
    return store


def _seen(store: MetricStore, value: Tensor, site: tuple[Any, ...] = SITE, **kw: Any) -> None:
    """Log ``value`` once through the full path, remembering ``site``."""
    kw = {"on_step": True, "on_epoch": False, **kw}
    store.log("training_step", site[1], value, stage="train", site=site, **kw)


def _bits(value: Tensor) -> bytes:
    fmt = "<f" if value.dtype == torch.float32 else "<d"
    return struct.pack(fmt, float(value))


class _Strategy:
    def __init__(self, distributed: bool) -> None:
        self.distributed = distributed
        self.root_device = torch.device("cpu")
        self.reduced: list[str] = []

    def reduce(self, tensor: Tensor, group: Any = None, reduce_op: str = "mean") -> Tensor:
        self.reduced.append(reduce_op)
        return tensor * 2


class _Trainer:
    """What ``LightningModule.log`` reads from its Trainer, around a real store."""

    def __init__(self, store: MetricStore, logger: Any = None, distributed: bool = False) -> None:
        self._results = store
        self._current_dataloader_idx: int | None = None
        self.state = TrainerState(stage=RunningStage.TRAINING)
        self.logger = logger
        self.strategy = _Strategy(distributed)


class _Full:
    """Counts the full-path calls (``MetricStore.log``) of a store."""

    def __init__(self, store: MetricStore) -> None:
        self.calls = 0
        original = store.log

        def counted(*args: Any, **kwargs: Any) -> None:
            self.calls += 1
            original(*args, **kwargs)

        store.log = counted  # type: ignore[method-assign]


def _module(store: MetricStore, **trainer: Any) -> tuple[L.LightningModule, _Trainer, _Full]:
    module = L.LightningModule()
    host = _Trainer(store, **trainer)
    module.trainer = cast(Any, host)
    module._current_fx_name = "training_step"
    return module, host, _Full(store)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("number", [1.0 / 3.0, -0.0, math.inf, -math.inf, math.nan, 1e-40, 3.4e38, 7.0])
def test_steady_step_value_is_the_full_paths_bit_for_bit(dtype: torch.dtype, number: float) -> None:
    full, steady = _store(), _store()
    value = torch.tensor(number, dtype=dtype)
    _seen(full, torch.zeros((), dtype=dtype))
    full.log("training_step", "x", value, stage="train", on_step=True, on_epoch=False)  # no site: full path
    module, _, calls = _module(steady)
    module.log("x", torch.zeros((), dtype=dtype))
    module.log("x", value)
    assert calls.calls == 1  # the second call took the steady path
    ours, theirs = steady.callback_metrics["x"], full.callback_metrics["x"]
    assert isinstance(ours, Tensor)
    assert ours.dtype == theirs.dtype == dtype
    assert ours.shape == theirs.shape == ()
    assert _bits(ours) == _bits(theirs)


def test_steady_path_copies_and_makes_no_tensor(monkeypatch: pytest.MonkeyPatch) -> None:
    store = _store()
    module, _, calls = _module(store)
    module.log("x", torch.zeros(()))
    module.log("buf", torch.zeros(()))
    w = torch.ones((), requires_grad=True)
    value = w * 2
    buffer = torch.tensor([5.0])  # one element, one dimension: squeezed as in Lightning

    def forbidden(*_: Any, **__: Any) -> Any:
        raise AssertionError("a tensor op on the steady path")

    with monkeypatch.context() as m:
        for attr in ("clone", "detach", "reshape", "squeeze", "to", "__mul__", "__add__"):
            m.setattr(Tensor, attr, forbidden)
        module.log("x", value)
        module.log("buf", buffer)
    assert calls.calls == 2
    buffer.fill_(0.0)  # the caller reuses its buffer
    with torch.no_grad():
        w.mul_(10)
    cb = store.callback_metrics
    assert float(cb["x"]) == 2.0 and not cb["x"].requires_grad and cb["x"].grad_fn is None
    assert float(cb["buf"]) == 5.0 and cb["buf"].shape == ()


def test_steady_path_keeps_the_full_paths_checks_and_conversions() -> None:
    store = _store()
    module, _, calls = _module(store)
    module.log("x", torch.zeros(()))
    with pytest.raises(ValueError, match="single element"):
        module.log("x", torch.ones(2))
    with pytest.warns(UserWarning, match="needs to be floating"):
        module.log("i", torch.tensor(2))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        module.log("i", torch.tensor(3))  # converted, warned once per key
    module.log("h", torch.tensor(1.0, dtype=torch.float16))
    module.log("h", torch.tensor(0.5, dtype=torch.float16))
    cb = store.callback_metrics
    assert cb["i"].dtype == torch.float32 and float(cb["i"]) == 3.0
    assert cb["h"].dtype == torch.float32 and float(cb["h"]) == 0.5
    assert float(cb["x"]) == 0.0  # the refused value left the entry as it was
    assert calls.calls == 4  # each new site, and the refused value (its check is the full path's)


def test_steady_value_survives_epoch_reset_and_reads_between_logs() -> None:
    store = _store()
    module, _, calls = _module(store)
    module.log("x", torch.tensor(1.0), prog_bar=True)
    for step, number in enumerate([2.0, 3.0, 4.0]):
        module.log("x", torch.tensor(number), prog_bar=True)
        assert store.progress_bar_metrics == {"x": number}, step
    assert calls.calls == 1
    store.end_batch("train")
    store.end_epoch("train")
    store.close_epoch("train")  # resets the entry (inactive until logged again)
    store.start_epoch("train")
    store.start_batch("train", None, None)
    assert "x" not in store._live_view()[0]
    module.log("x", torch.tensor(9.0), prog_bar=True)  # the full path again: the entry is active
    assert calls.calls == 2
    assert float(store._live_view()[0]["x"]) == 9.0
    module.log("x", torch.tensor(10.0), prog_bar=True)
    assert calls.calls == 2
    store.end_batch("train")
    assert float(store.callback_metrics["x"]) == 10.0


def test_trainer_step_value_is_the_value_at_log_time() -> None:
    """A logged parameter element is changed in place by the optimizer after ``self.log``."""
    seen: list[tuple[float, float]] = []

    class Model(kit.linear_module_class(L)):  # type: ignore[misc]
        def training_step(self, batch: Any, batch_idx: int) -> Any:
            w = self.layer.weight[0, 0]
            self.log("w", w)
            self.log("w64", w.double())
            self._logged = w.item()
            return super().training_step(batch, batch_idx)

        def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
            metrics = self.trainer.callback_metrics
            assert self.layer.weight[0, 0].item() != self._logged  # the optimizer stepped
            assert metrics["w64"].dtype == torch.float64
            seen.append((float(metrics["w"]), self._logged))

    trainer = L.Trainer(**kit.quiet(max_epochs=1, accelerator="cpu"))
    trainer.fit(Model(), train_dataloaders=kit.regression_loader(8))
    assert len(seen) == 4
    assert all(ours == expected for ours, expected in seen)


def test_epoch_mean_without_the_clone_keeps_the_value_at_log_time() -> None:
    """An on_epoch-only mean skips the copy: its accumulation must not alias the caller's tensor."""
    store = _store()
    site = (*SITE[:5], False, True, *SITE[7:])
    buffer = torch.tensor([1.5])
    _seen(store, buffer, site=site, on_step=False, on_epoch=True, batch_size=2)
    buffer.fill_(100.0)
    assert store.log_site(site, buffer, 3) is True
    buffer.fill_(-7.0)  # after both logs: neither value may change
    store.end_batch("train")
    store.end_epoch("train")
    expected = (torch.tensor(0.0) + torch.tensor(1.5) * 2 + torch.tensor(100.0) * 3) / 5
    assert torch.equal(store.callback_metrics["x"], expected)


def test_steady_path_never_reads_a_device_tensor(monkeypatch: pytest.MonkeyPatch) -> None:
    """Off the CPU (meta tensors have no data: a host read raises) the value stays a tensor."""

    def forbidden(*_: Any, **__: Any) -> Any:
        raise AssertionError("a host read of a device tensor")

    store = _store()
    module, _, calls = _module(store)
    meta = torch.device("meta")
    module.log("x", torch.zeros((), device=meta))
    for attr in ("item", "tolist", "__float__", "cpu"):
        monkeypatch.setattr(Tensor, attr, forbidden)
    module.log("x", torch.ones((), device=meta))
    assert calls.calls == 1  # a remembered site, recorded by the store (log_site)
    value = store.callback_metrics["x"]
    assert isinstance(value, Tensor) and value.device == meta


# every argument of the key: changed at a steady site, the call takes the full path; a change of
# the key's metadata is refused there (the same key logged with other arguments), one that keeps
# it (the hook's defaults given explicitly, sync_dist in one process) is remembered in turn
_CHANGES: list[tuple[str, dict[str, Any], bool]] = [
    ("prog_bar", {"prog_bar": True}, True),
    ("logger", {"logger": False}, True),
    ("logger_true", {"logger": True}, False),
    ("on_step", {"on_step": True}, False),
    ("on_epoch", {"on_epoch": False}, False),
    ("on_epoch_true", {"on_epoch": True}, True),
    ("reduce_fx", {"reduce_fx": "max"}, True),
    ("reduce_fx_same", {"reduce_fx": torch.mean}, False),
    ("add_dataloader_idx", {"add_dataloader_idx": False}, True),
    ("sync_dist", {"sync_dist": True}, False),
]


@pytest.mark.parametrize(("what", "kwargs", "refused"), _CHANGES, ids=[c[0] for c in _CHANGES])
def test_a_changed_argument_at_a_steady_site_takes_the_full_path(
    what: str, kwargs: dict[str, Any], refused: bool
) -> None:
    store = _store()
    module, _, calls = _module(store, logger=object())
    module.log("x", torch.tensor(1.0))
    module.log("x", torch.tensor(2.0))
    assert calls.calls == 1
    if refused:
        with pytest.raises(MisconfigurationException, match="different arguments"):
            module.log("x", torch.tensor(3.0), **kwargs)
        assert calls.calls == 2, what
        assert float(store.callback_metrics["x"]) == 2.0
        return
    module.log("x", torch.tensor(3.0), **kwargs)
    assert calls.calls == 2, what
    module.log("x", torch.tensor(4.0), **kwargs)  # the new combination is remembered in turn
    module.log("x", torch.tensor(5.0))  # and the first one still is
    assert calls.calls == 2, what
    assert float(store.callback_metrics["x"]) == 5.0


def test_a_steady_site_refuses_what_the_full_path_refuses() -> None:
    store = _store()
    module, host, _ = _module(store)
    module.log("x", torch.tensor(1.0))
    with pytest.raises(MisconfigurationException, match="different arguments"):
        module.log("x", torch.tensor(1.0), prog_bar=True)  # the same key with other metadata
    with pytest.raises(MisconfigurationException, match="is not useful"):
        module.log("x", torch.tensor(1.0), on_step=False, on_epoch=False)
    module._current_fx_name = "on_fit_start"  # a hook that may not log
    with pytest.raises(MisconfigurationException):
        module.log("x", torch.tensor(1.0))
    module._current_fx_name = "training_step"
    host.state.stage = None
    with pytest.raises(MisconfigurationException, match="not managed by the `Trainer`"):
        module.log("x", torch.tensor(1.0))
    host.state.stage = RunningStage.TRAINING
    module.log("x", torch.tensor(5.0))
    assert float(store.callback_metrics["x"]) == 5.0


def test_other_values_dtypes_and_devices_at_a_steady_site_take_their_own_path() -> None:
    store = _store()
    module, _, calls = _module(store)
    module.log("x", torch.tensor(1.0))
    module.log("x", torch.tensor(2.0, dtype=torch.float64))  # another dtype: another site, same entry
    assert calls.calls == 2
    assert store.callback_metrics["x"].dtype == torch.float64
    module.log("x", torch.tensor(3.0))  # the float32 site again: steady, its own dtype
    assert calls.calls == 2
    assert store.callback_metrics["x"].dtype == torch.float32 and float(store.callback_metrics["x"]) == 3.0
    module.log("x", torch.tensor(4.0, dtype=torch.float64))  # remembered, but not steady (the entry's
    assert calls.calls == 2  # number has the float32 site's dtype): recorded as a tensor
    assert store.callback_metrics["x"].dtype == torch.float64 and float(store.callback_metrics["x"]) == 4.0
    module.log("x", torch.nn.Parameter(torch.tensor(5.0)))  # not a plain tensor: the full path
    module.log("x", 6.0)  # a number: the full path
    assert calls.calls == 4
    assert float(store.callback_metrics["x"]) == 6.0


def test_sync_dist_in_one_process_is_steady_and_never_once_distributed() -> None:
    store = _store()
    module, host, calls = _module(store)
    module.log("x", torch.tensor(1.0), sync_dist=True)
    module.log("x", torch.tensor(2.0), sync_dist=True)
    assert calls.calls == 1  # one process: sync_dist changes nothing
    store = _store()
    module, host, calls = _module(store, distributed=True)
    for number in (1.0, 2.0, 3.0):
        module.log("x", torch.tensor(number), sync_dist=True)
    assert calls.calls == 3 and host.strategy.reduced == ["mean"] * 3
    assert float(store.callback_metrics["x"]) == 6.0  # the fake reduction doubles
    module.log("x", torch.tensor(4.0), sync_dist=True, rank_zero_only=True)  # no sync, still not remembered
    module.log("x", torch.tensor(5.0), sync_dist=True, rank_zero_only=True)
    assert calls.calls == 5 and host.strategy.reduced == ["mean"] * 3


def test_logger_true_without_a_logger_warns_on_every_call() -> None:
    store = _store()
    module, host, calls = _module(store)
    for _ in range(3):
        with pytest.warns(UserWarning, match="have no logger configured"):
            module.log("x", torch.tensor(1.0), logger=True)
    host.logger = object()
    module.log("x", torch.tensor(2.0), logger=True)
    module.log("x", torch.tensor(3.0), logger=True)
    assert calls.calls == 4  # remembered once a logger is there
    host.logger = None
    with pytest.warns(UserWarning, match="have no logger configured"):
        module.log("x", torch.tensor(4.0), logger=True)
    assert float(store.callback_metrics["x"]) == 4.0


def test_a_steady_site_follows_the_stage_and_the_dataloader() -> None:
    store = MetricStore()
    store.reset_run()
    store.start_epoch("validate")
    store.start_batch("validate", None, None)
    module, host, calls = _module(store)
    host.state.stage = RunningStage.VALIDATING
    module._current_fx_name = "validation_step"
    module.log("x", torch.tensor(1.0), on_step=True, on_epoch=False)
    module.log("x", torch.tensor(2.0), on_step=True, on_epoch=False)
    assert calls.calls == 1
    # the store's index changes while the caller passes none (no Trainer index): full path,
    # the value goes to the entry of the new index
    store.start_batch("validate", 1, None)
    module.log("x", torch.tensor(3.0), on_step=True, on_epoch=False)
    assert calls.calls == 2
    assert float(store.logged_metrics["x/dataloader_idx_1"]) == 3.0
    module.log("x", torch.tensor(4.0), on_step=True, on_epoch=False)  # not steady while the index is set
    assert calls.calls == 2
    assert float(store.logged_metrics["x/dataloader_idx_1"]) == 4.0
    host._current_dataloader_idx = 1  # the Trainer's index: steady (the entry depends on it alone)
    module.log("x", torch.tensor(5.0), on_step=True, on_epoch=False)
    module.log("x", torch.tensor(6.0), on_step=True, on_epoch=False)
    assert calls.calls == 3
    assert float(store.logged_metrics["x/dataloader_idx_1"]) == 6.0
    host.state.stage = RunningStage.SANITY_CHECKING  # another stage: another site
    store.start_epoch("sanity_check")
    store.start_batch("sanity_check", 1, None)
    module.log("x", torch.tensor(7.0), on_step=True, on_epoch=False)
    assert calls.calls == 4


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_bar_reads_stored_numbers_without_making_tensors(monkeypatch: pytest.MonkeyPatch, dtype: torch.dtype) -> None:
    # Between batches the bar's read takes the step values it shows as the numbers stored; the
    # same floats the full view (tensors made of them) gives, bit for bit, which it builds later.
    full, steady = _store(), _store()
    value = torch.tensor(1.0 / 3.0, dtype=dtype)
    full.log("training_step", "x", value, stage="train", on_step=True, on_epoch=False, prog_bar=True)
    module, _, calls = _module(steady)
    module.log("x", torch.zeros((), dtype=dtype), prog_bar=True)
    module.log("x", value, prog_bar=True)
    assert calls.calls == 1  # the second call took the steady path
    with monkeypatch.context() as m:
        m.setattr(torch, "tensor", lambda *_, **__: pytest.fail("a tensor made for the bar's read"))
        ours = steady.progress_bar_metrics
    assert ours == full.progress_bar_metrics == {"x": value.item()}
    assert type(ours["x"]) is float
    assert _bits(steady.callback_metrics["x"]) == _bits(full.callback_metrics["x"])
    steady.teardown()  # the stored number stays a number
    assert steady.progress_bar_metrics == {"x": value.item()}


def test_grouped_conversion_keeps_numbers_and_order() -> None:
    from lightcycle.core.results import _to_floats, _to_floats_grouped

    values: dict[str, Tensor | float] = {
        "a": torch.tensor(0.5, dtype=torch.float64),
        "n": 2.25,
        "b": torch.tensor(1.5),
        "c": torch.tensor(3.0, dtype=torch.float64),
    }
    expected = {"a": 0.5, "n": 2.25, "b": 1.5, "c": 3.0}
    for convert in (_to_floats, _to_floats_grouped):  # (the grouped path: a device's tensors)
        floats = convert(values)
        assert floats == expected and list(floats) == list(expected)
        assert all(type(v) is float for v in floats.values())
