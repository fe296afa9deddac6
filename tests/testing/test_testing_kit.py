"""The public testing kit (``lightcycle.testing``): the interruption sweep on the worked
example of docs/testing-kit.md and on a LoopDriver loop, the hook-order assertions, the
Hypothesis strategies and the pytest plugin (in a pytest run of its own, in a subprocess)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path
from typing import Any

import pytest
import tomllib
import torch
from hypothesis import given

import lightcycle as L
from lightcycle import LoopDriver
from lightcycle.callbacks import HookRecorder
from lightcycle.errors import SIGTERMException
from lightcycle.testing import (
    FAULTS,
    Outcome,
    SweepError,
    assert_hook_order,
    interruption_sweep,
    tiny_loaders,
    tiny_module,
    verify,
)
from lightcycle.testing.strategies import QUIET, any_configs, evaluation_configs, run_config, trainer_configs
from tests import kit
from tests.paths import ROOT

# --------------------------------------------------------------------------- the worked example


class LeakyLog(L.Callback):
    """Opens its file in on_fit_start and closes it only in on_fit_end: an interrupted run leaks it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fh: Any = None

    def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
        self.fh = open(self.path, "w")  # noqa: SIM115 - kept open across the run, the point of the example

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        self.fh.write(f"epoch {trainer.current_epoch}\n")

    def on_fit_end(self, trainer: Any, pl_module: Any) -> None:
        self.fh.close()


class FixedLog(LeakyLog):
    """The fix: close on the interruption path too (on_exception), and in teardown."""

    def _close(self) -> None:
        if self.fh is not None and not self.fh.closed:
            self.fh.close()

    def on_fit_end(self, trainer: Any, pl_module: Any) -> None:
        self._close()

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        self._close()

    def teardown(self, trainer: Any, pl_module: Any, stage: str) -> None:
        self._close()


def _log_sweep(tmp_path: Path, cls: type[LeakyLog], **kwargs: Any) -> Any:
    def make_trainer() -> L.Trainer:
        return L.Trainer(
            max_epochs=1,
            limit_train_batches=1,
            limit_val_batches=1,
            num_sanity_val_steps=0,
            callbacks=[cls(tmp_path / "log.txt")],
            **QUIET,
        )

    def run(trainer: L.Trainer) -> None:
        trainer.fit(tiny_module(batches=1))

    def check(trainer: L.Trainer, outcome: Outcome) -> None:
        assert outcome.raised is outcome.injected, f"the caller got {outcome.raised!r}"
        (log,) = [cb for cb in trainer.callbacks if isinstance(cb, LeakyLog)]
        assert log.fh is None or log.fh.closed, "the log file is left open"

    return interruption_sweep(make_trainer, run, check, name="worked example", **kwargs)


def test_the_sweep_finds_the_leak_at_exactly_the_sites_after_the_file_is_opened(tmp_path: Path) -> None:
    report = _log_sweep(tmp_path, LeakyLog, faults=["exception", "keyboard_interrupt"])
    keys = [s.key for s in report.sites]
    opened = keys.index("callback:LeakyLog.on_fit_start#0")
    closed = keys.index("callback:LeakyLog.on_fit_end#0")
    # every site after the open, up to the close (whose raising call never closes it)
    leaking = report.sites[opened + 1 : closed + 1]
    assert len(leaking) >= 20
    assert report.failing_sites() == leaking
    assert {(f.site.key, f.fault) for f in report.failures} == {
        (s.key, f) for s in leaking for f in ("exception", "keyboard_interrupt")
    }
    assert all(f.message.startswith("the log file is left open") for f in report.failures)
    text = str(report)
    assert "FAIL" in text and "reproduce: interruption_sweep(" in text and "callback:LeakyLog.on_fit_end#0" in text


def test_the_fixed_callback_passes_every_site_and_fault(tmp_path: Path) -> None:
    """One full sweep (every site, all four fault kinds) on a tiny run."""
    report = _log_sweep(tmp_path, FixedLog)
    assert report.faults == FAULTS
    assert report.tried == report.sites and len(report.sites) >= 40
    assert report.ok, str(report)
    assert report.injections == 4 * len(report.sites)
    assert "0 failed" in str(report)


