"""The direct optimizer step: when it is taken, when it is not, and that it is Lightning's trace.

When the module keeps the default ``optimizer_step``, the optimizer is an exact built-in type
whose ``step(closure)`` runs the closure once, first (``CLOSURE_FIRST``), no optimizer step hook
is registered and the precision is 32-bit, ``LightningOptimizer.step`` runs the closure, the
before-step hooks and ``optimizer.step()`` itself instead of handing the closure to
``optimizer.step(closure)``. Observable: whether ``training_step`` runs inside a frame of
``torch/optim/`` (the real ``step`` evaluating the closure). Every disqualifying condition must
take the real route; every run, either route, must equal live Lightning's hooks and weights.
"""

from __future__ import annotations

import os
import sys
from types import ModuleType
from typing import Any

import pytest
import pytorch_lightning as PL
import torch
from torch.nn import functional as F
from torch.optim.optimizer import register_optimizer_step_post_hook

import lightcycle as LC
from lightcycle.core.optim import CLOSURE_FIRST, LightningOptimizer

_TORCH_OPTIM = os.path.join("torch", "optim", "")


def _inside_torch_optimizer_step() -> bool:
    frame = sys._getframe(1)
    while frame is not None:
        if _TORCH_OPTIM in frame.f_code.co_filename and frame.f_code.co_name == "step":
            return True
        frame = frame.f_back  # type: ignore[assignment]
    return False


class _SubSGD(torch.optim.SGD):
    """A subclass: it may override ``step``, so it never takes the direct route."""


def _run(
    fw: ModuleType,
    *,
    optimizer: str = "sgd",
    override: bool = False,
    pre_hook: bool = False,
    post_hook: bool = False,
    global_hook: bool = False,
    scheduler: bool = False,
    precision: str | None = None,
    no_grad_at_start: bool = False,
) -> dict[str, Any]:
    events: list[str] = []
    inside: list[bool] = []

    class Recorder(fw.Callback):  # type: ignore[misc, name-defined]
        def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int) -> None:
            events.append("cb.on_train_batch_start")
            if no_grad_at_start:
                torch.set_grad_enabled(False)

        def on_before_zero_grad(self, trainer: Any, pl_module: Any, optimizer: Any) -> None:
            events.append("cb.on_before_zero_grad")

        def on_before_backward(self, trainer: Any, pl_module: Any, loss: Any) -> None:
            events.append("cb.on_before_backward")

        def on_after_backward(self, trainer: Any, pl_module: Any) -> None:
            events.append("cb.on_after_backward")

        def on_before_optimizer_step(self, trainer: Any, pl_module: Any, optimizer: Any) -> None:
            events.append(f"cb.on_before_optimizer_step grad={float(pl_module.net.weight.grad.sum()):.6f}")

        def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
            events.append(f"cb.on_train_batch_end loss={float(outputs['loss']):.6f} grad={torch.is_grad_enabled()}")
            torch.set_grad_enabled(True)

    class Model(fw.LightningModule):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            super().__init__()
            torch.manual_seed(0)
            self.net = torch.nn.Linear(3, 1)

        def training_step(self, batch: Any, batch_idx: int) -> Any:
            events.append(f"training_step fx={self._current_fx_name} grad={torch.is_grad_enabled()}")
            inside.append(_inside_torch_optimizer_step())
            x, y = batch
            return F.mse_loss(self.net(x), y)

        def configure_optimizers(self) -> Any:
            params = self.parameters()
            opt: torch.optim.Optimizer
            if optimizer == "lbfgs":
                opt = torch.optim.LBFGS(params, lr=0.5, max_iter=3)
            elif optimizer == "adam":
                opt = torch.optim.Adam(params, lr=0.1)
            elif optimizer == "subclass":
                opt = _SubSGD(params, lr=0.1)
            else:
                opt = torch.optim.SGD(params, lr=0.1)
            if pre_hook:
                opt.register_step_pre_hook(lambda o, args, kwargs: events.append(f"pre_hook {sorted(kwargs)}"))
            if post_hook:
                opt.register_step_post_hook(lambda o, args, kwargs: events.append(f"post_hook {sorted(kwargs)}"))
            if scheduler:
                sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
                return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
            return opt

        if override:

            def optimizer_step(self, epoch: int, batch_idx: int, optimizer: Any, optimizer_closure: Any = None) -> None:
                events.append("optimizer_step override")
                super().optimizer_step(epoch, batch_idx, optimizer, optimizer_closure)

    g = torch.Generator().manual_seed(1)
    data = [(torch.randn(4, 3, generator=g), torch.randn(4, 1, generator=g)) for _ in range(3)]
    trainer = fw.Trainer(
        max_epochs=1,
        callbacks=[Recorder()],
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        accelerator="cpu",
        devices=1,
        precision=precision,
    )
    model = Model()
    handle = None
    if global_hook:
        handle = register_optimizer_step_post_hook(
            lambda o, args, kwargs: events.append(f"global_post_hook {sorted(kwargs)}")
        )
    try:
        trainer.fit(model, train_dataloaders=torch.utils.data.DataLoader(data, batch_size=None))
    finally:
        if handle is not None:
            handle.remove()
        torch.set_grad_enabled(True)
    return {
        "events": events,
        "inside": inside,
        "weights": [round(v, 6) for v in model.net.weight.detach().flatten().tolist()],
        "global_step": trainer.global_step,
    }


