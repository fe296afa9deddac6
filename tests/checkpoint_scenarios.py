"""Save-then-resume scenarios, run against live Lightning and lightcycle with one recorder.

A scenario is two runs with the recording module and callback of ``tests/recording.py``:
a first fit that writes checkpoints (through ``ModelCheckpoint`` or
``trainer.save_checkpoint``), then a second run, on a new Trainer and a new module, that
resumes fit (or validates/tests/predicts) from one of those files. Both runs' events are
compared, so the order of ``state_dict``/``on_save_checkpoint`` on save and of
``on_load_checkpoint``/``load_state_dict`` and the loop hooks on load is checked, with the
trainer state seen at every hook and the checkpoint keys (``ckpt_summary``).
"""

from __future__ import annotations

import copy
import inspect
import os
import tempfile
import types
import warnings
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import torch

from tests.recording import BASE_KWARGS, build, end_state, jsonable

ONE_EPOCH = dict(max_epochs=1, limit_train_batches=2, limit_val_batches=1)
TWO_EPOCHS = dict(max_epochs=2, limit_train_batches=2, limit_val_batches=1)


@dataclass
class ResumeScenario:
    """A first fit that saves, then a run from one of its checkpoints.

    Args:
        first: Trainer arguments of the first fit.
        second: Trainer arguments of the second run.
        checkpoint: ModelCheckpoint arguments for the first fit (``dirpath`` is added);
            ``None``: no ModelCheckpoint, ``trainer.save_checkpoint`` after the fit.
        pick: the file to resume from: a file name in the checkpoint folder, ``"after"``
            (the file saved after the first fit), or ``"last"``/``"best"`` passed as
            ``ckpt_path`` as they are (resolved by the second Trainer's ModelCheckpoint).
        second_checkpoint: ModelCheckpoint arguments for the second run (same folder).
        entry: ``fit``, ``validate``, ``test`` or ``predict`` for the second run; ``None``: none.
        behaviour: the recording objects' injected behaviour (both runs).
        extra_callbacks: more recording callbacks in both runs.
        early_stopping: EarlyStopping arguments, for both runs.
    """

    first: dict[str, Any]
    second: dict[str, Any]
    checkpoint: dict[str, Any] | None = None
    pick: str = "after"
    second_checkpoint: dict[str, Any] | None = None
    entry: str | None = "fit"
    behaviour: dict[str, Any] = field(default_factory=dict)
    extra_callbacks: int = 0
    early_stopping: dict[str, Any] | None = None


def _score(v: Any) -> Any:
    return None if v is None else round(float(v), 6)


def callback_summary(trainer: Any) -> dict[str, Any]:
    """The attributes of ModelCheckpoint and EarlyStopping that users read (paths as base names)."""
    if trainer is None:
        return {}
    out: dict[str, Any] = {}
    base = os.path.basename
    for cb in trainer.callbacks:
        name = type(cb).__name__
        if name == "ModelCheckpoint":
            out[f"ckpt{len(out)}"] = {
                "best_model_path": base(cb.best_model_path),
                "best_model_score": _score(cb.best_model_score),
                "best_k_models": {base(k): _score(v) for k, v in cb.best_k_models.items()},
                "kth_best_model_path": base(cb.kth_best_model_path),
                "kth_value": _score(cb.kth_value),
                "last_model_path": base(cb.last_model_path),
                "current_score": _score(cb.current_score),
                "state_key": cb.state_key,
            }
        elif name == "EarlyStopping":
            out[f"es{len(out)}"] = {
                "wait_count": cb.wait_count,
                "stopped_epoch": cb.stopped_epoch,
                "best_score": _score(cb.best_score),
                "patience": cb.patience,
                "stopping_reason": cb.stopping_reason.name,
                "stopping_reason_message": cb.stopping_reason_message,
                "state_key": cb.state_key,
            }
    return out


def _seed(pl: types.ModuleType, seed: int) -> None:
    if "verbose" in inspect.signature(pl.seed_everything).parameters:
        pl.seed_everything(seed, verbose=False)
    else:  # pragma: no cover
        pl.seed_everything(seed)


