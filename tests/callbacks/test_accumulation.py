"""GradientAccumulationScheduler changes accumulation per epoch exactly as Lightning's."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest
import pytorch_lightning as PL

import lightcycle as LC
from tests.callback_programs import run, same_weights


def _steps(events: list[tuple[int, int, int]]) -> Any:
    def make(fw: ModuleType) -> list[Any]:
        class Probe(fw.Callback):  # type: ignore[misc, name-defined]
            def on_before_optimizer_step(self, trainer: Any, pl_module: Any, optimizer: Any) -> None:
                events.append((trainer.current_epoch, trainer.global_step, trainer.accumulate_grad_batches))

        return [fw.callbacks.GradientAccumulationScheduler({1: 2, 2: 3}), Probe()]

    return make


def test_accumulation_schedule_equals_lightning() -> None:
    pl_events: list[tuple[int, int, int]] = []
    lc_events: list[tuple[int, int, int]] = []
    pl = run(PL, _steps(pl_events), max_epochs=3, optimizers="sgd_momentum_step_sched")
    lc = run(LC, _steps(lc_events), max_epochs=3, optimizers="sgd_momentum_step_sched")
    assert {e[2] for e in pl_events} == {1, 2, 3}
    assert lc_events == pl_events
    assert lc["trainer"].global_step == pl["trainer"].global_step
    assert same_weights(lc["weights"], pl["weights"])


def test_accumulation_schedule_refusals_match_lightning() -> None:
    for fw in (PL, LC):
        with pytest.raises(ValueError, match="remove the callback"):
            run(fw, lambda fw: [fw.callbacks.GradientAccumulationScheduler({1: 2})], accumulate_grad_batches=2)
    with pytest.raises(TypeError, match="Empty dict"):
        LC.callbacks.GradientAccumulationScheduler({})
    with pytest.raises(LC.MisconfigurationException, match="Accumulation factor"):
        LC.callbacks.GradientAccumulationScheduler({0: 0})
    with pytest.raises(LC.MisconfigurationException, match="accumulate_grad_batches"):
        LC.Trainer(logger=False).accumulate_grad_batches = 0
