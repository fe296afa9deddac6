"""Hooks nobody overrides are not compiled, so they cost nothing per batch (issue 7).

The driver compiles each transition's hooks once per run (``LifecycleDriver.bind``):
callback hooks a callback does not override and module hooks that are base no-ops are
left out, and so are ``PIPE`` hooks that only hand their argument on (the default
``on_before_batch_transfer`` / ``on_after_batch_transfer``). An observer (HookRecorder)
turns that off, so traces still show every call Lightning makes. These tests pin the
compiled ops of a training batch and check, by profiling a real fit, that no base no-op
hook is ever entered.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import torch
from torch.nn import functional as F

import lightcycle as L
from lightcycle._hooks import is_marked_noop
from lightcycle.callbacks import HookRecorder
from lightcycle.core.datamodule import DataHooks
from lightcycle.engine.dispatch import is_pass_through
from lightcycle.engine.driver import LifecycleDriver
from lightcycle.states import declaration as ev
from lightcycle.states.stages import TrainerState
from tests import kit

_B = "fit.train.epoch.batch."
_C = _B + "closure."

# (state the event fires from, event) for one training batch that steps the optimizer
_BATCH = (
    ("fit.train.epoch.running", ev.TRAIN_BATCH_TRANSFER),
    (_B + "transferred", ev.TRAIN_BATCH_START),
    (_B + "started", ev.OPTIMIZER_STEP),
    (_C + "entered", ev.TRAINING_STEP),
    (_C + "forwarded", ev.ZERO_GRAD),
    (_C + "zeroed", ev.BACKWARD),
    (_C + "backwarded", ev.BEFORE_OPTIMIZER_STEP),
    (_C + "clipped", ev.OPTIMIZER_STEP_END),
    (_B + "stepped", ev.TRAIN_BATCH_END),
)


class _Model(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = torch.nn.Linear(4, 1)

    def training_step(self, batch: Any, batch_idx: int) -> Any:
        x, y = batch
        return F.mse_loss(self.net(x), y)

    def configure_optimizers(self) -> Any:
        return torch.optim.SGD(self.parameters(), lr=0.1)


class _Plain(L.Callback):
    """Overrides nothing."""


class _TwoHooks(L.Callback):
    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        pass

    def on_before_backward(self, trainer: Any, pl_module: Any, loss: Any) -> None:
        pass


class _Holder:
    """The trainer-like object a bare driver needs."""

    def __init__(self) -> None:
        self.state = TrainerState()


def _bound(module: L.LightningModule, callbacks: list[L.Callback]) -> LifecycleDriver:
    driver = LifecycleDriver(_Holder())
    driver.bind(module, callbacks)
    return driver


def _ops(driver: LifecycleDriver) -> dict[str, list[tuple[str, int]]]:
    """Per training-batch event: the compiled ``(hook, number of receivers)``."""
    table = driver.table
    out = {}
    for state, trigger in _BATCH:
        step = driver._rows[table.index[state]][trigger]
        out[trigger.name] = [(op.name, len(op.fns)) for op in step.ops]
    return out


def test_a_training_batch_compiles_only_the_hooks_that_do_something() -> None:
    driver = _bound(_Model(), [_Plain(), L.Callback()])
    assert _ops(driver) == {
        "train_batch_transfer": [("transfer_batch_to_device", 1)],  # the pass-through hooks are left out
        "train_batch_start": [],
        "optimizer_step": [("optimizer_step", 1)],
        "training_step": [("training_step", 1)],
        "zero_grad": [("optimizer_zero_grad", 1)],
        "backward": [("backward", 1)],
        "before_optimizer_step": [("configure_gradient_clipping", 1)],
        "optimizer_step_end": [],
        "train_batch_end": [],
    }
    # each event's generated function holds the bound hooks themselves, nothing else to call
    table = driver.table
    for state, trigger in _BATCH:
        event = driver._event(trigger)
        cells = dict(zip(event.__code__.co_freevars, (c.cell_contents for c in event.__closure__ or ()), strict=True))
        called = {id(v) for k, v in cells.items() if k.startswith("f")}
        compiled = {id(fn) for op in driver._rows[table.index[state]][trigger].ops for fn in op.fns}
        assert compiled <= called, trigger.name


def test_overridden_callback_hooks_are_compiled_for_exactly_the_overriding_callbacks() -> None:
    driver = _bound(_Model(), [_TwoHooks(), _Plain(), _TwoHooks()])
    ops = _ops(driver)
    assert ops["train_batch_end"] == [("on_train_batch_end", 2)]
    assert ops["backward"] == [("on_before_backward", 2), ("backward", 1)]
    assert ops["train_batch_start"] == []
    assert ops["zero_grad"] == [("optimizer_zero_grad", 1)]


def test_module_overrides_are_compiled() -> None:
    class Busy(_Model):
        def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
            pass

        def on_after_backward(self) -> None:
            pass

        def on_before_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
            return [t * 1.0 for t in batch]

    ops = _ops(_bound(Busy(), []))
    assert ops["train_batch_start"] == [("on_train_batch_start", 1)]
    assert ops["backward"] == [("backward", 1), ("on_after_backward", 1)]
    assert ops["train_batch_transfer"] == [("on_before_batch_transfer", 1), ("transfer_batch_to_device", 1)]


def test_pass_through_is_recognised_by_what_the_body_does() -> None:
    class Same(_Model):
        def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
            """Documented, but only hands the batch on."""
            return batch

    class Other(_Model):
        def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
            return dataloader_idx

    base = _Model()
    assert is_pass_through(base.on_before_batch_transfer)
    assert is_pass_through(base.on_after_batch_transfer)
    assert not is_pass_through(base.transfer_batch_to_device)
    assert is_pass_through(Same().on_after_batch_transfer)
    assert not is_pass_through(Other().on_after_batch_transfer)
    assert _ops(_bound(Same(), []))["train_batch_transfer"] == [("transfer_batch_to_device", 1)]
    assert _ops(_bound(Other(), []))["train_batch_transfer"] == [
        ("transfer_batch_to_device", 1),
        ("on_after_batch_transfer", 1),
    ]


def test_an_observer_keeps_every_module_hook() -> None:
    ops = _ops(_bound(_Model(), [HookRecorder()]))
    assert ops["train_batch_transfer"] == [
        ("on_before_batch_transfer", 1),
        ("transfer_batch_to_device", 1),
        ("on_after_batch_transfer", 1),
    ]
    assert ("on_train_batch_start", 1) in ops["train_batch_start"]
    assert ("on_train_batch_end", 1) in ops["train_batch_end"]


# --------------------------------------------------------------------------- a real fit


def _skippable_codes() -> dict[Any, str]:
    """Code objects of every base hook that dispatch leaves out: no-ops and pass-throughs."""
    codes = {}
    for cls in (L.Callback, L.LightningModule, DataHooks, L.LightningDataModule):
        for name in dir(cls):
            fn = getattr(cls, name, None)
            code = getattr(fn, "__code__", None)
            if code is None:
                continue
            if is_marked_noop(fn) or (name in ("on_before_batch_transfer", "on_after_batch_transfer")):
                codes.setdefault(code, f"{cls.__name__}.{name}")
    return codes


class _Loader:
    def __init__(self, n: int) -> None:
        g = torch.Generator().manual_seed(0)
        self.batches = [[torch.randn(3, 4, generator=g), torch.randn(3, 1, generator=g)] for _ in range(n)]

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self) -> Iterator[Any]:
        return iter(self.batches)


def _profiled_fit(profile: Any, model: L.LightningModule, batches: int, **trainer_kwargs: Any) -> L.Trainer:
    """Fit ``model`` on ``batches`` batches with ``profile`` installed by ``sys.setprofile``."""
    trainer = L.Trainer(**kit.quiet(**trainer_kwargs))
    sys.setprofile(profile)
    try:
        trainer.fit(model, train_dataloaders=_Loader(batches))
    finally:
        sys.setprofile(None)
    return trainer


def test_no_base_noop_hook_is_entered_during_a_fit() -> None:
    codes = _skippable_codes()
    assert len(codes) > 40  # the callback and module no-op hooks, and the two pass-throughs
    entered: list[str] = []
    hook_calls = 0
    called = {L.LightningModule.optimizer_step.__code__}
    # the generated batch start moves a list of plain CPU tensors to the CPU itself, as the base
    # transfer hook would, and the generated step writes the base backward and zero-grad hooks'
    # one call (runtime/fused_step.py; tests/trainer/test_fused_transfer.py): none is entered
    written = ("transfer_batch_to_device", "optimizer_zero_grad", "backward")
    inline = {getattr(L.LightningModule, n).__code__ for n in written}
    written_entered = 0
    clipping = L.LightningModule.configure_gradient_clipping.__code__
    called |= {_Model.training_step.__code__, _TwoHooks.on_before_backward.__code__}
    called.add(_TwoHooks.on_train_batch_end.__code__)

    def profile(frame: Any, event: str, arg: Any) -> None:
        nonlocal hook_calls, written_entered
        if event == "call":
            name = codes.get(frame.f_code)
            if name is not None:
                entered.append(name)
            elif frame.f_code is clipping:
                entered.append("LightningModule.configure_gradient_clipping")
            elif frame.f_code in inline:
                written_entered += 1
            elif frame.f_code in called:
                hook_calls += 1
            elif frame.f_code.co_name.startswith("fire_automatic_batch"):
                # the generated batch function (runtime/fused_step.py) does the base
                # optimizer_step's work itself: it stands for that hook's call
                hook_calls += 1

    trainer = _profiled_fit(profile, _Model(), 5, max_epochs=2, callbacks=[_Plain(), _TwoHooks()])
    assert trainer.global_step == 10
    assert entered == []
    # per batch: training_step and optimizer_step (the function), plus _TwoHooks' two
    assert hook_calls == 10 * 4
    assert written_entered == 0
    # not vacuous: with an observer, which keeps every module hook, the base ones are entered
    _profiled_fit(profile, _Model(), 5, max_epochs=1, callbacks=[HookRecorder()])
    assert "LightningModule.on_train_batch_start" in entered
    assert sum(name.endswith(".on_before_batch_transfer") for name in entered) == 5
    assert entered.count("LightningModule.configure_gradient_clipping") == 5
    assert written_entered == 5 * 3  # (an observer's wrapped hooks: called, as every hook there)


def _clipping_calls(model: L.LightningModule, **trainer_kwargs: Any) -> int:
    """How many times a fit of 4 steps enters the base ``configure_gradient_clipping``."""
    code = L.LightningModule.configure_gradient_clipping.__code__
    calls = 0

    def profile(frame: Any, event: str, arg: Any) -> None:
        nonlocal calls
        if event == "call" and frame.f_code is code:
            calls += 1

    _profiled_fit(profile, model, 4, max_epochs=1, **trainer_kwargs)
    return calls


def test_default_gradient_clipping_is_left_out_only_while_it_would_do_nothing() -> None:
    """``configure_gradient_clipping`` is compiled out when clipping is off and the module
    keeps both defaults (``clip_gradients`` would return at once); it runs otherwise."""
    assert _clipping_calls(_Model()) == 0
    assert _clipping_calls(_Model(), gradient_clip_val=0) == 0
    assert _clipping_calls(_Model(), gradient_clip_val=0.5) == 4

    clipped: list[Any] = []

    class OwnClip(_Model):
        def clip_gradients(
            self, optimizer: Any, gradient_clip_val: Any = None, gradient_clip_algorithm: Any = None
        ) -> None:
            clipped.append(gradient_clip_val)

    assert _clipping_calls(OwnClip()) == 4  # the default hook runs, and calls the override
    assert clipped == [None] * 4

    class OwnHook(_Model):
        def configure_gradient_clipping(
            self, optimizer: Any, gradient_clip_val: Any = None, gradient_clip_algorithm: Any = None
        ) -> None:
            clipped.append("hook")

    clipped.clear()
    _clipping_calls(OwnHook())
    assert clipped == ["hook"] * 4


def test_a_transfer_of_pass_throughs_only_still_hands_the_batch_on() -> None:
    """With every transfer hook a pass-through, one is kept: the event returns the batch."""

    class NoTransfer(_Model):
        def transfer_batch_to_device(self, batch: Any, device: torch.device, dataloader_idx: int) -> Any:
            return batch

    ops = _ops(_bound(NoTransfer(), []))
    assert ops["train_batch_transfer"] == [("on_before_batch_transfer", 1)]
    trainer = L.Trainer(**kit.quiet(max_epochs=1))
    trainer.fit(NoTransfer(), train_dataloaders=_Loader(3))
    assert trainer.global_step == 3


def _fit_counting_clones(model: L.LightningModule, callbacks: list[L.Callback]) -> int:
    """How many times ``Tensor.clone`` runs during a 4-step fit."""
    clones = 0
    original = torch.Tensor.clone

    def counting(self: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        nonlocal clones
        clones += 1
        return original(self, *args, **kwargs)

    torch.Tensor.clone = counting  # type: ignore[method-assign]
    try:
        trainer = _profiled_fit(None, model, 4, max_epochs=1, callbacks=callbacks)
    finally:
        torch.Tensor.clone = original  # type: ignore[method-assign]
    assert trainer.global_step == 4
    return clones


def test_the_outputs_are_built_only_when_on_train_batch_end_has_a_receiver() -> None:
    seen: list[tuple[Any, Any]] = []

    class Returns(_Model):
        def training_step(self, batch: Any, batch_idx: int) -> Any:
            loss = super().training_step(batch, batch_idx)
            self.last_loss = loss
            return loss

    class Receiver(L.Callback):
        def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
            seen.append((outputs["loss"], pl_module.last_loss))

    # Nobody receives on_train_batch_end: the loss clone Lightning makes for it is skipped.
    assert _fit_counting_clones(Returns(), [_Plain(), L.Callback()]) == 0
    # A receiver gets Lightning's outputs: a detached clone of the loss, one per batch.
    assert _fit_counting_clones(Returns(), [Receiver()]) == 4
    assert len(seen) == 4
    for given, loss in seen:
        assert not given.requires_grad and given.data_ptr() != loss.data_ptr()
        assert torch.equal(given, loss.detach())


def _accumulators(loss: torch.Tensor) -> list[Any]:
    """The ``AccumulateGrad`` nodes of ``loss``'s graph."""
    found, todo, seen = [], [loss.grad_fn], set()
    while todo:
        node = todo.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        if type(node).__name__ == "AccumulateGrad":
            found.append(node)
        todo.extend(n for n, _ in node.next_functions)
    return found


def test_the_gradient_accumulators_are_reused_from_batch_to_batch() -> None:
    # The loop drops each batch's loss (and so its graph) after the batch; the step holds
    # the parameters' AccumulateGrad nodes so that the next graph reuses them instead of
    # autograd building new ones. A node built in a batch has no metadata yet.
    fresh: list[int] = []

    class Marks(L.Callback):
        def on_before_backward(self, trainer: Any, pl_module: Any, loss: torch.Tensor) -> None:
            nodes = _accumulators(loss)
            assert len(nodes) == 2  # weight and bias
            fresh.append(sum("seen" not in n.metadata for n in nodes))
            for n in nodes:
                n.metadata["seen"] = True

    _profiled_fit(None, _Model(), 4, max_epochs=2, callbacks=[Marks()])
    # (a node may be new in an epoch's first batch: the step, and what it holds, is per epoch)
    assert len(fresh) == 8 and fresh[0] == 2
    assert fresh[1:4] == fresh[5:] == [0, 0, 0]
