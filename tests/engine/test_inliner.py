"""``codegen.Inliner``: events written into one function behave as the events fired one by one.

Each inlined event runs its step inline only from the row the sequence expects; from any other
row it calls the event's own function, so an illegal event is refused exactly as ``fire``
refuses it. Drivers that must not inline (interpreted) give no inliner; a checked one
inlines only steps it has proven against the machine.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch

import lightcycle as L
from lightcycle.engine.driver import LifecycleDriver
from lightcycle.errors import LifecycleError
from lightcycle.states import declaration as ev
from lightcycle.states.stages import TrainerState

_FORWARDED = "fit.train.epoch.batch.closure.forwarded"


class _Host:
    def __init__(self) -> None:
        self.state = TrainerState()


def _driver(
    calls: list[tuple[str, Any]], executor: str = "generated", checked: bool = False, fail_backward: bool = False
) -> LifecycleDriver:
    class Net(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.layer = torch.nn.Linear(2, 1)

        def optimizer_zero_grad(self, epoch: int, batch_idx: int, optimizer: Any) -> None:
            calls.append(("optimizer_zero_grad", self._current_fx_name))

        def backward(self, loss: Any, *args: Any, **kwargs: Any) -> None:
            calls.append(("backward", self._current_fx_name))
            if fail_backward:
                raise RuntimeError("backward failed")

    class Recorder(L.Callback):
        def on_before_zero_grad(self, trainer: Any, pl_module: Any, optimizer: Any) -> None:
            calls.append(("on_before_zero_grad", pl_module._current_fx_name))

        def on_after_backward(self, trainer: Any, pl_module: Any) -> None:
            calls.append(("on_after_backward", pl_module._current_fx_name))

    driver = LifecycleDriver(_Host(), executor=executor, checked=checked)
    driver.bind(Net(), [Recorder()])
    return driver


def _place(driver: LifecycleDriver, path: str) -> None:
    driver._ids = driver._id_rows[driver.table.index[path]]


def _zero_grad_then_backward(driver: LifecycleDriver, within: str | None) -> Any:
    inline = driver.inliner()
    assert inline is not None
    row = inline.fire(2, ev.ZERO_GRAD, inline.row(driver.table.index[_FORWARDED]), ["e", "i", "opt"], None, within)
    inline.fire(2, ev.BACKWARD, row, ["loss"], None, within)
    return inline.compile("fire_test_zero_grad_backward", ["e", "i", "opt", "loss"])


@pytest.mark.parametrize("within", [None, "optimizer_step"])
def test_inlined_events_are_the_events_fired_one_by_one(within: str | None) -> None:
    ours: list[tuple[str, Any]] = []
    theirs: list[tuple[str, Any]] = []
    inlined, reference = _driver(ours), _driver(theirs)
    fused = _zero_grad_then_backward(inlined, within)
    for driver in (inlined, reference):
        _place(driver, _FORWARDED)
        driver._fx["_current_fx_name"] = within
    fused(0, 1, "opt", "loss")
    reference.fire(ev.ZERO_GRAD, 0, 1, "opt")
    reference.fire(ev.BACKWARD, "loss")
    assert (
        ours
        == theirs
        == [
            ("on_before_zero_grad", "on_before_zero_grad"),
            ("optimizer_zero_grad", "optimizer_zero_grad"),
            ("backward", "backward"),
            ("on_after_backward", "on_after_backward"),
        ]
    )
    assert inlined.state == reference.state == "fit.train.epoch.batch.closure.backwarded"
    assert inlined._fx["_current_fx_name"] == reference._fx["_current_fx_name"] == within


def test_from_another_state_the_event_functions_run_or_refuse() -> None:
    ours: list[tuple[str, Any]] = []
    theirs: list[tuple[str, Any]] = []
    inlined, reference = _driver(ours), _driver(theirs)
    fused = _zero_grad_then_backward(inlined, None)
    # the accumulating micro-batch's row: both events are legal there, with other steps
    for driver in (inlined, reference):
        _place(driver, "fit.train.epoch.batch.forwarded")
    fused(0, 1, "opt", "loss")
    reference.fire(ev.ZERO_GRAD, 0, 1, "opt")
    reference.fire(ev.BACKWARD, "loss")
    assert ours == theirs and ours
    assert inlined.state == reference.state == "fit.train.epoch.batch.backwarded"
    # where the first is illegal: the same refusal as fire's, and nothing ran
    for driver in (inlined, reference):
        _place(driver, "fit.train.epoch.running")
    ours.clear()
    with pytest.raises(LifecycleError) as raised:
        fused(0, 1, "opt", "loss")
    with pytest.raises(LifecycleError) as expected:
        reference.fire(ev.ZERO_GRAD, 0, 1, "opt")
    assert str(raised.value) == str(expected.value)
    assert ours == []


def test_no_inliner_where_events_must_keep_their_own_path() -> None:
    calls: list[tuple[str, Any]] = []
    assert _driver(calls).inliner() is not None
    assert _driver(calls, executor="interpreted").inliner() is None


def test_a_checked_driver_inlines_only_proven_steps() -> None:
    calls: list[tuple[str, Any]] = []
    driver = _driver(calls, checked=True)
    assert driver.checked_pairs == frozenset()
    _zero_grad_then_backward(driver, None)
    forwarded = (_FORWARDED, ev.ZERO_GRAD.name)
    proven = driver.checked_pairs
    assert forwarded in proven  # the inlined zero_grad step, proven before it was written
    assert any(name == ev.BACKWARD.name for _, name in proven)


def _lazy_zero_grad_then_backward(driver: LifecycleDriver, known: bool) -> Any:
    """The two events with ``around`` (names left lazily, one restore) and optionally ``known``."""
    inline = driver.inliner()
    assert inline is not None
    inline.line(2, "prev = fx.get('_current_fx_name')")
    inline.line(2, "try:")
    start = inline.row(driver.table.index[_FORWARDED])
    row = inline.fire(3, ev.ZERO_GRAD, start, ["e", "i", "opt"], None, around="'optimizer_step'", known=known)
    assert inline.dirty  # the hooks' names are left
    inline.fire(3, ev.BACKWARD, row, ["loss"], None, around="'optimizer_step'")
    inline.restore(3, "prev")
    assert not inline.dirty
    inline.line(3, "return fx.get('_current_fx_name')")
    inline.line(2, "finally:")
    inline.line(3, "fx['_current_fx_name'] = prev")
    return inline.compile("fire_test_lazy_zero_grad_backward", ["e", "i", "opt", "loss"])


# (``known`` only where the caller guarantees the expected row: from another, that is no call)
@pytest.mark.parametrize(
    ("known", "place"), [(False, _FORWARDED), (True, _FORWARDED), (False, "fit.train.epoch.batch.forwarded")]
)
def test_names_left_lazily_are_the_events_fired_one_by_one(known: bool, place: str) -> None:
    ours: list[tuple[str, Any]] = []
    theirs: list[tuple[str, Any]] = []
    inlined, reference = _driver(ours), _driver(theirs)
    fused = _lazy_zero_grad_then_backward(inlined, known)
    for driver in (inlined, reference):
        _place(driver, place)
        driver._fx["_current_fx_name"] = "optimizer_step"
    after = fused(0, 1, "opt", "loss")
    reference.fire(ev.ZERO_GRAD, 0, 1, "opt")
    reference.fire(ev.BACKWARD, "loss")
    assert ours == theirs and len(ours) == 4
    assert all(hook == seen for hook, seen in ours)  # each hook saw its own name
    assert inlined.state == reference.state
    assert after == inlined._fx["_current_fx_name"] == reference._fx["_current_fx_name"] == "optimizer_step"


def test_a_failure_between_lazily_named_hooks_leaves_the_name_from_before() -> None:
    ours: list[tuple[str, Any]] = []
    theirs: list[tuple[str, Any]] = []
    inlined, reference = _driver(ours, fail_backward=True), _driver(theirs, fail_backward=True)
    for driver in (inlined, reference):
        _place(driver, _FORWARDED)
        driver._fx["_current_fx_name"] = "before"
    fused = _lazy_zero_grad_then_backward(inlined, False)
    with pytest.raises(RuntimeError, match="backward failed"):
        fused(0, 1, "opt", "loss")
    with pytest.raises(RuntimeError, match="backward failed"):
        reference.fire(ev.ZERO_GRAD, 0, 1, "opt")
        reference.fire(ev.BACKWARD, "loss")
    assert ours == theirs and ours[-1] == ("backward", "backward")
    assert inlined.state == reference.state
    assert inlined._fx["_current_fx_name"] == reference._fx["_current_fx_name"] == "before"


def test_an_unset_target_is_read_only_after_the_fallback() -> None:
    calls: list[tuple[str, Any]] = []
    inlined, reference = _driver(calls), _driver([])
    inline = inlined.inliner()
    assert inline is not None
    (row,) = inline.sources(ev.TRAIN_BATCH_START)
    inline.fire(2, ev.TRAIN_BATCH_START, row, ["b", "i"], "answer", unset=True)
    assert not inline.target_set  # no hook of the module answers (its on_train_batch_start is the base one)
    inline.line(3, "return ('answered', answer)")  # in the fallback's block
    inline.line(2, "return 'inlined'")
    fused = inline.compile("fire_test_batch_start", ["b", "i"])
    start = next(path for path, r in zip(inlined.table.states, inlined._id_rows, strict=True) if r is row)
    for driver in (inlined, reference):
        _place(driver, start)
    assert fused("batch", 0) == "inlined"
    reference.fire(ev.TRAIN_BATCH_START, "batch", 0)
    assert inlined.state == reference.state
    # from another state the event's own function answers (here: it refuses)
    for driver in (inlined, reference):
        _place(driver, "fit.train.epoch.running")
    with pytest.raises(LifecycleError) as raised:
        fused("batch", 0)
    with pytest.raises(LifecycleError) as expected:
        reference.fire(ev.TRAIN_BATCH_START, "batch", 0)
    assert str(raised.value) == str(expected.value)
