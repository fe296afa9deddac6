"""Drawn Trainer configurations: lightcycle's trace equals live Lightning's.

Like ``test_differential.py``, but Hypothesis draws the scenario: Trainer limits and
intervals, the entry point, the data sizes, manual optimization, schedulers, gradient
clipping, unsized loaders, the default checkpoint callback, a ``-1`` from
``on_train_batch_start``, and one injection: ``should_stop`` set at
a callback hook, or an exception raised at any recorded hook (callback or module, steps
and dataloader hooks included). Injection points are drawn from the events of a first,
uninjected lightcycle run of the same scenario, so every drawn injection actually fires.

Equality is the same as in ``test_differential.py``: every event (hook, arguments, trainer
state seen at the hook), the end state and the exception text. A configuration that both
frameworks refuse before running counts as equal when the exception types match
(lightcycle refuses before any hook fires; Lightning may fire ``configure_callbacks`` and
``on_exception`` first, and its wording differs: see ``test_bad_input.py``).

CI runs 200 derandomized examples (the ``ci`` profile of tests/conftest.py, raised here;
about 25 s); ``HYPOTHESIS_PROFILE=long`` draws 1000 fresh ones. Differences found so far
are regression scenarios in ``tests/scenarios.py`` (EXTRA, "found by
test_hypothesis_differential") and ``tests/trainer/test_bad_input.py``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
import pytorch_lightning as PL
from hypothesis import event, given, note, settings
from hypothesis import strategies as st

import lightcycle as LC
from tests.differential.test_differential import assert_same_run, lightning_run
from tests.recording import Scenario, run_scenario
from tests.scenarios import EXTRA, SHARED


class InjectedError(Exception):
    """A user-defined exception type (not a RuntimeError): must reach the caller unchanged."""


# every test here runs once per lightcycle event executor (tests/conftest.py)
pytestmark = pytest.mark.usefixtures("each_executor")


# Hooks never used as injection points: on_exception only fires while an injected
# exception is already in flight (a failing handler is test_differential's business).
NO_INJECTION = {("callback", "on_exception")}

# Lightning's own hooks that may fire before it refuses a configuration (lightcycle checks
# everything before the first hook): the model's callbacks are attached, then the loop
# configuration is verified, and the refusal is an interruption.
LIGHTNING_PRE_RUN = {("module", "configure_callbacks"), ("callback", "on_exception")}


# A safety net: the longest drawn run records well under a thousand events; a runaway loop
# (in either framework) raises in the recorder instead of hanging CI.
MAX_EVENTS = 5000

# --------------------------------------------------------------------------- strategies

# Fractions as Lightning and lightcycle both accept them; the int/float distinction matters
# (1 is one batch, 1.0 is all of them), so both kinds are drawn. Arbitrary fractions often
# give 0 batches of a tiny loader (an error in both), so they are drawn less often.
fractions = st.one_of(st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0]), st.sampled_from([0.5, 1.0]), st.floats(0.0, 1.0))
limits = st.one_of(st.none(), st.none(), st.integers(0, 7), st.integers(1, 7), fractions)


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    entry = draw(st.sampled_from(["fit", "fit", "fit", "validate", "test", "predict"]))
    manual = draw(st.booleans())
    trainer: dict[str, Any] = {}

    # Termination: either the epochs or the steps are bounded (max_epochs=None with
    # max_steps=-1 means 1000 epochs in both frameworks: valid, but too slow to draw).
    max_steps = draw(st.one_of(st.just(-1), st.integers(0, 8)))
    if max_steps == -1:
        max_epochs = draw(st.integers(0, 3))
    else:
        max_epochs = draw(st.one_of(st.integers(0, 3), st.none(), st.just(-1)))
    trainer.update(max_epochs=max_epochs, max_steps=max_steps)
    trainer["min_epochs"] = draw(st.one_of(st.none(), st.integers(0, 3)))
    trainer["min_steps"] = draw(st.one_of(st.none(), st.integers(0, 8)))

    for name in ("limit_train_batches", "limit_val_batches", "limit_test_batches", "limit_predict_batches"):
        value = draw(limits)
        if value is not None:
            trainer[name] = value

    # val_check_interval: a fraction in (0, 1] or a batch count >= 1. Lightning also accepts
    # 0.0 (validate every batch) and 0 (a ZeroDivisionError later); lightcycle refuses both
    # at construction (test_bad_input.py), so they are not drawn. A float with
    # check_val_every_n_epoch=None is drawn now and then: both must refuse it.
    every = draw(st.one_of(st.just(1), st.none(), st.integers(1, 3)))
    float_vci = st.one_of(st.sampled_from([0.25, 0.5, 1.0]), st.floats(0.01, 1.0))
    int_vci = st.integers(1, 8)
    if every is None:
        vci = draw(st.one_of(st.none(), int_vci, int_vci, int_vci, float_vci))
    else:
        vci = draw(st.one_of(st.none(), int_vci, float_vci, float_vci))
    if vci is not None:
        trainer["val_check_interval"] = vci
    trainer["check_val_every_n_epoch"] = every

    # Manual optimization refuses accumulation and clipping (both frameworks): drawn rarely.
    trainer["accumulate_grad_batches"] = draw(st.sampled_from([1, 1, 1, 1, 2]) if manual else st.integers(1, 3))
    # num_sanity_val_steps: Lightning does not check it; lightcycle refuses values < -1.
    sanity = draw(st.one_of(st.none(), st.integers(-1, 3)))
    if sanity is not None:
        trainer["num_sanity_val_steps"] = sanity
    clip = draw(
        st.sampled_from([None, None, None, None, 0, 1.0]) if manual else st.sampled_from([None, 0, 0.5, 1.0, 2])
    )
    if clip is not None:
        trainer["gradient_clip_val"] = clip
        algorithm = draw(st.sampled_from([None, "norm", "value"]))
        if algorithm is not None:
            trainer["gradient_clip_algorithm"] = algorithm

    # Lightning's default ModelCheckpoint (saving into a fresh temporary directory each run):
    # state_dict/on_save_checkpoint hooks at the end of training epochs and validation runs.
    if draw(st.sampled_from([False, False, True])):
        trainer["enable_checkpointing"] = True
    # issue 17 flags, drawn now and then: fast_dev_run overrides the limits (and suppresses
    # checkpoints), detect_anomaly and benchmark change no hook
    dev = draw(st.sampled_from([False, False, False, False, True, 2]))
    if dev:
        trainer["fast_dev_run"] = dev
    if draw(st.sampled_from([False, False, True])):
        trainer["detect_anomaly"] = True
    overfit = draw(st.sampled_from([0, 0, 0, 0, 0, 1, 2, 0.5]))
    if overfit:
        trainer["overfit_batches"] = overfit
    reload = draw(st.sampled_from([0, 0, 0, 1, 2]))
    if reload:
        trainer["reload_dataloaders_every_n_epochs"] = reload
    bench = draw(st.sampled_from([None, None, False, True]))
    if bench is not None:
        trainer["benchmark"] = bench
    # the profiler times hooks and changes none; max_time adds Lightning's Timer callback (a
    # budget no drawn run reaches, so it never stops one: its hooks and checkpoint state show)
    profiler = draw(st.sampled_from([None, None, None, "simple", "advanced"]))
    if profiler is not None:
        trainer["profiler"] = profiler
    if draw(st.sampled_from([False, False, True])):
        trainer["max_time"] = "00:01:00:00"

    behaviour: dict[str, Any] = dict(
        n_train=draw(st.integers(1, 12)),
        n_eval=draw(st.integers(1, 6)),
        batch_size=2,
        two_val_loaders=draw(st.booleans()),
        manual=manual,
        scheduler=draw(st.sampled_from([None, "step", "epoch", "plateau"])),
        log_metrics=draw(st.booleans()),
        max_events=MAX_EVENTS,
        # loaders without a length (an IterableDataset): unknown epoch length, look-ahead ends
        # (not with unbounded epochs: a stream shorter than an int limit never marks its last
        # batch, so with accumulation no optimizer step is ever taken and max_steps is never
        # reached; both frameworks then train forever)
        iterable_train=draw(st.sampled_from([False, False, True])) if max_epochs not in (None, -1) else False,
        iterable_eval=draw(st.sampled_from([False, False, True])),
    )
    if draw(st.booleans()):
        epoch, batch = draw(st.integers(0, 2)), draw(st.integers(0, 5))
        behaviour["batch_start_return"] = {(epoch, batch): -1}
    module = draw(st.sampled_from(["rec", "noval"])) if entry == "fit" else "rec"
    return Scenario(trainer, entry=entry, behaviour=behaviour, module=module, extra_callbacks=draw(st.integers(0, 1)))


@st.composite
def injections(draw: st.DrawFn, events: list[dict[str, Any]]) -> dict[str, Any]:
    """One injection at an event of ``events`` (a run of the same scenario), or none.

    The hook is drawn first (uniformly among the hooks that fired), then which of its calls,
    so that rare hooks are hit as often as per-batch ones.
    """
    counts: dict[tuple[str, str], int] = {}
    for ev in events:
        key = (ev["src"], ev["hook"])
        if key not in NO_INJECTION:
            counts[key] = counts.get(key, 0) + 1
    kind = draw(st.sampled_from(["none", "stop", "stop", "raise", "raise"]))
    hooks = [k for k in counts if kind == "raise" or k[0] == "callback"]
    if kind == "none" or not hooks:
        return {}
    src, hook = draw(st.sampled_from(hooks))
    n = draw(st.integers(1, counts[(src, hook)]))
    if kind == "stop":
        return {"stop_at_call": (hook, n)}
    exc_type = draw(st.sampled_from([RuntimeError, InjectedError]))
    return {"raise_at_call": {(src, hook, n): exc_type(f"injected: {src} {hook} #{n}")}}


# --------------------------------------------------------------------------- running


_LIGHTNING: dict[str, dict[str, Any]] = {}


def _lightning(scenario: Scenario) -> dict[str, Any]:
    """Live Lightning's run of ``scenario``, once per session: the derandomized examples are
    the same for each lightcycle executor, and Lightning's run does not depend on it. Keyed
    by the scenario's repr, which shows every Trainer argument (``1`` apart from ``1.0``) and
    each injected exception's type and message."""
    key = repr(scenario)
    if key not in _LIGHTNING:
        _LIGHTNING[key] = _run(PL, scenario)
    return _LIGHTNING[key]


