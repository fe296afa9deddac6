"""Interrupted runs whose hook traces look impossible but are real: recorded from Lightning, rerun live.

Each scenario runs the recording callback and module of :mod:`tests.recording` (the format of
``tests/fixtures/lightning-2.6.6``) in one of the shapes ``lightcycle verify`` must accept:

- ``fit_exception_entry`` / ``validate_exception_entry``: the entry point fails before its first
  hook (bad arguments): the trace is one ``on_exception``; ``fit_retry_after_exception_entry``:
  then a retry that completes, module hooks included;
- ``fit_exception_on_fit_end``, ``fit_exception_teardown``, ``fit_exception_callback_teardown``:
  a completed run followed by ``on_exception`` (nothing after it: spec section 4);
- ``fit_on_exception_checkpoint`` / ``..._first``: Lightning's ``OnExceptionCheckpoint`` saves
  inside ``on_exception``, listed after or before the recording callback (Lightning moves
  checkpoint callbacks last, so both of its traces save after the recorder's ``on_exception``;
  lightcycle's stand-in, not a ``Checkpoint``, keeps the order and saves before it).

Record the Lightning fixtures again (from the repository root; a few seconds)::

    python -m tests.interrupted --out tests/fixtures/lightning-2.6.6

The tests run the same scenarios live under lightcycle (:func:`run`), which has no
``OnExceptionCheckpoint``: a callback saving in ``on_exception`` stands in for it.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import tempfile
import types
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, TensorDataset

from tests.recording import BASE_KWARGS, build, end_state

TRAINER = dict(max_epochs=1, limit_train_batches=2, limit_val_batches=1)


@dataclass(frozen=True)
class Interrupted:
    """One scenario: Trainer kwargs, injections, and how the entry point is called."""

    entry: str = "fit"
    trainer: dict[str, Any] = field(default_factory=lambda: dict(TRAINER))
    behaviour: dict[str, Any] = field(default_factory=dict)
    bad_call: bool = False  # call the entry point with arguments it rejects before its first hook
    save_on_exception: str | None = None  # "after" / "before" the recording callback
    retry: bool = False  # after the bad call, call the entry point again, properly (a retry loop)


SCENARIOS = {
    "fit_exception_entry": Interrupted(bad_call=True),
    "validate_exception_entry": Interrupted(entry="validate", trainer=dict(limit_val_batches=1), bad_call=True),
    "fit_retry_after_exception_entry": Interrupted(bad_call=True, retry=True),
    "fit_exception_on_fit_end": Interrupted(
        behaviour=dict(raise_in={("module", "on_fit_end"): RuntimeError("injected")})
    ),
    "fit_exception_teardown": Interrupted(behaviour=dict(raise_in={("module", "teardown"): RuntimeError("injected")})),
    "fit_exception_callback_teardown": Interrupted(
        behaviour=dict(raise_in={("callback", "teardown"): RuntimeError("injected")})
    ),
    "fit_on_exception_checkpoint": Interrupted(
        behaviour=dict(step_raise={(0, 1): RuntimeError("injected: training_step")}), save_on_exception="after"
    ),
    "fit_on_exception_checkpoint_first": Interrupted(
        behaviour=dict(step_raise={(0, 1): RuntimeError("injected: training_step")}), save_on_exception="before"
    ),
}


def _saver(pl: types.ModuleType, dirpath: str) -> Any:
    """Lightning's ``OnExceptionCheckpoint``, or a callback doing what it does (lightcycle has none)."""
    real = getattr(getattr(pl, "callbacks", None), "OnExceptionCheckpoint", None)
    if real is not None:
        return real(dirpath)

    class SaveOnException(pl.Callback):  # type: ignore[name-defined,misc]
        def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
            trainer.save_checkpoint(os.path.join(dirpath, "on_exception.ckpt"))

    return SaveOnException()


def _bad_call(pl: types.ModuleType, trainer: Any, entry: str, model: Any) -> Any:
    """An entry-point call that fails inside Lightning's interrupt handler, before any hook."""
    loader = DataLoader(TensorDataset(torch.zeros(4, 4), torch.zeros(4, 1)), batch_size=2)
    if entry == "fit":  # loaders and a datamodule at once
        return trainer.fit(model, train_dataloaders=loader, datamodule=pl.LightningDataModule())
    return getattr(trainer, entry)(model, loader, datamodule=pl.LightningDataModule())


def run(pl: types.ModuleType, name: str) -> dict[str, Any]:
    """Run scenario ``name`` under ``pl``; returns its events, end state and the exception text."""
    sc = SCENARIOS[name]
    ns = build(pl)
    for k, v in sc.behaviour.items():
        setattr(ns.behaviour, k, copy.deepcopy(v))
    pl.seed_everything(0)
    tmp = tempfile.mkdtemp(prefix="lc_interrupted_")
    cbs: list[Any] = [ns.RecordingCallback(0)]
    kwargs = {**BASE_KWARGS, **sc.trainer}
    if sc.save_on_exception is not None:
        saver = _saver(pl, os.path.join(tmp, "ckpts"))
        cbs = [*cbs, saver] if sc.save_on_exception == "after" else [saver, *cbs]
        # Lightning's OnExceptionCheckpoint is a Checkpoint: refused with checkpointing off
        kwargs["enable_checkpointing"] = isinstance(saver, getattr(pl.callbacks, "Checkpoint", ()))
    exc: str | None = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer = pl.Trainer(**kwargs, callbacks=cbs, default_root_dir=tmp)
        model = ns.RecModule()
        try:
            if sc.bad_call:
                _bad_call(pl, trainer, sc.entry, model)
            else:
                getattr(trainer, sc.entry)(model)
        except BaseException as e:
            exc = f"{type(e).__name__}: {e}".split("\n")[0]
        if sc.retry:
            getattr(trainer, sc.entry)(model)
    return {"events": list(ns.events), "state": end_state(trainer), "exception": exc}


def main() -> None:
    """Record every scenario under pytorch_lightning into ``--out`` (jsonl + meta.json each)."""
    import pytorch_lightning

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="tests/fixtures/lightning-2.6.6")
    ap.add_argument("names", nargs="*", help="scenarios (default: all)")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name in args.names or SCENARIOS:
        result = run(pytorch_lightning, name)
        sc = SCENARIOS[name]
        meta = {
            "name": name,
            "recorded_with": f"pytorch_lightning {pytorch_lightning.__version__}, torch {torch.__version__}",
            "recorder": "python -m tests.interrupted",
            "entry": sc.entry,
            "trainer_kwargs": {**BASE_KWARGS, **sc.trainer},
            "behaviour": repr(sc.behaviour),
            "bad_call": sc.bad_call,
            "save_on_exception": sc.save_on_exception,
            "exception_propagated": result["exception"],
            "state_after": result["state"],
            "n_events": len(result["events"]),
        }
        (out / f"{name}.jsonl").write_text("".join(json.dumps(e) + "\n" for e in result["events"]))
        (out / f"{name}.meta.json").write_text(json.dumps(meta, indent=2) + "\n")
        print(name, len(result["events"]), result["exception"])


if __name__ == "__main__":
    main()
