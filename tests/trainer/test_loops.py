"""The Trainer's loop objects: their ``state_dict`` round trip, and the checkpoint's ``loops`` they write.

Each of ``fit_loop``, ``validate_loop``, ``test_loop`` and ``predict_loop`` (and the fit's
``epoch_loop.val_loop``) restores what it saved; a checkpoint taken after fit, two
``validate`` calls, ``test`` and ``predict`` on one Trainer holds in Lightning's keys exactly
what live Lightning writes after the same calls. (Save-then-resume runs compare these entries
for every scenario of ``tests/checkpoint_scenarios.py``.)
"""

from __future__ import annotations

import os
import tempfile
import types
import warnings
from typing import Any

import pytest
import pytorch_lightning as PL
import torch

import lightcycle as LC
from lightcycle.trainer.loops import EvaluationLoop, FitLoop, PredictionLoop, TrainingEpochLoop
from tests.checkpoint_scenarios import lightning_loops
from tests.recording import BASE_KWARGS, build

RUN = dict(max_epochs=2, limit_train_batches=4, limit_val_batches=2, val_check_interval=2, num_sanity_val_steps=1)


def _calls(pl: types.ModuleType, manual: bool, scheduler: str | None) -> tuple[Any, dict[str, Any]]:
    """fit, validate twice, test, predict on one Trainer; then the loops of its checkpoint."""
    ns = build(pl)
    ns.behaviour.manual = manual
    ns.behaviour.scheduler = scheduler
    folder = tempfile.mkdtemp(prefix="lc_loops_")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer = pl.Trainer(**{**BASE_KWARGS, **RUN}, callbacks=[], default_root_dir=folder)
        module = ns.RecModule()
        trainer.fit(module)
        trainer.validate(module, verbose=False)
        trainer.validate(module, verbose=False)
        trainer.test(module, verbose=False)
        trainer.predict(module)
        path = os.path.join(folder, "after.ckpt")
        trainer.save_checkpoint(path)
    return trainer, torch.load(path, weights_only=False)["loops"]


@pytest.mark.parametrize(("manual", "scheduler"), [(False, None), (False, "step"), (True, None)])
def test_checkpoint_loops_equal_live_lightning(manual: bool, scheduler: str | None) -> None:
    _, theirs = _calls(PL, manual, scheduler)
    _, ours = _calls(LC, manual, scheduler)
    assert lightning_loops(ours) == theirs


def test_loop_objects_are_built_once_and_typed() -> None:
    trainer = LC.Trainer(**BASE_KWARGS)
    fit = trainer.fit_loop
    assert isinstance(fit, FitLoop) and isinstance(fit.epoch_loop, TrainingEpochLoop)
    assert fit.epoch_loop is fit.epoch_loop and fit.epoch_loop.fit_loop is fit
    assert isinstance(fit.epoch_loop.val_loop, EvaluationLoop)
    assert isinstance(trainer.validate_loop, EvaluationLoop) and isinstance(trainer.test_loop, EvaluationLoop)
    assert isinstance(trainer.predict_loop, PredictionLoop)
    loops = [fit.epoch_loop.val_loop, trainer.validate_loop, trainer.test_loop, trainer.predict_loop]
    assert len({id(loop) for loop in loops}) == 4  # Lightning keeps one per entry point, and the fit's own


def test_fit_loop_state_dict_round_trip() -> None:
    trainer, _ = _calls(LC, manual=False, scheduler="step")
    saved = trainer.fit_loop.state_dict()
    assert saved["epochs_completed"] == 2 and saved["global_step"] == 8
    assert saved["epoch_loop.scheduler_progress"]["total"]["completed"] == 8
    assert saved["epoch_loop.automatic_optimization.optim_progress"]["optimizer"]["step"]["current"]["completed"] == 4
    fresh = LC.Trainer(**BASE_KWARGS)
    fresh.fit_loop.load_state_dict(saved)
    assert fresh.fit_loop.state_dict() == saved
    assert fresh.current_epoch == 2 and fresh.global_step == 8


