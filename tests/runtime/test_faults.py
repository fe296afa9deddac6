"""Interruptions by systematic fault injection (spec section 4, with lightcycle's deviations).

For a run, every hook site it reaches (each hook and each occurrence, on a callback, the
module or the datamodule, steps, dataloader and batch-transfer hooks included) gets an
exception injected there (the hook raises instead of running) by the public kit,
:func:`lightcycle.testing.interruption_sweep`, with its four fault kinds: a RuntimeError, a
KeyboardInterrupt, a custom BaseException subclass, and a RuntimeError followed by a second
failure inside another callback's on_exception (the kit's handler, first in the list). Each
injection checks the exception contract:

- the very exception object reaches the caller (KeyboardInterrupt too: deviation 1), with
  a note describing the secondary failure when there is one (deviation 2);
- status is interrupted, the stage is reset, the lifecycle is back in idle;
- every callback's on_exception fires exactly once, with that object, and the datamodule's
  after them; they come right after the hook that raised and nothing else fires after
  them (no teardown, no *_end hook, no checkpoint save); the internal teardown runs
  (loggers finalized "failed"), a failing handler notwithstanding;
- the recorded trace passes ``lightcycle verify``;
- the same Trainer, module and callbacks then run again to completion.

One small configuration of each entry point is swept exhaustively; Hypothesis then samples
sites on drawn configurations. The kit's pytest plugin prints the number of sites tried.
"""

from __future__ import annotations

import os
import warnings
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lightcycle.states.stages import TrainerStatus
from lightcycle.testing import FAULTS, OnExceptionFailure, Outcome, Site, enumerate_sites, inject, interruption_sweep
from lightcycle.verify import verify_trace
from tests.faults import Config, Run, make_run

EXHAUSTIVE: dict[str, Config] = {
    "fit": Config(
        trainer=dict(max_epochs=1, limit_train_batches=2, limit_val_batches=1, num_sanity_val_steps=1),
        checkpointing=True,  # ModelCheckpoint saves in on_train_epoch_end: state_dict/on_save_checkpoint sites
    ),
    "validate": Config(entry="validate", datamodule=True, batches=(1, 2)),
    "test": Config(entry="test", batches=(1, 2)),
    "predict": Config(entry="predict", datamodule=True, batches=(1, 2)),
}
"""One small configuration per entry point: fit with a sanity check, validation and a
checkpoint save; the others with two batches, validate and predict through a datamodule."""


