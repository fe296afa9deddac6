"""The steady path of ``self.log``: a tensor logged again from a call site already accepted.

``MetricStore.log_site`` keeps a CPU float step value as its number and makes it a tensor when
a view reads it; these tests hold it to what the full path (a detached clone) records, bit for
bit, and check that it makes no tensor (no clone, no detach) while recording.
"""

from __future__ import annotations

import math
import struct
import warnings
from typing import Any

import pytest
import torch
from torch import Tensor

import lightcycle as L
from lightcycle.core.metric_store import MetricStore
from tests import kit

SITE = ("training_step", "x", "train", False, None, None, None, "mean", True, None)


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


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("number", [1.0 / 3.0, -0.0, math.inf, -math.inf, math.nan, 1e-40, 3.4e38, 7.0])
def test_steady_step_value_is_the_full_paths_bit_for_bit(dtype: torch.dtype, number: float) -> None:
    full, steady = _store(), _store()
    value = torch.tensor(number, dtype=dtype)
    _seen(full, torch.zeros((), dtype=dtype))
    full.log("training_step", "x", value, stage="train", on_step=True, on_epoch=False)  # no site: full path
    _seen(steady, torch.zeros((), dtype=dtype))
    assert steady.log_site(SITE, value, None) is True
    ours, theirs = steady.callback_metrics["x"], full.callback_metrics["x"]
    assert isinstance(ours, Tensor)
    assert ours.dtype == theirs.dtype == dtype
    assert ours.shape == theirs.shape == ()
    assert _bits(ours) == _bits(theirs)


def test_steady_path_copies_and_makes_no_tensor(monkeypatch: pytest.MonkeyPatch) -> None:
    store = _store()
    buf_site = (*SITE[:1], "buf", *SITE[2:])
    _seen(store, torch.zeros(()))
    _seen(store, torch.zeros(()), site=buf_site)
    w = torch.ones((), requires_grad=True)
    value = w * 2
    buffer = torch.tensor([5.0])  # one element, one dimension: squeezed as in Lightning

    def forbidden(*_: Any, **__: Any) -> Any:
        raise AssertionError("a tensor op on the steady path")

    with monkeypatch.context() as m:
        for attr in ("clone", "detach", "reshape", "squeeze", "to", "__mul__", "__add__"):
            m.setattr(Tensor, attr, forbidden)
        assert store.log_site(SITE, value, None) is True
        assert store.log_site(buf_site, buffer, None) is True
    buffer.fill_(0.0)  # the caller reuses its buffer
    with torch.no_grad():
        w.mul_(10)
    cb = store.callback_metrics
    assert float(cb["x"]) == 2.0 and not cb["x"].requires_grad and cb["x"].grad_fn is None
    assert float(cb["buf"]) == 5.0 and cb["buf"].shape == ()


def test_steady_path_keeps_the_full_paths_checks_and_conversions() -> None:
    store = _store()
    _seen(store, torch.zeros(()))
    with pytest.raises(ValueError, match="single element"):
        store.log_site(SITE, torch.ones(2), None)
    i_site = (*SITE[:1], "i", *SITE[2:])
    with pytest.warns(UserWarning, match="needs to be floating"):
        _seen(store, torch.tensor(2), site=i_site)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert store.log_site(i_site, torch.tensor(3), None) is True  # converted, warned once per key
    h_site = (*SITE[:1], "h", *SITE[2:])
    _seen(store, torch.tensor(1.0, dtype=torch.float16), site=h_site)
    assert store.log_site(h_site, torch.tensor(0.5, dtype=torch.float16), None) is True
    cb = store.callback_metrics
    assert cb["i"].dtype == torch.float32 and float(cb["i"]) == 3.0
    assert cb["h"].dtype == torch.float32 and float(cb["h"]) == 0.5


def test_steady_value_survives_epoch_reset_and_reads_between_logs() -> None:
    store = _store()
    _seen(store, torch.tensor(1.0), prog_bar=True, site=(*SITE[:3], True, *SITE[4:]))
    site = (*SITE[:3], True, *SITE[4:])
    for step, number in enumerate([2.0, 3.0, 4.0]):
        assert store.log_site(site, torch.tensor(number), None) is True
        assert store.progress_bar_metrics == {"x": number}, step
    store.end_batch("train")
    store.end_epoch("train")
    store.close_epoch("train")  # resets the entry (inactive until logged again)
    store.start_epoch("train")
    store.start_batch("train", None, None)
    assert store.log_site(site, torch.tensor(9.0), None) is True
    store.end_batch("train")
    assert float(store.callback_metrics["x"]) == 9.0


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
    meta = torch.device("meta")
    _seen(store, torch.zeros((), device=meta))
    for attr in ("item", "tolist", "__float__", "cpu"):
        monkeypatch.setattr(Tensor, attr, forbidden)
    assert store.log_site(SITE, torch.ones((), device=meta), None) is True
    value = store.callback_metrics["x"]
    assert isinstance(value, Tensor) and value.device == meta


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_bar_reads_stored_numbers_without_making_tensors(monkeypatch: pytest.MonkeyPatch, dtype: torch.dtype) -> None:
    # Between batches the bar's read takes the step values it shows as the numbers stored; the
    # same floats the full view (tensors made of them) gives, bit for bit, which it builds later.
    site = (*SITE[:3], True, *SITE[4:])
    full, steady = _store(), _store()
    value = torch.tensor(1.0 / 3.0, dtype=dtype)
    full.log("training_step", "x", value, stage="train", on_step=True, on_epoch=False, prog_bar=True)
    _seen(steady, torch.zeros((), dtype=dtype), prog_bar=True, site=site)
    assert steady.log_site(site, value, None) is True
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