@pytest.mark.parametrize("name", ["validate_loop", "test_loop", "predict_loop"])
def test_evaluation_loop_state_dict_round_trip(name: str) -> None:
    trainer, _ = _calls(LC, manual=False, scheduler=None)
    loop = getattr(trainer, name)
    saved = loop.state_dict()
    expected = {"validate_loop": (4, 2), "test_loop": (4, 4), "predict_loop": (4, 4)}[name]  # two validate calls
    assert (saved["batch_progress"]["total"]["completed"], saved["batch_progress"]["current"]["completed"]) == expected
    fresh = getattr(LC.Trainer(**BASE_KWARGS), name)
    fresh.load_state_dict(saved)
    assert fresh.state_dict() == saved


def test_fit_validation_loop_state_dict_round_trip() -> None:
    trainer, _ = _calls(LC, manual=False, scheduler=None)
    saved = trainer.fit_loop.epoch_loop.val_loop.state_dict()
    # val_check_interval=2 of 4 batches: validation after batches 2 and 4, 2 batches each;
    # the total counts the last epoch's (the sanity check's batch was reset away, as in Lightning)
    assert saved["batch_progress"]["total"]["completed"] == 4
    assert saved["batch_progress"]["current"]["completed"] == 2 and saved["batch_progress"]["is_last_batch"]
    fresh = LC.Trainer(**BASE_KWARGS).fit_loop.epoch_loop.val_loop
    fresh.load_state_dict(saved)
    assert fresh.state_dict() == saved


def _epoch_progress_seen(pl: types.ModuleType) -> list[tuple[Any, ...]]:
    """``fit_loop.epoch_progress`` at several hooks of a two-epoch fit, and after it."""
    seen: list[tuple[Any, ...]] = []

    def record(where: str, trainer: Any) -> None:
        p = trainer.fit_loop.epoch_progress
        totals = (p.total.ready, p.total.started, p.total.processed, p.total.completed)
        seen.append((where, *totals, p.current.completed))

    class Watch(pl.Callback):  # type: ignore[name-defined,misc]
        def on_sanity_check_end(self, trainer: Any, module: Any) -> None:
            record("sanity_check_end", trainer)

        def on_train_batch_end(self, trainer: Any, *args: Any) -> None:
            record("train_batch_end", trainer)

        def on_validation_end(self, trainer: Any, module: Any) -> None:
            record("validation_end", trainer)

        def on_train_epoch_end(self, trainer: Any, module: Any) -> None:
            record("train_epoch_end", trainer)

        def on_train_end(self, trainer: Any, module: Any) -> None:
            record("train_end", trainer)

    ns = build(pl)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer = pl.Trainer(
            **{**BASE_KWARGS, **RUN}, callbacks=[Watch()], default_root_dir=tempfile.mkdtemp(prefix="lc_loops_")
        )
        trainer.fit(ns.RecModule())
    record("after_fit", trainer)
    return seen


def test_epoch_progress_equals_live_lightning() -> None:
    assert _epoch_progress_seen(LC) == _epoch_progress_seen(PL)


def test_validation_runs_reuse_their_eval_run(monkeypatch: pytest.MonkeyPatch) -> None:
    # One EvalRun per stage of a fit's validation loop (the sanity check's, then the
    # validations'), and a new one for each entry point (a new bind), not one per run; the
    # hooks each run fires are the same either way.
    from lightcycle.trainer.loops import evaluation_loop

    built: list[str] = []
    original = evaluation_loop.EvalRun

    def counted(host: Any, events: Any, stage: str) -> Any:
        built.append(stage)
        return original(host, events, stage)

    monkeypatch.setattr(evaluation_loop, "EvalRun", counted)
    fired: list[str] = []

    class Recorder(LC.Callback):
        def on_validation_start(self, trainer: Any, pl_module: Any) -> None:
            fired.append("start")

        def on_validation_batch_end(self, trainer: Any, pl_module: Any, *args: Any) -> None:
            fired.append("batch")

        def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
            fired.append("end")

    from lightcycle.demos import BoringModel

    data = torch.utils.data.DataLoader(torch.randn(8, 32), batch_size=4)
    trainer = LC.Trainer(max_epochs=3, num_sanity_val_steps=1, callbacks=[Recorder()], **BASE_KWARGS)
    model = BoringModel()
    trainer.fit(model, data, data)
    assert built == ["sanity_check", "validate"]
    assert fired == ["start", "batch", "end"] + ["start", "batch", "batch", "end"] * 3
    trainer.validate(model, data, verbose=False)
    trainer.validate(model, data, verbose=False)
    assert built == ["sanity_check", "validate", "validate", "validate"]