class Target:
    """``make_trainer`` and ``run`` for the kit's sweep over one configuration, keeping each Run."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.runs: dict[int, Run] = {}

    def make_trainer(self) -> Any:
        run = make_run(self.cfg)
        self.runs = {id(run.trainer): run}  # one at a time: the sweep checks each before the next
        return run.trainer

    def run(self, trainer: Any) -> None:
        run = self.runs[id(trainer)]
        kwargs: dict[str, Any] = {} if run.datamodule is None else {"datamodule": run.datamodule}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            getattr(trainer, self.cfg.entry)(run.model, **kwargs)


# --------------------------------------------------------------------------- the check


def _pairs(run: Run) -> list[tuple[str, str]]:
    return [(e["src"], e["hook"]) for e in run.first.events]


def contract_problems(run: Run, outcome: Outcome, reference: Run | None = None) -> list[str]:
    """What an interrupted run broke of the exception contract (empty when nothing)."""
    exc = outcome.injected
    problems: list[str] = []
    trainer = run.trainer
    if not outcome.reached or exc is None:
        return [f"{outcome.site.key} [{outcome.fault}]: the site was not reached"]

    # the exception that reached the caller
    if outcome.raised is not exc:
        problems.append(f"caller got {outcome.raised!r}, not the injected {exc!r}")
    notes = [n for n in getattr(exc, "__notes__", []) if "lightcycle:" in n and "also failed" in n]
    if outcome.fault == "on_exception_failure":
        if not any("OnExceptionFailure" in n and "on_exception" in n for n in notes):
            problems.append(f"no note about the failure inside on_exception: {notes}")
        if not any(isinstance(e, OnExceptionFailure) for e in trainer._driver.secondary_errors):
            problems.append(f"driver.secondary_errors lacks the failure: {trainer._driver.secondary_errors}")
    elif notes:
        problems.append(f"unexpected notes: {notes}")

    # trainer state after the interruption
    st_ = trainer.state
    if st_.status is not TrainerStatus.INTERRUPTED or not trainer.interrupted:
        problems.append(f"status {st_.status!r}, interrupted={trainer.interrupted}")
    if st_.stage is not None:
        problems.append(f"stage {st_.stage!r} left set")
    if st_.fn is None or st_.fn.value != run.cfg.entry:
        problems.append(f"fn {st_.fn!r}")
    if trainer.lifecycle_state != "idle":
        problems.append(f"lifecycle left in {trainer.lifecycle_state!r}")
    if run.logger.finalized != ["failed"]:
        problems.append(f"internal teardown: logger finalized {run.logger.finalized}, expected ['failed']")

    # on_exception: once per callback, the very object, datamodule after the callbacks
    for probe in (run.first, run.second):
        if len(probe.exceptions) != 1 or probe.exceptions[0] is not exc:
            problems.append(f"{probe.who}.on_exception got {probe.exceptions!r}")
    if run.datamodule is not None and (len(run.datamodule.exceptions) != 1 or run.datamodule.exceptions[0] is not exc):
        problems.append(f"datamodule.on_exception got {run.datamodule.exceptions!r}")

    # right after the hook that raised: the handlers, then nothing
    expected = [("callback:Probe", "on_exception"), ("callback:Probe[1]", "on_exception")]
    if run.cfg.checkpointing:
        expected.append(("callback:ModelCheckpoint", "on_exception"))  # last in trainer.callbacks
    if run.datamodule is not None:
        expected.append(("datamodule", "on_exception"))
    if outcome.after_hooks != expected:
        problems.append(f"after the raising hook came {outcome.after_hooks}, expected {expected}")

    # the trace itself follows the declaration
    for probe in (run.first, run.second):
        verdict = verify_trace(probe.events)
        if not verdict.ok:
            problems.append(f"{probe.who}'s trace fails verify:\n{verdict.report()}")

    # the same Trainer, module and callbacks run again
    run.reset()
    run.go()
    if run.exception is not None:
        problems.append(f"rerun raised {run.exception!r}")
    elif trainer.state.status is not TrainerStatus.FINISHED or trainer.state.stage is not None:
        problems.append(f"rerun ended {trainer.state.status!r} at stage {trainer.state.stage!r}")
    if run.first.exceptions or run.second.exceptions:
        problems.append("on_exception fired during the rerun")
    if run.logger.finalized != ["success"]:
        problems.append(f"rerun: logger finalized {run.logger.finalized}")
    verdict = verify_trace(run.first.events)
    if not verdict.ok:
        problems.append(f"rerun trace fails verify:\n{verdict.report()}")
    if reference is not None and _pairs(run) != _pairs(reference):
        problems.append("rerun's hooks differ from a clean run's")
    return [f"{outcome.site.key} [{outcome.fault}]: {p}" for p in problems]


def _reference(cfg: Config) -> Run:
    run = make_run(cfg).go()
    assert run.exception is None, f"the clean run failed: {run.exception!r}"
    verdict = verify_trace(run.first.events)
    assert verdict.ok, verdict.report()
    return run


def sweep_check(target: Target, reference: Run | None) -> Any:
    """The kit's ``check``: the whole contract, failing with every problem found."""

    def check(trainer: Any, outcome: Outcome) -> None:
        problems = contract_problems(target.runs[id(trainer)], outcome, reference)
        assert not problems, "\n".join(problems)

    return check


# --------------------------------------------------------------------------- exhaustive sweep

# every test here runs once per lightcycle event executor (tests/conftest.py)
pytestmark = pytest.mark.usefixtures("each_executor")

_SITE_CACHE: dict[tuple[str, str], tuple[Run, list[Site]]] = {}


def _sites_of(name: str) -> tuple[Run, list[Site]]:
    """The uninjected run of ``name`` and its hook sites, under the executor of this pass."""
    key = (os.environ.get("LIGHTCYCLE_EXECUTOR", ""), name)
    if key not in _SITE_CACHE:
        target = Target(EXHAUSTIVE[name])
        _SITE_CACHE[key] = (_reference(EXHAUSTIVE[name]), enumerate_sites(target.make_trainer, target.run))
    return _SITE_CACHE[key]


def _src_hook(site: Site) -> tuple[str, str]:
    return site.receiver.split(":")[0], site.hook


