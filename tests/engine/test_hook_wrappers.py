"""A hook replaced by a wrapper is called, as in Lightning (issue 14, point 11).

Dispatch leaves out a receiver whose hook is the base class's own no-op. Each test wraps base
no-op hooks in one of the ways users and test suites do (an instance attribute, a
``functools.partial`` with ``update_wrapper``, a ``functools.wraps`` decorator, a
``unittest.mock`` wrapper), on a callback, the module and the datamodule, and checks that every
wrapper is called as often under lightcycle as under live pytorch_lightning. The last test records
a fit the way Lightning's own ``tests/tests_pytorch/models/test_hooks.py`` does and compares the
recorded hook list with live Lightning's.
"""

from __future__ import annotations

import functools
import inspect
import types
from collections.abc import Callable
from typing import Any
from unittest import mock

import pytest
import pytorch_lightning as PL
import torch
from torch.utils.data import DataLoader, TensorDataset

import lightcycle as LC
from tests.recording import BASE_KWARGS

# One base no-op hook per receiver kind (each is ``@noop_hook`` in lightcycle).
WRAPPED = {"callback": "on_train_batch_end", "module": "on_train_epoch_start", "datamodule": "setup"}


def _loader() -> DataLoader[Any]:
    g = torch.Generator().manual_seed(0)
    return DataLoader(TensorDataset(torch.randn(8, 4, generator=g), torch.randn(8, 1, generator=g)), batch_size=2)