def run_resume(
    pl: types.ModuleType, sc: ResumeScenario, seed: int = 0, writer: types.ModuleType | None = None
) -> dict[str, Any]:
    """Run both halves of ``sc`` with framework ``pl`` (the first with ``writer`` when given,
    to resume from another framework's checkpoints).

    Returns:
        ``first``/``second``: events of each run; ``state``: the second trainer's end
        state; ``files``: the checkpoint folder's file names after each run; ``exception``:
        what reached the caller of the second run; ``trainers``: both trainers.
    """
    wl = writer or pl
    ns = build(wl)
    reader = build(pl) if writer is not None else ns
    for k, v in sc.behaviour.items():
        setattr(ns.behaviour, k, copy.deepcopy(v))
        setattr(reader.behaviour, k, copy.deepcopy(v))
    tmp = tempfile.mkdtemp(prefix="lc_resume_")
    folder = os.path.join(tmp, "ckpts")
    out: dict[str, Any] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _seed(wl, seed)
        cbs: list[Any] = [ns.RecordingCallback(i) for i in range(1 + sc.extra_callbacks)]
        if sc.early_stopping is not None:
            cbs.append(wl.callbacks.EarlyStopping(**sc.early_stopping))
        if sc.checkpoint is not None:
            cbs.append(wl.callbacks.ModelCheckpoint(dirpath=folder, **sc.checkpoint))
        kwargs = {**BASE_KWARGS, **sc.first, "enable_checkpointing": sc.checkpoint is not None}
        first = wl.Trainer(**kwargs, callbacks=cbs, default_root_dir=tmp)
        try:
            first.fit(ns.RecModule())
            out["first_exception"] = None
        except Exception as e:  # an injected failure (save_on_exception scenarios)
            out["first_exception"] = f"{type(e).__name__}: {e}"
        if sc.checkpoint is None:
            first.save_checkpoint(os.path.join(folder, "after.ckpt"))
        out["first"] = list(ns.events)
        out["files"] = [sorted(os.listdir(folder)) if os.path.isdir(folder) else []]
        out["loops"] = [saved_loops(folder)]
        ns.events.clear()
        ns.behaviour.step_raise = {}  # injected failures belong to the first run
        reader.behaviour.step_raise = {}
        ns = reader

        out["callbacks_first"] = callback_summary(first)
        if sc.entry is None:
            out["trainers"] = (first, None)
            return out
        if sc.pick in ("last", "best"):
            ckpt_path: str = sc.pick
        else:
            ckpt_path = os.path.join(folder, sc.pick if sc.pick != "after" else "after.ckpt")
        cbs = [ns.RecordingCallback(i) for i in range(1 + sc.extra_callbacks)]
        if sc.early_stopping is not None:
            cbs.append(pl.callbacks.EarlyStopping(**sc.early_stopping))
        if sc.second_checkpoint is not None:
            cbs.append(pl.callbacks.ModelCheckpoint(dirpath=folder, **sc.second_checkpoint))
        kwargs = {**BASE_KWARGS, **sc.second, "enable_checkpointing": sc.second_checkpoint is not None}
        second = pl.Trainer(**kwargs, callbacks=cbs, default_root_dir=tmp)
        exc = None
        try:
            result = getattr(second, sc.entry)(ns.RecModule(), ckpt_path=ckpt_path)
        except BaseException as e:
            exc = f"{type(e).__name__}: {e}".split("\n")[0]
            result = None
        out["second"] = list(ns.events)
        out["files"].append(sorted(os.listdir(folder)) if os.path.isdir(folder) else [])
        out["loops"].append(saved_loops(folder))
    out["callbacks_second"] = callback_summary(second)
    out["state"] = end_state(second)
    out["exception"] = exc
    out["output"] = jsonable(result)
    out["trainers"] = (first, second)
    return out


LIGHTCYCLE_LOOP_KEYS = frozenset(
    (
        "lightcycle",
        "position",
        "epochs_processed",
        "epochs_completed",
        "global_step",
        "batch_idx",
        "total_batch_idx",
        "batches_ready",
        "is_last_batch",
        "num_training_batches",
        "rng",
        "generators",
        "epoch_rng",
        "loader_state",
    )
)
"""lightcycle's own fields in ``loops["fit_loop"]`` (what exact resume needs beyond Lightning's progress)."""


