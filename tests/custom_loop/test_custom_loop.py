"""The custom-loop driver (:class:`lightcycle.custom_loop.LoopDriver`).

* Differential: a hand-written loop reproduces the Trainer's trace, event for event, for
  the same schedule (fit with sanity check and validation, accumulation, several val
  loaders, manual optimization, the -1 epoch cut, exceptions, validate, test, predict),
  recorded with the same module and callback as the Lightning differential tests.
* Property: drawn sequences of driver calls, legal and illegal, checked against the
  ``transitions`` machine built from the declaration: an illegal call raises
  LifecycleError, fires nothing and changes nothing; a legal one fires exactly the
  callback hooks the declaration lists for the events it fires.
* Exceptions inside the user's loop, custom events, logging/EarlyStopping, the examples.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import importlib.util
import itertools
import json
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

import lightcycle
from lightcycle import LoopDriver
from lightcycle.errors import LifecycleError, MisconfigurationException
from lightcycle.states import declaration as ev
from lightcycle.states.declaration import LIFECYCLE
from lightcycle.states.model import Event, Hook, Lifecycle, Target, Transition
from lightcycle.states.stages import TrainerStatus
from tests import kit
from tests.paths import ROOT
from tests.recording import Scenario, build, end_state, jsonable, run_scenario

# --------------------------------------------------------------------------- differential


def _eval_loaders(value: Any) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _run_eval(lc: LoopDriver, noun: str, loaders: Any, limit: int) -> None:
    several = isinstance(loaders, (list, tuple))
    run_batch = getattr(lc, f"{noun}_batch")
    for dl_idx, loader in enumerate(_eval_loaders(loaders)):
        for i, batch in enumerate(itertools.islice(loader, limit)):
            run_batch(batch, i, dl_idx if several else None)


def fit_body(lc: LoopDriver, cfg: dict[str, Any], validates: bool) -> None:
    """The Trainer's fit schedule for ``cfg`` (epoch-end validation), written as a custom loop."""
    limit_val = cfg.get("limit_val_batches", 1)
    sanity = cfg.get("num_sanity_val_steps", 2)
    with lc.fit():
        if validates and sanity:
            with lc.sanity_check():
                _run_eval(lc, "validation", lc.val_dataloaders, min(sanity, limit_val))
        for _epoch in lc.epochs(cfg["max_epochs"]):
            cut = False
            for i, batch in enumerate(itertools.islice(lc.train_dataloader, cfg["limit_train_batches"])):
                if lc.train_batch(batch, i) is None:
                    cut = True
                    break
            if validates and not cut:
                with lc.validation():
                    _run_eval(lc, "validation", lc.val_dataloaders, limit_val)


def eval_body(entry: str) -> Callable[[LoopDriver, dict[str, Any], bool], None]:
    noun = {"validate": "validation", "test": "test", "predict": "predict"}[entry]
    loaders = {"validate": "val_dataloaders", "test": "test_dataloaders", "predict": "predict_dataloaders"}[entry]
    limit_key = "limit_val_batches" if entry == "validate" else f"limit_{entry}_batches"

    def body(lc: LoopDriver, cfg: dict[str, Any], validates: bool) -> None:
        with getattr(lc, entry)():
            _run_eval(lc, noun, getattr(lc, loaders), cfg[limit_key])

    return body


def run_custom(
    sc: Scenario,
    body: Callable[[LoopDriver, dict[str, Any], bool], None],
    module: Callable[[Any], Any] | None = None,
) -> dict[str, Any]:
    """Run ``body`` with the recording module and callback(s); same shape as ``run_scenario``."""
    ns = build(lightcycle)
    for k, v in sc.behaviour.items():
        setattr(ns.behaviour, k, v)
    lightcycle.seed_everything(0, verbose=False)
    cbs = [ns.RecordingCallback(i) for i in range(1 + sc.extra_callbacks)]
    model = module(ns) if module is not None else (ns.NoValModule if sc.module == "noval" else ns.RecModule)()
    lc = LoopDriver(
        model,
        cbs,
        accumulate_grad_batches=sc.trainer.get("accumulate_grad_batches", 1),
        gradient_clip_val=sc.trainer.get("gradient_clip_val"),
        gradient_clip_algorithm=sc.trainer.get("gradient_clip_algorithm"),
        checked=True,
    )
    exc: str | None = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            body(lc, sc.trainer, sc.module != "noval")
        except BaseException as e:  # compared with the Trainer's outcome
            exc = f"{type(e).__name__}: {e}".split("\n")[0]
    return {"events": list(ns.events), "state": end_state(lc), "exception": exc, "driver": lc}


def _lines(events: list[dict[str, Any]]) -> list[str]:
    return [json.dumps(e, sort_keys=True) for e in events]


def assert_same(ref: dict[str, Any], mine: dict[str, Any]) -> None:
    assert _lines(mine["events"]) == _lines(ref["events"])
    assert mine["state"] == ref["state"]
    assert mine["exception"] == ref["exception"]