def _classes(pl: types.ModuleType) -> tuple[type, type]:
    class Model(pl.LightningModule):  # type: ignore[name-defined,misc]
        def __init__(self) -> None:
            super().__init__()
            self.layer = torch.nn.Linear(4, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.layer(x)  # type: ignore[no-any-return]

        def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
            x, y = batch
            return torch.nn.functional.mse_loss(self(x), y)

        def validation_step(self, batch: Any, batch_idx: int) -> None:
            x, y = batch
            self.log("val_loss", torch.nn.functional.mse_loss(self(x), y))

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return torch.optim.SGD(self.parameters(), lr=0.1)

        def train_dataloader(self) -> DataLoader[Any]:
            return _loader()

        def val_dataloader(self) -> DataLoader[Any]:
            return _loader()

    class Data(pl.LightningDataModule):  # type: ignore[name-defined,misc]
        def train_dataloader(self) -> DataLoader[Any]:
            return _loader()

        def val_dataloader(self) -> DataLoader[Any]:
            return _loader()

    return Model, Data


def _fit(pl: types.ModuleType, wrap: Callable[[Any, str, list[str]], None], *, datamodule: bool) -> list[str]:
    """Fit with the WRAPPED hooks wrapped by ``wrap``; return the names of the wrapped calls seen."""
    model_cls, data_cls = _classes(pl)
    seen: list[str] = []
    cb, model = pl.Callback(), model_cls()
    wrap(cb, WRAPPED["callback"], seen)
    wrap(model, WRAPPED["module"], seen)
    kwargs: dict[str, Any] = {}
    if datamodule:
        dm = data_cls()
        wrap(dm, WRAPPED["datamodule"], seen)
        kwargs["datamodule"] = dm
    trainer = pl.Trainer(**BASE_KWARGS, max_epochs=2, limit_train_batches=2, limit_val_batches=1, callbacks=[cb])
    trainer.fit(model, **kwargs)
    return seen


def _recording(name: str, fn: Callable[..., Any], seen: list[str]) -> Callable[..., Any]:
    def call(*args: Any, **kwargs: Any) -> Any:
        seen.append(name)
        return fn(*args, **kwargs)

    return call


def _instance_function(obj: Any, name: str, seen: list[str]) -> None:
    setattr(obj, name, _recording(name, getattr(obj, name), seen))


def _partial_update_wrapper(obj: Any, name: str, seen: list[str]) -> None:
    # as Lightning's test_hooks.py records: the partial gets the bound method's __dict__
    attr = getattr(obj, name)
    wrapper = functools.partial(_recording(name, attr, seen))
    functools.update_wrapper(wrapper, attr)
    setattr(obj, name, wrapper)


def _wraps_decorator(obj: Any, name: str, seen: list[str]) -> None:
    # a decorator built with functools.wraps around the base hook, applied in a subclass
    base_fn = getattr(type(obj), name)

    @functools.wraps(base_fn)
    def decorated(self: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(name)
        return base_fn(self, *args, **kwargs)

    obj.__class__ = type(type(obj).__name__, (type(obj),), {name: decorated})


def _mock_wraps(obj: Any, name: str, seen: list[str]) -> None:
    inner = getattr(obj, name)
    setattr(obj, name, mock.Mock(wraps=inner, side_effect=_recording(name, inner, seen)))


WRAPPERS = {
    "instance_function": _instance_function,
    "partial_update_wrapper": _partial_update_wrapper,
    "wraps_decorator": _wraps_decorator,
    "mock_wraps": _mock_wraps,
}


@pytest.mark.parametrize("kind", sorted(WRAPPERS))
def test_wrapped_base_hooks_are_called_as_in_lightning(kind: str) -> None:
    wrap = WRAPPERS[kind]
    for use_datamodule in (False, True):
        lightning = _fit(PL, wrap, datamodule=use_datamodule)
        ours = _fit(LC, wrap, datamodule=use_datamodule)
        expected = {"callback", "module"} | ({"datamodule"} if use_datamodule else set())
        assert {WRAPPED[k] for k in expected} <= set(lightning), lightning
        assert sorted(ours) == sorted(lightning)


def test_wrapped_dataloader_hook_counts_as_the_base_as_in_lightning() -> None:
    """Lightning's is_overridden unwraps ``__wrapped__``: a wrapped base loader hook is not "defined"."""
    model_cls, _ = _classes(LC)

    class NoVal(model_cls):  # type: ignore[valid-type,misc]
        val_dataloader = functools.wraps(LC.LightningModule.val_dataloader)(lambda self: None)

    from lightcycle._hooks import is_overridden

    assert not is_overridden("val_dataloader", NoVal(), LC.LightningModule)
    assert is_overridden("train_dataloader", NoVal(), LC.LightningModule)
    m = model_cls()
    m.train_dataloader = mock.Mock(wraps=m.train_dataloader)
    assert is_overridden("train_dataloader", m, LC.LightningModule)
    m.val_dataloader = mock.Mock(wraps=None)
    assert not is_overridden("val_dataloader", m, LC.LightningModule)


# --------------------------------------------------------------------------- Lightning's test_hooks.py


def _members(cls: type) -> set[str]:
    return {h for h, _ in inspect.getmembers(cls, predicate=inspect.isfunction) if not h.startswith("_")}


def _test_hooks_style_fit(pl: types.ModuleType) -> list[str]:
    """Lightning's ``HookedCallback`` and ``HookedModel`` (test_hooks.py), then a fit; the names recorded."""
    called: list[str] = []
    model_cls, _ = _classes(pl)

    def call(hook: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        out = fn(*args, **kwargs)
        called.append(hook)
        return out

    def hook_all(obj: Any, names: set[str], prefix: str) -> None:
        for h in sorted(names):
            attr = getattr(obj, h)
            partial_h = functools.partial(call, prefix + h, attr)
            functools.update_wrapper(partial_h, attr)
            setattr(obj, h, partial_h)

    cb = pl.Callback()
    hook_all(cb, _members(pl.Callback), "Callback.")
    model = model_cls()
    module_hooks = _members(pl.LightningModule) - {"optimizers", "log", "log_dict"}
    module_hooks -= _members(torch.nn.Module) - {"forward", "zero_grad", "train"}
    hook_all(model, module_hooks, "")
    trainer = pl.Trainer(**BASE_KWARGS, max_epochs=1, limit_train_batches=2, limit_val_batches=1, callbacks=[cb])
    trainer.fit(model)
    return called


def test_lightning_test_hooks_style_recording_sees_every_call_of_a_fit() -> None:
    lightning = _test_hooks_style_fit(PL)
    ours = _test_hooks_style_fit(LC)
    assert len(lightning) > 100, lightning
    assert ours == lightning


@pytest.mark.parametrize("kind", sorted(WRAPPERS))
def test_is_noop_is_false_for_every_wrapper(kind: str) -> None:
    from lightcycle._hooks import is_noop

    name = WRAPPED["callback"]
    assert is_noop(name, LC.Callback(), LC.Callback)
    cb = LC.Callback()
    WRAPPERS[kind](cb, name, [])
    assert not is_noop(name, cb, LC.Callback)
    assert not is_noop(name, LC.Callback(), None)  # no known base: always called
