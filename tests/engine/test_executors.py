"""The two event executors agree on every cell of the lifecycle table.

``lightcycle.engine.interpreter`` is the reference: it walks a bound step's ops in a loop.
``lightcycle.engine.codegen`` writes the same steps out as one function per event. For
every (state, event) pair of the declared table, both are put in the state and fire the
event with the same argument objects, against the same receivers (a module, a datamodule,
a plain and a monitoring callback, each overriding every hook it can receive, and then a
bare module with nothing overridden, where the declared fallback actions run instead).
They must call the same receivers in the same order with the same arguments and the same
``_current_fx_name``, return the same value and end in the same state and stage. Then the
same again with each of those calls raising in turn: the same exception object out, the
same state, ``_current_fx_name`` restored, and the same interruption path after it
(``on_exception`` handlers, notes, return to idle).

Also here: choosing the executor (argument, ``LIGHTCYCLE_EXECUTOR``, a clear refusal of an
unknown name), debug mode's log lines (``LIGHTCYCLE_DEBUG``), and checked mode's answers
asked of the ``transitions`` machine once per (state, event).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch.nn import functional as F

import lightcycle as L
from lightcycle.callbacks.monitoring import Checkpoint
from lightcycle.engine import checked as checked_mode
from lightcycle.engine import driver as engine_driver
from lightcycle.engine.driver import LifecycleDriver
from lightcycle.engine.interpreter import Step
from lightcycle.errors import LifecycleError
from lightcycle.states.declaration import LIFECYCLE
from lightcycle.states.machine import build_machine
from lightcycle.states.model import Event, Target
from lightcycle.states.stages import TrainerState

_TABLE = engine_driver.table_for(LIFECYCLE)


def _hook_names(*targets: Target) -> set[str]:
    return {h.name for t in LIFECYCLE.transitions for h in t.hooks if h.target in targets}


_CALLBACK_HOOKS = _hook_names(Target.CALLBACKS, Target.PLAIN_CALLBACKS, Target.MONITORING_CALLBACKS)
_MODULE_HOOKS = _hook_names(Target.MODULE, Target.BATCH_HOOK, Target.DATA_SOURCE)
_DATAMODULE_HOOKS = _hook_names(Target.DATAMODULE, Target.BATCH_HOOK, Target.DATA_SOURCE)


class _Arg(dict[str, Any]):
    """An event argument, compared by identity; as a checkpoint's callback states, it has an entry for every key."""

    __eq__ = object.__eq__  # type: ignore[assignment]
    __hash__ = object.__hash__  # type: ignore[assignment]

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        return {"state of": key, "from": self.name}

    def __repr__(self) -> str:
        return f"<arg {self.name}>"