def test_a_failure_reproduces_alone_and_sampling_is_seeded(tmp_path: Path) -> None:
    full = _log_sweep(tmp_path, LeakyLog, faults=["base_exception"], max_sites=8, seed=3)
    again = _log_sweep(tmp_path, LeakyLog, faults=["base_exception"], max_sites=8, seed=3)
    assert [s.key for s in full.tried] == [s.key for s in again.tried]
    assert len(full.tried) == 8 and [s.key for s in full.tried] == [s.key for s in full.sites if s in full.tried]
    assert full.failures, "8 of ~45 sites, most of them leak: the draw must hit one"
    first = full.failures[0]
    alone = _log_sweep(tmp_path, LeakyLog, faults=[first.fault], only=[first.site.key])
    assert [(f.site.key, f.fault) for f in alone.failures] == [(first.site.key, first.fault)]
    assert first.reproduction == (
        f"interruption_sweep(make_trainer, run, check, faults=['base_exception'], only=['{first.site.key}'])"
    )


def test_outcome_says_what_fired_after_the_fault(tmp_path: Path) -> None:
    seen: list[Outcome] = []

    def make_trainer() -> L.Trainer:
        return L.Trainer(max_steps=1, limit_val_batches=0, callbacks=[FixedLog(tmp_path / "f")], **QUIET)

    interruption_sweep(
        make_trainer,
        lambda t: t.fit(tiny_module(batches=1)),
        lambda t, o: seen.append(o),
        faults=["on_exception_failure"],
        only=["module.training_step#0"],
    )
    (outcome,) = seen
    assert outcome.site.state == "fit.train.epoch.batch.closure.forwarded"
    assert outcome.after_hooks == [("callback:FixedLog", "on_exception")]  # nothing else: no teardown, no *_end
    assert any("OnExceptionFailure" in n for n in outcome.injected.__notes__)  # the kit's failing handler


@pytest.mark.skipif(os.name != "posix", reason="the sigterm fault is POSIX only")
def test_a_sigterm_at_each_site_stops_the_run_where_lightcycle_acts_on_it(tmp_path: Path) -> None:
    raised: dict[str, BaseException | None] = {}

    def check(trainer: L.Trainer, outcome: Outcome) -> None:
        raised[outcome.site.key] = outcome.raised
        assert outcome.injected is None and trainer.received_sigterm
        assert outcome.raised is None or isinstance(outcome.raised, SIGTERMException), outcome.raised
        (log,) = [cb for cb in trainer.callbacks if isinstance(cb, LeakyLog)]
        assert log.fh is None or log.fh.closed, "the log file is left open"

    def make_trainer() -> L.Trainer:
        return L.Trainer(max_epochs=1, limit_val_batches=0, callbacks=[FixedLog(tmp_path / "s.txt")], **QUIET)

    before = signal.getsignal(signal.SIGTERM)
    report = interruption_sweep(make_trainer, lambda t: t.fit(tiny_module(batches=2)), check, faults=["sigterm"])
    assert report.ok, str(report)
    stopped = [k for k, r in raised.items() if r is not None]
    # a signal during the first batch stops the run at the second batch's start; one in the
    # last batch's end-of-batch work stops it after on_train_epoch_end; after that nothing stops it
    assert "module.training_step#0" in stopped and "callback:FixedLog.on_fit_end#0" not in stopped
    assert raised["callback:FixedLog.on_fit_end#0"] is None
    assert signal.getsignal(signal.SIGTERM) is before  # the sweep's own handler is gone again


def test_bad_input_is_refused_before_any_injection(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"unknown fault kind.*choose from exception, keyboard_interrupt"):
        interruption_sweep(lambda: None, lambda t: None, faults=["segfault"])
    with pytest.raises(SweepError, match="must return a lightcycle Trainer or LoopDriver"):
        interruption_sweep(lambda: object(), lambda t: None)
    quiet = QUIET

    def broken(trainer: L.Trainer) -> None:
        raise ValueError("my bug")

    with pytest.raises(SweepError, match="the uninterrupted run raised ValueError"):
        interruption_sweep(lambda: L.Trainer(max_steps=1, **quiet), broken)
    with pytest.raises(SweepError, match="reached no hook"):
        interruption_sweep(lambda: L.Trainer(max_steps=1, **quiet), lambda t: None)
    with pytest.raises(SweepError, match="reaches no site"):
        interruption_sweep(
            lambda: L.Trainer(max_steps=1, limit_val_batches=0, **quiet),
            lambda t: t.fit(tiny_module(batches=1)),
            only=["module.training_step#7"],
        )
    with pytest.raises(ValueError, match="max_sites must be at least 1"):
        interruption_sweep(lambda: L.Trainer(**quiet), lambda t: None, max_sites=0)


# --------------------------------------------------------------------------- a LoopDriver loop


Plain = kit.plain_module_class(L)  # no steps: the custom loop is the step