FIT = dict(max_epochs=2, limit_train_batches=2, limit_val_batches=1, num_sanity_val_steps=1)
DIFFERENTIAL = {
    "fit_basic": (Scenario(FIT), fit_body),
    "fit_no_sanity": (Scenario({**FIT, "num_sanity_val_steps": 0}), fit_body),
    "fit_sanity_2_val_2": (Scenario({**FIT, "num_sanity_val_steps": 2, "limit_val_batches": 2}), fit_body),
    "fit_accum2": (Scenario({**FIT, "limit_train_batches": 4, "accumulate_grad_batches": 2}), fit_body),
    "fit_gradient_clip": (Scenario({**FIT, "max_epochs": 1, "gradient_clip_val": 1.0}), fit_body),
    "fit_two_val_loaders": (Scenario({**FIT, "max_epochs": 1}, behaviour=dict(two_val_loaders=True)), fit_body),
    "fit_two_callbacks": (Scenario({**FIT, "max_epochs": 1}, extra_callbacks=1), fit_body),
    "fit_manual_opt": (Scenario(FIT, behaviour=dict(manual=True)), fit_body),
    "fit_no_val": (Scenario(dict(max_epochs=2, limit_train_batches=2), module="noval"), fit_body),
    "fit_max_epochs_zero": (Scenario({**FIT, "max_epochs": 0, "num_sanity_val_steps": 0}), fit_body),
    "fit_batch_start_minus1": (
        Scenario({**FIT, "limit_train_batches": 3}, behaviour=dict(batch_start_return={(0, 1): -1, (1, 1): -1})),
        fit_body,
    ),
    "fit_exception_step": (
        Scenario(FIT, behaviour=dict(step_raise={(1, 0): RuntimeError("injected: training_step")})),
        fit_body,
    ),
    "fit_exception_callback": (
        Scenario(FIT, behaviour=dict(raise_in={("callback", "on_validation_batch_end"): ValueError("injected: cb")})),
        fit_body,
    ),
    "fit_keyboard_interrupt_in_setup": (
        Scenario(FIT, behaviour=dict(raise_in={("callback", "setup"): KeyboardInterrupt()})),
        fit_body,
    ),
    "validate": (Scenario(dict(limit_val_batches=2), entry="validate"), eval_body("validate")),
    "test": (Scenario(dict(limit_test_batches=2), entry="test"), eval_body("test")),
    "test_two_loaders": (
        Scenario(dict(limit_test_batches=2), entry="test", behaviour=dict(two_val_loaders=True)),
        eval_body("test"),
    ),
    "predict": (Scenario(dict(limit_predict_batches=2), entry="predict"), eval_body("predict")),
}


@pytest.mark.parametrize("name", list(DIFFERENTIAL))
def test_custom_loop_reproduces_the_trainer_trace(name: str) -> None:
    sc, body = DIFFERENTIAL[name]
    ref = run_scenario(lightcycle, sc)
    mine = run_custom(sc, body)
    assert ref["events"], "the reference run recorded nothing"
    assert_same(ref, mine)
    assert mine["driver"]._driver.checked_pairs  # the transitions machine agreed with every step proven


def _own_step_module(ns: Any) -> Any:
    class OwnStep(ns.RecModule):  # type: ignore[misc,name-defined]
        training_step = lightcycle.LightningModule.training_step  # not overridden: the loop is the step

    return OwnStep()


def _own_step_fit(lc: LoopDriver, cfg: dict[str, Any], validates: bool) -> None:
    with lc.fit():
        with lc.sanity_check():
            _run_eval(lc, "validation", lc.val_dataloaders, 1)
        for _epoch in lc.epochs(cfg["max_epochs"]):
            for i, batch in enumerate(itertools.islice(lc.train_dataloader, cfg["limit_train_batches"])):
                x, y = lc.train_batch_start(batch, i)
                opt = lc.optimizers[0]
                opt.zero_grad()
                loss = nn.functional.mse_loss(lc.lightning_module(x), y)
                lc.backward(loss)
                lc.optimizer_step(opt)
                lc.train_batch_end(loss)
            with lc.validation():
                _run_eval(lc, "validation", lc.val_dataloaders, 1)


def test_own_step_loop_fires_the_hooks_of_manual_optimization() -> None:
    """A loop that is its own training step fires what a manual-optimization Trainer run fires.

    The only events left out are the ones the recording module writes from inside its
    own ``training_step`` body (``training_step`` and ``manual_backward``), which the
    custom loop has no counterpart of; every hook call, and every ctx, is compared.
    """
    sc = Scenario(FIT, behaviour=dict(manual=True))
    ref = run_scenario(lightcycle, sc)
    mine = run_custom(sc, _own_step_fit, module=_own_step_module)
    inside = {("module", "training_step"), ("module", "manual_backward")}
    expected = [e for e in ref["events"] if (e["src"], e["hook"]) not in inside]
    assert _lines(mine["events"]) == _lines(expected)
    assert mine["state"] == ref["state"]
    assert mine["exception"] is None


# --------------------------------------------------------------------------- property: legality


_Plain = kit.plain_module_class(lightcycle, width=2)  # no steps, no data hooks: every batch is the user's own step