class _Calls:
    """The log every receiver writes, and the call (by index) that raises, if any."""

    def __init__(self) -> None:
        self.log: list[tuple[Any, ...]] = []
        self.raise_at = -1
        self.raised: list[BaseException] = []
        self.module: Any = None

    def record(self, who: str, hook: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        fx = self.module.__dict__.get("_current_fx_name") if self.module is not None else None
        self.log.append((who, hook, args, tuple(sorted(kwargs.items())), fx))
        if len(self.log) - 1 == self.raise_at:
            err = RuntimeError(f"{who}.{hook} raised (call {self.raise_at})")
            self.raised.append(err)
            raise err
        return ("value of", who, hook)


CALLS = _Calls()


def _recording(who: str, hook: str) -> Callable[..., Any]:
    def method(self: Any, *args: Any, **kwargs: Any) -> Any:
        return CALLS.record(who, hook, args, kwargs)

    method.__name__ = hook
    return method


def _overriding(base: type, who: str, hooks: set[str]) -> type:
    return type(f"Recording{who}", (base,), {h: _recording(who, h) for h in sorted(hooks)})


class _Host:
    """The trainer the driver is built for: its state, and the strategy steps the actions call."""

    def __init__(self) -> None:
        self.state = TrainerState()
        for step in ("_setup_environment", "_strategy_setup", "_teardown_internal"):
            setattr(self, step, self._action(step))

    @staticmethod
    def _action(name: str) -> Callable[[], None]:
        return lambda: CALLS.record("host", name, (), {}) and None


class _Net(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(2, 1)


def _receivers(overridden: bool) -> tuple[Any, list[Any], Any]:
    if not overridden:
        return _Net(), [], None
    module = _overriding(_Net, "Module", _MODULE_HOOKS)()
    datamodule = _overriding(L.LightningDataModule, "DataModule", _DATAMODULE_HOOKS)()
    callbacks = [
        _overriding(L.Callback, "Plain", _CALLBACK_HOOKS)(),
        _overriding(Checkpoint, "Monitor", _CALLBACK_HOOKS)(),
    ]
    return module, callbacks, datamodule


def _drivers(overridden: bool) -> tuple[dict[str, LifecycleDriver], Any]:
    host = _Host()
    module, callbacks, datamodule = _receivers(overridden)
    drivers = {}
    for executor in ("generated", "interpreted"):
        driver = LifecycleDriver(host, executor=executor)
        driver.bind(module, callbacks, datamodule)
        drivers[executor] = driver
    return drivers, module


def _cells() -> list[tuple[int, Event, int]]:
    """Every (state, event, number of arguments) of the table; optional last parameters both ways."""
    cells = []
    for state, row in enumerate(_TABLE.rows):
        for trigger in row:
            cells.append((state, trigger, len(trigger.params)))
            if trigger.optional_tail:
                cells.append((state, trigger, len(trigger.params) - 1))
    return cells


def _fire(
    driver: LifecycleDriver, module: Any, state: int, trigger: Event, args: tuple[Any, ...], raise_at: int
) -> dict[str, Any]:
    """Fire ``trigger`` from ``state`` (placed, not walked to); what happened, then the interruption if it raised."""
    CALLS.log, CALLS.raised, CALLS.raise_at, CALLS.module = [], [], raise_at, module
    driver._ids = driver._id_rows[state]
    host = driver.trainer
    host.state.stage = None
    module.__dict__["_current_fx_name"] = "before"
    out: dict[str, Any] = {}
    try:
        # by repr: with nothing overridden, Lightning's default transfer hook returns a new copy of the batch
        out["value"] = repr(driver.fire(trigger, *args))
    except Exception as err:  # (with nothing overridden, a default hook may fail on the placeholder arguments)
        out["raised"] = err
        assert not CALLS.raised or err is CALLS.raised[-1], "not the receiver's exception"
    out.update(
        calls=CALLS.log,
        state=driver.state,
        stage=host.state.stage,
        fx=module.__dict__["_current_fx_name"],
        failures=list(driver._isolated_failures),
    )
    if "raised" in out:
        CALLS.log, CALLS.raise_at = [], -1
        err = out["raised"]
        driver.interrupt(err)
        out.update(
            interruption=CALLS.log,
            after=driver.state,
            notes=list(getattr(err, "__notes__", [])),
            status=host.state.status,
        )
    driver._isolated_failures = []
    return out


def _said(value: Any) -> Any:
    """``value`` with every exception in it replaced by its repr."""
    if isinstance(value, BaseException):
        return repr(value)
    if isinstance(value, dict):
        return {k: _said(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_said(v) for v in value)
    return value


@pytest.mark.parametrize("overridden", [True, False], ids=["every-hook-overridden", "nothing-overridden"])
def test_interpreter_and_generated_functions_agree_on_every_cell_of_the_table(overridden: bool) -> None:
    drivers, module = _drivers(overridden)
    fired = raised = 0
    for state, trigger, n in _cells():
        where = f"{trigger.name} ({n} args) from {_TABLE.states[state]}"
        args = tuple(_Arg(f"{trigger.name}.{p}") for p in trigger.params[:n])  # the same objects for both
        runs = {name: _said(_fire(d, module, state, trigger, args, -1)) for name, d in drivers.items()}
        assert runs["generated"] == runs["interpreted"], where
        fired += 1
        for k in range(len(runs["interpreted"]["calls"])):  # each call of the event raises in turn
            faulty = {name: _fire(d, module, state, trigger, args, k) for name, d in drivers.items()}
            # the exception objects differ (one per run): compare what they say
            g, i = (_said(faulty[name]) for name in ("generated", "interpreted"))
            assert "raised" in g or g["failures"], f"{where}, call {k}: the failure vanished"
            assert g == i, f"{where}, call {k} raising"
            raised += 1
    assert fired == len(_cells()) > 500
    if overridden:
        assert raised > 1000  # most cells call several receivers


def test_the_interpreter_names_its_functions_as_the_generator_does() -> None:
    drivers, _ = _drivers(True)
    for trigger in (LIFECYCLE.triggers()["training_step"], LIFECYCLE.triggers()["fit"]):
        names = {executor: d.caller(trigger).__code__.co_name for executor, d in drivers.items()}
        assert names["generated"] == names["interpreted"]
        assert names["generated"].startswith(f"fire_{trigger.name}__from__")
        assert names["generated"].isidentifier()


def test_the_executor_comes_from_the_argument_else_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LIGHTCYCLE_EXECUTOR", raising=False)
    assert LifecycleDriver(_Host()).executor == engine_driver.DEFAULT_EXECUTOR
    monkeypatch.setenv("LIGHTCYCLE_EXECUTOR", "interpreted")
    assert LifecycleDriver(_Host()).executor == "interpreted"
    assert LifecycleDriver(_Host(), executor="generated").executor == "generated"
    assert L.Trainer(logger=False)._driver.executor == "interpreted"
    monkeypatch.setenv("LIGHTCYCLE_EXECUTOR", "compiled")
    with pytest.raises(
        ValueError, match=r"LIGHTCYCLE_EXECUTOR must be one of 'generated', 'interpreted', got 'compiled'"
    ):
        LifecycleDriver(_Host())
    with pytest.raises(ValueError, match=r"executor must be one of 'generated', 'interpreted', got 'jit'"):
        LifecycleDriver(_Host(), executor="jit")


# --------------------------------------------------------------------------- debug mode


class _Tiny(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(2, 1)

    def training_step(self, batch: Any, batch_idx: int) -> Any:
        return F.mse_loss(self.layer(batch[0]), batch[1])

    def configure_optimizers(self) -> Any:
        return torch.optim.SGD(self.parameters(), lr=0.1)


class _Seen(L.Callback):
    """Writes down the callback hooks it receives, in order (what the debug log must show)."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
        self.seen.append("on_fit_start")

    def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int) -> None:
        self.seen.append("on_train_batch_start")

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        self.seen.append("on_train_batch_end")

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        self.seen.append("on_train_epoch_end")

    def on_fit_end(self, trainer: Any, pl_module: Any) -> None:
        self.seen.append("on_fit_end")


def _tiny_fit(callbacks: list[Any]) -> None:
    data = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(torch.randn(6, 2), torch.randn(6, 1)), batch_size=2
    )
    trainer = L.Trainer(
        max_epochs=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=callbacks,
    )
    trainer.fit(_Tiny(), train_dataloaders=data)


@pytest.mark.parametrize("executor", ["generated", "interpreted"])
def test_debug_mode_logs_each_event_its_states_and_the_hooks_it_calls_in_order(
    executor: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("LIGHTCYCLE_DEBUG", "1")
    monkeypatch.setenv("LIGHTCYCLE_EXECUTOR", executor)
    seen = _Seen()
    with caplog.at_level(logging.DEBUG, logger="lightcycle.engine"):
        _tiny_fit([seen])
    lines = [r.getMessage() for r in caplog.records if r.name == "lightcycle.engine"]
    events = [line for line in lines if line.startswith("event ")]
    # the events chain: each starts where the one before ended, from idle back to idle
    moves = [line.split(": ", 1)[1].split(" -> ") for line in events]
    assert moves[0][0] == "idle" and moves[-1][1] == "idle"
    assert all(a[1] == b[0] for a, b in itertools.pairwise(moves))
    assert sum(line.startswith("event training_step: ") for line in events) == 3  # one per batch
    # the callback's hooks, as logged, are the ones it received, in its order
    logged = [line.split(".", 1)[1] for line in lines if line.startswith("  hook _Seen.")]
    assert logged == seen.seen and len(logged) == 1 + 3 + 3 + 1 + 1
    assert "  hook _Tiny.training_step" in lines and "  hook _Tiny.configure_optimizers" in lines
    assert any(line.startswith("  action ") for line in lines)
    # a hook line follows the event line that called it
    first = lines.index("  hook _Seen.on_train_batch_start")
    assert next(line for line in reversed(lines[:first]) if line.startswith("event ")).startswith(
        "event train_batch_start: "
    )


def test_debug_mode_off_makes_no_logger_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LIGHTCYCLE_DEBUG", raising=False)
    calls: list[str] = []
    logger = logging.getLogger("lightcycle.engine")
    for name in ("debug", "info", "log", "isEnabledFor", "_log"):
        monkeypatch.setattr(logger, name, lambda *a, _n=name, **k: calls.append(_n))
    _tiny_fit([_Seen()])
    assert calls == []


def test_debug_mode_is_read_when_the_driver_is_built(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIGHTCYCLE_DEBUG", "1")
    driver = LifecycleDriver(_Host())
    monkeypatch.setenv("LIGHTCYCLE_DEBUG", "0")
    assert driver.debug and not LifecycleDriver(_Host()).debug


# --------------------------------------------------------------------------- checked mode


def test_checked_mode_asks_the_machine_once_per_state_and_event(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    asked: list[tuple[str, str]] = []
    real = checked_mode._Oracle.ask

    def ask(self: Any, path: str, event: str) -> str | None:
        asked.append((path, event))
        return real(self, path, event)

    monkeypatch.setattr(checked_mode, "_ORACLES", {})  # a fresh process, as far as the answers go
    monkeypatch.setattr(checked_mode._Oracle, "ask", ask)
    monkeypatch.setenv("LIGHTCYCLE_DEBUG", "1")  # logs every event with its source: the pairs met
    caplog.set_level(logging.DEBUG, logger="lightcycle.engine")
    for _ in range(2):
        caplog.clear()
        trainer = L.Trainer(
            max_epochs=2,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            checked=True,
        )
        data = torch.utils.data.DataLoader(
            torch.utils.data.TensorDataset(torch.randn(8, 2), torch.randn(8, 1)), batch_size=2
        )
        trainer.fit(_Tiny(), train_dataloaders=data)
        met = [
            (str(r.args[1]), str(r.args[0]))
            for r in caplog.records
            if r.msg == "event %s: %s -> %s" and isinstance(r.args, tuple)
        ]
        assert len(met) > 2 * 4 * 9  # every event of every batch, logged
        assert set(met) <= trainer._driver.checked_pairs  # ... each from a step proven before it ran
    assert len(asked) == len(set(asked))  # each pair once, for both fits
    assert 10 < len(asked) < 120


def test_the_machine_agrees_with_the_table_on_every_state_and_event() -> None:
    # checked mode proves the cells a run's event functions can take, and the refusals it
    # meets; this proves every cell of the default lifecycle, refusals included (and that
    # asking the machine by firing answers as its get_triggers does)
    table = engine_driver.table_for(LIFECYCLE)
    machine, _ = build_machine(LIFECYCLE)
    for index, path in enumerate(table.states):
        legal = set(machine.get_triggers(path))
        for name, trigger in table.triggers.items():
            entry = table.rows[index].get(trigger)
            answer = checked_mode.machine_answer(table, path, name)
            assert (answer is not None) == (name in legal) == (entry is not None), (path, name)
            if entry is not None:
                assert answer == table.states[index if entry.dest is None else entry.dest], (path, name)


def _with_step(driver: LifecycleDriver, state: str, event: str, step: Any) -> None:
    """Change the bound table's cell of ``event`` in ``state`` (``None``: no step there)."""
    index = driver.table.index[state]
    trigger = driver.table.triggers[event]
    if step is None:
        del driver._rows[index][trigger], driver._id_rows[index][id(trigger)]
    else:
        driver._rows[index][trigger] = driver._id_rows[index][id(trigger)] = step


class _Starts(L.Callback):
    def __init__(self) -> None:
        self.starts: list[int] = []

    def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int) -> None:
        self.starts.append(batch_idx)


_TRANSFERRED = "fit.train.epoch.batch.transferred"


@pytest.mark.parametrize("checked", [True, False])
def test_checked_mode_catches_a_wrong_destination_before_any_hook_of_the_event(checked: bool) -> None:
    # a bound table whose train_batch_start goes back to 'running' instead of 'started'
    cb = _Starts()
    driver = LifecycleDriver(_Host(), checked=checked)
    driver.bind(_Net(), [cb])
    trigger = driver.table.triggers["train_batch_start"]
    good = driver._rows[driver.table.index[_TRANSFERRED]][trigger]
    wrong = Step(good.trigger, driver.table.index["fit.train.epoch.running"], good.stage, good.ops)
    _with_step(driver, _TRANSFERRED, "train_batch_start", wrong)
    driver.fire(LIFECYCLE.triggers()["fit"])  # elsewhere: the cell is not met yet
    if not checked:
        driver._ids = driver._id_rows[driver.table.index[_TRANSFERRED]]
        driver.fire(trigger, torch.ones(2), 3)  # nothing compares: the wrong move is taken
        assert driver.state == "fit.train.epoch.running" and cb.starts == [3]
        return
    message = rf"after 'train_batch_start' from '{_TRANSFERRED}': machine in '.*started', table in '.*running'"
    with pytest.raises(checked_mode.LifecycleCheckError, match=message):
        driver.caller(trigger)  # proven when made, for every state it fires from
    driver._ids = driver._id_rows[driver.table.index[_TRANSFERRED]]
    for _ in range(2):
        with pytest.raises(checked_mode.LifecycleCheckError, match=message):
            driver.fire(trigger, torch.ones(2), 3)
        assert driver.state == _TRANSFERRED and cb.starts == []


@pytest.mark.parametrize("checked", [True, False])
def test_checked_mode_catches_a_table_that_refuses_what_the_machine_allows(checked: bool) -> None:
    cb = _Starts()
    driver = LifecycleDriver(_Host(), checked=checked)
    driver.bind(_Net(), [cb])
    _with_step(driver, _TRANSFERRED, "train_batch_start", None)
    driver._ids = driver._id_rows[driver.table.index[_TRANSFERRED]]
    trigger = driver.table.triggers["train_batch_start"]
    expected = checked_mode.LifecycleCheckError if checked else LifecycleError
    match = "table says illegal, transitions says legal" if checked else "train_batch_start"
    for _ in range(2):
        with pytest.raises(expected, match=match):
            driver.fire(trigger, torch.ones(2), 3)
        assert driver.state == _TRANSFERRED and cb.starts == []


def test_checked_mode_refuses_an_event_the_machine_refuses_even_after_caching(monkeypatch: pytest.MonkeyPatch) -> None:
    # a table that wrongly allows an event from a state: the machine says no, every time
    host = _Host()
    driver = LifecycleDriver(host, checked=True)
    driver.bind(_Net(), [])
    fit = LIFECYCLE.triggers()["fit"]
    driver.fire(fit)
    start = driver.state
    wrong = driver._rows[driver._state]
    stop = LIFECYCLE.triggers()["training_step"]
    assert stop not in wrong
    wrong[stop] = next(iter(wrong.values()))  # the table says: legal here
    driver._id_rows[driver._state][id(stop)] = wrong[stop]
    for _ in range(2):
        with pytest.raises(checked_mode.LifecycleCheckError, match=r"'training_step' from .*table says legal"):
            driver.fire(stop, _Arg("batch"), 0)
        assert driver.state == start
