"""lightcycle's hook traces equal live pytorch-lightning's, event for event.

One recording module and callback (``tests/recording.py``) runs against both frameworks
by swapping the import. Equality covers hook names and order, the arguments Lightning
passes (batch_idx, dataloader_idx, stage, outputs, ...), and the trainer state seen at
every hook (fn, stage, status, current_epoch, global_step, sanity_checking, should_stop,
module.training), plus the end state and the exception that reached the caller.
"""

from __future__ import annotations

import json

import pytest
import pytorch_lightning as PL

import lightcycle as LC
from tests import paths
from tests.recording import run_scenario
from tests.scenarios import EXTRA, SHARED

FIXTURES = paths.FIXTURES / "lightning-2.6.6"

# every test here runs once per lightcycle event executor (tests/conftest.py)
pytestmark = pytest.mark.usefixtures("each_executor")

_LIGHTNING: dict[str, dict] = {}


def lightning_run(name: str) -> dict:
    """Live Lightning's run of scenario ``name``, run once per session (it does not depend on
    lightcycle's executor, so the second executor's tests compare with the same run)."""
    if name not in _LIGHTNING:
        _LIGHTNING[name] = run_scenario(PL, {**SHARED, **EXTRA}[name])
    return _LIGHTNING[name]


def _first_difference(a: list[dict], b: list[dict]) -> str:
    # the traces may differ in length: compare the common prefix, then report the lengths
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return f"event {i}:\n  lightning:  {json.dumps(x)}\n  lightcycle: {json.dumps(y)}"
    return f"lengths differ: lightning {len(a)}, lightcycle {len(b)}"


def assert_same_run(lightning: dict, ours: dict) -> None:
    assert ours["events"] == lightning["events"], _first_difference(lightning["events"], ours["events"])
    assert ours["state"] == lightning["state"]
    assert ours["exception"] == lightning["exception"]


@pytest.mark.parametrize("name", sorted({**SHARED, **EXTRA}))
def test_trace_equals_live_lightning(name: str) -> None:
    scenario = {**SHARED, **EXTRA}[name]
    lightning = lightning_run(name)
    ours = run_scenario(LC, scenario)
    assert lightning["events"], "the Lightning run recorded nothing"
    assert_same_run(lightning, ours)


@pytest.mark.parametrize("name", sorted(SHARED))
def test_trace_equals_recorded_fixture(name: str) -> None:
    """The stored Lightning 2.6.6 traces (recorded elsewhere) match too."""
    expected = [json.loads(line) for line in (FIXTURES / f"{name}.jsonl").read_text().splitlines()]
    meta = json.loads((FIXTURES / f"{name}.meta.json").read_text())
    ours = run_scenario(LC, SHARED[name])
    assert ours["events"] == expected, _first_difference(expected, ours["events"])
    assert ours["state"] == meta["state_after"]


def test_keyboard_interrupt_reaches_caller_as_keyboard_interrupt() -> None:
    """Deviation 1: Lightning exits with SystemExit(1); lightcycle re-raises KeyboardInterrupt.

    The hooks up to and including on_exception are Lightning's; the stage is reset to None.
    """
    expected = [json.loads(line) for line in (FIXTURES / "fit_keyboard_interrupt.jsonl").read_text().splitlines()]
    scenario = SHARED["fit_exception_step"].__class__(
        dict(max_epochs=2, limit_train_batches=2, limit_val_batches=1),
        behaviour=dict(step_raise={(0, 1): KeyboardInterrupt()}),
    )
    ours = run_scenario(LC, scenario)
    assert ours["events"] == expected, _first_difference(expected, ours["events"])
    assert ours["exception"] == "KeyboardInterrupt: "
    assert ours["state"]["status"] == "interrupted"
    assert ours["state"]["stage"] is None