_X = torch.ones(2, 2)
_VAL = ev.EVAL["validation"]
_TEST = ev.EVAL["test"]
_PRED = ev.EVAL["predict"]


def _loss(lc: LoopDriver) -> torch.Tensor:
    return lc.lightning_module(_X).sum()


def _raw(trigger: Event) -> tuple[Callable[[LoopDriver], Any], Callable[[str, Any], list[Event]]]:
    args = ("fit",) if trigger is ev.TEARDOWN else ()
    return (lambda lc: lc.fire(trigger.name, *args)), (lambda s, fn: [trigger])


# action name -> (call, gate): the call may run iff one of the gate events is legal (the
# ``transitions`` machine decides); a gate may also depend on the entry point.
ACTIONS: dict[str, tuple[Callable[[LoopDriver], Any], Callable[[str, Any], list[Event]]]] = {
    "begin_fit": (
        lambda lc: lc.begin("fit", optimizers=[torch.optim.SGD(lc.lightning_module.parameters(), lr=0.1)]),
        lambda s, fn: [ev.ENTRY["fit"]],
    ),
    "begin_validate": (lambda lc: lc.begin("validate"), lambda s, fn: [ev.ENTRY["validate"]]),
    "begin_test": (lambda lc: lc.begin("test"), lambda s, fn: [ev.ENTRY["test"]]),
    "begin_predict": (lambda lc: lc.begin("predict"), lambda s, fn: [ev.ENTRY["predict"]]),
    "end": (lambda lc: lc.end(), lambda s, fn: _end_gate(s, fn)),
    "sanity_check_start": (lambda lc: lc.sanity_check_start(), lambda s, fn: [ev.SANITY_CHECK_START]),
    "sanity_check_end": (lambda lc: lc.sanity_check_end(), lambda s, fn: [ev.SANITY_CHECK_END]),
    # between epochs train_dataloader is a reload (reload_dataloaders_every_n_epochs), not a start
    "train_start": (
        lambda lc: lc.train_start(),
        lambda s, fn: [ev.TRAIN_START] if s == "fit.train.epoch_done" else [ev.TRAIN_DATALOADER, ev.TRAIN_START],
    ),
    "train_end": (lambda lc: lc.train_end(), lambda s, fn: [ev.TRAIN_END]),
    "train_epoch_start": (
        lambda lc: lc.train_epoch_start(),
        lambda s, fn: [ev.TRAIN_EPOCH_START, ev.TRAIN_START, ev.TRAIN_DATALOADER],
    ),
    "train_epoch_end": (lambda lc: lc.train_epoch_end(), lambda s, fn: [ev.TRAIN_EPOCH_END]),
    "train_batch_start": (lambda lc: lc.train_batch_start((_X,), 0), lambda s, fn: [ev.TRAIN_BATCH_TRANSFER]),
    "backward": (lambda lc: lc.backward(_loss(lc)), lambda s, fn: [ev.BACKWARD]),
    "optimizer_step": (
        lambda lc: lc.optimizer_step(lc.optimizers[0] if lc.optimizers else _NullOpt()),
        lambda s, fn: [ev.MANUAL_OPTIMIZER_STEP],
    ),
    "train_batch_end": (lambda lc: lc.train_batch_end(None), lambda s, fn: [ev.TRAIN_BATCH_END]),
    "validation_start": (lambda lc: lc.validation_start(), lambda s, fn: [_VAL.model_zero_grad, _VAL.start]),
    "validation_end": (lambda lc: lc.validation_end(), lambda s, fn: [_VAL.epoch_end] if s.startswith("fit.") else []),
    "validation_batch_start": (lambda lc: lc.validation_batch_start((_X,), 0), lambda s, fn: [_VAL.batch_transfer]),
    "validation_batch_end": (lambda lc: lc.validation_batch_end(1.0), lambda s, fn: [_VAL.batch_end]),
    "test_batch_start": (lambda lc: lc.test_batch_start((_X,), 0, 1), lambda s, fn: [_TEST.batch_transfer]),
    "test_batch_end": (lambda lc: lc.test_batch_end(None), lambda s, fn: [_TEST.batch_end]),
    "predict_batch_start": (lambda lc: lc.predict_batch_start((_X,), 0), lambda s, fn: [_PRED.batch_transfer]),
    "predict_batch_end": (lambda lc: lc.predict_batch_end(None), lambda s, fn: [_PRED.batch_end]),
    # raw events (a second teardown, fit_end mid-epoch, ...)
    **{
        f"fire_{t.name}": _raw(t)
        for t in (ev.TEARDOWN, ev.FIT_END, ev.TRAIN_END, ev.TRAIN_EPOCH_END, ev.SANITY_CHECK_END, ev.FINISH)
        + (ev.VALIDATION_EXIT, ev.SKIP_REST_OF_EPOCH, ev.FIT_START, ev.TRAIN_START)
    },
}


class _NullOpt:
    def step(self) -> None:
        return None