def _run(pl: Any, scenario: Scenario) -> dict[str, Any]:
    """``run_scenario``, with a refusal by the Trainer's constructor as a result too."""
    try:
        return run_scenario(pl, scenario)
    except Exception as e:  # the constructor's refusal is the result
        return {
            "events": [],
            "state": None,
            "exception": f"{type(e).__name__}: {e}".split("\n")[0],
            "constructor": True,
        }


def _refused_before_running(run: dict[str, Any], lightning: bool) -> bool:
    """The run raised a configuration error of its own (nothing injected) before running."""
    if run["exception"] is None or any("_action" in ev["args"] for ev in run["events"]):
        return False
    allowed = LIGHTNING_PRE_RUN if lightning else set()
    return all((ev["src"], ev["hook"]) in allowed for ev in run["events"])


def _same_run(lightning: dict[str, Any], ours: dict[str, Any]) -> bool:
    return all(lightning[k] == ours[k] for k in ("events", "state", "exception"))


def _exc_type(text: str) -> str:
    return text.split(":", 1)[0]


# About a third of the drawn configurations are refused before running or stop early on a
# data error (both frameworks alike); 200 examples keep well over 100 full runs in CI
# (~25 s). A longer profile (HYPOTHESIS_PROFILE=long) keeps its own, larger count.
EXAMPLES = max(200, settings.default.max_examples)


