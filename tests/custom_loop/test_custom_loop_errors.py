"""A refused LoopDriver call names the driver's methods (``lc.train_batch_start(...)``), not events.

One table (:data:`lightcycle.custom_loop.errors.CALLS`) maps every declared event to the
driver calls that fire it; these tests check the table against the declaration and the
driver's public methods, and the messages a custom loop gets in the states it reaches.
The Trainer's refusals keep the lifecycle's words.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
import torch

import lightcycle
from lightcycle import LoopDriver
from lightcycle.custom_loop.errors import CALLS, LoopDriverLifecycleError, next_calls
from lightcycle.errors import LifecycleError
from lightcycle.states import LIFECYCLE
from lightcycle.states import declaration as ev
from lightcycle.states.table import TransitionTable
from tests import kit

_Plain = kit.plain_module_class(lightcycle, width=2)  # no steps: the custom loop is the step
_X = torch.ones(2, 2)
CALL = re.compile(r"\blc\.(\w+)\(")


def _refusal(call: Callable[[], Any]) -> LoopDriverLifecycleError:
    with pytest.raises(LoopDriverLifecycleError) as info:
        call()
    return info.value


def test_every_declared_event_is_in_the_table() -> None:
    assert set(CALLS) == set(LIFECYCLE.triggers()), "an event without a row (or a row without an event)"


def test_every_call_in_the_table_is_a_public_method_of_the_driver() -> None:
    names = {m for calls in CALLS.values() for call in calls for m in CALL.findall(call)}
    assert len(names) > 25
    for name in names:
        assert not name.startswith("_") and callable(getattr(LoopDriver, name, None)), name


@pytest.mark.parametrize(
    ("method", "call"),
    [
        ("train_batch_start", lambda lc: lc.train_batch_start((_X,), 0)),
        ("train_batch", lambda lc: lc.train_batch((_X,), 0)),
        ("backward", lambda lc: lc.backward(lc.lightning_module(_X).sum())),
        ("optimizer_step", lambda lc: lc.optimizer_step(torch.optim.SGD(lc.lightning_module.parameters(), lr=0.1))),
        ("train_batch_end", lambda lc: lc.train_batch_end(None)),
        ("lr_scheduler_step", lambda lc: lc.lr_scheduler_step(object())),
        ("sanity_check_start", lambda lc: lc.sanity_check_start()),
        ("sanity_check_end", lambda lc: lc.sanity_check_end()),
        ("train_start", lambda lc: lc.train_start()),
        ("train_epoch_start", lambda lc: lc.train_epoch_start()),
        ("train_epoch_end", lambda lc: lc.train_epoch_end()),
        ("train_end", lambda lc: lc.train_end()),
        ("validation_start", lambda lc: lc.validation_start()),
        ("validation_end", lambda lc: lc.validation_end()),
        ("validation_batch_start", lambda lc: lc.validation_batch_start((_X,), 0)),
        ("validation_step", lambda lc: lc.validation_step()),
        ("validation_batch_end", lambda lc: lc.validation_batch_end(None)),
        ("test_batch_start", lambda lc: lc.test_batch_start((_X,), 0)),
        ("test_step", lambda lc: lc.test_step()),
        ("test_batch_end", lambda lc: lc.test_batch_end(None)),
        ("predict_batch_start", lambda lc: lc.predict_batch_start((_X,), 0)),
        ("predict_step", lambda lc: lc.predict_step()),
        ("predict_batch_end", lambda lc: lc.predict_batch_end(None)),
        ("end", lambda lc: lc.end()),
    ],
)
def test_each_refused_method_is_named_by_the_event_it_fires(method: str, call: Callable[[LoopDriver], Any]) -> None:
    lc = LoopDriver(_Plain())
    err = _refusal(lambda: call(lc))
    assert isinstance(err, LifecycleError) and err.state == "idle"
    calls = CALLS[err.trigger]
    assert calls and method in {m for c in calls for m in CALL.findall(c)}, (err.trigger, calls)
    assert str(err).startswith(f"{calls[0]} is not allowed now: the lifecycle is in state 'idle'.")
    assert "lc.fit(...)" in str(err) and "lc.validate()" in str(err)


def test_between_training_batches_the_message_lists_what_can_come_next() -> None:
    lc = LoopDriver(_Plain())
    lc.begin("fit")
    lc.train_epoch_start()
    err = _refusal(lambda: lc.backward(lc.lightning_module(_X).sum()))
    assert err.trigger == "backward" and err.state == "fit.train.epoch.running"
    message = str(err)
    assert message.startswith("lc.backward(loss) is not allowed now")
    for call in ("lc.train_batch_start(batch, batch_idx)", "lc.validation_start()", "lc.train_epoch_end()"):
        assert call in message
    for event in ("train_batch_transfer", "validation_model_zero_grad", "val_dataloader", "collect_state"):
        assert event not in message  # the lifecycle's own words stay in err.legal
    assert "train_batch_transfer" in err.legal
    lc.train_batch_start((_X,), 0)
    err = _refusal(lc.train_epoch_end)
    assert err.calls == ["lc.backward(loss)", "lc.optimizer_step(optimizer)", "lc.train_batch_end(outputs)", _save()]
    lc.train_batch_end(None)
    lc.end()


def _save() -> str:
    (call,) = CALLS["save_checkpoint"]
    return call


def test_in_an_evaluation_run_the_run_ends_with_end() -> None:
    lc = LoopDriver(_Plain())
    lc.begin("validate")
    err = _refusal(lc.train_epoch_start)
    assert err.calls == [
        "lc.validation_batch_start(batch, batch_idx)",
        "lc.validation_batch(batch, batch_idx)",
        "lc.end()",
        _save(),
    ]
    err = _refusal(lc.validation_end)  # inside fit only
    assert str(err).startswith("lc.validation_end() is not allowed now") and "lc.end()" in str(err)
    lc.end()


def test_an_undeclared_event_says_how_to_declare_it() -> None:
    err = _refusal(lambda: LoopDriver(_Plain()).fire("ema_update"))
    assert err.trigger == "ema_update"
    assert "declares no event 'ema_update'" in str(err) and "LIFECYCLE.extend" in str(err)


def test_a_refused_fire_is_named_as_called() -> None:
    lc = LoopDriver(_Plain())
    err = _refusal(lambda: lc.fire("teardown", "fit"))
    assert err.trigger == "teardown"
    assert str(err).startswith("lc.fire('teardown', ...) is not allowed now: the lifecycle is in state 'idle'.")
    assert lc.lifecycle_state == "idle"


def test_every_state_offers_driver_calls_only() -> None:
    table = TransitionTable(LIFECYCLE)
    for i, state in enumerate(table.states):
        calls = next_calls(state, table.legal(i))
        for call in calls:
            assert call.startswith(("lc.", "for epoch in lc.")), (state, call)
        if state not in ("interrupted",):
            assert calls, f"no driver call offered in {state}"


def test_events_a_lifecycle_adds_are_offered_through_fire() -> None:
    assert next_calls("fit.train.epoch.batch.stepped", ["ema_update", "train_batch_end"]) == [
        "lc.fire('ema_update', ...)",
        "lc.train_batch_end(outputs)",
    ]


def test_the_trainers_refusals_keep_the_lifecycles_words() -> None:
    trainer = lightcycle.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False)
    with pytest.raises(LifecycleError) as info:
        trainer._driver.fire(ev.TRAIN_BATCH_END, None, None, 0)
    assert type(info.value) is LifecycleError
    assert str(info.value).startswith("illegal lifecycle event 'train_batch_end' in state 'idle'")