def _end_gate(state: str, fn: Any) -> list[Event]:
    if fn is None:
        return [ev.TEARDOWN]
    if fn.value == "fit":
        return [ev.FIT_END, ev.TRAIN_END, ev.TRAIN_EPOCH_END]
    noun = {"validate": "validation", "test": "test", "predict": "predict"}[fn.value]
    if state.startswith(f"{fn.value}.{noun}."):
        return [ev.EVAL[noun].epoch_end]
    return [ev.TEARDOWN]


def _expected_callback_hooks(lifecycle: Lifecycle, state: str, trigger: Event) -> list[str]:
    for t in lifecycle.transitions:
        if t.trigger == trigger and state in lifecycle.sources(t):
            return [h.name for h in t.hooks if h.target in (Target.CALLBACKS, Target.PLAIN_CALLBACKS)]
    raise AssertionError(f"{trigger.name} is not declared from {state}")


@pytest.fixture(scope="module")
def machine() -> Any:
    from lightcycle.states.machine import build_machine

    return build_machine(LIFECYCLE)


def _snapshot(lc: LoopDriver, events: list[Any]) -> tuple[Any, ...]:
    st_ = lc.state
    return (
        lc.lifecycle_state,
        st_.fn,
        st_.stage,
        st_.status,
        attrs.asdict(lc.fit_loop),
        lc.should_stop,
        len(events),
        lc.lightning_module.training,
        {k: float(v) for k, v in lc.callback_metrics.items()},
    )


@given(data=st.data())
def test_drawn_call_sequences_follow_the_declaration(machine: Any, data: Any) -> None:
    mach, model = machine
    mach.set_state(LIFECYCLE.initial, model=model)
    ns = build(lightcycle)
    lc = LoopDriver(_Plain(), [ns.RecordingCallback(0)])
    fired: list[Event] = []
    real_fire = lc._fire

    def spy(trigger: Event, *args: Any) -> Any:
        state = model.state
        legal = trigger.name in mach.get_triggers(state)
        try:
            out = real_fire(trigger, *args)
        except LifecycleError:
            assert not legal, f"the driver refused {trigger.name} in {state}, which the declaration allows"
            raise
        assert legal, f"the driver fired {trigger.name} from {state}"
        fired.append(trigger)
        expected.extend(_expected_callback_hooks(LIFECYCLE, state, trigger))
        model.trigger(trigger.name)
        return out

    lc._fire = spy  # type: ignore[method-assign]
    # per-batch events are fired through held event functions: spy on those too
    lc._driver.caller = lambda trigger: functools.partial(spy, trigger)  # type: ignore[method-assign]
    lc._hold_events()
    expected: list[str] = []
    names = sorted(ACTIONS)
    for _ in range(data.draw(st.integers(5, 60), label="length")):
        # mostly calls that move the run on (to reach batches deep in fit), some legal
        # calls that end it, some drawn from everything (mostly illegal ones)
        triggers_now = mach.get_triggers(model.state)
        legal_now = [n for n in names if any(t.name in triggers_now for t in ACTIONS[n][1](model.state, lc.state.fn))]
        onward = [n for n in legal_now if n != "end" and not n.startswith("fire_")]
        mode = data.draw(st.integers(0, 5), label="mode")
        pool = (onward if mode >= 2 else legal_now if mode == 1 else names) or names
        name = data.draw(st.sampled_from(pool), label="call")
        call, gate = ACTIONS[name]
        allowed = any(t.name in mach.get_triggers(model.state) for t in gate(model.state, lc.state.fn))
        before = _snapshot(lc, ns.events)
        fired.clear()
        expected.clear()
        n_events = len(ns.events)
        try:
            call(lc)
        except LifecycleError as err:
            assert not allowed, f"{name} refused in {model.state}: {err}"
            assert not fired
            assert _snapshot(lc, ns.events) == before, f"{name} changed state although refused"
            assert err.state == model.state and set(err.legal) == set(mach.get_triggers(model.state))
            continue
        assert allowed, f"{name} ran in {model.state} although the declaration does not allow it"
        got = [e["hook"] for e in ns.events[n_events:] if e["src"] == "callback"]
        assert got == expected, f"{name}: fired {got}, declared {expected}"
        assert lc.lifecycle_state == model.state


# --------------------------------------------------------------------------- exceptions


class _Counting(lightcycle.Callback):
    def __init__(self) -> None:
        self.exceptions: list[BaseException] = []
        self.hooks: list[str] = []

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        self.exceptions.append(exception)

    def setup(self, trainer: Any, pl_module: Any, stage: str) -> None:
        self.hooks.append("setup")

    def teardown(self, trainer: Any, pl_module: Any, stage: str) -> None:
        self.hooks.append("teardown")


def _plain_fit(lc: LoopDriver, raise_at: str | None, exc: BaseException | None = None) -> None:
    opt = torch.optim.SGD(lc.lightning_module.parameters(), lr=0.1)
    with lc.fit(optimizers=opt):
        for _epoch in lc.epochs(2):
            for i in range(2):
                lc.train_batch_start((_X,), i)
                if raise_at == "batch":
                    raise exc  # type: ignore[misc]
                lc.backward(_loss(lc))
                lc.optimizer_step(opt)
                lc.train_batch_end(None)
            with lc.validation():
                lc.validation_batch_start((_X,), 0)
                if raise_at == "validation":
                    raise exc  # type: ignore[misc]
                lc.validation_batch_end(None)
            if raise_at == "illegal":
                lc.train_batch_end(None)  # no batch is open