@settings(max_examples=EXAMPLES)
@given(data=st.data())
def test_drawn_scenario_trace_equals_live_lightning(data: st.DataObject) -> None:
    scenario = data.draw(scenarios(), label="scenario")
    baseline = _run(LC, scenario)
    injection = data.draw(injections(baseline["events"]), label="injection")
    if injection:
        scenario = dataclasses.replace(scenario, behaviour={**scenario.behaviour, **injection})
    lightning = _lightning(scenario)
    ours = _run(LC, scenario)
    event(f"entry={scenario.entry}")
    event(f"injection={next(iter(injection), 'none')}")
    event(
        "outcome="
        + (
            "refused"
            if _refused_before_running(lightning, lightning=True)
            else "raised"
            if lightning["exception"]
            else "ran"
        )
    )
    note(f"lightning: {lightning['exception']!r} after {len(lightning['events'])} events")
    note(f"lightcycle: {ours['exception']!r} after {len(ours['events'])} events")
    if not _same_run(lightning, ours) and (
        _refused_before_running(lightning, lightning=True) or _refused_before_running(ours, lightning=False)
    ):
        # A configuration refused before the run: the same refusal from both.
        assert _refused_before_running(lightning, lightning=True), f"only lightcycle refused: {ours['exception']}"
        assert _refused_before_running(ours, lightning=False), (
            f"only Lightning refused: {lightning['exception']}; lightcycle ran "
            f"{len(ours['events'])} events, then {ours['exception']}"
        )
        assert _exc_type(ours["exception"]) == _exc_type(lightning["exception"]), (
            lightning["exception"],
            ours["exception"],
        )
        return
    assert_same_run(lightning, ours)
    if scenario.entry != "fit":
        assert ours["output"] == lightning["output"]


@pytest.mark.parametrize("name", sorted(k for k, v in {**SHARED, **EXTRA}.items() if v.entry != "fit"))
def test_entry_point_returns_what_lightning_returns(name: str) -> None:
    """validate/test/predict return Lightning's value (metrics per loader, predictions, or None)."""
    scenario = {**SHARED, **EXTRA}[name]
    assert run_scenario(LC, scenario)["output"] == lightning_run(name)["output"]
