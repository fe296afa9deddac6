"""The lifecycle driver under drawn event sequences (hypothesis.stateful).

A :class:`~lightcycle.engine.driver.LifecycleDriver` in checked mode is bound to a
real module and a recording callback, then driven with events drawn from its own legal set
and from the complement:

- a legal event moves to the declared destination, sets the declared stage, and fires
  exactly the declared hooks (as the run's receivers resolve them), all seen in the new
  state; the ``transitions`` machine confirms every move;
- an illegal event raises :class:`~lightcycle.errors.LifecycleError` naming the state, the
  event and the legal events, fires no hook, and leaves state, stage and the machine as
  they were.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

import lightcycle as L
from lightcycle._hooks import is_overridden
from lightcycle.callbacks import HookRecorder
from lightcycle.engine.driver import LifecycleDriver
from lightcycle.errors import LifecycleError
from lightcycle.states import ANY, LIFECYCLE, Event, Stage, Target, Transition
from lightcycle.states.machine import build_machine
from lightcycle.states.stages import TrainerFn
from tests import kit
from tests.faults import Config, TinyModule

_MACHINE, _ = build_machine(LIFECYCLE)  # asked only which events a state allows
_ANYWHERE = frozenset(t.trigger.name for t in LIFECYCLE.transitions if ANY in t.source)
"""Events declared from ANY (saves, the interruption): drawn by their own rule so that
the walk also makes progress through runs."""


def _expected_hooks(transition: Transition, module: Any) -> list[tuple[str, str]]:
    """What one recording callback (not a monitoring one) and ``module`` receive, no datamodule."""
    out: list[tuple[str, str]] = []
    for h in transition.hooks:
        if h.target in (Target.CALLBACKS, Target.PLAIN_CALLBACKS):
            if not h.per_state_key:  # load_state_dict: only callbacks with a stored state (none here)
                out.append(("callback", h.name))
        elif h.target in (Target.MODULE, Target.BATCH_HOOK, Target.DATA_SOURCE):
            method = getattr(module, h.name, None)
            if callable(method) and (not h.only_if_overridden or is_overridden(h.name, module, L.LightningModule)):
                out.append(("module", h.name))
    return out


class DriverMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.trainer = L.Trainer(**kit.quiet(accelerator="cpu"))
        self.module = TinyModule(Config())
        self.module.trainer = self.trainer  # type: ignore[assignment]
        self.trainer.lightning_module = self.module
        self.recorder = HookRecorder()
        self.driver = LifecycleDriver(self.trainer, LIFECYCLE, checked=True)
        self.trainer._driver = self.driver  # the recorder reads the state path from here
        self.driver.bind(self.module, [self.recorder])
        self.table = self.driver.table
        self.optimizer = torch.optim.SGD(self.module.parameters(), lr=0.01)
        self.fired: set[tuple[str, str]] = set()  # (source state, event) pairs fired
        self.visited: set[str] = set()

    # ------------------------------------------------------------------ arguments

    def _value(self, param: str) -> Any:
        batch = (torch.randn(2, 4), torch.randn(2, 1))
        values: dict[str, Any] = {
            "batch": batch,
            "batch_idx": 0,
            "dataloader_idx": 0,
            "device": torch.device("cpu"),
            "stage": TrainerFn.FITTING,
            "optimizer": self.optimizer,
            "optimizer_closure": lambda: None,
            "epoch": 0,
            "outputs": {"loss": torch.tensor(0.5)},
            "metric": None,
            "checkpoint": {"state_dict": {}, "callbacks": {}, "epoch": 0, "global_step": 0},
            "states": {},
            "state_dict": {},
            "exception": RuntimeError("drawn interruption"),
            "gradient_clip_val": None,
            "gradient_clip_algorithm": None,
        }
        if param == "loss":
            return self.module._loss(batch)
        if param == "scheduler":
            return torch.optim.lr_scheduler.StepLR(self.optimizer, 1)
        return values[param]

    def _args(self, trigger: Event) -> tuple[Any, ...]:
        return tuple(self._value(p) for p in trigger.params)

    # ------------------------------------------------------------------ rules

    def _fire_legal(self, name: str) -> None:
        trigger = self.table.triggers[name]
        source = self.driver._state
        entry = self.table.rows[source][trigger]
        before = len(self.recorder.events)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # scheduler.step() before optimizer.step()
            self.driver.fire(trigger, *self._args(trigger))
        self.fired.add((self.table.states[source], name))
        dest = source if entry.dest is None else entry.dest
        assert self.driver._state == dest
        self.visited.add(self.driver.state)
        new = self.recorder.events[before:]
        assert [(e["src"], e["hook"]) for e in new] == _expected_hooks(entry.transition, self.module)
        for e in new:
            assert e["ctx"]["state"] == self.table.states[dest], e

    @rule(data=st.data(), steps=st.integers(1, 12))
    def fire_progress(self, data: st.DataObject, steps: int) -> None:
        """A few legal events that move a run along (not saves or interruptions)."""
        for _ in range(steps):
            legal = [n for n in self.driver.legal() if n not in _ANYWHERE]
            self._fire_legal(data.draw(st.sampled_from(legal), label="legal event"))
            self.stage_matches_the_state()
            self.machine_agrees()

    @precondition(lambda self: self.driver.state != "idle")
    @rule(data=st.data())
    def fire_anywhere(self, data: st.DataObject) -> None:
        """A save or an interruption, legal anywhere in a run."""
        legal = [n for n in self.driver.legal() if n in _ANYWHERE]
        if legal:
            self._fire_legal(data.draw(st.sampled_from(legal), label="anywhere event"))

    @rule(data=st.data())
    def fire_illegal(self, data: st.DataObject) -> None:
        legal = set(self.driver.legal())
        illegal = sorted(set(self.table.triggers) - legal)
        name = data.draw(st.sampled_from(illegal), label="illegal event")
        trigger = self.table.triggers[name]
        state, stage = self.driver.state, self.trainer.state.stage
        before = len(self.recorder.events)
        fx = self.module.__dict__.get("_current_fx_name")
        checked = self.driver.checked_pairs
        try:
            self.driver.fire(trigger, *self._args(trigger))
        except LifecycleError as err:
            assert err.state == state and err.trigger == name
            assert set(err.legal) == legal
            assert name in str(err) and state in str(err)
        else:
            raise AssertionError(f"{name!r} fired from {state!r}, where it is not declared")
        assert self.driver.state == state
        assert self.trainer.state.stage is stage
        assert len(self.recorder.events) == before, "an illegal event fired a hook"
        assert self.module.__dict__.get("_current_fx_name") == fx
        assert self.driver.checked_pairs == checked  # a refusal proves nothing

    # ------------------------------------------------------------------ invariants

    @invariant()
    def stage_matches_the_state(self) -> None:
        declared = self.table.stages[self.driver._state]
        if declared is not Stage.KEEP:
            assert self.trainer.state.stage is declared, (self.driver.state, self.trainer.state.stage)

    @invariant()
    def machine_agrees(self) -> None:
        # checked mode proves each step against the machine before it first runs (asked once
        # per state and event): every pair fired so far was proven, and what a machine of its
        # own says is legal here is what the table says
        assert self.driver._checker is not None
        assert self.fired <= self.driver.checked_pairs
        assert set(self.driver.legal()) == set(_MACHINE.get_triggers(self.driver.state))


DriverMachine.TestCase.settings = settings(stateful_step_count=60)
TestDriverMachine = DriverMachine.TestCase
