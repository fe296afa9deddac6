"""Tests for LightningModule, LightningDataModule, hyper-parameters and seeding.

Where Lightning's behaviour is observable without a Trainer, the test runs the same
scenario on pytorch_lightning and compares.
"""

from __future__ import annotations

import dataclasses
import inspect
import io
import os
import pickle
import random
import warnings
from argparse import Namespace
from collections import defaultdict, namedtuple
from pathlib import Path
from typing import Any, cast

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from lightning_fabric.utilities.apply_func import (
    move_data_to_device as pl_move_data_to_device,
)
from lightning_fabric.utilities.data import AttributeDict as PLAttributeDict
from lightning_fabric.utilities.seed import seed_everything as pl_seed_everything
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightcycle._hooks import is_marked_noop, is_overridden
from lightcycle.core.datamodule import LightningDataModule, move_data_to_device
from lightcycle.core.hparams import AttributeDict
from lightcycle.core.module import LightningModule
from lightcycle.core.optim import LightningOptimizer, LRSchedulerConfig
from lightcycle.errors import MisconfigurationException
from lightcycle.seed import seed_everything
from lightcycle.states.stages import RunningStage, TrainerState

# --------------------------------------------------------------------------- fixtures


class _RecordingStore:
    def __init__(self) -> None:
        self.calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
        self._steady: dict[tuple[Any, ...], Any] = {}  # never seen: every call takes the full path to ``log``

    def log(self, *args: Any, **kwargs: Any) -> None:
        self.calls.append((args, kwargs))


class _FakeTrainer:
    """The attributes LightningModule reads from its Trainer."""

    def __init__(self) -> None:
        self.optimizers: list[torch.optim.Optimizer] = []
        self.lr_scheduler_configs: list[LRSchedulerConfig] = []
        self.current_epoch = 3
        self.global_step = 7
        self._results: _RecordingStore | None = _RecordingStore()
        # None with a single dataloader, as the Trainer keeps it
        self._current_dataloader_idx: int | None = None
        self.state = TrainerState(stage=RunningStage.TRAINING)
        self.gradient_clip_val: float | None = None
        self.gradient_clip_algorithm: str | None = None
        self.logger: Any = object()
        self.backward_calls: list[tuple[Any, ...]] = []

    def _manual_backward(self, loss: torch.Tensor, *args: Any, **kwargs: Any) -> None:
        self.backward_calls.append((loss, args, kwargs))


def _attach(model: LightningModule) -> _FakeTrainer:
    trainer = _FakeTrainer()
    model.trainer = cast(Any, trainer)
    return trainer


class _Net(LightningModule):
    def __init__(self, hidden: int = 4) -> None:
        super().__init__()
        self.layer = nn.Linear(2, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.layer(x)
        return out

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        out: torch.Tensor = self(batch).sum()
        return out


# --------------------------------------------------------------------------- hook inventory

NOOP_HOOKS = [
    "on_fit_start",
    "on_fit_end",
    "on_train_start",
    "on_train_end",
    "on_validation_start",
    "on_validation_end",
    "on_test_start",
    "on_test_end",
    "on_predict_start",
    "on_predict_end",
    "on_train_epoch_start",
    "on_train_epoch_end",
    "on_validation_epoch_start",
    "on_validation_epoch_end",
    "on_test_epoch_start",
    "on_test_epoch_end",
    "on_predict_epoch_start",
    "on_predict_epoch_end",
    "on_train_batch_start",
    "on_train_batch_end",
    "on_validation_batch_start",
    "on_validation_batch_end",
    "on_test_batch_start",
    "on_test_batch_end",
    "on_predict_batch_start",
    "on_predict_batch_end",
    "on_before_zero_grad",
    "on_before_backward",
    "on_after_backward",
    "on_before_optimizer_step",
    "setup",
    "teardown",
    "prepare_data",
    "configure_model",
    "configure_sharded_model",
    "on_save_checkpoint",
    "on_load_checkpoint",
]

WORKING_HOOKS = [
    "backward",
    "optimizer_step",
    "optimizer_zero_grad",
    "configure_gradient_clipping",
    "clip_gradients",
    "lr_scheduler_step",
    "transfer_batch_to_device",
    "on_before_batch_transfer",
    "on_after_batch_transfer",
    "on_validation_model_eval",
    "on_validation_model_train",
    "on_validation_model_zero_grad",
    "on_test_model_eval",
    "on_test_model_train",
    "on_predict_model_eval",
    "configure_callbacks",
    "configure_optimizers",
    "training_step",
    "validation_step",
    "test_step",
    "predict_step",
    "train_dataloader",
    "val_dataloader",
    "test_dataloader",
    "predict_dataloader",
    "manual_backward",
]

SIGNATURE_CHECKED = [
    *NOOP_HOOKS,
    *WORKING_HOOKS,
    "optimizers",
    "lr_schedulers",
    "log",
    "log_dict",
    "toggle_optimizer",
    "untoggle_optimizer",
    "freeze",
    "unfreeze",
    "save_hyperparameters",
    "load_from_checkpoint",
    "print",
]


def _param_shape(fn: Any) -> list[tuple[str, Any, Any]]:
    fn = inspect.unwrap(fn)
    return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]


