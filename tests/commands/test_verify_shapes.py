"""``lightcycle verify`` on shapes that look impossible: the real ones pass, the others fail by name.

Real (recorded from Lightning 2.6.6, ``tests/fixtures``; rerun live under lightcycle):
a lone ``on_exception`` (the entry point failed before its first hook), also followed by a
complete run with module hooks (a retry), a completed run
followed by ``on_exception`` (``on_fit_end`` or a ``teardown`` raised), ``OnExceptionCheckpoint``
saving inside ``on_exception``, every rank of a DDP run that failed on one rank, and the
``ddp_spawn`` launcher's lone ``on_exception``.

Never emitted: an empty trace or one without hook calls (nothing was verified), an
``on_exception`` whose stage or fn is already cleared, or whose status is not "interrupted",
an in-run hook whose status is not "running", a hook after ``on_exception`` in the same run.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

import lightcycle as LC
from lightcycle.commands.main import main
from lightcycle.verify import load_trace, verify_trace
from tests.interrupted import SCENARIOS, run
from tests.paths import FIXTURES

LIGHTNING = FIXTURES / "lightning-2.6.6"
DDP = FIXTURES / "lightning-2.6.6-ddp"

TraceEvent = dict[str, Any]

SPAWN_RANKS = sorted(DDP.glob("ddp_spawn_*fail*.rank*.jsonl"))
"""ddp_spawn ranks of a failed run stop mid-batch: no rank runs on_exception (the launcher does)."""


def _trace(name: str) -> list[TraceEvent]:
    return load_trace(LIGHTNING / f"{name}.jsonl")


def _message(events: list[TraceEvent], partial: bool = False) -> str:
    result = verify_trace(events, partial=partial)
    assert not result.ok, "the trace passed"
    assert result.violation is not None
    return result.violation.message


def _on_exception(events: list[TraceEvent]) -> int:
    return next(i for i, e in enumerate(events) if (e["src"], e["hook"]) == ("callback", "on_exception"))


# --------------------------------------------------------------------------- real shapes pass


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_recorded_lightning_interruptions_pass(name: str) -> None:
    events = _trace(name)
    assert events[-1]["hook"] != "on_exception" or events[-1]["ctx"]["status"] == "interrupted"
    result = verify_trace(events)
    assert result.ok, result.report(name)


def test_the_recorded_shapes_are_the_ones_named() -> None:
    """The fixtures hold what their names say (so the tests above test those shapes)."""
    for name in ("fit_exception_entry", "validate_exception_entry"):
        assert [e["hook"] for e in _trace(name)] == ["on_exception"]
    retry = _trace("fit_retry_after_exception_entry")
    assert [e["hook"] for e in retry[:2]] == ["on_exception", "configure_callbacks"]
    assert retry[-1]["hook"] == "teardown"
    for name, last in (
        ("fit_exception_on_fit_end", "on_fit_end"),
        ("fit_exception_teardown", "teardown"),
        ("fit_exception_callback_teardown", "teardown"),
    ):
        hooks = [(e["src"], e["hook"]) for e in _trace(name)]
        assert hooks[-1] == ("callback", "on_exception") and hooks[-2][1] == last
    hooks = [e["hook"] for e in _trace("fit_on_exception_checkpoint") if e.get("phase") != "return"]
    assert hooks[-4:] == ["on_exception", "state_dict", "on_save_checkpoint", "on_save_checkpoint"]


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_lightcycle_runs_of_the_same_scenarios_pass_or_say_nothing_was_verified(name: str) -> None:
    result = run(LC, name)
    events = result["events"]
    assert result["exception"] is not None
    if SCENARIOS[name].bad_call:
        # lightcycle refuses bad arguments before any hook fires (Lightning fires on_exception)
        assert not any(e["hook"] == "on_exception" for e in events)
        if SCENARIOS[name].retry:
            assert verify_trace(events).ok
            return
        assert events == []
        assert "nothing was verified" in _message(events)
        return
    report = verify_trace(events)
    assert report.ok, report.report(name)
    assert events[-1]["hook"] == "on_exception" or any(e["hook"] == "on_save_checkpoint" for e in events)


@pytest.mark.parametrize("path", sorted(DDP.glob("*.jsonl")), ids=lambda p: p.name)
def test_recorded_ddp_traces_pass(path: Path) -> None:
    events = load_trace(path)
    if path.name == "ddp_spawn_2__fit_test.launcher.jsonl":  # the launcher of a run that worked: no hook
        assert "nothing was verified" in _message(events)
        return
    partial = path in SPAWN_RANKS
    result = verify_trace(events, partial=partial)
    assert result.ok, result.report(path.name)
    if partial:
        assert "ends inside a run" in _message(events)


def test_a_spawn_launcher_sees_only_the_lone_on_exception() -> None:
    events = load_trace(DDP / "ddp_spawn_2__fail_rank1.launcher.jsonl")
    result = verify_trace(events)
    assert result.ok and result.checked == 1 and result.counts == {("callback", "on_exception"): 1}


# --------------------------------------------------------------------------- nothing verified


def test_an_empty_trace_is_not_a_pass(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert "the trace is empty: nothing was verified" in _message([])
    assert "nothing was verified" in _message([], partial=True)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    assert main(["verify", str(empty)]) == 1
    assert main(["verify", "--partial", str(empty)]) == 1
    out = capsys.readouterr().out
    assert out.startswith(f"FAIL {empty}: the trace is empty") and "HookRecorder" in out


def test_a_trace_of_only_non_hook_events_is_not_a_pass(capsys: pytest.CaptureFixture[str]) -> None:
    events = [e for e in load_trace(DDP / "ddp_2__fit_test.rank0.jsonl") if e["src"] not in ("callback", "module")]
    assert events
    msg = _message(events)
    assert "no hook call" in msg and "nothing was verified" in msg and "src=strategy" in msg
    returns = [e for e in _trace("fit_basic") if e.get("phase") == "return"]
    assert "phase=return" in _message(returns)
    assert main(["verify", str(DDP / "ddp_spawn_2__fit_test.launcher.jsonl")]) == 1
    assert "nothing was verified" in capsys.readouterr().out


# --------------------------------------------------------------------------- impossible shapes fail


@pytest.mark.parametrize("name", ["fit_exception_entry", "fit_exception_step", "fit_exception_teardown"])
@pytest.mark.parametrize("key", ["stage", "fn"])
def test_on_exception_with_its_stage_or_fn_cleared_fails(name: str, key: str) -> None:
    events = copy.deepcopy(_trace(name))
    events[_on_exception(events)]["ctx"][key] = None
    msg = _message(events)
    assert "callback on_exception" in msg and f"ctx.{key} is None" in msg and "interrupted run" in msg


def test_a_lone_on_exception_needs_the_status_interrupted() -> None:
    lone = _trace("fit_exception_entry")
    assert verify_trace(lone).ok
    for status in ("running", "finished"):
        wrong = copy.deepcopy(lone)
        wrong[0]["ctx"]["status"] = status
        assert f"ctx.status is {status!r}" in _message(wrong)


def test_an_in_run_hook_with_a_status_other_than_running_fails() -> None:
    events = copy.deepcopy(_trace("fit_basic"))
    i = next(k for k, e in enumerate(events) if e["hook"] == "on_train_epoch_end")
    events[i]["ctx"]["status"] = "interrupted"
    msg = _message(events)
    assert f"event {i}:" in msg and "ctx.status is 'interrupted'" in msg and "'running'" in msg


def test_nothing_follows_on_exception_in_its_run() -> None:
    """Lightning fires nothing after on_exception (spec section 4): no teardown, no more batches."""
    for name in ("fit_exception_step", "fit_exception_on_fit_end", "fit_exception_entry"):
        events = _trace(name)
        for extra in (
            {"src": "callback", "hook": "teardown", "args": {"stage": "fit"}, "ctx": dict(events[-1]["ctx"])},
            {"src": "module", "hook": "on_fit_end", "args": {}, "ctx": dict(events[-1]["ctx"])},
        ):
            msg = _message([*events, extra])
            assert f"event {len(events)}:" in msg and extra["hook"] in msg


def test_a_run_does_not_go_on_after_on_exception() -> None:
    events = _trace("fit_basic")
    i = next(k for k, e in enumerate(events) if e["hook"] == "on_train_epoch_start")
    exc = {"src": "callback", "hook": "on_exception", "args": {}, "ctx": {**events[i]["ctx"], "status": "interrupted"}}
    msg = _message([*events[: i + 1], exc, *events[i + 1 :]])
    assert f"event {i + 2}:" in msg


def test_cli_rejects_a_cleared_stage(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    events = copy.deepcopy(_trace("fit_exception_teardown"))
    events[-1]["ctx"]["stage"] = None
    bad = tmp_path / "cleared.jsonl"
    bad.write_text("".join(json.dumps(e) + "\n" for e in events))
    assert main(["verify", str(bad)]) == 1
    out = capsys.readouterr().out
    assert "ctx.stage is None" in out and "state before it:" in out and ">>" in out


@pytest.mark.parametrize(
    ("key", "value", "words"), [("fn", "validate", "interrupted run is 'fit'"), ("stage", "test", "never has")]
)
def test_on_exception_recorded_in_another_run_fails(key: str, value: str, words: str) -> None:
    """The interruption keeps the interrupted run's fn and one of its stages (sanity_check, train, validate)."""
    for name in ("fit_exception_step", "fit_exception_callback", "fit_exception_entry", "fit_exception_teardown"):
        events = copy.deepcopy(_trace(name))
        assert verify_trace(events).ok
        events[_on_exception(events)]["ctx"][key] = value
        msg = _message(events)
        assert "callback on_exception" in msg
        if name in ("fit_exception_step", "fit_exception_callback"):
            assert f"ctx.{key} is {value!r}" in msg and words in msg
        else:  # after a complete run (or none), it may also be a new run's entry failing: stage and fn disagree
            assert "never has" in msg or (key == "fn" and words in msg)