@pytest.mark.parametrize("where", ["batch", "validation", "illegal"])
@pytest.mark.parametrize("kind", [ValueError, KeyboardInterrupt])
def test_exception_in_the_loop_fires_on_exception_once_and_reraises(where: str, kind: type[BaseException]) -> None:
    cbs = [_Counting(), _Counting()]
    lc = LoopDriver(_Plain(), cbs)
    exc = kind("boom")
    with pytest.raises((kind, LifecycleError)) as info:
        _plain_fit(lc, where, exc)
    raised = info.value
    if where == "illegal":
        assert isinstance(raised, LifecycleError) and raised.trigger == "train_batch_end"
    else:
        assert raised is exc
    for cb in cbs:
        assert cb.exceptions == [raised]
        assert cb.hooks == ["setup"]  # no teardown after an exception (as in the Trainer)
    assert lc.state.status is TrainerStatus.INTERRUPTED and lc.interrupted
    assert lc.lifecycle_state == "idle" and lc.state.stage is None
    assert torch.is_grad_enabled() and not torch.is_inference_mode_enabled()
    # reusable: a second run goes through completely
    _plain_fit(lc, None)
    assert lc.state.status is TrainerStatus.FINISHED
    assert lc.current_epoch == 2 and lc.global_step == 4
    for cb in cbs:
        assert cb.exceptions == [raised] and cb.hooks == ["setup", "setup", "teardown"]


def test_exception_in_an_eval_entry_and_in_a_callback() -> None:
    class Fails(_Counting):
        def on_test_batch_end(self, *args: Any) -> None:
            raise RuntimeError("in a callback")

    cb = Fails()
    lc = LoopDriver(_Plain(), [cb])
    with pytest.raises(RuntimeError, match="in a callback"), lc.test():
        lc.test_batch_start((_X,), 0)
        lc.test_batch_end(None)
    assert len(cb.exceptions) == 1 and str(cb.exceptions[0]) == "in a callback"
    assert lc.lifecycle_state == "idle"
    with lc.predict():
        out = lc.predict_batch_start((_X,), 0)
        lc.predict_batch_end(lc.lightning_module(out[0]))
    assert lc.state.status is TrainerStatus.FINISHED


def test_an_illegal_call_names_the_state_the_call_and_the_legal_events() -> None:
    lc = LoopDriver(_Plain())
    with pytest.raises(LifecycleError) as info:
        lc.train_batch_end(None)
    err = info.value
    assert err.state == "idle" and err.trigger == "train_batch_end"
    assert "fit" in err.legal and "'idle'" in str(err) and "train_batch_end" in str(err)
    lc.begin("fit")
    with pytest.raises(
        LifecycleError, match=r"^lc\.test\(\) is not allowed now: the lifecycle is in state 'fit\.started'"
    ):
        lc.begin("test")  # a run is open
    with pytest.raises(LifecycleError, match="backward"):
        lc.backward(_loss(lc))
    with pytest.raises(LifecycleError) as unknown:
        lc.fire("no_such_event")
    assert unknown.value.trigger == "no_such_event"
    with pytest.raises(TypeError, match="teardown"):
        lc.fire("teardown")  # missing its stage argument; nothing fired
    assert lc.lifecycle_state == "fit.started"
    lc.end()
    with pytest.raises(LifecycleError, match="teardown"):
        lc.fire("teardown", "fit")  # a second teardown
    with pytest.raises(LifecycleError):
        lc.end()


def test_misuse_is_refused_with_a_fix() -> None:
    with pytest.raises(TypeError, match="LightningModule"):
        LoopDriver(nn.Linear(2, 1))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="Callback"):
        LoopDriver(_Plain(), [object()])  # type: ignore[list-item]
    lc = LoopDriver(_Plain())
    with lc.fit():
        for _ in lc.epochs(1):
            lc.train_batch_start((_X,), 0)
            with pytest.raises(MisconfigurationException, match="your loop is the training step"):
                lc.training_step()
            lc.train_batch_end(None)
            with lc.validation():
                lc.validation_batch_start((_X,), 0)
                with pytest.raises(MisconfigurationException, match="your loop is the step"):
                    lc.validation_step()
                lc.validation_batch_end(None)


def test_leaving_fit_mid_batch_is_an_error_inside_the_run() -> None:
    cb = _Counting()
    lc = LoopDriver(_Plain(), [cb])
    with pytest.raises(LifecycleError, match=r"^lc\.end\(\) is not allowed now") as info, lc.fit():
        for _ in lc.epochs(1):
            lc.train_batch_start((_X,), 0)
            break  # the batch is still open when the fit block ends
    assert info.value.trigger == "fit_end"
    assert len(cb.exceptions) == 1 and lc.lifecycle_state == "idle"


