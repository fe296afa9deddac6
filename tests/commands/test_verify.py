"""``lightcycle verify``: the trace checker against real traces, our own, and mutated ones.

- every Lightning 2.6.6 trace in ``tests/fixtures`` passes, including the checkpoint traces
  and ``fit_resume__save.jsonl`` (saves outside a run); interrupted runs and DDP ranks are
  in ``test_verify_shapes.py``;
- every lightcycle trace of the differential scenarios passes, with one, two or no
  recording callbacks and with or without module events;
- a trace mutated by a dropped, duplicated, swapped or moved hook, by an event recorded
  in another state, or cut short fails, and the message names the problem;
- systematic sweeps over whole traces: every such mutation fails except the few the
  declaration itself allows (listed, with the reason);
- the CLI prints OK with per-hook counts or the violation with its context, exits 0 or 1,
  and reads an extended declaration with ``--lifecycle module:attr``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import lightcycle as LC
from lightcycle.commands.main import main
from lightcycle.states import LIFECYCLE, Event, Hook, Target, Transition
from lightcycle.verify import load_trace, verify_trace
from tests import paths
from tests.recording import run_scenario
from tests.scenarios import EXTRA, SHARED

FIXTURES = paths.FIXTURES / "lightning-2.6.6"
TRACES = sorted(FIXTURES.glob("*.jsonl"))

TraceEvent = dict[str, Any]

EXTENDED = LIFECYCLE.extend(
    transitions=[
        Transition(
            Event("ema_update", (), "after an optimizer step: update the EMA weights"),
            ("fit.train.epoch.batch.stepped",),
            None,
            (Hook("on_ema_update", Target.CALLBACKS),),
        )
    ]
)
"""An extended declaration (for ``--lifecycle tests.commands.test_verify:EXTENDED``): a callback
hook ``on_ema_update`` after each optimizer step."""


def _trace(name: str) -> list[TraceEvent]:
    return load_trace(FIXTURES / f"{name}.jsonl")


def _checked(events: list[TraceEvent]) -> list[TraceEvent]:
    """The events the checker looks at (no return phases, no undeclared module APIs)."""
    declared = set().union(*LIFECYCLE.hook_names().values())
    return [e for e in events if e.get("phase") != "return" and e["hook"] in declared]


def _index(events: list[TraceEvent], src: str, hook: str, nth: int = 0) -> int:
    return [i for i, e in enumerate(events) if (e["src"], e["hook"]) == (src, hook)][nth]


# --------------------------------------------------------------------------- real traces pass


@pytest.mark.parametrize("path", TRACES, ids=lambda p: f"{p.parent.parent.name}/{p.name}")
def test_lightning_traces_pass(path: Path) -> None:
    result = verify_trace(load_trace(path))
    assert result.ok, result.report(str(path))
    assert result.checked > 0 and result.callbacks == (1,)


def test_the_fixtures_hold_every_recorded_lightning_trace() -> None:
    """The copies of the shared reference traces are all here (the tests never read ../shared)."""
    names = {p.name for p in TRACES}
    recorded = {f"{n}.jsonl" for n in (*SHARED, "fit_checkpoint_save", "fit_resume", "fit_resume__save")}
    assert recorded | {"fit_keyboard_interrupt.jsonl"} <= names


def test_saves_outside_a_run_pass_from_idle() -> None:
    events = _trace("fit_resume__save")
    assert [e["hook"] for e in events] == ["state_dict", "on_save_checkpoint", "on_save_checkpoint"]
    assert verify_trace(events).ok


@pytest.mark.parametrize("name", sorted({**SHARED, **EXTRA}))
def test_lightcycle_traces_pass(name: str) -> None:
    run = run_scenario(LC, {**SHARED, **EXTRA}[name])
    result = verify_trace(run["events"])
    assert result.ok, result.report(name)
    callbacks = 1 + {**SHARED, **EXTRA}[name].extra_callbacks
    assert result.callbacks == (callbacks,)


def test_hook_recorder_traces_with_state_paths_pass(tmp_path: Path) -> None:
    """HookRecorder writes ctx.state; the checker then pins every event to its exact state."""
    from tests.faults import Config, make_run

    run = make_run(
        Config(
            trainer=dict(max_epochs=2, limit_val_batches=1, accumulate_grad_batches=2),
            batches=(3, 2),
            checkpointing=True,
        ),
        root=str(tmp_path),
    ).go()
    assert run.exception is None
    events = run.first.events
    assert all("state" in e["ctx"] for e in events)
    assert verify_trace(events).ok
    wrong = json.loads(json.dumps(events))
    k = _index(wrong, "module", "training_step")
    wrong[k]["ctx"]["state"] = (
        "fit.train.epoch.batch.forwarded" if "closure" in wrong[k]["ctx"]["state"] else wrong[k]["ctx"]["state"] + "x"
    )
    result = verify_trace(wrong)
    assert not result.ok and "recorded in another state" in result.violation.message  # type: ignore[union-attr]


def test_traces_without_callback_or_without_module_events_pass() -> None:
    events = _trace("fit_basic")
    assert verify_trace([e for e in events if e["src"] != "callback"]).ok
    only_callbacks = [e for e in events if e["src"] == "callback"]
    result = verify_trace(only_callbacks)
    assert result.ok and result.callbacks == (1,)
    # even then the callback order is checked
    i = _index(only_callbacks, "callback", "on_train_start")
    only_callbacks[i], only_callbacks[i + 1] = only_callbacks[i + 1], only_callbacks[i]
    assert not verify_trace(only_callbacks).ok


# --------------------------------------------------------------------------- targeted mutations


def _fails(events: list[TraceEvent], *words: str) -> str:
    result = verify_trace(events)
    assert not result.ok, "the mutated trace passed"
    v = result.violation
    assert v is not None
    report = result.report("mutated")
    for word in words:
        assert word in v.message, f"{word!r} not in: {v.message}"
    assert "state before it:" in report and "allowed there:" in report and ">>" in report
    return v.message


def test_dropped_hook_is_named() -> None:
    events = _trace("fit_basic")
    del events[_index(events, "module", "on_train_epoch_end")]
    msg = _fails(events, "expected module:on_train_epoch_end")
    assert "dropped" in msg


def test_duplicated_hook_is_named() -> None:
    events = _trace("fit_basic")
    i = _index(events, "callback", "on_train_batch_start", 2)
    events.insert(i, events[i])
    _fails(events, "callback on_train_batch_start", "duplicated")


def test_swapped_hooks_are_named() -> None:
    events = _trace("fit_basic")
    i = _index(events, "module", "on_validation_model_eval", 1)
    assert events[i + 1]["hook"] == "on_validation_start"
    events[i], events[i + 1] = events[i + 1], events[i]
    _fails(events, "on_validation_start", "on_validation_model_eval")


def test_hook_moved_into_another_state_is_named() -> None:
    events = _trace("fit_basic")
    moved = events.pop(_index(events, "module", "on_train_epoch_start"))
    events.insert(_index(events, "module", "validation_step", 1), moved)
    _fails(events, "expected module:on_train_epoch_start")


def test_event_recorded_under_another_stage_is_named() -> None:
    events = _trace("fit_basic")
    events[_index(events, "module", "on_train_epoch_end")]["ctx"]["stage"] = "validate"
    _fails(events, "module on_train_epoch_end", "recorded in another state", "'validate'")


def test_truncated_trace_fails_unless_partial() -> None:
    events = _trace("fit_basic")[:-3]
    result = verify_trace(events)
    assert not result.ok and result.violation is not None
    assert "ends inside a run" in result.violation.message and "teardown" in result.violation.message
    assert verify_trace(events, partial=True).ok


def test_unknown_callback_hook_fails_and_extended_declaration_accepts_it() -> None:
    events = _with_ema(_trace("fit_basic"))
    _fails(events, "callback on_ema_update")
    assert verify_trace(events, EXTENDED).ok


def _with_ema(events: list[TraceEvent]) -> list[TraceEvent]:
    out: list[TraceEvent] = []
    for e in events:
        if (e["src"], e["hook"]) == ("callback", "on_train_batch_end"):
            out.append({"src": "callback", "hook": "on_ema_update", "args": {}, "ctx": dict(e["ctx"])})
        out.append(e)
    return out


# --------------------------------------------------------------------------- systematic sweeps

OPTIONAL_MODULE_HOOKS = frozenset(
    {
        # run only if overridden (spec 0.1 rule 6) or the datamodule may serve them instead
        "prepare_data",
        "configure_model",
        "on_validation_model_train",
        "on_test_model_train",
        "train_dataloader",
        "val_dataloader",
        "test_dataloader",
        "predict_dataloader",
        "on_before_batch_transfer",
        "transfer_batch_to_device",
        "on_after_batch_transfer",
        # its own optional event: skipped when validation starts mid-accumulation (spec 3.2)
        "on_validation_model_zero_grad",
    }
)
"""Dropping one of these leaves a trace the declaration allows."""

REPEATABLE = frozenset({("module", "on_validation_model_zero_grad")})
"""Duplicating it is allowed: zero-grad, then a validation run with no batches (exit), then again."""

SWEEP = [
    "fit_basic",
    "fit_accum2",
    "fit_manual_opt",
    "fit_val_every2",
    "fit_batch_start_minus1",
    "validate",
    "test",
    "predict",
]


def _mutations(events: list[TraceEvent]) -> list[tuple[str, list[TraceEvent], bool]]:
    """(description, mutated trace, whether the declaration still allows it)."""
    epochs = sum(1 for e in events if (e["src"], e["hook"]) == ("callback", "on_train_epoch_end"))
    out: list[tuple[str, list[TraceEvent], bool]] = []
    for i, e in enumerate(events):
        label = f"{e['src']}:{e['hook']}@{i}"
        out.append(
            (f"drop {label}", events[:i] + events[i + 1 :], e["src"] == "module" and e["hook"] in OPTIONAL_MODULE_HOOKS)
        )
        out.append((f"duplicate {label}", events[: i + 1] + [e] + events[i + 1 :], (e["src"], e["hook"]) in REPEATABLE))
        if i + 1 < len(events) and (e["src"], e["hook"]) != (events[i + 1]["src"], events[i + 1]["hook"]):
            pair = {(e["src"], e["hook"]), (events[i + 1]["src"], events[i + 1]["hook"])}
            # with one epoch, the recording callback might be a monitoring one (after the module)
            allowed = epochs == 1 and pair == {("callback", "on_train_epoch_end"), ("module", "on_train_epoch_end")}
            swapped = events[:i] + [events[i + 1], e] + events[i + 2 :]
            out.append((f"swap {label} with the next", swapped, allowed))
        for d in (6, -9):
            j = i + d
            if 0 <= j < len(events) and (events[j]["src"], events[j]["hook"]) != (e["src"], e["hook"]):
                moved = events[:i] + events[i + 1 :]
                moved.insert(j, e)
                out.append((f"move {label} by {d}", moved, False))
    return out


@pytest.mark.parametrize("name", SWEEP)
def test_every_mutation_of_a_trace_is_caught(name: str) -> None:
    events = _checked(_trace(name))
    assert verify_trace(events).ok
    missed: list[str] = []
    wrongly: list[str] = []
    mutations = _mutations(events)
    for what, mutated, allowed in mutations:
        ok = verify_trace(mutated).ok
        if ok and not allowed:
            missed.append(what)
        if allowed and not ok:
            wrongly.append(what)
    # a move over identical neighbours can recreate the same order: those are not mutations
    missed = [m for m in missed if not _same_order(events, m)]
    print(f"\n{name}: {len(mutations)} mutations checked")
    assert not missed, f"{len(missed)} mutation(s) not caught: {missed[:10]}"
    assert not wrongly, f"allowed mutations rejected: {wrongly[:10]}"


def _same_order(events: list[TraceEvent], what: str) -> bool:
    if not what.startswith("move "):
        return False
    label, _, d = what[5:].rpartition(" by ")
    i = int(label.rpartition("@")[2])
    moved = events[:i] + events[i + 1 :]
    moved.insert(i + int(d), events[i])
    return [(e["src"], e["hook"], e["ctx"].get("stage")) for e in moved] == [
        (e["src"], e["hook"], e["ctx"].get("stage")) for e in events
    ]


def test_exception_traces_need_their_on_exception() -> None:
    for name in ("fit_exception_step", "fit_exception_callback", "fit_exception_setup", "fit_keyboard_interrupt"):
        events = _trace(name)
        assert verify_trace(events).ok
        del events[_index(events, "callback", "on_exception")]
        _fails(events, "ends inside a run")


# --------------------------------------------------------------------------- the command line


def test_cli_ok_prints_counts(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["verify", str(FIXTURES / "fit_basic.jsonl")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("OK ")
    assert any(line.split() == ["on_train_batch_end", "callback", "4"] for line in out.splitlines())
    assert "skipped: phase=return: 8" in out


def test_cli_reports_the_first_violation(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    events = _trace("fit_basic")
    del events[_index(events, "module", "on_train_epoch_end")]
    bad = tmp_path / "bad.jsonl"
    bad.write_text("".join(json.dumps(e) + "\n" for e in events))
    assert main(["verify", str(FIXTURES / "validate.jsonl"), str(bad)]) == 1
    out = capsys.readouterr().out
    assert "OK " in out and f"FAIL {bad}" in out
    assert "state before it: fit.train.epoch_done" in out
    assert "allowed there:   module:on_train_epoch_end" in out
    assert "events around it:" in out and ">>" in out


def test_cli_extended_declaration(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trace = tmp_path / "ema.jsonl"
    trace.write_text("".join(json.dumps(e) + "\n" for e in _with_ema(_trace("fit_basic"))))
    assert main(["verify", str(trace)]) == 1
    assert main(["verify", "--lifecycle", f"{__name__}:EXTENDED", str(trace)]) == 0
    assert "on_ema_update" in capsys.readouterr().out
    assert main(["verify", "--lifecycle", f"{__name__}:TRACES", str(trace)]) == 1
    assert main(["verify", "--lifecycle", "no_colon", str(trace)]) == 1
    assert "MODULE:ATTR" in capsys.readouterr().err


def test_cli_unreadable_trace(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{not json\n")
    assert main(["verify", str(bad), str(tmp_path / "missing.jsonl")]) == 1
    out = capsys.readouterr().out
    assert out.count("cannot read the trace") == 2


def test_console_command_exit_status(tmp_path: Path) -> None:
    """``python -m lightcycle verify`` exits 1 on a failing trace (0 is checked in-process above)."""
    events = _trace("predict")
    events.insert(5, events[5])
    bad = tmp_path / "dup.jsonl"
    bad.write_text("".join(json.dumps(e) + "\n" for e in events))
    fail = subprocess.run([sys.executable, "-m", "lightcycle", "verify", str(bad)], capture_output=True, text=True)
    assert fail.returncode == 1, fail.stderr
    assert fail.stdout.startswith("FAIL ") and "duplicated" in fail.stdout