def lightning_loops(loops: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint's ``loops`` without lightcycle's own fields: what Lightning writes there.

    Args:
        loops: the checkpoint's ``loops``.

    Returns:
        Each loop's entry less :data:`LIGHTCYCLE_LOOP_KEYS`.
    """
    return {name: {k: v for k, v in entry.items() if k not in LIGHTCYCLE_LOOP_KEYS} for name, entry in loops.items()}


def saved_loops(folder: str) -> dict[str, Any]:
    """The Lightning part of the ``loops`` of every checkpoint file in ``folder``, by file name."""
    if not os.path.isdir(folder):
        return {}
    out: dict[str, Any] = {}
    for name in sorted(os.listdir(folder)):
        if name.endswith(".ckpt"):
            loops = torch.load(os.path.join(folder, name), weights_only=False).get("loops")
            out[name] = None if loops is None else lightning_loops(loops)
    return out


SCENARIOS: dict[str, ResumeScenario] = {
    # spec 3.16: save at epoch end, top-k file then last.ckpt (T17's first half, fixture fit_checkpoint_save)
    "save_epoch_end": ResumeScenario(TWO_EPOCHS, ONE_EPOCH, checkpoint=dict(save_last=True), pick="last.ckpt"),
    # T17: resume from an end-of-epoch checkpoint: sanity check with a stale epoch, then the next epoch
    "resume_end_of_epoch": ResumeScenario(
        ONE_EPOCH, TWO_EPOCHS, checkpoint=dict(save_last=True), pick="last.ckpt", second_checkpoint=dict(save_last=True)
    ),
    # fixture fit_resume: trainer.save_checkpoint after fit, then resume
    "resume_after_fit": ResumeScenario(ONE_EPOCH, TWO_EPOCHS),
    # T18: every_n_train_steps=1, stopped by max_steps=1 after batch 0 of 3; resume mid-epoch
    "resume_mid_epoch": ResumeScenario(
        dict(max_epochs=1, max_steps=1, limit_train_batches=3, limit_val_batches=1),
        dict(max_epochs=1, limit_train_batches=3, limit_val_batches=1),
        checkpoint=dict(every_n_train_steps=1, save_top_k=-1),
        pick="epoch=0-step=1.ckpt",
    ),
    # mid-epoch into a second epoch, with step schedulers and a checkpoint callback in the resumed run
    "resume_mid_epoch_two_epochs": ResumeScenario(
        dict(max_epochs=1, max_steps=2, limit_train_batches=4, limit_val_batches=1),
        dict(max_epochs=2, limit_train_batches=4, limit_val_batches=1),
        checkpoint=dict(every_n_train_steps=1, save_top_k=-1),
        pick="epoch=0-step=2.ckpt",
        second_checkpoint=dict(every_n_train_steps=3, save_last=True),
        behaviour=dict(scheduler="step"),
    ),
    # T29: iteration-based training replays on_train_epoch_end of the saved epoch
    "resume_iteration_based": ResumeScenario(
        dict(max_steps=2, max_epochs=-1, limit_train_batches=2, limit_val_batches=1),
        dict(max_steps=4, max_epochs=-1, limit_train_batches=2, limit_val_batches=1),
        checkpoint=dict(save_last=True),
        pick="last.ckpt",
    ),
    # test_hooks "resume_max_steps": the saved epoch's remaining batches run, then its end again
    "resume_iteration_partial_epoch": ResumeScenario(
        dict(max_steps=1, limit_train_batches=3, limit_val_batches=1),
        dict(max_steps=3, limit_train_batches=3, limit_val_batches=1),
        checkpoint=dict(save_last=True),
        pick="last.ckpt",
    ),
    # iteration-based resume from a checkpoint taken after fit (between epochs)
    "resume_iteration_after_fit": ResumeScenario(
        dict(max_steps=2, limit_train_batches=2, limit_val_batches=1),
        dict(max_steps=4, limit_train_batches=2, limit_val_batches=1),
    ),
    "resume_iteration_after_partial_fit": ResumeScenario(
        dict(max_steps=1, limit_train_batches=3, limit_val_batches=1),
        dict(max_steps=3, limit_train_batches=3, limit_val_batches=1),
    ),
    # saved in on_validation_end in the middle of an epoch (val_check_interval=0.5)
    "resume_after_mid_epoch_validation": ResumeScenario(
        dict(max_epochs=1, max_steps=2, limit_train_batches=4, limit_val_batches=1, val_check_interval=0.5),
        dict(max_epochs=1, limit_train_batches=4, limit_val_batches=1, val_check_interval=0.5),
        checkpoint=dict(save_top_k=-1),
        pick="epoch=0-step=2.ckpt",
    ),
    # schedulers restored: epoch-interval StepLR across an end-of-epoch resume
    "resume_end_of_epoch_epoch_scheduler": ResumeScenario(
        dict(max_epochs=1, limit_train_batches=2, limit_val_batches=1),
        dict(max_epochs=2, limit_train_batches=2, limit_val_batches=1),
        checkpoint=dict(save_last=True),
        pick="last.ckpt",
        behaviour=dict(scheduler="epoch"),
    ),
    # ckpt_path="last" and "best", resolved by the second Trainer's ModelCheckpoint
    "resume_ckpt_path_last": ResumeScenario(
        ONE_EPOCH, TWO_EPOCHS, checkpoint=dict(save_last=True), pick="last", second_checkpoint=dict(save_last=True)
    ),
    "resume_no_last_checkpoint": ResumeScenario(
        ONE_EPOCH, TWO_EPOCHS, checkpoint=dict(save_last=False), pick="last", second_checkpoint=dict(save_last=True)
    ),
    # two stateful callbacks: each state goes back into its own instance
    "resume_two_callbacks": ResumeScenario(
        ONE_EPOCH, TWO_EPOCHS, checkpoint=dict(save_last=True), pick="last.ckpt", extra_callbacks=1
    ),
    # validate / test / predict with ckpt_path: module and callbacks only
    "validate_ckpt_path": ResumeScenario(
        ONE_EPOCH, dict(limit_val_batches=2), checkpoint=dict(save_last=True), pick="last.ckpt", entry="validate"
    ),
    "test_ckpt_path": ResumeScenario(
        ONE_EPOCH, dict(limit_test_batches=2), checkpoint=dict(), pick="epoch=0-step=2.ckpt", entry="test"
    ),
    "predict_ckpt_path": ResumeScenario(ONE_EPOCH, dict(limit_predict_batches=2), entry="predict"),
    # a checkpoint written in on_exception (save_on_exception=True), then resumed
    "resume_from_exception_checkpoint": ResumeScenario(
        dict(max_epochs=2, limit_train_batches=3, limit_val_batches=1),
        dict(max_epochs=2, limit_train_batches=3, limit_val_batches=1),
        checkpoint=dict(save_on_exception=True, save_last=True, every_n_epochs=1),
        pick="last.ckpt",
        behaviour=dict(step_raise={(1, 1): RuntimeError("injected: training_step")}),
    ),
    # trainer.save_checkpoint after a fit that failed inside training_step: the batch runs again
    "resume_after_interrupted_fit": ResumeScenario(
        dict(max_epochs=2, limit_train_batches=3, limit_val_batches=1),
        dict(max_epochs=2, limit_train_batches=3, limit_val_batches=1),
        behaviour=dict(step_raise={(1, 1): RuntimeError("injected: training_step")}),
    ),
}
"""Scenarios whose both runs equal Lightning's, event for event."""

LOGGED = dict(log_metrics=True)
FOUR_EPOCHS = dict(max_epochs=4, limit_train_batches=2, limit_val_batches=2)

CALLBACK_SCENARIOS: dict[str, ResumeScenario] = {
    # ModelCheckpoint: monitored top-k with a metric template, then resumed with its state
    "topk_val_loss": ResumeScenario(
        FOUR_EPOCHS,
        dict(max_epochs=6, limit_train_batches=2, limit_val_batches=2),
        checkpoint=dict(monitor="val_loss", save_top_k=2, filename="{epoch}-{val_loss:.2f}", save_last=True),
        pick="last.ckpt",
        second_checkpoint=dict(monitor="val_loss", save_top_k=2, filename="{epoch}-{val_loss:.2f}", save_last=True),
        behaviour=LOGGED,
    ),
    "topk_max_mode_all": ResumeScenario(
        FOUR_EPOCHS,
        ONE_EPOCH,
        checkpoint=dict(monitor="train_loss", mode="max", save_top_k=-1),
        entry=None,
        behaviour=LOGGED,
    ),
    "every_n_epochs_2": ResumeScenario(
        dict(max_epochs=5, limit_train_batches=1, limit_val_batches=1),
        {},
        checkpoint=dict(every_n_epochs=2, save_top_k=-1),
        entry=None,
    ),
    "every_n_train_steps_3": ResumeScenario(
        dict(max_epochs=2, limit_train_batches=4, limit_val_batches=1),
        {},
        checkpoint=dict(every_n_train_steps=3, save_top_k=-1, save_last=True),
        entry=None,
    ),
    "version_counter": ResumeScenario(
        dict(max_epochs=1, limit_train_batches=4, limit_val_batches=1),
        {},
        checkpoint=dict(every_n_train_steps=1, filename="fixed", save_top_k=-1),
        entry=None,
    ),
    "no_version_counter": ResumeScenario(
        dict(max_epochs=1, limit_train_batches=3, limit_val_batches=1),
        {},
        checkpoint=dict(every_n_train_steps=1, filename="fixed", enable_version_counter=False),
        entry=None,
    ),
    "no_metric_name": ResumeScenario(
        FOUR_EPOCHS,
        {},
        checkpoint=dict(monitor="val_loss", filename="e{epoch:02d}-{val_loss:.3f}", auto_insert_metric_name=False),
        entry=None,
        behaviour=LOGGED,
    ),
    "save_on_validation_end": ResumeScenario(
        dict(max_epochs=2, limit_train_batches=4, limit_val_batches=1, val_check_interval=0.5),
        {},
        checkpoint=dict(monitor="val_loss", save_top_k=3, save_last=True),
        entry=None,
        behaviour=LOGGED,
    ),
    "save_on_train_epoch_end_false": ResumeScenario(
        dict(max_epochs=3, limit_train_batches=2, limit_val_batches=1),
        {},
        checkpoint=dict(save_on_train_epoch_end=False, save_last=True, monitor="val_loss", verbose=True),
        entry=None,
        behaviour=LOGGED,
    ),
    "save_on_train_epoch_end_true_mid_epoch_validation": ResumeScenario(
        dict(max_epochs=2, limit_train_batches=4, limit_val_batches=1, val_check_interval=0.5),
        {},
        checkpoint=dict(save_on_train_epoch_end=True, monitor="train_loss", save_top_k=2),
        entry=None,
        behaviour=LOGGED,
    ),
    "train_time_interval_zero": ResumeScenario(
        dict(max_epochs=2, limit_train_batches=2, limit_val_batches=1),
        {},
        checkpoint=dict(train_time_interval=timedelta(0), save_top_k=-1, save_last=True),
        entry=None,
    ),
    "save_weights_only": ResumeScenario(
        ONE_EPOCH,
        dict(limit_val_batches=1),
        checkpoint=dict(save_weights_only=True),
        pick="epoch=0-step=2.ckpt",
        entry="validate",
    ),
    "weights_only_cannot_resume_fit": ResumeScenario(
        ONE_EPOCH, TWO_EPOCHS, checkpoint=dict(save_weights_only=True), pick="epoch=0-step=2.ckpt"
    ),
    "save_last_link": ResumeScenario(TWO_EPOCHS, TWO_EPOCHS, checkpoint=dict(save_last="link"), pick="last.ckpt"),
    "save_top_k_0_last": ResumeScenario(TWO_EPOCHS, {}, checkpoint=dict(save_top_k=0, save_last=True), entry=None),
    "monitor_missing_warns": ResumeScenario(
        dict(max_epochs=2, limit_train_batches=2, limit_val_batches=1, num_sanity_val_steps=0),
        {},
        checkpoint=dict(monitor="nope"),
        entry=None,
    ),
    "monitor_missing_raises_after_validation": ResumeScenario(
        dict(max_epochs=2, limit_train_batches=2, limit_val_batches=1, val_check_interval=0.5),
        {},
        checkpoint=dict(monitor="nope"),
        entry=None,
    ),
    # EarlyStopping: stops fit; its state is checkpointed and restored
    "early_stopping_patience": ResumeScenario(
        dict(max_epochs=8, limit_train_batches=2, limit_val_batches=2),
        {},
        early_stopping=dict(monitor="val_loss", patience=1, min_delta=10.0, verbose=True),
        entry=None,
        behaviour=LOGGED,
    ),
    "early_stopping_threshold": ResumeScenario(
        dict(max_epochs=8, limit_train_batches=2, limit_val_batches=2),
        {},
        early_stopping=dict(monitor="train_loss", stopping_threshold=100.0, check_on_train_epoch_end=True),
        entry=None,
        behaviour=LOGGED,
    ),
    "early_stopping_divergence_max": ResumeScenario(
        dict(max_epochs=8, limit_train_batches=2, limit_val_batches=2),
        {},
        early_stopping=dict(monitor="val_loss", mode="max", divergence_threshold=-1.0),
        entry=None,
        behaviour=LOGGED,
    ),
    "early_stopping_missing_strict": ResumeScenario(
        TWO_EPOCHS,
        {},
        early_stopping=dict(monitor="nope"),
        entry=None,
    ),
    "early_stopping_missing_not_strict": ResumeScenario(
        TWO_EPOCHS,
        {},
        early_stopping=dict(monitor="nope", strict=False),
        entry=None,
    ),
    "early_stopping_val_check_interval": ResumeScenario(
        dict(max_epochs=4, limit_train_batches=4, limit_val_batches=1, val_check_interval=0.5),
        {},
        early_stopping=dict(monitor="val_loss", patience=2, min_delta=10.0),
        entry=None,
        behaviour=LOGGED,
    ),
    "early_stopping_resumed": ResumeScenario(
        dict(max_epochs=3, limit_train_batches=2, limit_val_batches=2),
        dict(max_epochs=8, limit_train_batches=2, limit_val_batches=2),
        checkpoint=dict(save_last=True),
        pick="last.ckpt",
        second_checkpoint=dict(save_last=True),
        early_stopping=dict(monitor="val_loss", patience=3, min_delta=0.01),
        behaviour=LOGGED,
    ),
}
"""ModelCheckpoint and EarlyStopping behaviour: files, attributes and hooks equal Lightning's."""

PRE_RUN_ERRORS: dict[str, ResumeScenario] = {
    "ckpt_path_best_without_callback": ResumeScenario(ONE_EPOCH, dict(limit_test_batches=1), pick="best", entry="test"),
    "ckpt_path_best_never_saved": ResumeScenario(
        ONE_EPOCH, dict(limit_test_batches=1), pick="best", second_checkpoint=dict(monitor="val_loss"), entry="test"
    ),
}
"""An unusable ``ckpt_path`` value: the same error as Lightning's, raised before any hook
(Lightning raises these inside the run, after ``on_exception``)."""


def run_fit_then(
    pl: types.ModuleType, entry: str, ckpt_path: str | None, with_model: bool, seed: int = 0
) -> dict[str, Any]:
    """Fit 4 epochs with ModelCheckpoint(monitor="val_loss", save_last=True), then ``entry`` on the same
    Trainer (with a new module or none) and ``ckpt_path``: which file was loaded, and the events."""
    ns = build(pl)
    ns.behaviour.log_metrics = True
    tmp = tempfile.mkdtemp(prefix="lc_best_")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _seed(pl, seed)
        ck = pl.callbacks.ModelCheckpoint(dirpath=os.path.join(tmp, "ckpts"), monitor="val_loss", save_last=True)
        kwargs = {**BASE_KWARGS, **FOUR_EPOCHS, "enable_checkpointing": True, "limit_test_batches": 1}
        trainer = pl.Trainer(**kwargs, callbacks=[ns.RecordingCallback(0), ck], default_root_dir=tmp)
        trainer.fit(ns.RecModule())
        ns.events.clear()
        getattr(trainer, entry)(ns.RecModule() if with_model else None, ckpt_path=ckpt_path)
    loaded = [e["args"]["checkpoint"] for e in ns.events if e["hook"] == "on_load_checkpoint" and e["src"] == "module"]
    return {
        "events": list(ns.events),
        "loaded": loaded,
        "ckpt_path": os.path.basename(trainer.ckpt_path) if trainer.ckpt_path else None,
        "best": os.path.basename(ck.best_model_path),
        "warnings": sorted({str(w.message).split(".")[0] for w in caught if "ckpt_path" in str(w.message)}),
    }
