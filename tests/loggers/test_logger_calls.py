"""Every ``log_metrics`` call equals Lightning's for the same run (issue 14.6).

The same program runs under live pytorch_lightning and under lightcycle with a recording
logger; the calls (``log_metrics`` with step, keys, value types and values; ``save``;
``log_hyperparams``; ``finalize``) must be identical, for training and validation step
and epoch metrics, with gradient accumulation, ``log_every_n_steps``, mid-epoch validation,
two validation loaders, and ``validate``/``test`` after a fit.
"""

from __future__ import annotations

import warnings
from types import ModuleType
from typing import Any

import pytest
import pytorch_lightning as PL
import torch

import lightcycle as LC
from tests.logger_programs import QUIET, loaders, model_class, recording_logger

CASES = {
    "plain": dict(max_epochs=2, log_every_n_steps=1),
    "accumulate_every2": dict(max_epochs=2, accumulate_grad_batches=2, log_every_n_steps=2),
    "accumulate3_every1_midval": dict(
        max_epochs=2, accumulate_grad_batches=3, log_every_n_steps=1, val_check_interval=3
    ),
    "every3_sanity": dict(max_epochs=2, log_every_n_steps=3, num_sanity_val_steps=2),
    "no_step_logs": dict(max_epochs=1, log_every_n_steps=0),
    "max_steps": dict(max_epochs=-1, max_steps=5, log_every_n_steps=2),
}


def _fit(
    fw: ModuleType,
    trainer_args: dict[str, Any],
    two_val: bool = False,
    then: tuple[str, ...] = (),
    manual: bool = False,
    stop_at: tuple[int, int] | None = None,
) -> Any:
    class Stop(fw.Callback):  # type: ignore[misc, name-defined]
        def on_train_batch_end(self, trainer: Any, *args: Any) -> None:
            if (trainer.current_epoch, args[-1]) == stop_at:
                trainer.should_stop = True

    logger = recording_logger(fw)
    train, val = loaders()
    args = {"num_sanity_val_steps": 0, **QUIET, **trainer_args}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer = fw.Trainer(logger=logger, callbacks=[Stop()], **args)
        model = model_class(fw, manual)()
        trainer.fit(model, train, [val, val] if two_val else val)
        for entry in then:
            getattr(trainer, entry)(model, val, verbose=False)
    return logger.calls


@pytest.mark.parametrize("case", sorted(CASES))
def test_log_metrics_calls_equal_lightnings(case: str) -> None:
    ours, theirs = _fit(LC, CASES[case]), _fit(PL, CASES[case])
    assert ours == theirs


def test_two_validation_loaders_and_entry_points_after_fit() -> None:
    args = dict(max_epochs=1, log_every_n_steps=2)
    ours = _fit(LC, args, two_val=True, then=("validate", "test", "validate"))
    theirs = _fit(PL, args, two_val=True, then=("validate", "test", "validate"))
    assert ours == theirs


@pytest.mark.parametrize("manual", [False, True])
def test_should_stop_and_manual_optimization(manual: bool) -> None:
    # should_stop set mid-epoch: Lightning logs that batch whatever log_every_n_steps says, and saves.
    args = dict(max_epochs=3, log_every_n_steps=4)
    ours = _fit(LC, args, manual=manual, stop_at=(1, 2))
    theirs = _fit(PL, args, manual=manual, stop_at=(1, 2))
    assert ours == theirs


def test_the_calls_have_lightnings_step_and_keys() -> None:
    # What the comparison above guarantees, spelled out once on the plain case: the step is the
    # count of batches that stepped (not global_step), the epoch key is an int, per-step
    # validation metrics arrive at their own per-batch step.
    calls = [c for c in _fit(LC, dict(max_epochs=1, log_every_n_steps=1)) if c[0] == "log_metrics"]
    first = calls[0]
    assert first[1] == 0 and ("epoch", "int", 0) in first[2] and any(k == "loss_step" for k, _, _ in first[2])
    assert [c[1] for c in calls if any(k == "val_loss_step" for k, _, _ in c[2])] == [0, 1, 2]
    epoch_rows = [c for c in calls if any(k == "loss_epoch" for k, _, _ in c[2])]
    assert len(epoch_rows) == 1 and epoch_rows[0][1] == 6  # 7 batches: steps 0..6


def _fit_late_step_logs(fw: ModuleType) -> Any:
    # Validation batches that log epoch values only until batch 2, which logs a step value too:
    # the batches that sent nothing still count toward the evaluation step of those that send
    # (Lightning's seen batches per dataloader, across the fit's validations and a validate()).
    class Late(model_class(fw)):  # type: ignore[misc]
        def validation_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
            x, y = batch
            self.log("val_loss", torch.nn.functional.mse_loss(self.layer(x), y), on_step=False, on_epoch=True)
            if batch_idx == 2:
                self.log("val_late", float(batch_idx), on_step=True, on_epoch=False)

    logger = recording_logger(fw)
    train, val = loaders()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer = fw.Trainer(logger=logger, num_sanity_val_steps=0, max_epochs=2, log_every_n_steps=3, **QUIET)
        model = Late()
        trainer.fit(model, train, val)
        trainer.validate(model, val, verbose=False)
    return logger.calls


def test_evaluation_batches_without_step_values_count_toward_the_step() -> None:
    ours, theirs = _fit_late_step_logs(LC), _fit_late_step_logs(PL)
    assert ours == theirs
    late = [c[1] for c in ours if c[0] == "log_metrics" and any(k == "val_late" for k, _, _ in c[2])]
    assert late == [2, 5, 2]  # the third batch of each validation (3 per run; validate() counts anew)