def test_exhaustive_sites_cover_every_kind_of_hook() -> None:
    """The sweep below really reaches callbacks, the module, steps, dataloader, transfer,
    datamodule and checkpoint hooks (so it cannot shrink unnoticed)."""
    _, fit_sites = _sites_of("fit")
    names = {_src_hook(s) for s in fit_sites}
    for needed in [
        ("callback", "setup"),
        ("callback", "on_sanity_check_start"),
        ("module", "configure_callbacks"),
        ("module", "configure_optimizers"),
        ("module", "val_dataloader"),
        ("module", "train_dataloader"),
        ("module", "on_before_batch_transfer"),
        ("module", "transfer_batch_to_device"),
        ("module", "training_step"),
        ("module", "optimizer_step"),
        ("module", "backward"),
        ("module", "validation_step"),
        ("callback", "on_before_optimizer_step"),
        ("callback", "on_train_epoch_end"),
        ("callback", "state_dict"),
        ("callback", "on_save_checkpoint"),
        ("module", "on_save_checkpoint"),
        ("callback", "teardown"),
        ("module", "teardown"),
    ]:
        assert needed in names, f"fit never reaches {needed}"
    receivers = {s.receiver for s in fit_sites}
    assert {"callback:Probe", "callback:Probe[1]", "callback:ModelCheckpoint", "module"} <= receivers
    _, val_sites = _sites_of("validate")
    assert {("datamodule", "setup"), ("datamodule", "val_dataloader"), ("datamodule", "teardown")} <= {
        _src_hook(s) for s in val_sites
    }
    _, predict_sites = _sites_of("predict")
    assert ("module", "predict_step") in {_src_hook(s) for s in predict_sites}
    assert len(fit_sites) >= 140


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("name", sorted(EXHAUSTIVE))
def test_every_site_of_a_small_run(name: str, fault: str, record_property: Any) -> None:
    """Inject ``fault`` at every hook site of the small ``name`` run, one fresh Trainer each, with
    the public kit's sweep: the second recorder's callback hooks, ModelCheckpoint's, the module's
    and the datamodule's (the first recorder's hooks are the same kind of site as the second's,
    left out to keep the sweep's time)."""
    ref, all_sites = _sites_of(name)
    only = [s.key for s in all_sites if s.receiver != "callback:Probe"]
    target = Target(EXHAUSTIVE[name])
    check = sweep_check(target, None if name == "fit" else ref)
    report = interruption_sweep(
        target.make_trainer, target.run, check, faults=[fault], only=only, name=f"test_faults {name}"
    )
    record_property("sites", len(report.tried))
    assert [s.key for s in report.tried] == only
    assert report.ok, str(report)


# --------------------------------------------------------------------------- sampled on drawn configurations


@st.composite
def configs(draw: st.DrawFn) -> Config:
    entry = draw(st.sampled_from(["fit", "fit", "fit", "validate", "test", "predict"]))
    datamodule = draw(st.booleans())
    n_train, n_eval = draw(st.integers(1, 3)), draw(st.integers(1, 2))
    if entry != "fit":
        return Config(
            entry=entry,
            datamodule=datamodule,
            batches=(1, n_eval),
            trainer={f"limit_{ {'validate': 'val'}.get(entry, entry) }_batches": n_eval},
        )
    manual = draw(st.booleans())
    trainer: dict[str, Any] = dict(
        max_epochs=draw(st.integers(1, 2)),
        num_sanity_val_steps=draw(st.integers(0, 2)),
        limit_val_batches=draw(st.integers(0, 2)),
        check_val_every_n_epoch=draw(st.sampled_from([1, 2])),
    )
    if not manual:
        trainer["accumulate_grad_batches"] = draw(st.integers(1, 2))
    if draw(st.booleans()):
        trainer["max_steps"] = draw(st.integers(1, 4))
    return Config(
        trainer=trainer,
        entry="fit",
        datamodule=datamodule,
        manual=manual,
        batches=(n_train, n_eval),
        skip_at=draw(st.none() | st.tuples(st.integers(0, 1), st.integers(0, 2))),
        stop_at=draw(st.none() | st.tuples(st.integers(0, 1), st.integers(0, 2))),
        scheduler=None if manual else draw(st.sampled_from([None, "step", "epoch"])),
        checkpointing=draw(st.booleans()),
    )


@given(cfg=configs(), data=st.data())
@settings(max_examples=max(10, settings().max_examples // 2))
def test_sampled_sites_of_drawn_runs(cfg: Config, data: st.DataObject) -> None:
    """A drawn configuration, a drawn hook site of it, a drawn fault kind: the same contract."""
    ref = _reference(cfg)
    target = Target(cfg)
    all_sites = enumerate_sites(target.make_trainer, target.run)
    site = data.draw(st.sampled_from(all_sites), label="site")
    fault = data.draw(st.sampled_from(FAULTS), label="fault")
    trainer, outcome = inject(target.make_trainer, target.run, site, fault)
    problems = contract_problems(target.runs[id(trainer)], outcome, reference=None if cfg.entry == "fit" else ref)
    assert not problems, "\n".join(problems[:8])
