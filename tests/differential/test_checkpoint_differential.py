"""Checkpoint save and resume hook order equals live pytorch-lightning's (spec 3.14, 3.16).

Each scenario of ``tests/checkpoint_scenarios.py`` runs twice per framework's turn: a first
fit that writes checkpoints, a second run on a new Trainer that resumes from one of them.
Both runs' events (hooks, arguments, trainer state at every hook, checkpoint keys), the
second trainer's end state, the files in the checkpoint folder, what their ``loops`` entries hold
in Lightning's keys (the loop objects' ``state_dict``) and the outcome must be equal.
"""

from __future__ import annotations

import json

import pytest
import pytorch_lightning as PL

import lightcycle as LC
from tests import paths
from tests.checkpoint_scenarios import (
    CALLBACK_SCENARIOS,
    PRE_RUN_ERRORS,
    SCENARIOS,
    ResumeScenario,
    run_fit_then,
    run_resume,
)
from tests.differential.test_differential import _first_difference

FIXTURES = paths.FIXTURES / "lightning-2.6.6"


def _same(lightning: dict, ours: dict) -> None:
    assert ours["first_exception"] == lightning["first_exception"]
    for run in ("first", "second"):
        assert ours.get(run) == lightning.get(run), f"{run} run: " + _first_difference(lightning[run], ours[run])
    assert ours.get("state") == lightning.get("state")
    assert ours["files"] == lightning["files"]
    assert ours["loops"] == lightning["loops"], "the checkpoints' loops entries differ from Lightning's"
    assert ours.get("exception") == lightning.get("exception")
    assert ours.get("output") == lightning.get("output")
    assert ours["callbacks_first"] == lightning["callbacks_first"]
    assert ours.get("callbacks_second") == lightning.get("callbacks_second")


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_resume_equals_live_lightning(name: str) -> None:
    lightning = run_resume(PL, SCENARIOS[name])
    ours = run_resume(LC, SCENARIOS[name])
    assert lightning["second"], "the Lightning run recorded nothing"
    _same(lightning, ours)


def _normalise_fixture(event: dict) -> dict:
    """The stored traces keep Lightning's version key and the recorder's default state_key."""
    ckpt = event["args"].get("checkpoint")
    if ckpt is not None:
        ckpt["keys"] = sorted("<version>" if k == "pytorch-lightning_version" else k for k in ckpt["keys"])
        ckpt["callbacks"] = ["RecordingCallback[0]" if k == "RecordingCallback" else k for k in ckpt["callbacks"]]
    return event


def test_resume_matches_recorded_fixture() -> None:
    """fixture fit_resume: trainer.save_checkpoint after a 1-epoch fit, then fit(ckpt_path=...) to 2 epochs."""
    lines = (FIXTURES / "fit_resume.jsonl").read_text().splitlines()
    expected = [_normalise_fixture(json.loads(line)) for line in lines]
    meta = json.loads((FIXTURES / "fit_resume.meta.json").read_text())
    ours = run_resume(LC, SCENARIOS["resume_after_fit"])
    assert ours["second"] == expected, _first_difference(expected, ours["second"])
    assert ours["state"] == meta["state_after"]


def test_save_matches_recorded_fixture() -> None:
    """fixture fit_checkpoint_save: ModelCheckpoint(save_last=True), 1 epoch: top-k file, then last.ckpt."""
    lines = (FIXTURES / "fit_checkpoint_save.jsonl").read_text().splitlines()
    expected = [_normalise_fixture(json.loads(line)) for line in lines]
    meta = json.loads((FIXTURES / "fit_checkpoint_save.meta.json").read_text())
    scenario = ResumeScenario(
        dict(max_epochs=1, limit_train_batches=2, limit_val_batches=1), {}, dict(save_last=True), entry=None
    )
    ours = run_resume(LC, scenario)
    assert ours["first"] == expected, _first_difference(expected, ours["first"])
    assert ours["files"][0] == meta["checkpoint_files"]


@pytest.mark.parametrize("name", sorted(CALLBACK_SCENARIOS))
def test_builtin_callbacks_equal_live_lightning(name: str) -> None:
    lightning = run_resume(PL, CALLBACK_SCENARIOS[name])
    ours = run_resume(LC, CALLBACK_SCENARIOS[name])
    _same(lightning, ours)


@pytest.mark.parametrize("name", sorted(PRE_RUN_ERRORS))
def test_unusable_ckpt_path_raises_before_any_hook(name: str) -> None:
    lightning = run_resume(PL, PRE_RUN_ERRORS[name])
    ours = run_resume(LC, PRE_RUN_ERRORS[name])
    assert ours["exception"] == lightning["exception"]
    assert ours["exception"].startswith("ValueError")
    assert [e["hook"] for e in lightning["second"]] == ["on_exception"]
    assert ours["second"] == []


@pytest.mark.parametrize(
    ("entry", "ckpt_path", "with_model"),
    [
        ("test", "best", True),
        ("validate", "last", True),
        ("validate", None, False),
        ("predict", None, True),
        ("test", None, False),
    ],
)
def test_ckpt_path_best_and_last_after_fit(entry: str, ckpt_path: str | None, with_model: bool) -> None:
    """``ckpt_path="best"``/``"last"`` on the Trainer that fitted, and no model given (Lightning loads "best")."""
    lightning = run_fit_then(PL, entry, ckpt_path, with_model)
    ours = run_fit_then(LC, entry, ckpt_path, with_model)
    assert ours["events"] == lightning["events"], _first_difference(lightning["events"], ours["events"])
    assert ours["ckpt_path"] == lightning["ckpt_path"]
    assert ours["best"] == lightning["best"]
    assert ours["warnings"] == lightning["warnings"]


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_lightning_checkpoints_resume_like_lightning(name: str) -> None:
    """A checkpoint written by Lightning, resumed by lightcycle: the same hooks as Lightning resuming it."""
    lightning = run_resume(PL, SCENARIOS[name])
    ours = run_resume(LC, SCENARIOS[name], writer=PL)
    assert ours["second"] == lightning["second"], _first_difference(lightning["second"], ours["second"])
    assert ours["state"] == lightning["state"]
    assert ours["exception"] == lightning["exception"]
    assert ours["callbacks_second"] == lightning["callbacks_second"]