CASES: dict[str, dict[str, Any]] = {
    # taken: the default hook, exact built-in optimizers, 32-bit, no hooks (an LR scheduler's
    # step counter on the optimizer does not disqualify)
    "sgd": {},
    "adam": {"optimizer": "adam"},
    "scheduler": {"scheduler": True},
    # not taken
    "override": {"override": True},
    "lbfgs": {"optimizer": "lbfgs"},
    "subclass": {"optimizer": "subclass"},
    "pre_hook": {"pre_hook": True},
    "post_hook": {"post_hook": True},
    "global_hook": {"global_hook": True},
    "16-mixed": {"precision": "16-mixed"},
    "no_grad": {"no_grad_at_start": True},
}
DIRECT = {"sgd", "adam", "scheduler"}


@pytest.mark.parametrize("case", sorted(CASES))
def test_route_and_trace_equal_lightning(case: str) -> None:
    """The route is direct exactly when allowed, and either route's trace is Lightning's."""
    kwargs = CASES[case]
    ours = _run(LC, **kwargs)
    theirs = _run(PL, **kwargs)
    assert all(theirs["inside"]), "Lightning's closure always runs inside the optimizer's step"
    if case in DIRECT:
        assert not any(ours["inside"]), f"{case}: the direct route was not taken"
    else:
        assert all(ours["inside"]), f"{case}: took the direct route, which is not allowed here"
    assert ours["events"], "nothing recorded"
    assert {k: v for k, v in ours.items() if k != "inside"} == {k: v for k, v in theirs.items() if k != "inside"}


def test_hooks_are_seen_by_the_trace() -> None:
    """Not vacuous: a registered hook shows in the trace where the real route runs it."""
    events = _run(LC, pre_hook=True)["events"]
    first_pre = events.index("pre_hook ['closure']")
    assert events[first_pre + 1].startswith("training_step"), "the pre-hook runs before the closure"
    assert _run(LC, global_hook=True)["events"].count("global_post_hook ['closure']") == 3


def _params_for(cls: type) -> tuple[list[torch.nn.Parameter], Any]:
    """Parameters and a closure producing gradients that optimizer type accepts."""
    torch.manual_seed(0)
    if cls is torch.optim.SparseAdam:
        emb = torch.nn.Embedding(5, 2, sparse=True)
        return list(emb.parameters()), lambda: emb(torch.tensor([0, 3])).square().sum()
    lin = torch.nn.Linear(3, 2)
    x = torch.randn(4, 3)
    return list(lin.parameters()), lambda: lin(x).square().sum()


@pytest.mark.parametrize("cls", sorted(CLOSURE_FIRST, key=lambda c: c.__name__), ids=lambda c: c.__name__)
def test_closure_first_types_run_the_closure_once_first(cls: type) -> None:
    """What the direct route relies on, for every type it allows: the real ``step(closure)``
    evaluates the closure exactly once, under enabled gradients, before any parameter changes,
    and returns its value."""
    params, forward = _params_for(cls)
    opt = cls(params, lr=0.1)
    before = [p.detach().clone() for p in params]
    calls: list[tuple[bool, bool]] = []

    def closure() -> torch.Tensor:
        unchanged = all(torch.equal(p, b) for p, b in zip(params, before, strict=True))
        calls.append((torch.is_grad_enabled(), unchanged))
        opt.zero_grad()
        loss = forward()
        loss.backward()
        return loss

    with torch.no_grad():
        result = opt.step(closure)
    assert calls == [(True, True)]
    assert isinstance(result, torch.Tensor)
    assert any(not torch.equal(p, b) for p, b in zip(params, before, strict=True)), "the step changed nothing"


def test_lbfgs_and_subclasses_are_not_closure_first() -> None:
    assert torch.optim.LBFGS not in CLOSURE_FIRST
    lopt = LightningOptimizer(_SubSGD(torch.nn.Linear(1, 1).parameters(), lr=0.1))
    assert not lopt._direct, "a wrapper made outside AutomaticStep takes the real route"
