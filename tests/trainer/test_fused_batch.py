"""The generated function of a stepping automatic-optimization batch (``runtime/fused_step.py``).

Where the epoch allows it (generated executor, default ``optimizer_step``, direct optimizer
route, one micro-batch per step, 32-bit), the Trainer runs ``optimizer_step`` ..
``optimizer_step_end`` as one generated function with the events' bodies inlined, and the batch
bracket (transfer, counters, ``on_train_batch_start``; ``on_train_batch_end``) as two more; from each
epoch's second batch, the three as one (``fused_train_batch``). They must be
indistinguishable from the events fired one by one: the same hooks in the same order, each
seeing the same ``_current_fx_name`` and lifecycle state, the same steps and weights, the same
state and ``_current_fx_name`` after a failure. The reference is the interpreted executor (no
function is generated there), and each case also says whether the generated function ran.
"""

from __future__ import annotations

import sys
from typing import Any

import pytest
import torch
from torch.nn import functional as F

import lightcycle as LC

_FUSED = "fire_automatic_batch"
_WHOLE = "fire_automatic_batch__transfer_to_train_batch_end"


def _called_from_fused_batch() -> bool:
    """Whether the hook calling this was called by the generated batch function itself."""
    return sys._getframe(2).f_code.co_name.startswith(_FUSED)


def _called_from(name: str) -> bool:
    """Whether the hook calling this was called by the generated function ``name`` itself."""
    return sys._getframe(2).f_code.co_name == name


