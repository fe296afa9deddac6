"""Tests for the pseudocode outline (``lightcycle diagram --format outline``, ``docs/lifecycle.md``).

The outline is generated from the declaration: the committed page must be current, every
declared hook must stand under its event in declaration order, and the loops, options and
alternatives must follow the declaration's states and transitions (a mutated copy of the
declaration gives a different outline).
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import attrs
import pytest

from lightcycle.commands import diagram as cli_diagram
from lightcycle.diagrams import OUTLINE_FILE, REGENERATE_OUTLINE, files, stale_files
from lightcycle.diagrams.labels import PREFIX
from lightcycle.diagrams.outline import outline
from lightcycle.states import ANY, LIFECYCLE, Event, Hook, Lifecycle, Target, Transition
from lightcycle.states import declaration as ev
from tests.paths import ROOT

FIT = outline(LIFECYCLE, ["fit"])
HOOK_LINE = re.compile(r"^(?:\w+ = )?(?P<prefix>[\w|()]+)\.(?P<name>\w+)\(")


def _cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="lightcycle")
    sub = parser.add_subparsers(dest="command", required=True)
    cli_diagram.add_parser(sub)
    return cli_diagram.run(parser.parse_args(["diagram", *argv]))


def _blocks(text: str) -> dict[str, list[list[tuple[str, str]]]]:
    """Per event name, each place it is written: the ``(prefix, hook)`` lines under its header."""
    found: dict[str, list[list[tuple[str, str]]]] = {}
    current: list[tuple[str, str]] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        header = re.match(r"^# (?:or )?event (\w+) ", line)
        if header:
            current = []
            found.setdefault(header.group(1), []).append(current)
            continue
        hook = HOOK_LINE.match(line)
        if hook and current is not None:
            current.append((hook.group("prefix"), hook.group("name")))
        elif not line.startswith("# action:"):
            current = None
    return found


def _in_order(text: str, needles: list[str]) -> dict[str, int]:
    """The indentation of each needle, found in order (each after the one before); fails when one is missing."""
    lines = text.splitlines()
    depth: dict[str, int] = {}
    at = 0
    for needle in needles:
        at = next((i for i in range(at, len(lines)) if needle in lines[i]), -1)
        assert at >= 0, f"{needle!r} missing, or not after {list(depth)[-1:]}"
        depth[needle] = len(lines[at]) - len(lines[at].lstrip())
    return depth


def _swap_hooks(lc: Lifecycle, event: str, i: int, j: int) -> Lifecycle:
    """A copy of ``lc`` with hooks ``i`` and ``j`` of every ``event`` transition swapped."""
    out = []
    for t in lc.transitions:
        if t.trigger.name == event:
            hooks = list(t.hooks)
            hooks[i], hooks[j] = hooks[j], hooks[i]
            t = attrs.evolve(t, hooks=tuple(hooks))
        out.append(t)
    return attrs.evolve(lc, transitions=tuple(out))


# --------------------------------------------------------------------------- the committed page


def test_committed_outline_is_current() -> None:
    page = ROOT / OUTLINE_FILE
    assert page.read_text() == outline(LIFECYCLE), f"{OUTLINE_FILE} is stale; regenerate with: {REGENERATE_OUTLINE}"


def test_regenerate_command_is_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert REGENERATE_OUTLINE == "lightcycle diagram --format outline -o docs/lifecycle.md"
    assert _cli("--format", "outline", "-o", str(tmp_path / "page.md")) == 0
    assert (tmp_path / "page.md").read_text() == (ROOT / OUTLINE_FILE).read_text()
    assert _cli("--format", "outline", "--entry", "test") == 0
    out = capsys.readouterr().out
    assert out == outline(LIFECYCLE, ["test"])
    assert "trainer.test()" in out and "trainer.fit()" not in out


def test_format_all_writes_the_outline_and_check_sees_it(tmp_path: Path) -> None:
    written = files.write_views(tmp_path, formats=["outline", "dot"])
    assert tmp_path / "lifecycle.md" in written
    assert (tmp_path / "lifecycle.md").read_text() == outline(LIFECYCLE)
    assert "lifecycle.md: missing" in stale_files(tmp_path / "nowhere")
    (tmp_path / "lifecycle.md").write_text("# edited\n")
    assert "lifecycle.md: differs" in stale_files(tmp_path)
    assert (ROOT / "diagrams" / "lifecycle.md").read_text() == outline(LIFECYCLE)


def test_cli_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert _cli("--format", "outline", "--state", "fit.train") == 2
    assert "whole entry points" in capsys.readouterr().err
    assert _cli("--format", "outline", "--entry", "interrupt") == 2
    assert "known: fit, validate, test, predict" in capsys.readouterr().err


def test_output_is_deterministic() -> None:
    assert outline(LIFECYCLE) == outline(LIFECYCLE)
    assert not re.search(r"0x[0-9a-f]{6,}|\d{4}-\d\d-\d\d", outline(LIFECYCLE))


# --------------------------------------------------------------------------- every hook at its place


def test_every_transition_is_written_with_its_hooks_in_declaration_order() -> None:
    blocks = _blocks(outline(LIFECYCLE))
    for t in LIFECYCLE.transitions:
        assert t.trigger.name in blocks, f"event {t.trigger.name} missing from the outline"
        expected = [(PREFIX[h.target.value], h.name) for h in t.hooks]
        assert expected in blocks[t.trigger.name], (t.trigger.name, expected, blocks[t.trigger.name])


def test_callback_and_module_hooks_are_told_apart() -> None:
    blocks = _blocks(FIT)
    assert [("cb", "on_fit_start"), ("lm", "on_fit_start")] in blocks["fit_start"]
    assert [
        ("cb(plain)", "on_train_epoch_end"),
        ("lm", "on_train_epoch_end"),
        ("cb(monitor)", "on_train_epoch_end"),
    ] in blocks["train_epoch_end"]
    assert [("dm|lm", "val_dataloader")] in blocks["val_dataloader"]
    lines = FIT.splitlines()
    assert any(re.search(r"cb\.on_exception\(exception\)  # every receiver runs", line) for line in lines)
    assert any("# action: strategy_setup" in line for line in lines)
    assert any("# action: autocast (precision)" in line for line in lines)


def test_fit_reads_as_loops_in_lightnings_order() -> None:
    text = FIT
    order = [
        "cb.on_fit_start()",
        "cb.on_sanity_check_start()",
        "cb.on_sanity_check_end()",
        "cb.on_train_start()",
        "for epoch in ...:",
        "cb.on_train_epoch_start()",
        "for batch in ...:  # fit.train.epoch.batch",
        "cb.on_train_batch_start(batch, batch_idx)",
        "lm.optimizer_step(",
        "while ...:  # training_step again",
        "lm.training_step(",
        "lm.backward(loss)",
        "cb.on_before_optimizer_step(optimizer)",
        "cb.on_train_batch_end(",
        "lm.on_validation_model_zero_grad()",
        "cb.on_validation_start()",
        "cb(plain).on_train_epoch_end()",
        "cb.on_train_end()",
        "cb.on_fit_end()",
        "lm.teardown(stage=stage)",
        "except BaseException as exception:",
        "cb.on_exception(exception)",
    ]
    depth = _in_order(text, order)
    epoch, batch = depth["for epoch in ...:"], depth["for batch in ...:  # fit.train.epoch.batch"]
    assert epoch < depth["cb.on_train_epoch_start()"] and batch > epoch
    assert depth["cb.on_train_batch_start(batch, batch_idx)"] > batch
    assert depth["lm.backward(loss)"] > depth["while ...:  # training_step again"]
    # validation runs inside the epoch loop, between batches, and the epoch ends after it
    assert batch < depth["cb.on_validation_start()"]
    assert epoch < depth["cb(plain).on_train_epoch_end()"] < batch + 1
    assert depth["cb.on_fit_end()"] < epoch and depth["except BaseException as exception:"] == 0


def test_alternatives_of_a_training_batch() -> None:
    lines = [line.strip() for line in FIT.splitlines()]
    closure = "if ...:  # fit.train.epoch.batch.closure: inside the module's optimizer_step: the closure runs the step"
    elifs = [line for line in lines if line.startswith("elif ...:  # fit.train.epoch.batch.")]
    assert elifs == [
        "elif ...:  # fit.train.epoch.batch.forwarded: training_step returned (accumulating micro-batch)",
        "elif ...:  # fit.train.epoch.batch.manual: training_step running under manual optimization",
    ]
    assert lines.index(closure) < lines.index(elifs[0]) < lines.index(elifs[1])
    skip = lines.index(
        "# event skip_rest_of_epoch → fit.train.epoch.cut: the module's on_train_batch_start returned -1"
    )
    assert lines[skip + 1] == "goto fit.train.epoch.cut"


def test_every_hook_name_of_the_declaration_is_in_the_outline() -> None:
    text = outline(LIFECYCLE)
    for names in LIFECYCLE.hook_names().values():
        for name in names:
            assert f".{name}(" in text, name


# --------------------------------------------------------------------------- read from the declaration


def test_swapping_two_hooks_of_a_transition_swaps_them_in_the_outline() -> None:
    swapped = _swap_hooks(LIFECYCLE, "fit_start", 0, 1)
    assert [("lm", "on_fit_start"), ("cb", "on_fit_start")] in _blocks(outline(swapped, ["fit"]))["fit_start"]
    assert [("cb", "on_fit_start"), ("lm", "on_fit_start")] not in _blocks(outline(swapped, ["fit"]))["fit_start"]
    backward = _swap_hooks(LIFECYCLE, "backward", 2, 4)
    text = outline(backward, ["fit"])
    assert text != FIT
    first = [ln.strip() for ln in text.splitlines()].index("lm.on_after_backward()")
    assert [ln.strip() for ln in text.splitlines()][first + 2] == "lm.backward(loss)"


def test_loops_come_from_the_transitions_that_return() -> None:
    # without the move from epoch_done back into the epoch there is no epoch loop
    once = tuple(
        attrs.evolve(t, source=("fit.train.started",)) if t.trigger is ev.TRAIN_EPOCH_START else t
        for t in LIFECYCLE.transitions
    )
    text = outline(attrs.evolve(LIFECYCLE, transitions=once), ["fit"])
    assert "for epoch in ...:" not in text and "for epoch in ...:" in FIT
    assert "for batch in ...:  # fit.train.epoch.batch" in text
    # without the closure's second training_step there is no `while` around it
    no_lbfgs = tuple(
        attrs.evolve(t, source=("fit.train.epoch.batch.closure.entered",))
        if t.trigger is ev.TRAINING_STEP and "fit.train.epoch.batch.closure.clipped" in t.source
        else t
        for t in LIFECYCLE.transitions
    )
    assert "while ...:  #" not in outline(attrs.evolve(LIFECYCLE, transitions=no_lbfgs), ["fit"])


def test_a_state_no_path_goes_around_is_not_optional() -> None:
    # fit.started → fit.ended (nothing to train) makes the training block optional; without it, it is not
    kept = tuple(
        attrs.evolve(t, source=tuple(s for s in t.source if s not in ("fit.started", "fit.sanity_check.ended")))
        if t.trigger is ev.FIT_END
        else t
        for t in LIFECYCLE.transitions
    )
    assert "    if ...:  # fit.train: " in FIT
    assert "if ...:  # fit.train: " not in outline(attrs.evolve(LIFECYCLE, transitions=kept), ["fit"])


def test_a_custom_event_shows_where_it_is_declared() -> None:
    ema = Transition(
        Event("ema_update", ("optimizer",), "the EMA weights follow"),
        ("fit.train.epoch.batch.stepped",),
        None,
        (Hook("on_ema_update", Target.CALLBACKS, ("optimizer",)),),
    )
    text = outline(LIFECYCLE.extend(transitions=[ema]), ["fit"])
    lines = [ln.strip() for ln in text.splitlines()]
    at = lines.index("# event ema_update (stays in fit.train.epoch.batch.stepped): the EMA weights follow")
    assert lines[at + 1] == "cb.on_ema_update(optimizer)"
    assert (
        lines.index("# event optimizer_step_end → fit.train.epoch.batch.stepped: the module's optimizer_step returned")
        < at
    )


def test_events_allowed_anywhere_are_listed_once() -> None:
    text = outline(LIFECYCLE)
    anywhere = text.split("## Anywhere in a run", 1)[1]
    for t in LIFECYCLE.transitions:
        if ANY in t.source and t.dest is None:
            assert f"# event {t.trigger.name} (stays; anywhere in a run" in anywhere
            assert text.count(f"# event {t.trigger.name} ") == 1