@pytest.mark.parametrize("name", NOOP_HOOKS)
def test_noop_hooks_are_marked(name: str) -> None:
    assert is_marked_noop(getattr(LightningModule, name)), name
    assert getattr(_Net(), name).__func__ is getattr(LightningModule, name)


@pytest.mark.parametrize("name", WORKING_HOOKS)
def test_working_hooks_are_not_marked(name: str) -> None:
    assert not is_marked_noop(getattr(LightningModule, name)), name


@pytest.mark.parametrize("name", SIGNATURE_CHECKED)
def test_signatures_match_lightning(name: str) -> None:
    ours = _param_shape(getattr(LightningModule, name))
    theirs = _param_shape(getattr(pl.LightningModule, name))
    if name == "load_from_checkpoint":  # Lightning's restricted classmethod keeps `cls` visible
        theirs = [p for p in theirs if p[0] != "cls"]
        ours = [p for p in ours if p[0] != "cls"]
    assert ours == theirs


@pytest.mark.parametrize(
    "name",
    [
        "setup",
        "teardown",
        "prepare_data",
        "train_dataloader",
        "transfer_batch_to_device",
        "on_exception",
        "state_dict",
        "load_state_dict",
        "on_before_batch_transfer",
        "on_after_batch_transfer",
        "from_datasets",
    ],
)
def test_datamodule_signatures_match_lightning(name: str) -> None:
    assert _param_shape(getattr(LightningDataModule, name)) == _param_shape(getattr(pl.LightningDataModule, name))


def test_datamodule_noop_marks() -> None:
    for name in ("prepare_data", "setup", "teardown", "load_state_dict", "on_exception"):
        assert is_marked_noop(getattr(LightningDataModule, name)), name
    for name in ("state_dict", "transfer_batch_to_device", "train_dataloader"):
        assert not is_marked_noop(getattr(LightningDataModule, name)), name


def test_is_overridden_detects_steps() -> None:
    class WithVal(_Net):
        def validation_step(self, batch: Any, batch_idx: int) -> None:
            return None

    assert is_overridden("training_step", _Net(), LightningModule)
    assert not is_overridden("validation_step", _Net(), LightningModule)
    assert not is_overridden("test_step", _Net(), LightningModule)
    assert is_overridden("validation_step", WithVal(), LightningModule)
    assert not is_overridden("configure_optimizers", _Net(), LightningModule)


# --------------------------------------------------------------------------- defaults


def test_base_defaults() -> None:
    model = _Net()
    with pytest.warns(UserWarning, match="`configure_optimizers` must be implemented"):
        assert model.configure_optimizers() is None
    with pytest.warns(UserWarning, match="`training_step` must be implemented"):
        assert LightningModule.training_step(model, 0, 0) is None
    assert model.validation_step(0, 0) is None
    assert model.test_step(0, 0) is None
    assert model.configure_callbacks() == []
    x = torch.randn(3, 2)
    assert torch.equal(model.predict_step(x, 0), model(x))
    assert torch.equal(model.predict_step(batch=x, batch_idx=0), model(x))
    assert model.on_before_batch_transfer(x, 0) is x
    assert model.on_after_batch_transfer(x, 0) is x
    assert model.on_train_batch_start(x, 0) is None
    for name in ("train_dataloader", "val_dataloader", "test_dataloader", "predict_dataloader"):
        with pytest.raises(MisconfigurationException, match=f"`{name}` must be implemented"):
            getattr(model, name)()


def test_properties_detached_and_attached() -> None:
    model = _Net()
    with pytest.raises(RuntimeError, match="_Net is not attached to a `Trainer`"):
        _ = model.trainer
    assert model._trainer is None
    assert model._current_fx_name is None
    assert (model.current_epoch, model.global_step, model.global_rank, model.local_rank) == (0, 0, 0, 0)
    assert model.automatic_optimization is True
    assert model.strict_loading is True
    assert model.logger is None
    assert model.loggers == []
    model.automatic_optimization = False
    model.strict_loading = False
    assert (model.automatic_optimization, model.strict_loading) == (False, False)
    trainer = _attach(model)
    assert model.trainer is cast(Any, trainer)
    assert (model.current_epoch, model.global_step) == (3, 7)
    model.trainer = None
    assert model._trainer is None