def _run(
    executor: str,
    monkeypatch: pytest.MonkeyPatch,
    *,
    returns: str = "tensor",
    clip: bool = False,
    hook_at: int | None = None,
    fail_at: int | None = None,
    accumulate: int = 1,
    callbacks: bool = True,
    skip_at: int | None = None,
    base: bool = False,
) -> dict[str, Any]:
    monkeypatch.setenv("LIGHTCYCLE_EXECUTOR", executor)
    events: list[str] = []
    fused: list[bool] = []
    bracket: list[bool] = []
    whole: list[tuple[int, bool]] = []

    def seen(where: str, module: Any, trainer: Any) -> None:
        events.append(f"{where} fx={module._current_fx_name} state={trainer._driver.state}")

    class Recorder(LC.Callback):
        def on_before_zero_grad(self, trainer: Any, pl_module: Any, optimizer: Any) -> None:
            seen("cb.on_before_zero_grad", pl_module, trainer)

        def on_before_backward(self, trainer: Any, pl_module: Any, loss: Any) -> None:
            seen("cb.on_before_backward", pl_module, trainer)

        def on_after_backward(self, trainer: Any, pl_module: Any) -> None:
            seen("cb.on_after_backward", pl_module, trainer)

        def on_before_optimizer_step(self, trainer: Any, pl_module: Any, optimizer: Any) -> None:
            grad = pl_module.net.weight.grad
            shown = None if grad is None else round(float(grad.sum()), 6)
            seen(f"cb.on_before_optimizer_step grad={shown}", pl_module, trainer)

        def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
            shown = {k: round(float(v), 6) for k, v in outputs.items()}
            seen(f"cb.on_train_batch_end {shown} step={trainer.global_step}", pl_module, trainer)

        def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
            seen(f"cb.on_exception {exception}", pl_module, trainer)

    class Model(LC.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            torch.manual_seed(0)
            self.net = torch.nn.Linear(3, 1)

        def training_step(self, batch: Any, batch_idx: int) -> Any:
            seen(f"training_step {batch_idx}", self, self.trainer)
            fused.append(_called_from_fused_batch())
            whole.append((batch_idx, _called_from(_WHOLE)))
            if batch_idx == hook_at:
                self.trainer.optimizers[0].register_step_pre_hook(lambda *a: events.append("pre_hook"))
            if batch_idx == fail_at:
                raise RuntimeError("training_step failed")
            x, y = batch
            loss = F.mse_loss(self.net(x), y)
            if returns == "none" and batch_idx == 1:
                return None
            if base:  # what autograd's hooks see while the base backward runs
                loss.register_hook(lambda grad: seen("autograd", self, self.trainer))
            if returns == "dict":
                return {"loss": loss, "double": loss.detach() * 2}
            return loss

        def on_before_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
            seen("on_before_batch_transfer", self, self.trainer)
            return [batch[0] * 2, batch[1]]

        def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
            seen("on_after_batch_transfer", self, self.trainer)
            return (batch[0] + 1, batch[1])

        def on_train_batch_start(self, batch: Any, batch_idx: int) -> Any:
            seen(f"on_train_batch_start {batch_idx} {round(float(batch[0].sum()), 4)}", self, self.trainer)
            # the epoch's first batch starts in the bracket's function, later ones in the whole batch's
            bracket.append(_called_from("fire_train_batch_bracket_start") or _called_from(_WHOLE))
            return -1 if batch_idx == skip_at else None

        def optimizer_zero_grad(self, epoch: int, batch_idx: int, optimizer: Any) -> None:
            seen("optimizer_zero_grad", self, self.trainer)
            optimizer.zero_grad()

        def backward(self, loss: Any, *args: Any, **kwargs: Any) -> None:
            seen("backward", self, self.trainer)
            loss.backward()

        def configure_optimizers(self) -> Any:
            opt = torch.optim.SGD(self.parameters(), lr=0.1)
            if base:  # what the optimizer's zero_grad sees, called by the base hook
                real = opt.zero_grad

                def zero_grad(set_to_none: bool = True) -> None:
                    seen("opt.zero_grad", self, self.trainer)
                    real(set_to_none)

                opt.zero_grad = zero_grad  # type: ignore[method-assign]
            return opt

    if base:  # the base hooks, whose one call the generated step writes itself
        del Model.optimizer_zero_grad, Model.backward
    g = torch.Generator().manual_seed(1)
    data = [(torch.randn(4, 3, generator=g), torch.randn(4, 1, generator=g)) for _ in range(4)]
    trainer = LC.Trainer(
        max_epochs=2,
        callbacks=[Recorder()] if callbacks else [],
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        gradient_clip_val=0.5 if clip else None,
        accumulate_grad_batches=accumulate,
    )
    model = Model()
    error = None
    try:
        trainer.fit(model, train_dataloaders=torch.utils.data.DataLoader(data, batch_size=None))
    except RuntimeError as err:
        error = str(err)
    return {
        "events": events,
        "fused": fused,
        "bracket": bracket,
        "whole": whole,
        "error": error,
        "fx_after": model._current_fx_name,
        "state_after": trainer._driver.state,
        "weights": [round(v, 6) for v in model.net.weight.detach().flatten().tolist()],
        "global_step": trainer.global_step,
    }


CASES: dict[str, dict[str, Any]] = {
    "plain": {},
    "no_callbacks": {"callbacks": False},
    "dict_output": {"returns": "dict"},
    "none_output": {"returns": "none"},
    "clipping": {"clip": True},
    "hook_registered_mid_epoch": {"hook_at": 1},
    "failure_in_training_step": {"fail_at": 2},
    "accumulating": {"accumulate": 2},
    "skip_rest_of_epoch": {"skip_at": 2},
    "base_backward_and_zero_grad": {"base": True},
}


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("case", sorted(CASES))
def test_fused_batch_is_the_events_fired_one_by_one(case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    kwargs = CASES[case]
    ours = _run("generated", monkeypatch, **kwargs)
    reference = _run("interpreted", monkeypatch, **kwargs)
    assert not any(reference["fused"]) and not any(reference["bracket"]), "interpreted: no generated function"
    assert ours["bracket"] and all(ours["bracket"]), "the generated batch bracket did not run"
    if case == "accumulating":
        assert not any(ours["fused"]), "accumulation windows take AutomaticStep's own path"
    elif case == "hook_registered_mid_epoch":
        # the batch that registers the hook is fused (it was absent at its start), the later ones not
        assert ours["fused"][:2] == [True, True] and not any(ours["fused"][2:])
        assert "pre_hook" in ours["events"]
    else:
        assert all(ours["fused"]), "the generated function did not run"
    assert ours["events"], "nothing recorded"
    # the whole batch as one function: from each epoch's second batch on, where the step is fused
    # (a batch that takes AutomaticStep's path inside it calls training_step from there)
    assert [w for _, w in ours["whole"]] == [
        i != 0 and f for (i, _), f in zip(ours["whole"], ours["fused"], strict=True)
    ]
    assert any(w for _, w in ours["whole"]) != (case == "accumulating")
    if case == "base_backward_and_zero_grad":  # (not vacuous: the calls were seen, with their hooks' names)
        assert "autograd fx=backward state=fit.train.epoch.batch.closure.backwarded" in ours["events"]
        assert "opt.zero_grad fx=optimizer_zero_grad state=fit.train.epoch.batch.closure.zeroed" in ours["events"]
    if case == "failure_in_training_step":
        assert ours["error"] == "training_step failed"
        assert ours["whole"][-1] == (2, True), "the failing batch ran in the whole batch's function"
        assert any(e.startswith("cb.on_exception training_step failed") for e in ours["events"])
    same = ("fused", "bracket", "whole")
    assert {k: v for k, v in ours.items() if k not in same} == {k: v for k, v in reference.items() if k not in same}


def test_the_trace_shows_what_differs() -> None:
    """Not vacuous: the recorded trace names the hook and state each hook ran in."""
    with pytest.MonkeyPatch.context() as mp:
        events = _run("generated", mp)["events"]
    assert "training_step 0 fx=training_step state=fit.train.epoch.batch.closure.forwarded" in events
    assert "backward fx=backward state=fit.train.epoch.batch.closure.backwarded" in events


def _epochs_run(
    executor: str, monkeypatch: pytest.MonkeyPatch, per_epoch: dict[int, dict[str, Any]]
) -> tuple[list[float], int, list[tuple[int, bool]], int, int]:
    """Three epochs, ``per_epoch[epoch]`` set on the trainer / fit loop at each epoch's start.

    Returns the weights, global_step, (epoch, whole-batch function ran) per batch, and how
    many batch brackets and automatic steps the epoch loop built.
    """
    from lightcycle.trainer.loops import training_epoch_loop as loop_module

    monkeypatch.setenv("LIGHTCYCLE_EXECUTOR", executor)
    built = {"bracket": 0, "automatic": 0}
    bracket_class, automatic = loop_module.TrainBatch, loop_module.TrainingEpochLoop._automatic_step

    def counted_bracket(*args: Any) -> Any:
        built["bracket"] += 1
        return bracket_class(*args)

    def counted_automatic(self: Any) -> Any:
        built["automatic"] += 1
        return automatic(self)

    monkeypatch.setattr(loop_module, "TrainBatch", counted_bracket)
    monkeypatch.setattr(loop_module.TrainingEpochLoop, "_automatic_step", counted_automatic)
    whole: list[tuple[int, bool]] = []

    class Change(LC.Callback):
        def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
            for name, value in per_epoch.get(trainer.current_epoch, {}).items():
                if name == "_skip_backward":
                    trainer.fit_loop._skip_backward = value
                else:
                    setattr(trainer, name, value)

    class Model(LC.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            torch.manual_seed(0)
            self.net = torch.nn.Linear(3, 1)

        def training_step(self, batch: Any, batch_idx: int) -> Any:
            whole.append((self.current_epoch, _called_from(_WHOLE)))
            x, y = batch
            return F.mse_loss(self.net(x), y)

        def configure_optimizers(self) -> Any:
            return torch.optim.SGD(self.parameters(), lr=0.1)

    g = torch.Generator().manual_seed(1)
    data = [(torch.randn(4, 3, generator=g), torch.randn(4, 1, generator=g)) for _ in range(4)]
    trainer = LC.Trainer(
        max_epochs=3,
        callbacks=[Change()],
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
    )
    model = Model()
    trainer.fit(model, train_dataloaders=torch.utils.data.DataLoader(data, batch_size=None))
    weights = [round(v, 6) for v in model.net.weight.detach().flatten().tolist()]
    return weights, trainer.global_step, whole, built["bracket"], built["automatic"]


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_later_epochs_reuse_the_epoch_batch_functions(monkeypatch: pytest.MonkeyPatch) -> None:
    # Nothing they are made from changes between epochs: built once for the fit, and every
    # epoch's batches after its first run in the whole-batch function.
    weights, steps, whole, brackets, automatic = _epochs_run("generated", monkeypatch, {})
    reference = _epochs_run("interpreted", monkeypatch, {})
    assert (weights, steps) == reference[:2]
    assert (brackets, automatic) == (1, 1)
    assert [w for _, w in whole] == [i % 4 != 0 for i in range(12)]


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize(
    "per_epoch",
    [
        {1: {"accumulate_grad_batches": 2}, 2: {"accumulate_grad_batches": 1}},  # GradientAccumulationScheduler's way
        {1: {"_skip_backward": True}, 2: {"_skip_backward": False}},  # StochasticWeightAveraging's BatchNorm epoch
    ],
    ids=["accumulation", "skip_backward"],
)
def test_an_epoch_that_changes_what_they_are_made_of_builds_them_again(
    per_epoch: dict[int, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    weights, steps, whole, brackets, automatic = _epochs_run("generated", monkeypatch, per_epoch)
    reference = _epochs_run("interpreted", monkeypatch, per_epoch)
    assert (weights, steps) == reference[:2]
    assert brackets == 1 and automatic == 3  # epoch 1 differs from 0, epoch 2 from 1
    assert not any(w for e, w in whole if e == 1), "the changed epoch takes AutomaticStep's own path"
    assert [w for e, w in whole if e == 2] == [False, True, True, True]