def test_a_sweep_over_a_loop_driver_custom_loop(tmp_path: Path) -> None:
    loaders = tiny_loaders(batches=2, eval_batches=1)

    def make_trainer() -> LoopDriver:
        return LoopDriver(Plain(), callbacks=[FixedLog(tmp_path / "loop.txt")])

    def run(lc: LoopDriver) -> None:
        model = lc.lightning_module
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        with lc.fit(optimizers=[opt]):
            for _epoch in lc.epochs(max_epochs=1):
                for i, batch in enumerate(loaders.train):
                    x, y = lc.train_batch_start(batch, i)
                    opt.zero_grad()
                    loss = ((model(x) - y) ** 2).mean()
                    lc.backward(loss)
                    lc.optimizer_step(opt)
                    lc.train_batch_end(loss)
                with lc.validation():
                    for i, batch in enumerate(loaders.val):
                        lc.validation_batch_start(batch, i)
                        lc.validation_batch_end()

    def check(lc: LoopDriver, outcome: Outcome) -> None:
        assert outcome.raised is outcome.injected
        assert lc.state.status is L.TrainerStatus.INTERRUPTED and lc._driver.state == "idle"
        (log,) = [cb for cb in lc.callbacks if isinstance(cb, LeakyLog)]
        assert log.fh is None or log.fh.closed, "the log file is left open"
        if isinstance(log, FixedLog):
            assert (outcome.after_hooks + [("", "")])[0] == ("callback:FixedLog", "on_exception"), outcome.after_hooks

    report = interruption_sweep(make_trainer, run, check, faults=["exception", "keyboard_interrupt"], name="loop")
    assert report.ok, str(report)
    hooks = {(s.receiver, s.hook) for s in report.sites}
    assert {
        ("module", "on_before_backward"),
        ("module", "backward"),
        ("module", "on_train_batch_start"),
        ("module", "on_validation_batch_end"),
        ("callback:FixedLog", "on_fit_end"),
    } <= hooks
    # the leaky callback fails the same sweep, at the sites from its file's opening to its closing
    leaky = interruption_sweep(
        lambda: LoopDriver(Plain(), callbacks=[LeakyLog(tmp_path / "l.txt")]), run, check, faults=["exception"]
    )
    keys = [s.key for s in leaky.sites]
    opened, closed = keys.index("callback:LeakyLog.on_fit_start#0"), keys.index("callback:LeakyLog.on_fit_end#0")
    assert leaky.failing_sites() == leaky.sites[opened + 1 : closed + 1]


# --------------------------------------------------------------------------- hook order and verify


def _recorded(tmp_path: Path) -> HookRecorder:
    rec = HookRecorder()
    trainer = L.Trainer(
        max_epochs=2, limit_train_batches=2, limit_val_batches=1, num_sanity_val_steps=0, callbacks=[rec], **QUIET
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(tiny_module())
    return rec


def test_assert_hook_order_relative_each_time_and_immediately(tmp_path: Path) -> None:
    rec = _recorded(tmp_path)
    assert_hook_order(rec, ["setup", "on_fit_start", "on_train_epoch_end", "on_fit_end", "teardown"])
    assert_hook_order(
        rec.events,
        ["callback.on_train_batch_start", "module.training_step", "callback.on_train_batch_end"],
        each_time=True,
    )
    assert_hook_order(
        rec,
        ["module.on_before_backward", "module.backward", "callback.on_after_backward", "on_after_backward"],
        each_time=True,
        immediately=True,
    )
    with pytest.raises(AssertionError, match=r"expected 'on_fit_start' after 'on_fit_end', at event \d+") as err:
        assert_hook_order(rec, ["on_fit_end", "on_fit_start"])
    assert "(end of trace)" in str(err.value)
    with pytest.raises(AssertionError, match=r"immediately after 'module\.training_step'") as err:
        assert_hook_order(rec, ["module.training_step", "callback.on_train_batch_end"], immediately=True)
    assert ">>" in str(err.value) and "module.on_before_zero_grad" in str(err.value)
    with pytest.raises(AssertionError, match="each time"):
        assert_hook_order(rec, ["callback.on_train_epoch_start", "callback.on_validation_start"], each_time=True)
        assert_hook_order(rec, ["callback.on_train_batch_start", "callback.on_validation_start"], each_time=True)
    with pytest.raises(ValueError, match="at least one hook"):
        assert_hook_order(rec, [])
    with pytest.raises(TypeError, match="HookRecorder"):
        assert_hook_order(42, ["setup"])


def test_verify_as_a_function(tmp_path: Path) -> None:
    rec = _recorded(tmp_path)
    assert verify(rec).ok
    rec.write_jsonl(tmp_path / "t.jsonl")
    assert verify(tmp_path / "t.jsonl").ok
    cut = rec.events[:-5]
    assert not verify(cut).ok and verify(cut, partial=True).ok
    assert "FAIL" in verify(cut).report()


# --------------------------------------------------------------------------- strategies


@given(config=any_configs())
def test_every_drawn_configuration_is_accepted_and_runs(config: Any) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer = run_config(config, callbacks=[HookRecorder()])
    assert trainer.state.status is L.TrainerStatus.FINISHED
    assert verify(trainer.callbacks[0]).ok


def test_strategy_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="unknown entry point"):
        evaluation_configs(("fit",))
    with pytest.raises(ValueError, match="at least 1"):
        trainer_configs(max_epochs=0)