def test_trainer_setter_propagates_to_child_modules() -> None:
    class Outer(LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.inner = _Net()

    outer = Outer()
    trainer = _attach(outer)
    assert outer.inner._trainer is cast(Any, trainer)


def test_device_and_dtype() -> None:
    model = _Net()
    assert model.device == torch.device("cpu")
    assert model.dtype == torch.float32
    assert model.double().dtype == torch.float64
    assert model.to("meta").device == torch.device("meta")
    assert not model.on_gpu

    class BufferOnly(LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("b", torch.zeros(1, dtype=torch.float16, device="meta"))

    assert BufferOnly().device == torch.device("meta")
    assert BufferOnly().dtype == torch.float16
    assert LightningModule().device == torch.device("cpu")
    assert LightningModule().dtype == torch.get_default_dtype()


def test_eval_train_and_zero_grad_hooks() -> None:
    model = _Net()
    model.on_validation_model_eval()
    assert not model.training
    model.on_validation_model_train()
    assert model.training
    model.on_test_model_eval()
    assert not model.training
    model.on_test_model_train()
    assert model.training
    model.on_predict_model_eval()
    assert not model.training
    model.layer.weight.grad = torch.ones_like(model.layer.weight)
    model.on_validation_model_zero_grad()
    assert model.layer.weight.grad is None


def test_freeze_unfreeze() -> None:
    model = _Net()
    assert model.freeze() is model
    assert not model.training
    assert all(not p.requires_grad for p in model.parameters())
    assert model.unfreeze() is model
    assert model.training
    assert all(p.requires_grad for p in model.parameters())


def test_pickle_drops_trainer() -> None:
    model = _Net()
    _attach(model)
    clone = pickle.loads(pickle.dumps(model))
    assert clone._trainer is None
    assert torch.equal(clone.layer.weight, model.layer.weight)


# --------------------------------------------------------------------------- optimization hooks


def test_backward_optimizer_step_zero_grad_and_scheduler_step() -> None:
    model = _Net()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    loss: torch.Tensor = model(torch.ones(1, 2)).sum()
    model.backward(loss)
    assert model.layer.weight.grad is not None
    before = model.layer.weight.detach().clone()
    calls: list[str] = []

    def closure() -> torch.Tensor:
        calls.append("closure")
        return loss

    model.optimizer_step(0, 0, opt, closure)
    assert calls == ["closure"]
    assert not torch.equal(before, model.layer.weight)
    model.optimizer_zero_grad(0, 0, opt)
    assert model.layer.weight.grad is None

    seen: list[tuple[Any, ...]] = []

    class Sched:
        def step(self, *args: Any) -> None:
            seen.append(args)

    model.lr_scheduler_step(Sched(), None)
    model.lr_scheduler_step(Sched(), 0.5)
    assert seen == [(), (0.5,)]


def _grads_model() -> tuple[_Net, torch.optim.Optimizer]:
    torch.manual_seed(0)
    model = _Net(hidden=8)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for p in model.parameters():
        p.grad = torch.randn_like(p) * 10
    return model, opt


def test_clip_gradients_by_norm_matches_torch() -> None:
    model, opt = _grads_model()
    ref_model, _ = _grads_model()
    torch.nn.utils.clip_grad_norm_(list(ref_model.parameters()), 1.0)
    model.clip_gradients(opt, gradient_clip_val=1.0)
    for p, q in zip(model.parameters(), ref_model.parameters(), strict=True):
        assert p.grad is not None
        assert q.grad is not None
        assert torch.allclose(p.grad, q.grad)
    total = torch.norm(torch.stack([torch.norm(p.grad) for p in model.parameters() if p.grad is not None]))
    assert total.item() == pytest.approx(1.0, rel=1e-4)


def test_clip_gradients_by_value_matches_torch() -> None:
    model, opt = _grads_model()
    ref_model, _ = _grads_model()
    torch.nn.utils.clip_grad_value_(list(ref_model.parameters()), 0.5)
    model.configure_gradient_clipping(opt, gradient_clip_val=0.5, gradient_clip_algorithm="VALUE")
    for p, q in zip(model.parameters(), ref_model.parameters(), strict=True):
        assert p.grad is not None
        assert q.grad is not None
        assert torch.equal(p.grad, q.grad)
        assert p.grad.abs().max().item() <= 0.5


@pytest.mark.parametrize("value", [None, 0, 0.0, -1.0])
def test_clip_gradients_disabled(value: float | None) -> None:
    model, opt = _grads_model()
    before = [p.grad.clone() for p in model.parameters() if p.grad is not None]
    model.clip_gradients(opt, gradient_clip_val=value)
    after = [p.grad for p in model.parameters() if p.grad is not None]
    assert all(torch.equal(a, b) for a, b in zip(before, after, strict=True))


def test_clip_gradients_errors_and_trainer_defaults() -> None:
    model, opt = _grads_model()
    with pytest.raises(MisconfigurationException, match="`gradient_clip_algorithm` bogus is invalid"):
        model.clip_gradients(opt, 1.0, "bogus")
    with pytest.raises(TypeError, match="should be an int or a float"):
        model.clip_gradients(opt, cast(Any, "1.0"))
    trainer = _attach(model)
    trainer.gradient_clip_val = 0.5
    trainer.gradient_clip_algorithm = "value"
    with pytest.raises(MisconfigurationException, match="Please use only one of them"):
        model.clip_gradients(opt, gradient_clip_val=1.0)
    with pytest.raises(MisconfigurationException, match="Please use only one of them"):
        model.clip_gradients(opt, gradient_clip_algorithm="norm")
    model.clip_gradients(opt)  # falls back to the trainer's value/algorithm
    assert all(p.grad is not None and p.grad.abs().max().item() <= 0.5 for p in model.parameters())


def test_optimizers_and_lr_schedulers() -> None:
    model = _Net()
    trainer = _attach(model)
    assert model.optimizers() == []
    assert model.lr_schedulers() is None
    a = torch.optim.SGD(model.parameters(), lr=0.1)
    trainer.optimizers = [a]
    single = model.optimizers()
    assert isinstance(single, LightningOptimizer)
    assert single.optimizer is a
    assert model.optimizers() is single  # the wrapper is reused, so injected hooks stick
    assert model.optimizers(use_pl_optimizer=False) is a
    b = torch.optim.Adam(model.parameters(), lr=0.1)
    trainer.optimizers = [a, b]
    both = model.optimizers()
    assert isinstance(both, list)
    assert [o.optimizer for o in both] == [a, b]
    assert both[0] is single
    assert model.optimizers(use_pl_optimizer=False) == [a, b]
    provided = [LightningOptimizer(a)]
    cast(Any, trainer)._lightning_optimizers = provided
    assert model.optimizers() is provided[0]
    assert provided[0]._module is model

    s1 = torch.optim.lr_scheduler.StepLR(a, 1)
    trainer.lr_scheduler_configs = [LRSchedulerConfig(s1)]
    assert model.lr_schedulers() is s1
    s2 = torch.optim.lr_scheduler.StepLR(b, 1)
    trainer.lr_scheduler_configs = [LRSchedulerConfig(s1), LRSchedulerConfig(s2)]
    assert model.lr_schedulers() == [s1, s2]


def test_toggle_untoggle_optimizer_matches_lightning() -> None:
    def build(base: type) -> Any:
        class Two(base):  # type: ignore[misc]
            def __init__(self) -> None:
                super().__init__()
                self.a = nn.Linear(1, 1)
                self.b = nn.Linear(1, 1)
                self.shared = nn.Linear(1, 1)

        return Two()

    results = []
    for base in (LightningModule, pl.LightningModule):
        model = build(base)
        model.b.bias.requires_grad = False
        opt_a = torch.optim.SGD([*model.a.parameters(), *model.shared.parameters()], lr=0.1)
        opt_b = torch.optim.SGD([*model.b.parameters(), *model.shared.parameters()], lr=0.1)
        trainer = _FakeTrainer()
        trainer.optimizers = [opt_a, opt_b]
        if base is LightningModule:
            model.trainer = trainer
        else:
            model._trainer = trainer
        model.toggle_optimizer(opt_b)
        toggled = {n: p.requires_grad for n, p in model.named_parameters()}
        model.untoggle_optimizer(opt_b)
        restored = {n: p.requires_grad for n, p in model.named_parameters()}
        results.append((toggled, restored))
    assert results[0] == results[1]
    toggled, restored = results[0]
    assert toggled["a.weight"] is False
    assert toggled["b.weight"] is True
    assert toggled["shared.weight"] is True
    assert restored["a.weight"] is True
    assert restored["b.bias"] is False


def test_toggle_model_through_lightning_optimizer() -> None:
    model = _Net()
    trainer = _attach(model)
    other = nn.Parameter(torch.zeros(1))
    trainer.optimizers = [
        torch.optim.SGD(model.parameters(), lr=0.1),
        torch.optim.SGD([other], lr=0.1),
    ]
    first = cast(list[LightningOptimizer], model.optimizers())[0]
    with first.toggle_model():
        assert not other.requires_grad
        assert model.layer.weight.requires_grad
    assert other.requires_grad


def test_manual_backward() -> None:
    model = _Net()
    trainer = _attach(model)
    loss = torch.tensor(1.0, requires_grad=True)
    with pytest.raises(MisconfigurationException, match="disable automatic optimization"):
        model.manual_backward(loss)
    model.automatic_optimization = False
    model.manual_backward(loss, retain_graph=True)
    assert trainer.backward_calls == [(loss, (), {"retain_graph": True})]


# --------------------------------------------------------------------------- logging


def test_log_forwards_to_the_metric_store() -> None:
    model = _Net()
    trainer = _attach(model)
    store = trainer._results
    assert store is not None
    model._current_fx_name = "training_step"
    value = torch.tensor(2.0, requires_grad=True)
    model.log("loss", value, prog_bar=True, batch_size=4)
    (args, kwargs) = store.calls[-1]
    assert args[:2] == ("training_step", "loss")
    assert args[2] is value
    # the call site: hook, name, stage, dataloader, the arguments as given, the value's dtype and device kind
    assert kwargs.pop("site") == (
        "training_step",
        "loss",
        RunningStage.TRAINING,
        None,
        True,
        None,
        None,
        None,
        "mean",
        True,
        False,
        torch.float32,
        True,
    )
    assert kwargs == {
        "prog_bar": True,
        "logger": True,
        "on_step": True,
        "on_epoch": False,
        "reduce_fx": "mean",
        "batch_size": 4,
        "dataloader_idx": None,
        "add_dataloader_idx": True,
        "stage": RunningStage.TRAINING,
    }

    trainer._current_dataloader_idx = 1  # several dataloaders
    trainer.state.stage = RunningStage.VALIDATING
    model._current_fx_name = "validation_step"
    model.log_dict({"a": 1.0, "b": np.float32(2.5)}, logger=False, reduce_fx="max")
    (a_args, a_kwargs), (b_args, b_kwargs) = store.calls[-2:]
    assert (a_args[1], b_args[1]) == ("a", "b")
    assert isinstance(b_args[2], float)
    assert a_kwargs["dataloader_idx"] == 1
    assert a_kwargs["stage"] == "validate"
    assert (a_kwargs["on_step"], a_kwargs["on_epoch"], a_kwargs["logger"]) == (False, True, False)
    assert b_kwargs["reduce_fx"] == "max"


def test_log_errors() -> None:
    model = _Net()
    with pytest.warns(UserWarning, match="`self.trainer` reference is not registered"):
        model.log("x", 1.0)
    with pytest.raises(ValueError, match="`str` values cannot be logged"):
        model.log("x", "text")
    with pytest.raises(ValueError, match=r"use `self\.log_dict`"):
        model.log("x", {"a": 1.0})
    trainer = _attach(model)
    with pytest.raises(MisconfigurationException, match="not managed by the `Trainer` control flow"):
        model.log("x", 1.0)
    model._current_fx_name = "setup"
    with pytest.raises(MisconfigurationException, match="setup"):
        model.log("x", 1.0)
    model._current_fx_name = "training_step"
    with pytest.raises(MisconfigurationException, match="should not contain information about `dataloader_idx`"):
        model.log("x/dataloader_idx_0", 1.0)
    model.log("x/dataloader_idx_0", 1.0, add_dataloader_idx=False)
    trainer.logger = None
    with pytest.warns(UserWarning, match="but have no logger configured"):
        model.log("y", 1.0, logger=True)
    trainer._results = None
    with pytest.raises(MisconfigurationException, match="result collection is not registered"):
        model.log("x", 1.0)


def test_print_goes_through_progress_bar(capsys: pytest.CaptureFixture[str]) -> None:
    model = _Net()
    model.print("detached")
    trainer = _attach(model)
    printed: list[Any] = []

    class Bar:
        is_enabled = True

        def print(self, *args: Any, **kwargs: Any) -> None:
            printed.append(args)

    cast(Any, trainer).progress_bar_callback = Bar()
    model.print("via bar")
    cast(Any, trainer).is_global_zero = False
    model.print("silent")
    assert capsys.readouterr().out == "detached\n"
    assert printed == [("via bar",)]


# --------------------------------------------------------------------------- batch transfer

Point = namedtuple("Point", ["x", "y"])


@dataclasses.dataclass
class Sample:
    data: torch.Tensor
    label: str
    extra: list[torch.Tensor]


class CustomBatch:
    def __init__(self, t: torch.Tensor) -> None:
        self.t = t
        self.seen: dict[str, Any] = {}

    def to(self, device: Any, **kwargs: Any) -> CustomBatch:
        self.seen = {"device": device, **kwargs}
        self.t = self.t.to(device)
        return self


def _nested_batch() -> Any:
    return {
        "tuple": (torch.ones(2), "keep", 3),
        "list": [torch.zeros(1), [torch.ones(1)]],
        "point": Point(torch.ones(1), 5),
        "sample": Sample(torch.ones(2), "lab", [torch.zeros(1)]),
        "default": defaultdict(list, {"k": torch.ones(1)}),
        "custom": CustomBatch(torch.ones(1)),
        "none": None,
    }


def _leaves(obj: Any) -> list[Any]:
    if isinstance(obj, torch.Tensor):
        return [obj.device.type]
    if isinstance(obj, CustomBatch):
        return ["custom", obj.t.device.type]
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return [type(obj).__name__, *[x for f in dataclasses.fields(obj) for x in _leaves(getattr(obj, f.name))]]
    if isinstance(obj, dict):
        return [type(obj).__name__, *[x for k, v in obj.items() for x in (k, *_leaves(v))]]
    if isinstance(obj, (list, tuple)):
        return [type(obj).__name__, *[x for v in obj for x in _leaves(v)]]
    return [obj]


def test_transfer_batch_to_device_nested_matches_lightning() -> None:
    model = _Net()
    ours = model.transfer_batch_to_device(_nested_batch(), torch.device("meta"), 0)
    theirs = pl_move_data_to_device(_nested_batch(), torch.device("meta"))
    assert _leaves(ours) == _leaves(theirs)
    assert "cpu" not in _leaves(ours)
    assert isinstance(ours["point"], Point)
    assert isinstance(ours["sample"], Sample)
    assert ours["sample"].label == "lab"
    assert isinstance(ours["default"], defaultdict)
    assert ours["default"].default_factory is list
    assert ours["tuple"][1:] == ("keep", 3)
    assert ours["custom"].seen == {"device": torch.device("meta")}  # non-tensors get no non_blocking


@pytest.mark.parametrize(
    "make",
    [
        lambda: torch.ones(2),
        lambda: [torch.ones(2), torch.zeros(1)],
        lambda: (torch.ones(2), torch.zeros(1)),
        lambda: {"x": torch.ones(2), "y": torch.zeros(1)},
        lambda: [torch.ones(2), "label"],  # a flat collection that leaves the fast path half-way
        lambda: {"x": torch.ones(2), "meta": {"id": 3}},
        lambda: [],
        lambda: {},
    ],
    ids=["tensor", "list", "tuple", "dict", "list-mixed", "dict-mixed", "empty-list", "empty-dict"],
)
def test_transfer_flat_batches_match_lightning(make: Any) -> None:
    # the exact-type fast path for what collate functions return must give Lightning's result
    ours = move_data_to_device(make(), torch.device("meta"))
    theirs = pl_move_data_to_device(make(), torch.device("meta"))
    assert _leaves(ours) == _leaves(theirs)
    assert type(ours) is type(theirs)


@pytest.mark.parametrize("kind", [list, tuple, dict, "tensor"], ids=["list", "tuple", "dict", "tensor"])
def test_transfer_to_the_cpu_keeps_cpu_tensors_as_lightning_does(kind: Any) -> None:
    """Tensors already on a CPU target are kept (``.to`` would return them unchanged); the
    containers are new, as in Lightning; to another target they are moved."""
    a, b = torch.ones(2), torch.zeros(1, dtype=torch.int64)
    if kind == "tensor":
        batch: Any = a
    elif kind is dict:
        batch = {"a": a, "b": b}
    else:
        batch = kind([a, b])
    for device in ("cpu", torch.device("cpu")):
        ours = move_data_to_device(batch, device)
        theirs = pl_move_data_to_device(batch, device)
        assert type(ours) is type(theirs)
        if kind == "tensor":
            assert ours is theirs is a
            continue
        assert ours is not batch and theirs is not batch
        values = list(ours.values()) if kind is dict else list(ours)
        expected = list(theirs.values()) if kind is dict else list(theirs)
        assert all(x is y for x, y in zip(values, expected, strict=True))
        assert values[0] is a and values[1] is b
    moved = move_data_to_device([a, b], torch.device("meta"))  # another target: moved
    assert [t.device.type for t in moved] == ["meta", "meta"]


def test_transfer_is_non_blocking_only_for_accelerators() -> None:
    seen: list[dict[str, Any]] = []

    class Spy(torch.Tensor):
        def to(self, *args: Any, **kwargs: Any) -> Any:
            seen.append(kwargs)
            return torch.Tensor.to(torch.Tensor(self), *args, **kwargs)

    spy = torch.ones(2).as_subclass(Spy)
    for _ in range(2):  # the answer is kept per device: asked again, it is the same
        move_data_to_device([spy], "cpu")
        move_data_to_device([spy], torch.device("meta"))
    assert seen == [{}, {"non_blocking": True}] * 2


def test_datamodule_transfer_hook_and_str_device() -> None:
    dm = LightningDataModule()
    out = dm.transfer_batch_to_device({"x": torch.ones(1)}, cast(Any, "meta"), 0)
    assert out["x"].device.type == "meta"


# --------------------------------------------------------------------------- hyper-parameters


def _hp_classes(base: type) -> dict[str, Any]:
    class All(base):  # type: ignore[misc]
        def __init__(self, a: int, b: str = "x", *args: Any, **kwargs: Any) -> None:
            super().__init__()
            self.save_hyperparameters()

    class Ignore(base):  # type: ignore[misc]
        def __init__(self, a: int, net: Any = None, c: float = 0.5) -> None:
            super().__init__()
            self.save_hyperparameters(ignore=["net"])

    class Named(base):  # type: ignore[misc]
        def __init__(self, a: int, b: int, c: int) -> None:
            super().__init__()
            self.save_hyperparameters("a", "c")

    class Obj(base):  # type: ignore[misc]
        def __init__(self, config: Any) -> None:
            super().__init__()
            self.save_hyperparameters(config)

    class Parent(base):  # type: ignore[misc]
        def __init__(self, a: int, b: int = 2, **kwargs: Any) -> None:
            super().__init__()
            self.save_hyperparameters(ignore="b")

    class Child(Parent):
        def __init__(self, c: int, **kwargs: Any) -> None:
            super().__init__(1, 5, z=3, **kwargs)

    return {"All": All, "Ignore": Ignore, "Named": Named, "Obj": Obj, "Child": Child}


HP_CASES: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = [
    ("All", (1,), {"extra": 9}),
    ("All", (1, "y"), {}),
    ("Ignore", (1, nn.Linear(1, 1)), {}),
    ("Named", (1, 2, 3), {}),
    ("Obj", ({"lr": 0.1, "layers": 2},), {}),
    ("Obj", (Namespace(lr=0.2),), {}),
    ("Child", (7,), {"q": 1}),
]


@pytest.mark.parametrize(("cls_name", "args", "kwargs"), HP_CASES)
def test_save_hyperparameters_matches_lightning(cls_name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    ours = _hp_classes(LightningModule)[cls_name](*args, **kwargs)
    theirs = _hp_classes(pl.LightningModule)[cls_name](*args, **kwargs)
    assert isinstance(ours.hparams, AttributeDict)
    assert dict(ours.hparams) == dict(theirs.hparams)
    assert dict(ours.hparams_initial) == dict(theirs.hparams_initial)
    assert getattr(ours, "_hparams_name", None) == getattr(theirs, "_hparams_name", None)


def test_hparams_initial_is_frozen_and_attribute_access() -> None:
    model = _hp_classes(LightningModule)["All"](1)
    assert model.hparams.a == 1
    model.hparams.a = 5
    assert model.hparams["a"] == 5
    assert model.hparams_initial.a == 1
    model.hparams_initial["a"] = 99
    assert model.hparams_initial["a"] == 1
    assert LightningModule().hparams == {}
    assert LightningModule().hparams_initial == {}


def test_save_hyperparameters_on_datamodule_and_primitive_rejected() -> None:
    class DM(LightningDataModule):
        def __init__(self, batch_size: int = 8) -> None:
            super().__init__()
            self.save_hyperparameters()

    assert DM(16).hparams == {"batch_size": 16}
    with pytest.raises(ValueError, match="Primitives"):
        _hp_classes(LightningModule)["Obj"](3)


# --------------------------------------------------------------------------- checkpoints


class _CkptNet(LightningModule):
    def __init__(self, hidden: int = 4, scale: float = 1.0) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.layer = nn.Linear(2, hidden)
        self.events: list[str] = []
        self.extra: Any = None

    def configure_model(self) -> None:
        self.events.append("configure_model")

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.events.append("on_load_checkpoint")
        self.extra = checkpoint["extra"]

    def load_state_dict(self, state_dict: Any, strict: bool = True, assign: bool = False) -> Any:
        self.events.append(f"load_state_dict(strict={strict})")
        return super().load_state_dict(state_dict, strict=strict, assign=assign)


def _hand_made_checkpoint(hidden: int = 3) -> dict[str, Any]:
    torch.manual_seed(1)
    weights = {"layer.weight": torch.randn(hidden, 2), "layer.bias": torch.randn(hidden)}
    return {
        "epoch": 2,
        "global_step": 10,
        "state_dict": weights,
        "hyper_parameters": {"hidden": hidden, "scale": 2.0},
        "hparams_name": "kwargs",
        "hparams_type": AttributeDict,
        "extra": 42,
    }


def test_load_from_checkpoint_round_trip(tmp_path: Path) -> None:
    checkpoint = _hand_made_checkpoint()
    path = tmp_path / "model.ckpt"
    torch.save(checkpoint, path)
    model = _CkptNet.load_from_checkpoint(path, scale=5.0)
    assert isinstance(model, _CkptNet)
    assert model.hparams == {"hidden": 3, "scale": 5.0}
    assert model.events == ["configure_model", "on_load_checkpoint", "load_state_dict(strict=True)"]
    assert model.extra == 42
    assert torch.equal(model.layer.weight, checkpoint["state_dict"]["layer.weight"])
    assert torch.equal(model.layer.bias, checkpoint["state_dict"]["layer.bias"])

    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    buffer.seek(0)
    from_buffer = _CkptNet.load_from_checkpoint(buffer)
    assert from_buffer.hparams == {"hidden": 3, "scale": 2.0}


def test_load_from_checkpoint_matches_lightning(tmp_path: Path) -> None:
    class PLNet(pl.LightningModule):
        def __init__(self, hidden: int = 4, scale: float = 1.0) -> None:
            super().__init__()
            self.save_hyperparameters()
            self.layer = nn.Linear(2, hidden)

    checkpoint = _hand_made_checkpoint()
    checkpoint["hparams_type"] = PLAttributeDict
    checkpoint["pytorch-lightning_version"] = "2.6.6"
    path = tmp_path / "pl.ckpt"
    torch.save(checkpoint, path)
    ours = _CkptNet.load_from_checkpoint(path, weights_only=False, scale=3.0)
    theirs = PLNet.load_from_checkpoint(path, weights_only=False, scale=3.0)
    assert dict(ours.hparams) == dict(theirs.hparams)
    assert all(torch.equal(a, b) for a, b in zip(ours.state_dict().values(), theirs.state_dict().values(), strict=True))


def test_load_from_checkpoint_strictness(tmp_path: Path) -> None:
    checkpoint = _hand_made_checkpoint()
    checkpoint["state_dict"]["unexpected"] = torch.zeros(1)
    path = tmp_path / "m.ckpt"
    torch.save(checkpoint, path)
    with pytest.raises(RuntimeError, match="Unexpected key"):
        _CkptNet.load_from_checkpoint(path)
    with pytest.warns(UserWarning, match="not in the model state dict but in the checkpoint"):
        model = _CkptNet.load_from_checkpoint(path, strict=False)
    assert model.events[-1] == "load_state_dict(strict=False)"

    class Lenient(_CkptNet):
        def __init__(self, hidden: int = 4, scale: float = 1.0) -> None:
            super().__init__(hidden, scale)
            self.strict_loading = False

    with pytest.raises(ValueError, match="in conflict with"):
        Lenient.load_from_checkpoint(path, strict=True)
    with pytest.warns(UserWarning):
        assert Lenient.load_from_checkpoint(path).events[-1] == "load_state_dict(strict=False)"


def test_load_from_checkpoint_with_named_hparams_object_and_no_weights(tmp_path: Path) -> None:
    obj_cls = _hp_classes(LightningModule)["Obj"]
    checkpoint = {
        "state_dict": {},
        "hyper_parameters": {"lr": 0.1},
        "hparams_name": "config",
        "hparams_type": AttributeDict,
    }
    path = tmp_path / "obj.ckpt"
    torch.save(checkpoint, path)
    with pytest.warns(UserWarning, match="contains no parameters"):
        model = obj_cls.load_from_checkpoint(path)
    assert model.hparams == {"lr": 0.1}
    assert model._hparams_name == "config"


def test_load_from_checkpoint_on_instance_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "m.ckpt"
    torch.save(_hand_made_checkpoint(), path)
    with pytest.raises(TypeError, match="cannot be called on an instance"):
        _CkptNet().load_from_checkpoint(path)


def test_load_from_checkpoint_hparams_file(tmp_path: Path) -> None:
    path = tmp_path / "m.ckpt"
    torch.save(_hand_made_checkpoint(hidden=3), path)
    yaml_file = tmp_path / "hp.yaml"
    yaml_file.write_text("hidden: 3\nscale: 7.5\n")
    assert _CkptNet.load_from_checkpoint(path, hparams_file=yaml_file).hparams == {"hidden": 3, "scale": 7.5}
    csv_file = tmp_path / "hp.csv"
    csv_file.write_text("key,value\nhidden,3\nscale,0.25\n")
    assert _CkptNet.load_from_checkpoint(path, hparams_file=csv_file).hparams == {"hidden": 3, "scale": 0.25}
    with pytest.raises(ValueError, match=r"\.csv, \.yml or \.yaml"):
        _CkptNet.load_from_checkpoint(path, hparams_file=tmp_path / "hp.json")


def test_checkpoint_entries_for_trainer() -> None:
    model = _CkptNet(hidden=2)
    entries = model._hparams_checkpoint_entries(
        model.CHECKPOINT_HYPER_PARAMS_KEY, model.CHECKPOINT_HYPER_PARAMS_NAME, model.CHECKPOINT_HYPER_PARAMS_TYPE
    )
    assert entries == {
        "hparams_name": "kwargs",
        "hyper_parameters": {"hidden": 2, "scale": 1.0},
        "hparams_type": AttributeDict,
    }
    assert LightningModule()._hparams_checkpoint_entries("a", "b", "c") == {}


# --------------------------------------------------------------------------- datamodule


def test_datamodule_basics_and_from_datasets() -> None:
    dm = LightningDataModule()
    assert dm.trainer is None
    assert dm.state_dict() == {}
    assert dm.load_state_dict({}) is None
    assert dm.on_exception(RuntimeError()) is None
    assert dm.prepare_data_per_node is True
    with pytest.raises(MisconfigurationException, match="`val_dataloader` must be implemented"):
        dm.val_dataloader()

    train = TensorDataset(torch.arange(10.0))
    vals = [TensorDataset(torch.arange(4.0)), TensorDataset(torch.arange(6.0))]

    class DM(LightningDataModule):
        def __init__(self, batch_size: int = 1, tag: str = "") -> None:
            super().__init__()
            self.batch_size = batch_size
            self.tag = tag

    built = DM.from_datasets(train, vals, batch_size=2, tag="t")
    assert (built.batch_size, built.tag) == (2, "t")
    loader = built.train_dataloader()
    assert isinstance(loader, DataLoader)
    assert loader.batch_size == 2
    assert sorted(torch.cat([b[0] for b in loader]).tolist()) == list(range(10))
    val_loaders = built.val_dataloader()
    assert [len(v.dataset) for v in val_loaders] == [4, 6]
    with pytest.raises(MisconfigurationException):
        built.test_dataloader()


def test_datamodule_load_from_checkpoint(tmp_path: Path) -> None:
    class DM(LightningDataModule):
        def __init__(self, batch_size: int = 1) -> None:
            super().__init__()
            self.save_hyperparameters()
            self.restored: dict[str, Any] = {}

        def load_state_dict(self, state_dict: dict[str, Any]) -> None:
            self.restored = state_dict

    checkpoint = {
        "state_dict": {},
        "datamodule_hyper_parameters": {"batch_size": 32},
        DM.__qualname__: {"cursor": 5},
    }
    path = tmp_path / "dm.ckpt"
    torch.save(checkpoint, path)
    dm = DM.load_from_checkpoint(path)
    assert dm.hparams == {"batch_size": 32}
    assert dm.restored == {"cursor": 5}


# --------------------------------------------------------------------------- seeding


def _draw() -> tuple[float, float, float]:
    return random.random(), float(np.random.rand()), torch.rand(1).item()


def test_seed_everything_matches_lightning(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PL_GLOBAL_SEED", raising=False)
    monkeypatch.delenv("PL_SEED_WORKERS", raising=False)
    assert seed_everything(123, workers=True) == 123
    ours = _draw()
    assert os.environ["PL_GLOBAL_SEED"] == "123"
    assert os.environ["PL_SEED_WORKERS"] == "1"
    pl_seed_everything(123, verbose=False)
    assert _draw() == ours

    assert seed_everything(verbose=False) == 123  # read back from PL_GLOBAL_SEED
    monkeypatch.delenv("PL_GLOBAL_SEED")
    with pytest.warns(UserWarning, match="No seed found, seed set to 0"):
        assert seed_everything() == 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert seed_everything(cast(Any, 7.9), verbose=False) == 7


@pytest.mark.parametrize("seed", [-1, 2**32])
def test_seed_out_of_range(seed: int) -> None:
    with pytest.raises(ValueError, match="is not in bounds"):
        seed_everything(seed)
    with pytest.raises(ValueError, match="is not in bounds"):
        pl_seed_everything(seed)


def test_invalid_env_seed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PL_GLOBAL_SEED", "abc")
    with pytest.raises(ValueError, match="Invalid seed specified via PL_GLOBAL_SEED"):
        seed_everything()