def test_break_out_of_epochs_ends_the_open_epoch() -> None:
    ns = build(lightcycle)
    lc = LoopDriver(_Plain(), [ns.RecordingCallback(0)])
    with lc.fit():
        for epoch in lc.epochs(5):
            if epoch == 1:
                break
    hooks = [e["hook"] for e in ns.events]
    assert hooks.count("on_train_epoch_start") == 2 and hooks.count("on_train_epoch_end") == 2
    assert hooks[-3:] == ["on_train_end", "on_fit_end", "teardown"]
    assert lc.current_epoch == 2


# --------------------------------------------------------------------------- metrics, stopping


class _StopWhenFlat(lightcycle.Callback):
    """EarlyStopping's protocol: read callback_metrics after validation, set should_stop."""

    def __init__(self) -> None:
        self.seen: list[float] = []

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        if trainer.sanity_checking:
            return
        self.seen.append(float(trainer.callback_metrics["val_loss"]))
        if len(self.seen) == 3:
            trainer.should_stop = True


def test_logged_metrics_reach_callbacks_and_should_stop_ends_training() -> None:
    stopper = _StopWhenFlat()
    lc = LoopDriver(_Plain(), [stopper])
    with lc.fit():
        with lc.sanity_check():
            lc.validation_batch_start((_X,), 0)
            lc.log("val_loss", 100.0)
            lc.validation_batch_end(None)
        assert "val_loss" not in lc.callback_metrics  # sanity-check metrics are discarded
        for epoch in lc.epochs(10):
            for i in range(2):
                lc.train_batch_start((_X,), i)
                lc.log("train_loss", float(epoch * 10 + i))
                assert lc.callback_metrics["train_loss"] == epoch * 10 + i
                lc.train_batch_end(None)
            with lc.validation():
                for i, value in enumerate((1.0, 3.0)):
                    lc.validation_batch_start((_X,), i)
                    lc.log("val_loss", value + epoch)
                    lc.validation_batch_end(None)
            lc.log("epoch_metric", float(epoch))  # between batches: as from on_train_epoch_end
    assert stopper.seen == [2.0, 3.0, 4.0]  # epoch means
    assert lc.current_epoch == 3 and lc.should_stop
    assert float(lc.callback_metrics["epoch_metric"]) == 2.0


def test_min_epochs_and_max_steps() -> None:
    lc = LoopDriver(_Plain())
    with lc.fit():
        for _epoch in lc.epochs(10, min_epochs=3):
            lc.should_stop = True
    assert lc.current_epoch == 3
    with lc.fit():
        for _epoch in lc.epochs(None, max_steps=3):
            for i in range(2):
                lc.train_batch_start((_X,), i)
                lc.optimizer_step(_NullOpt())
                lc.train_batch_end(None)
    assert lc.global_step == 4 and lc.current_epoch == 2


def test_lightcycle_early_stopping_stops_a_custom_loop() -> None:
    from lightcycle.callbacks import EarlyStopping

    lc = LoopDriver(_Plain(), [EarlyStopping(monitor="val_loss", patience=2)])
    with lc.fit():
        for _epoch in lc.epochs(20):
            with lc.validation():
                lc.validation_batch_start((_X,), 0)
                lc.log("val_loss", 1.0)  # never improves after the first epoch
                lc.validation_batch_end(None)
    assert lc.should_stop and lc.current_epoch == 3


# --------------------------------------------------------------------------- custom events

_EMA = Event("ema_update", ("optimizer",), "after an optimizer step")
_EXTENDED = LIFECYCLE.extend(
    transitions=[
        Transition(
            _EMA,
            ("fit.train.epoch.batch.manual", "fit.train.epoch.batch.stepped"),
            None,
            (
                Hook("on_ema_update", Target.CALLBACKS, ("optimizer",)),
                Hook("on_ema_update", Target.MODULE, ("optimizer",)),
            ),
        )
    ]
)


def test_custom_event_reaches_the_callbacks_that_define_it() -> None:
    calls: list[tuple[str, Any, Any]] = []

    class Ema(lightcycle.Callback):
        def on_ema_update(self, trainer: Any, pl_module: Any, optimizer: Any) -> None:
            calls.append(("callback", trainer.global_step, optimizer))

    class Module(_Plain):
        def on_ema_update(self, optimizer: Any) -> None:
            calls.append(("module", self.global_step, optimizer))

    lc = LoopDriver(Module(), [lightcycle.Callback(), Ema()], lifecycle=_EXTENDED, checked=True)
    opt = torch.optim.SGD(lc.lightning_module.parameters(), lr=0.1)
    ema = lc.event("ema_update")
    with lc.fit(optimizers=opt):
        for _ in lc.epochs(1):
            lc.train_batch_start((_X,), 0)
            lc.optimizer_step(opt)
            ema(opt)
            lc.fire("ema_update", opt)
            lc.train_batch_end(None)
            with pytest.raises(LifecycleError, match="ema_update"):
                ema(opt)  # between batches: not declared
    assert calls == [("callback", 1, opt), ("module", 1, opt)] * 2
    with pytest.raises(LifecycleError):  # the plain lifecycle does not know the event
        LoopDriver(_Plain()).fire("ema_update", opt)