# --------------------------------------------------------------------------- the pytest plugin

_PLUGIN_TEST = """
import pytest
import lightcycle as L
from lightcycle.testing import tiny_module

class Leaky(L.Callback):
    opened = False
    def on_fit_start(self, trainer, pl_module):
        self.opened = True
    def on_fit_end(self, trainer, pl_module):
        self.opened = False

def make_trainer():
    return L.Trainer(max_steps=1, limit_val_batches=0, enable_progress_bar=False, logger=False,
                     enable_model_summary=False, enable_checkpointing=False, callbacks=[Leaky()])

def run(trainer):
    trainer.fit(tiny_module(batches=1))

@pytest.mark.lightcycle_fault_sites(make_trainer, run, faults=["exception", "keyboard_interrupt"], max_sites=5, seed=1)
def test_each_site(lightcycle_injection):
    outcome = lightcycle_injection.outcome
    assert outcome.raised is outcome.injected
    (cb,) = [c for c in lightcycle_injection.trainer.callbacks if isinstance(c, Leaky)]
    assert not cb.opened, "left open at " + outcome.site.key

def test_kit_fixture(lightcycle_kit):
    assert "exception" in lightcycle_kit.FAULTS
    report = lightcycle_kit.interruption_sweep(make_trainer, run, faults=["base_exception"], max_sites=2)
    assert len(report.tried) == 2
    assert lightcycle_kit.strategies.trainer_configs() is not None
"""


def test_the_plugin_in_a_pytest_run_of_its_own(tmp_path: Path) -> None:
    (tmp_path / "test_user.py").write_text(textwrap.dedent(_PLUGIN_TEST))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "lightcycle.testing.pytest_plugin",
            "-p",
            "no:cacheprovider",
            "-W",
            "ignore",
            "test_user.py",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    out = proc.stdout + proc.stderr
    # 5 sites x 2 faults, one test each; the leak shows at the sites between on_fit_start and on_fit_end
    assert (
        "lightcycle fault injection" in out and "test_each_site: 5 hook sites x 2 fault kinds, 10 injections" in out
    ), out
    assert "sweep: 2 hook sites x 1 fault kinds, 2 injections" in out, out  # the fixture's sweep
    assert "left open at callback:Leaky.on_fit_end#0" in out, out
    counts = re.search(r"(\d+) failed, (\d+) passed", out)
    assert counts is not None and int(counts[1]) > 0 and int(counts[1]) + int(counts[2]) == 11, out
    assert "test_each_site[callback:Leaky.on_fit_end#0-keyboard_interrupt]" in out, out  # ids: site-fault
    assert proc.returncode == 1, out  # the leaky callback fails some of its sites


def test_the_entry_point_loads_the_plugin_without_importing_torch(tmp_path: Path) -> None:
    """pyproject's pytest11 entry point, installed as a distribution's metadata would be: a pytest
    run that uses nothing of the kit gets the marker, and torch stays unimported."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["entry-points"]["pytest11"] == {"lightcycle": "lightcycle.testing.pytest_plugin"}
    info = tmp_path / "site" / "lightcycle_entry-0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: lightcycle-entry\nVersion: 0\n")
    (info / "entry_points.txt").write_text("[pytest11]\nlightcycle = lightcycle.testing.pytest_plugin\n")
    (tmp_path / "test_plain.py").write_text(
        "import sys\n"
        "def test_plain(pytestconfig):\n"
        "    assert pytestconfig.pluginmanager.has_plugin('lightcycle')\n"
        "    assert any(m.startswith('lightcycle_fault_sites') for m in pytestconfig.getini('markers'))\n"
        "    assert 'torch' not in sys.modules, 'the plugin imported torch'\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(tmp_path / "site")])}
    env.pop("PYTEST_DISABLE_PLUGIN_AUTOLOAD", None)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_plain.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "lightcycle fault injection" not in proc.stdout  # no summary when nothing was swept
