"""The generated event functions (``lightcycle.engine.codegen``), edge by edge.

Every hook call of every run goes through these functions, so the differential and
trace tests exercise them end to end; these tests pin what only the generator can get
wrong: arity, state after a refusal, held functions across a re-bind, event names that
could shadow the generator's own names, ``_current_fx_name`` on the error path, checked
mode, and compiling each shape of source once per process.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch.nn import functional as F

import lightcycle as L
from lightcycle.engine import codegen
from lightcycle.engine.driver import LifecycleDriver
from lightcycle.engine.interpreter import Context, Step
from lightcycle.errors import LifecycleError
from lightcycle.states import declaration as ev
from lightcycle.states.declaration import LIFECYCLE
from lightcycle.states.model import Event, Hook, Target, Transition
from lightcycle.states.stages import TrainerState
from tests import kit

_RUNNING = "fit.train.epoch.running"
_STARTED = "fit.train.epoch.batch.started"


class _Holder:
    def __init__(self) -> None:
        self.state = TrainerState()


class _Model(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = torch.nn.Linear(4, 1)
        self.seen_fx: list[Any] = []

    def training_step(self, batch: Any, batch_idx: int) -> Any:
        self.seen_fx.append(self._current_fx_name)
        if batch is None:
            raise RuntimeError("no batch")
        return F.mse_loss(self.net(batch), torch.zeros(len(batch), 1))

    def configure_optimizers(self) -> Any:
        return torch.optim.SGD(self.parameters(), lr=0.1)


class _Starts(L.Callback):
    def __init__(self) -> None:
        self.starts: list[int] = []

    def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int) -> None:
        self.starts.append(batch_idx)


def _driver(module: Any, callbacks: list[Any], *, at: str, checked: bool = False) -> LifecycleDriver:
    driver = LifecycleDriver(_Holder(), checked=checked)
    driver.bind(module, callbacks)
    # put the driver in a state without walking there (the executor is what is tested here)
    driver._ids = driver._id_rows[driver.table.index[at]]
    return driver


@pytest.mark.parametrize("checked", [False, True])
def test_wrong_number_of_arguments_is_refused_before_anything_moves(checked: bool) -> None:
    cb = _Starts()
    driver = _driver(_Model(), [cb], at="fit.train.epoch.batch.transferred", checked=checked)
    with pytest.raises(TypeError, match="train_batch_start"):
        driver.fire(ev.TRAIN_BATCH_START, torch.ones(2, 4))  # batch_idx missing
    with pytest.raises(TypeError, match="train_batch_start"):
        driver.caller(ev.TRAIN_BATCH_START)(torch.ones(2, 4), 0, "extra")
    assert driver.state == "fit.train.epoch.batch.transferred" and cb.starts == []
    driver.fire(ev.TRAIN_BATCH_START, torch.ones(2, 4), 7)
    assert driver.state == "fit.train.epoch.batch.started" and cb.starts == [7]


def test_an_illegal_event_through_a_held_function_changes_nothing() -> None:
    cb = _Starts()
    driver = _driver(_Model(), [cb], at=_RUNNING)
    driver._trainer_state.stage = "before"
    start = driver.caller(ev.TRAIN_BATCH_START)
    with pytest.raises(LifecycleError) as err:
        start(torch.ones(2, 4), 0)  # the batch was not transferred yet
    assert err.value.state == _RUNNING and driver.state == _RUNNING and cb.starts == []
    assert driver._trainer_state.stage == "before"


def test_a_function_held_across_a_rebind_reaches_the_new_callbacks() -> None:
    first, second = _Starts(), _Starts()
    module = _Model()
    driver = _driver(module, [first], at="fit.train.epoch.batch.transferred")
    held = driver.caller(ev.TRAIN_BATCH_START)
    driver.bind(module, [second])  # e.g. configure_callbacks replaced the callback list
    assert driver.caller(ev.TRAIN_BATCH_START) is not held
    held(torch.ones(2, 4), 3)  # the old function defers to the driver's general path
    assert (first.starts, second.starts) == ([], [3])
    assert driver.state == "fit.train.epoch.batch.started"


def test_current_fx_name_is_set_during_the_hook_and_restored_when_it_raises() -> None:
    module = _Model()
    module._current_fx_name = "outer"
    driver = _driver(module, [], at=_STARTED)
    with pytest.raises(RuntimeError, match="no batch"):
        driver.fire(ev.TRAINING_STEP, None, 0)
    assert module.seen_fx == ["training_step"] and module._current_fx_name == "outer"


def test_checked_mode_proves_a_held_function_before_it_runs_and_then_adds_nothing() -> None:
    driver = _driver(_Model(), [], at=_STARTED, checked=True)
    step = driver.caller(ev.TRAINING_STEP)
    # proven when made, from every state it can fire from; what runs is the plain function
    assert (_STARTED, "training_step") in driver.checked_pairs
    assert step is driver._events[id(ev.TRAINING_STEP)]
    assert step.__name__.startswith("fire_training_step__from__")
    out = step(torch.ones(2, 4), 0)
    assert isinstance(out, torch.Tensor)
    assert driver.state == "fit.train.epoch.batch.forwarded"
    plain = _driver(_Model(), [], at=_STARTED)
    assert step.__code__ is plain.caller(ev.TRAINING_STEP).__code__  # the unchecked function, same code


_NAMES = (
    "general",
    "holder",
    "step",
    "make",
    "fx",
    "ts",
    "prev",
    "result",
    "a0",
    "tail",
    "trainer",
    "pl_module",
    "deepcopy",
)
_CLASHING = LIFECYCLE.extend(
    transitions=[
        Transition(
            Event(name, ("value",), "an event named like a generator variable"),
            (_STARTED,),
            None,
            (Hook(f"on_{name}", Target.CALLBACKS, ("value",)),),
        )
        for name in _NAMES
    ]
)


def test_event_names_cannot_shadow_the_generated_code_names() -> None:
    calls: list[tuple[str, Any]] = []

    class Listener(L.Callback):
        pass

    for name in _NAMES:
        setattr(Listener, f"on_{name}", lambda self, trainer, pl_module, value, _n=name: calls.append((_n, value)))
    driver = LifecycleDriver(_Holder(), _CLASHING)
    driver.bind(_Model(), [Listener()])
    driver._ids = driver._id_rows[driver.table.index[_STARTED]]
    for i, name in enumerate(_NAMES):
        trigger = driver.table.triggers[name]
        driver.fire(trigger, i)
        driver.caller(trigger)(-i)
    assert calls == [c for i, name in enumerate(_NAMES) for c in ((name, i), (name, -i))]


def test_each_shape_of_source_is_compiled_once_per_process() -> None:
    def fit() -> None:
        data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(8, 4)), batch_size=4)

        class Module(_Model):
            def training_step(self, batch: Any, batch_idx: int) -> Any:
                return super().training_step(batch[0], batch_idx)

        trainer = L.Trainer(**kit.quiet(max_epochs=1, callbacks=[_Starts()]))
        trainer.fit(Module(), data)

    fit()
    compiled = len(codegen._MAKERS)
    fit()
    assert len(codegen._MAKERS) == compiled  # a second run reuses every compiled source


def test_a_traceback_through_a_hook_shows_the_generated_line() -> None:
    import traceback

    driver = _driver(_Model(), [], at=_STARTED)
    with pytest.raises(RuntimeError, match="no batch") as err:
        driver.fire(ev.TRAINING_STEP, None, 0)
    frames = [f for f in traceback.extract_tb(err.value.__traceback__) if f.filename.startswith("<lightcycle event")]
    # named by the event and where it fires from (the three states of a training batch
    # that allow it: their common ancestor), in the frame, the file name and the qualname
    name = "fire_training_step__from__fit_train_epoch_batch"
    assert [f.name for f in frames] == [name]
    assert frames[0].filename.startswith(f"<lightcycle event {name} #")
    assert frames[0].line is not None and frames[0].line.startswith("return f")  # the call of the bound hook
    event = driver.caller(ev.TRAINING_STEP)
    assert event.__name__ == event.__qualname__ == event.__code__.co_qualname == name


def test_a_failing_exception_handler_is_named_by_its_class_in_the_note() -> None:
    class Broken(L.Callback):
        def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
            raise ValueError("handler broke")

    seen: list[BaseException] = []

    class Fine(L.Callback):
        def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
            seen.append(exception)

    driver = _driver(_Model(), [Broken(), Fine()], at=_STARTED)
    original = RuntimeError("the run failed")
    driver.interrupt(original)
    assert seen == [original]  # the next handler still ran
    assert [type(e) for e in driver.secondary_errors] == [ValueError]
    assert original.__notes__ == [
        "lightcycle: Broken.on_exception also failed while handling this: ValueError: handler broke"
    ]


def test_stage_is_written_only_where_it_changes() -> None:
    from lightcycle.states.table import KEEP, TransitionTable

    table = TransitionTable(LIFECYCLE)
    writes = 0
    for i, row in enumerate(table.rows):
        for trigger, entry in row.items():
            dest_stage = table.stages[entry.dest] if entry.dest is not None else table.stages[i]
            expected = table.stages[i] if dest_stage is KEEP else dest_stage
            after = table.stages[i] if entry.stage is KEEP else entry.stage
            assert after == expected, (table.states[i], trigger.name)
            if entry.stage is not KEEP:
                assert entry.stage != table.stages[i], (table.states[i], trigger.name)
                writes += 1
    assert writes > 0  # loop entries and exits do change it
    batch = table.index[_STARTED]
    assert all(e.stage is KEEP for e in table.rows[batch].values())  # nothing inside a training batch writes it


@pytest.mark.parametrize("n", [1, 2, codegen._MAX_ROW_TESTS, codegen._MAX_ROW_TESTS + 1])
def test_the_step_is_found_from_every_source_row_by_identity_or_lookup(n: int) -> None:
    # An event legal from few rows compares the current row with each; from more, one
    # dict lookup. Either way: each source row takes its own step, any other row the
    # general path, and nothing moves on the way there.
    from lightcycle.states.model import Stage

    trigger = Event(f"probe_{n}", ("x",), "a test event")
    rows: list[dict[int, Any]] = [{} for _ in range(n + 2)]
    after_a: dict[int, Any] = {}
    after_b: dict[int, Any] = {}
    step_a = Step(trigger, n + 2, Stage.KEEP, ())
    step_b = Step(trigger, n + 3, Stage.KEEP, ())
    for row in rows[:n]:
        row[id(trigger)] = step_a
    rows[n][id(trigger)] = step_b
    holder = _Holder()
    holder._ids = None  # type: ignore[attr-defined]
    holder._id_rows = [*rows, after_a, after_b]  # type: ignore[attr-defined]
    general_calls: list[tuple[Any, tuple[Any, ...]]] = []

    def general(t: Event, args: tuple[Any, ...]) -> str:
        general_calls.append((t, args))
        return "general"

    ctx = Context(holder, holder.state, None, None, {}, {}, general)
    fire = codegen.compile_event(ctx, trigger, [(step_a, rows[:n]), (step_b, rows[n : n + 1])], f"fire_probe_{n}")
    source = next(src for src in codegen._MAKERS if f"def fire_probe_{n}(" in src)
    assert ("holder._ids.get(" in source) is (n + 1 > codegen._MAX_ROW_TESTS)
    for row in rows[:n]:
        holder._ids = row  # type: ignore[attr-defined]
        assert fire(1) is None and holder._ids is after_a  # type: ignore[attr-defined]
    holder._ids = rows[n]  # type: ignore[attr-defined]
    assert fire(2) is None and holder._ids is after_b  # type: ignore[attr-defined]
    holder._ids = rows[n + 1]  # type: ignore[attr-defined]
    assert fire(3) == "general" and holder._ids is rows[n + 1]  # type: ignore[attr-defined]
    assert general_calls == [(trigger, (3,))]