def test_custom_event_example_is_an_importable_valid_lifecycle() -> None:
    from lightcycle.states.machine import build_machine
    from lightcycle.states.validate import validate

    module = importlib.import_module("examples.custom_event")
    lifecycle = module.LIFECYCLE
    assert isinstance(lifecycle, Lifecycle) and "ema_update" in lifecycle.triggers()
    validate(lifecycle)
    mach, model = build_machine(lifecycle)
    mach.set_state("fit.train.epoch.batch.manual", model=model)
    assert "ema_update" in mach.get_triggers(model.state)


# --------------------------------------------------------------------------- examples


def _load_example(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(f"_example_{name}", ROOT / "examples" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_custom_loop_example_runs(capsys: pytest.CaptureFixture[str]) -> None:
    example = _load_example("custom_loop")
    lc = example.main(max_epochs=2, n_train=256)
    metrics = lc.callbacks[0]
    assert len(metrics.history) == 2 and {"train_loss", "val_loss"} <= set(metrics.history[-1])
    assert lc.state.status is TrainerStatus.FINISHED and lc.global_step == 2 * 4
    lc = example.main(max_epochs=50, n_train=256, patience=1)
    assert lc.should_stop and lc.current_epoch < 50  # EarlyStopping ended it
    assert "fit ended after" in capsys.readouterr().out


def test_custom_event_example_runs(capsys: pytest.CaptureFixture[str]) -> None:
    ema = _load_example("custom_event").main(epochs=2, batches=3)
    assert ema.updates == 6
    out = capsys.readouterr().out
    assert "as declared, between batches: lc.fire('ema_update', ...) is not allowed now: the lifecycle is in" in out


def test_checked_mode_and_trainer_attributes() -> None:
    lc = LoopDriver(_Plain(), checked=True)
    with lc.fit():
        assert lc.state.fn.value == "fit" and lc.training and not lc.sanity_checking
        assert lc.model is lc.lightning_module and lc.lightning_module.trainer is lc
        for _ in lc.epochs(1):
            lc.train_batch_start((_X,), 0)
            assert lc.lifecycle_state == "fit.train.epoch.batch.manual"
            lc.train_batch_end(jsonable(None))
    assert len(lc._driver.checked_pairs) > 10
    assert lc.is_global_zero and lc.world_size == 1 and lc.logger is None


# --------------------------------------------------------------------------- checkpoints


_Ckpt = kit.linear_module_class(
    lightcycle,
    loss="mse",
    steps=("train", "val"),
    log=True,
    seed=0,
    train_data=lambda: kit.regression_loader(seed=1, batch_size=4),
    val_data=lambda: kit.regression_loader(6, seed=2, batch_size=3),
)


def _fit_validating_each_epoch(lc: LoopDriver, epochs: int) -> None:
    """A Trainer fit with validation at every epoch's end, as a custom loop."""
    with lc.fit():
        for _epoch in lc.epochs(epochs):
            for i, batch in enumerate(lc.train_dataloader):
                lc.train_batch(batch, i)
            with lc.validation():
                for j, vb in enumerate(lc.val_dataloaders):
                    lc.validation_batch(vb, j)


def _checkpointed_run(custom: bool, dirpath: Path, fail_at_epoch: int | None = None) -> Any:
    from lightcycle.callbacks import ModelCheckpoint

    ck = ModelCheckpoint(dirpath=dirpath, monitor="val_loss", save_top_k=2, save_last=True, save_on_exception=True)

    class Fail(lightcycle.Callback):  # mid-epoch, after a step: on_exception has something new to save
        def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
            if trainer.current_epoch == fail_at_epoch and batch_idx == 0:
                raise RuntimeError("stop")

    callbacks = [ck, Fail()]
    if custom:
        _fit_validating_each_epoch(LoopDriver(_Ckpt(), callbacks), 3)
    else:
        trainer = lightcycle.Trainer(
            **kit.quiet(checkpointing=None, max_epochs=3, callbacks=callbacks, num_sanity_val_steps=0)
        )
        trainer.fit(_Ckpt())
    return ck


@pytest.mark.parametrize("fail_at_epoch", [None, 2])
def test_model_checkpoint_saves_from_a_custom_loop_as_from_the_trainer(
    tmp_path: Path, fail_at_epoch: int | None
) -> None:
    # The Trainer's schedule as a custom loop: ModelCheckpoint (top-k by val_loss, last,
    # on exception) writes the same files, with the same contents, through lc.save_checkpoint.
    results = {}
    for custom in (False, True):
        folder = tmp_path / ("custom" if custom else "trainer")
        try:
            ck = _checkpointed_run(custom, folder, fail_at_epoch)
        except RuntimeError:
            assert fail_at_epoch is not None
            ck = None
        files = sorted(p.name for p in folder.iterdir())
        contents = {name: torch.load(folder / name, weights_only=False) for name in files}
        results[custom] = (files, ck and (Path(ck.best_model_path).name, float(ck.best_model_score)), contents)
    (files, best, contents), (c_files, c_best, c_contents) = results[False], results[True]
    assert c_files == files and len(files) >= 3
    if fail_at_epoch is not None:  # the checkpoint written in on_exception, mid-epoch
        assert contents["epoch=2-step=5.ckpt"]["loops"]["fit_loop"]["position"] != "epoch_end"
    assert c_best == best
    for name in files:
        ours, theirs = c_contents[name], contents[name]
        assert (ours["epoch"], ours["global_step"]) == (theirs["epoch"], theirs["global_step"]), name
        keys = ("position", "epochs_processed", "epochs_completed", "global_step", "batches_ready", "batch_idx")
        ours_loop, theirs_loop = ours["loops"]["fit_loop"], theirs["loops"]["fit_loop"]
        assert [ours_loop[k] for k in keys] == [theirs_loop[k] for k in keys], name
        assert ours["callbacks"].keys() == theirs["callbacks"].keys()
        for key, value in theirs["state_dict"].items():
            assert torch.equal(ours["state_dict"][key], value), (name, key)
        assert ours["optimizer_states"][0]["state"].keys() == theirs["optimizer_states"][0]["state"].keys()


# --------------------------------------------------------------------------- loggers


class _Logged(_Ckpt):
    def __init__(self, lr: float = 0.1) -> None:
        super().__init__()
        self.save_hyperparameters()

    def training_step(self, batch: Any, batch_idx: int) -> Any:
        loss = super().training_step(batch, batch_idx)
        self.log("step_loss", loss, on_step=True, on_epoch=True)
        return loss


class _RecordingLogger:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def log_metrics(self, metrics: dict[str, Any], step: int | None = None) -> None:
        self.calls.append(("log_metrics", step, {k: round(float(v), 6) for k, v in sorted(metrics.items())}))

    def log_hyperparams(self, params: Any) -> None:
        self.calls.append(("log_hyperparams", dict(params)))

    def save(self) -> None:
        self.calls.append(("save",))

    def finalize(self, status: str) -> None:
        self.calls.append(("finalize", status))


@pytest.mark.parametrize("fail", [False, True])
def test_loggers_get_from_a_custom_loop_what_they_get_from_the_trainer(fail: bool) -> None:
    class Fail(lightcycle.Callback):
        def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
            if fail and trainer.current_epoch == 1 and batch_idx == 1:
                raise RuntimeError("stop")

    seen = {}
    for custom in (False, True):
        logger = _RecordingLogger()
        if custom:
            lc = LoopDriver(_Logged(), [Fail()], logger=logger)
            lc.log_every_n_steps = 1
            with pytest.raises(RuntimeError) if fail else contextlib.nullcontext():
                _fit_validating_each_epoch(lc, 2)
        else:
            trainer = lightcycle.Trainer(
                **kit.quiet(
                    logger=logger, max_epochs=2, callbacks=[Fail()], log_every_n_steps=1, num_sanity_val_steps=0
                )
            )
            with pytest.raises(RuntimeError) if fail else contextlib.nullcontext():
                trainer.fit(_Logged())
        seen[custom] = logger.calls
    assert seen[True] == seen[False]
    kinds = [c[0] for c in seen[True]]
    assert kinds[0] == "log_hyperparams" and kinds[-1] == "finalize"
    assert seen[True][-1] == ("finalize", "failed" if fail else "success")
    assert any(c[0] == "log_metrics" and "val_loss" in c[2] for c in seen[True])  # an epoch's metrics
    assert sum(c[0] == "log_metrics" and "step_loss_step" in c[2] for c in seen[True]) >= 3  # step metrics


def test_a_custom_loop_has_no_logger_unless_given_one() -> None:
    assert LoopDriver(_Logged()).loggers == []
    with pytest.raises(MisconfigurationException, match=r"logger=.*log_metrics"):
        LoopDriver(_Logged(), logger=object())


def test_callbacks_from_configure_callbacks_join_a_custom_loop_as_in_the_trainer() -> None:
    # The Trainer merges what configure_callbacks returns and recompiles the run's hooks; the
    # driver shares that code (RunHost._attach_model_callbacks), so the added callback hears
    # the same hooks from both front ends.
    class Heard(lightcycle.Callback):
        def __init__(self) -> None:
            self.hooks: list[str] = []

        def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
            self.hooks.append("on_fit_start")

        def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
            self.hooks.append("on_train_epoch_start")

        def on_fit_end(self, trainer: Any, pl_module: Any) -> None:
            self.hooks.append("on_fit_end")

    class WithCallbacks(_Plain):
        def __init__(self) -> None:
            super().__init__()
            self.heard = Heard()

        def configure_callbacks(self) -> Any:
            return [self.heard]

    module = WithCallbacks()
    lc = LoopDriver(module)
    with lc.fit():
        for _epoch in lc.epochs(2):
            pass
    assert module.heard in lc.callbacks
    assert module.heard.hooks == ["on_fit_start", "on_train_epoch_start", "on_train_epoch_start", "on_fit_end"]
