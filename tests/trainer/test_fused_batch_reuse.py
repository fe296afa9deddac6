"""The Trainer's generated per-batch functions are written once per fit run, not at every epoch.

The epoch loop keeps the batch bracket (``TrainBatch``), the automatic step and their generated
functions (``runtime/fused_step.py``) from one epoch to the next while everything they are
built from is the same, builds them anew when something that matters changed between epochs
(``accumulate_grad_batches``, ``_skip_backward``, the optimizer), and lets go of them when the
fit's epochs end. ``test_fused_batch.py`` sets the changes on the trainer directly; here the
callbacks that make them (and changes that must keep them) run. Each case
counts the builders' calls (and whether they generated a function) and checks that the batches
ran as the interpreted executor runs them, which generates nothing: the same hooks, steps and
weights.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch.nn import functional as F

import lightcycle as LC
from lightcycle.runtime import steps, training

_WHOLE = "fire_automatic_batch__transfer_to_train_batch_end"
_EPOCHS = 3
_BATCHES = 3


def _spy(monkeypatch: pytest.MonkeyPatch, module: Any, name: str, built: dict[str, list[bool]]) -> None:
    """Count the calls of builder ``name`` in ``module``: ``built[name]`` gets whether each generated."""
    real = getattr(module, name)
    calls = built.setdefault(name, [])

    def counted(*args: Any, **kwargs: Any) -> Any:
        made = real(*args, **kwargs)
        calls.append(made is not None)
        return made

    monkeypatch.setattr(module, name, counted)


class _Model(LC.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.backbone = torch.nn.Linear(3, 3)
        self.head = torch.nn.Linear(3, 1)
        self.whole: list[tuple[int, int, bool]] = []  # (epoch, batch_idx, run by the whole-batch function)

    def training_step(self, batch: Any, batch_idx: int) -> Any:
        self.whole.append((self.current_epoch, batch_idx, sys._getframe(1).f_code.co_name == _WHOLE))
        x, y = batch
        return F.mse_loss(self.head(torch.relu(self.backbone(x))), y)

    def configure_optimizers(self) -> Any:
        return torch.optim.SGD([p for p in self.parameters() if p.requires_grad], lr=0.1)


class _AtEpochStart(LC.Callback):
    def __init__(self, change: Callable[[Any, Any], None]) -> None:
        self.change = change

    def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        self.change(trainer, pl_module)


def _skip_backward_in_epoch_1(trainer: Any, module: Any) -> None:
    trainer.fit_loop._skip_backward = trainer.current_epoch == 1  # (as StochasticWeightAveraging sets it)


def _new_optimizer_at_epoch_1(trainer: Any, module: Any) -> None:
    if trainer.current_epoch == 1:  # the optimizers and their wrappers replaced, as configure_optimizers sets them
        trainer._configure_optimizers(torch.optim.SGD(module.parameters(), lr=0.0))


def _manual_in_epoch_1(trainer: Any, module: Any) -> None:
    module.automatic_optimization = trainer.current_epoch != 1  # (epoch 1's steps then optimize nothing)


CASES: dict[str, dict[str, Any]] = {
    # case: the callbacks, and the builders' calls expected (True: it generated a function); the
    # whole batch's builder is only called for a generated step
    "unchanged": {"callbacks": [], "step": [True], "whole": [True]},
    "accumulation_scheduled": {
        "callbacks": [LC.callbacks.GradientAccumulationScheduler({1: 2, 2: 1})],
        "step": [True, False, True],  # accumulating windows take AutomaticStep's own path
        "whole": [True, True],
    },
    "skip_backward": {
        "callbacks": [_AtEpochStart(_skip_backward_in_epoch_1)],
        "step": [True, False, True],  # (no backward: the closure differs, AutomaticStep's own path)
        "whole": [True, True],
    },
    "new_optimizer": {"callbacks": [_AtEpochStart(_new_optimizer_at_epoch_1)], "step": [True, True]},
    # the functions do not depend on the param groups (they call ``step()``): kept
    "param_group_added": {"callbacks": [LC.callbacks.BackboneFinetuning(unfreeze_backbone_at_epoch=1)]},
    # nothing they are built from: the manual epoch uses none of them, the next gets them again
    "manual_epoch_between": {"callbacks": [_AtEpochStart(_manual_in_epoch_1)]},
}


class _Kept(LC.Callback):
    """What the epoch loop keeps, seen at each epoch's end (it lets go when the fit's epochs end)."""

    def __init__(self) -> None:
        self.seen: list[tuple[Any, Any]] = []

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        loop = trainer.fit_loop.epoch_loop
        bracket, automatic = loop._cached_bracket, loop._cached_automatic
        self.seen.append((bracket and bracket[1], automatic and automatic[1]))


def _fit(case: str, executor: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.setenv("LIGHTCYCLE_EXECUTOR", executor)
    built: dict[str, list[bool]] = {}
    _spy(monkeypatch, training, "fused_bracket", built)
    _spy(monkeypatch, steps, "fused_batch", built)
    _spy(monkeypatch, steps, "fused_train_batch", built)
    g = torch.Generator().manual_seed(1)
    data = [(torch.randn(4, 3, generator=g), torch.randn(4, 1, generator=g)) for _ in range(_BATCHES)]
    kept = _Kept()
    trainer = LC.Trainer(
        max_epochs=_EPOCHS,
        callbacks=[*CASES[case]["callbacks"], kept],
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
    )
    model = _Model()
    trainer.fit(model, train_dataloaders=torch.utils.data.DataLoader(data, batch_size=None))
    return {
        "built": built,
        "whole": model.whole,
        "weights": [round(v, 6) for p in model.parameters() for v in p.detach().flatten().tolist()],
        "global_step": trainer.global_step,
        "trainer": trainer,
        "kept": kept.seen,
    }


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_batch_functions_are_built_again_only_when_what_they_are_built_from_changed(
    case: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = CASES[case]
    with monkeypatch.context() as mp:  # (its spies undone before ours count)
        reference = _fit(case, "interpreted", mp)
    ours = _fit(case, "generated", monkeypatch)
    assert ours["built"] == {
        "fused_bracket": [True],  # the bind, precision and device do not change within a fit
        "fused_batch": expected.get("step", [True]),
        "fused_train_batch": expected.get("whole", expected.get("step", [True])),
    }
    assert ours["weights"] == reference["weights"]
    assert ours["global_step"] == reference["global_step"] > 0
    assert len(ours["whole"]) == len(reference["whole"]) == _EPOCHS * _BATCHES
    assert not any(w for _, _, w in reference["whole"]), "the interpreted executor generates nothing"
    ran_whole = {(e, i) for e, i, w in ours["whole"] if w}
    # the whole batch's function runs from each epoch's second batch on, where its step is generated
    assert ran_whole == {
        (e, i)
        for e, i, _ in ours["whole"]
        if i != 0 and not (case in ("accumulation_scheduled", "skip_backward", "manual_epoch_between") and e == 1)
    }


def test_the_new_optimizer_steps_not_the_kept_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """Not vacuous: the kept function would step the first optimizer (lr 0.1), the new one has lr 0."""
    with monkeypatch.context() as mp:
        unchanged = _fit("unchanged", "generated", mp)
    changed = _fit("new_optimizer", "generated", monkeypatch)
    assert changed["weights"] != unchanged["weights"]


def test_a_kept_step_holds_the_gradient_nodes_of_a_param_group_added_since(monkeypatch: pytest.MonkeyPatch) -> None:
    ran = _fit("param_group_added", "generated", monkeypatch)
    (_, first), (_, second), (_, last) = ran["kept"]
    assert first is second is last is not None  # kept
    assert len(last.optimizer.param_groups) == 2
    trainable = [p for p in ran["trainer"].lightning_module.parameters() if p.requires_grad]
    assert len(last._accumulators) == len(trainable) == 4  # the backbone's weight and bias too


@pytest.mark.parametrize("executor", ["generated", "interpreted"])
def test_the_objects_are_kept_for_the_fit_and_let_go_at_its_end(executor: str, monkeypatch: pytest.MonkeyPatch) -> None:
    ran = _fit("unchanged", executor, monkeypatch)
    (bracket, auto), *later = ran["kept"]
    assert bracket is not None and auto is not None
    assert all(b is bracket and a is auto for b, a in later)
    loop = ran["trainer"].fit_loop.epoch_loop
    assert loop._cached_bracket is None and loop._cached_automatic is None


def test_a_failed_fit_lets_go_of_its_step_and_the_failed_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    class Failing(_Model):
        def training_step(self, batch: Any, batch_idx: int) -> Any:
            if self.current_epoch == 1:
                raise RuntimeError("failed")
            return super().training_step(batch, batch_idx)

    monkeypatch.setenv("LIGHTCYCLE_EXECUTOR", "interpreted")  # (AutomaticStep's own path: it holds the batch)
    trainer = LC.Trainer(
        max_epochs=2, logger=False, enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False
    )
    data = [(torch.randn(4, 3), torch.randn(4, 1))]
    with pytest.raises(RuntimeError, match="failed"):
        trainer.fit(Failing(), train_dataloaders=torch.utils.data.DataLoader(data, batch_size=None))
    assert trainer.fit_loop.epoch_loop._cached_automatic is None
