"""Tests for lightcycle.diagrams and ``lightcycle diagram``: generated from the declaration,
every transition drawn, committed files current, SVGs render to non-blank pictures, a custom
event shows in every format, and recorded runs fold into readable sequence diagrams.

Tests that need Graphviz's ``dot`` are skipped when it is missing (``apt-get install -y graphviz``).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import struct
import time
import xml.etree.ElementTree as ET
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lightcycle.commands import diagram as cli_diagram
from lightcycle.diagrams import REGENERATE, files, readme_mermaid, sequence_diagram, stale_files
from lightcycle.diagrams import dot as dot_mod
from lightcycle.diagrams import mermaid as mermaid_mod
from lightcycle.diagrams import views as views_mod
from lightcycle.diagrams.sequence import fold, read_trace
from lightcycle.states import ANY, LIFECYCLE, Event, Hook, Lifecycle, Target, Transition, validate
from lightcycle.states.model import SEPARATOR
from tests.paths import FIXTURES, ROOT

DIAGRAMS = ROOT / "diagrams"
TRACES = FIXTURES / "lightning-2.6.6"
VIEW_NAMES = [v.name for v in views_mod.views(LIFECYCLE)]
HAVE_DOT = shutil.which("dot") is not None
FULL_FIT = views_mod.View("fit", "lightcycle lifecycle, fit", ("fit",))
"""The fit view with every level drawn (the committed fit view is the overview)."""
# The README's test command installs Graphviz; without it these tests fail (not skip) with how to get it.
needs_dot = pytest.mark.usefixtures("require_dot")


@pytest.fixture
def require_dot() -> None:
    assert HAVE_DOT, "Graphviz `dot` is not installed: apt-get install -y graphviz (the README's test command does)"


EMA = Transition(
    Event("ema_update", ("optimizer",)),
    ("fit.train.epoch.batch.stepped",),
    None,
    (Hook("on_ema_update", Target.CALLBACKS, ("optimizer",)),),
)


def _cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="lightcycle")
    sub = parser.add_subparsers(dest="command", required=True)
    cli_diagram.add_parser(sub)
    return cli_diagram.run(parser.parse_args(["diagram", *argv]))


# --------------------------------------------------------------------------- PNG decoding


def _png_pixels(data: bytes) -> np.ndarray:
    """Decode an 8-bit, non-interlaced PNG (what ``dot -Tpng`` writes) to an (h, w, channels) array."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    assert header is not None
    width, height, depth, colour, _, _, interlace = header
    assert depth == 8 and interlace == 0, header
    bpp = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[colour]
    raw = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(height, 1 + width * bpp)
    filters = raw[:, 0].astype(np.int32)
    values = raw[:, 1:].reshape(height, width, bpp).astype(np.int32)
    out = np.zeros((height + 1, width + 1, bpp), np.int32)  # row 0 / column 0: the zero padding
    # each pixel depends on its left, upper and upper-left neighbours: walk anti-diagonals
    for d in range(height + width - 1):
        y = np.arange(max(0, d - width + 1), min(height, d + 1))
        x = d - y
        a, b, c = out[y + 1, x], out[y, x + 1], out[y, x]
        p = a + b - c
        pa, pb, pc = np.abs(p - a), np.abs(p - b), np.abs(p - c)
        paeth = np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))
        f = filters[y][:, None]
        pred = np.select([f == 1, f == 2, f == 3, f == 4], [a, b, (a + b) // 2, paeth], 0)
        out[y + 1, x + 1] = (values[y, x] + pred) % 256
    return out[1:, 1:].astype(np.uint8)


def test_png_decoder_round_trip() -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (7, 5, 3), dtype=np.uint8)
    rows: list[bytes] = []
    for ftype, row in zip([0, 1, 2, 3, 4, 1, 0], image, strict=True):
        # encode each row with its filter (Sub/Up/Average/Paeth) to exercise the decoder
        flat = row.astype(np.int32)
        up = image[len(rows) - 1].astype(np.int32) if rows else np.zeros_like(flat)
        left = np.vstack([np.zeros((1, 3), np.int32), flat[:-1]])
        upleft = np.vstack([np.zeros((1, 3), np.int32), up[:-1]])
        p = left + up - upleft
        pa, pb, pc = abs(p - left), abs(p - up), abs(p - upleft)
        paeth = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, up, upleft))
        pred = [0 * flat, left, up, (left + up) // 2, paeth][ftype]
        rows.append(bytes([ftype]) + ((flat - pred) % 256).astype(np.uint8).tobytes())

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    png = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 5, 7, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(b"".join(rows)))
        + chunk(b"IEND", b"")
    )
    assert np.array_equal(_png_pixels(png), image)


# --------------------------------------------------------------------------- the committed folder


def test_committed_diagrams_are_current() -> None:
    stale = stale_files(DIAGRAMS)
    assert not stale, (
        "diagrams/ differs from what the declaration generates:\n  "
        + "\n  ".join(stale)
        + f"\nRegenerate from the repository root with:\n  {REGENERATE}"
    )


def test_regenerate_command_is_the_cli(tmp_path: Path) -> None:
    assert REGENERATE == "lightcycle diagram --entry all --format all -o diagrams/"
    formats = "all" if HAVE_DOT else "dot"
    assert _cli("--entry", "all", "--format", formats, "-o", str(tmp_path)) == 0
    for name in VIEW_NAMES:
        assert (tmp_path / f"{name}.dot").read_text() == (DIAGRAMS / f"{name}.dot").read_text()
        if HAVE_DOT:
            assert (tmp_path / f"{name}.mmd").read_text() == (DIAGRAMS / f"{name}.mmd").read_text()
            assert dot_mod.svg_source_hash((tmp_path / f"{name}.svg").read_text()) == dot_mod.dot_hash(
                (tmp_path / f"{name}.dot").read_text()
            )


@needs_dot
def test_check_flags_edits_and_regeneration_rewrites_only_stale_svgs(tmp_path: Path) -> None:
    files.write_views(tmp_path)
    assert _cli("--check", "-o", str(tmp_path)) == 0
    svg = tmp_path / "fit.svg"
    before = svg.stat().st_mtime_ns
    (tmp_path / "validate.mmd").write_text("stateDiagram-v2\n")
    (tmp_path / "test.svg").write_text("<svg/>")
    assert sorted(stale_files(tmp_path)) == [
        "test.svg: not rendered from the current test.dot",
        "validate.mmd: differs",
    ]
    assert _cli("--check", "-o", str(tmp_path)) == 1
    written = files.write_views(tmp_path)
    assert sorted(p.name for p in written) == ["test.svg", "validate.mmd"]
    assert svg.stat().st_mtime_ns == before
    assert stale_files(tmp_path) == []


def test_output_is_deterministic() -> None:
    for name in VIEW_NAMES:
        assert mermaid_mod.mermaid(LIFECYCLE, name) == mermaid_mod.mermaid(LIFECYCLE, name)
        assert dot_mod.dot(LIFECYCLE, name) == dot_mod.dot(LIFECYCLE, name)
        for text in (mermaid_mod.mermaid(LIFECYCLE, name), dot_mod.dot(LIFECYCLE, name)):
            assert not re.search(r"\d{4}-\d\d-\d\d|0x[0-9a-f]{6,}", text), "timestamps or addresses in output"


@needs_dot
def test_svg_carries_its_dot_hash_and_no_graphviz_version() -> None:
    text = dot_mod.svg(LIFECYCLE, "validate")
    assert dot_mod.svg_source_hash(text) == dot_mod.dot_hash(dot_mod.dot(LIFECYCLE, "validate"))
    assert "Generated by graphviz" not in text
    assert text == dot_mod.svg(LIFECYCLE, "validate")


def test_readme_mermaid_is_the_fit_file() -> None:
    block = readme_mermaid()
    assert block.startswith("```mermaid\n---\n") and block.endswith("```\n")
    assert block[len("```mermaid\n") : -len("```\n")] == (DIAGRAMS / "fit.mmd").read_text()


# --------------------------------------------------------------------------- rendering


@needs_dot
@pytest.mark.parametrize("name", VIEW_NAMES)
def test_committed_svg_renders_to_a_non_blank_png(name: str) -> None:
    svg_text = (DIAGRAMS / f"{name}.svg").read_text()
    root = ET.fromstring(svg_text)
    assert root.tag.endswith("svg")
    assert len(root.findall(".//{http://www.w3.org/2000/svg}text")) > 30
    dot_text = (DIAGRAMS / f"{name}.dot").read_text()
    assert dot_mod.svg_source_hash(svg_text) == dot_mod.dot_hash(dot_text)
    pixels = _png_pixels(dot_mod.run_dot(dot_text, "png", ["-Gdpi=36"]))[..., :3].astype(np.float64)
    height, width, _ = pixels.shape
    assert height > 200 and width > 200, pixels.shape
    grey = pixels.mean(axis=2)
    inked = float((grey < 200).mean())
    assert grey.var() > 100, f"{name}: the PNG is (nearly) blank"
    assert 0.005 < inked < 0.5, f"{name}: {inked:.1%} of the pixels are dark"
    coloured = float((pixels.max(axis=2) - pixels.min(axis=2) > 40).mean())
    assert coloured > 0.001, f"{name}: no coloured hooks or stage fills visible"


README_WIDTH_PX = 880
"""What GitHub gives an image in a README (and a diagram linked from it, at fit-to-width)."""

SMALLEST_TEXT_PT = 10
"""The edge labels' hook lines, the smallest text a reader needs."""


@pytest.mark.parametrize("name", VIEW_NAMES)
def test_committed_svg_is_legible_at_readme_width(name: str) -> None:
    # fit.svg was 2952x3284 pt: shown 880 px wide, its 10 pt hooks were 3 px high
    found = re.search(r'<svg width="(\d+)pt" height="(\d+)pt"', (DIAGRAMS / f"{name}.svg").read_text())
    assert found, f"{name}.svg has no size in pt"
    width, height = int(found.group(1)), int(found.group(2))
    text_px = SMALLEST_TEXT_PT * README_WIDTH_PX / max(width, README_WIDTH_PX)
    assert text_px >= 7, f"{name}.svg is {width} pt wide: its {SMALLEST_TEXT_PT} pt text is {text_px:.1f} px at 880 px"
    assert height <= 2000, f"{name}.svg is {height} pt high: split it (lightcycle diagram --depth / --state)"


# --------------------------------------------------------------------------- completeness


_EDGE = re.compile(r"^\s*(\S+) --> (\S+) : (.*)$")


def _mermaid_edges(text: str) -> dict[tuple[str, str], list[str]]:
    """(source id, dest id) -> the label's lines."""
    edges: dict[tuple[str, str], list[str]] = {}
    for line in text.splitlines():
        found = _EDGE.match(line)
        if found:
            edges.setdefault((found.group(1), found.group(2)), []).extend(found.group(3).split("<br/>"))
    return edges


def _notes(text: str) -> list[str]:
    return re.findall(r"note (?:right|left) of \S+\n(.*?)\n\s*end note", text, re.DOTALL)


def _ancestors(path: str) -> list[str]:
    parts = path.split(SEPARATOR)
    return [SEPARATOR.join(parts[:n]) for n in range(len(parts), 0, -1)]


def _missing_transitions(lifecycle: Lifecycle) -> list[str]:
    """Every (trigger, source, dest) of the declaration that no view's Mermaid text shows."""
    rendered = [mermaid_mod.mermaid(lifecycle, v) for v in views_mod.views(lifecycle)]
    edges = [_mermaid_edges(text) for text in rendered]
    notes = [_notes(text) for text in rendered]
    missing = []
    for t in lifecycle.transitions:
        for src in lifecycle.sources(t):
            tails = [mermaid_mod.mermaid_id(p) for p in _ancestors(src)]
            head = mermaid_mod.mermaid_id(t.dest) if t.dest is not None else None
            found = False
            for view_edges, view_notes in zip(edges, notes, strict=True):
                for tail in tails:
                    heads = [head] if head is not None else [tail]
                    if any(t.trigger.name in view_edges.get((tail, h), []) for h in heads):
                        found = True
                if t.dest is None and any(
                    t.trigger.name in note.split() or f"{t.trigger.name} /" in note for note in view_notes
                ):
                    found = True
            if not found:
                missing.append(f"{t.trigger.name}: {src} -> {t.dest}")
    return missing


def test_every_declared_transition_is_in_the_mermaid_output() -> None:
    assert _missing_transitions(LIFECYCLE) == []


def test_hookless_nested_transitions_are_drawn() -> None:
    # pytransitions issue 706: its mermaid engine drops unlabelled edges between nested states
    fit = _mermaid_edges(mermaid_mod.mermaid(LIFECYCLE, FULL_FIT))
    hookless = {t.trigger.name for t in LIFECYCLE.transitions if not t.hooks}
    assert {"optimizer_step_end", "finish", "resume_epoch", "skip_rest_of_epoch", "validation_exit"} <= hookless
    expected = [
        ("fit_train_epoch_batch_closure_clipped", "fit_train_epoch_batch_stepped", "optimizer_step_end"),
        ("fit_torn_down", "idle", "finish"),
        ("interrupted", "idle", "finish"),
        ("fit_train_started", "fit_train_epoch_running", "resume_epoch"),
        ("fit_train_epoch_batch_started", "fit_train_epoch_cut", "skip_rest_of_epoch"),
        ("fit_train_epoch_validation_ended", "fit_train_epoch_running", "validation_exit"),
        ("fit_train_epoch_validation_zeroed", "fit_train_epoch_running", "validation_exit"),
    ]
    for src, dest, trigger in expected:
        assert trigger in fit.get((src, dest), []), (src, dest, trigger)


def test_any_source_is_one_edge_per_run_state() -> None:
    interrupt = next(t for t in LIFECYCLE.transitions if t.trigger.name == "interrupt")
    assert interrupt.source == (ANY,)
    for name in VIEW_NAMES:
        text = mermaid_mod.mermaid(LIFECYCLE, name)
        into = [k for k, labels in _mermaid_edges(text).items() if k[1] == "interrupted" and "interrupt" in labels]
        view = views_mod.view_named(LIFECYCLE, name)
        roots = view.roots if view.state is None else (view.state,)
        assert sorted(src for src, _ in into) == sorted(mermaid_mod.mermaid_id(r) for r in roots), name
        dot_text = dot_mod.dot(LIFECYCLE, name)
        assert dot_text.count('-> "t') and dot_text.count('ltail="cluster_') == len(roots), name


def test_labels_name_hooks_in_order_with_their_receivers() -> None:
    fit = _mermaid_edges(mermaid_mod.mermaid(LIFECYCLE, FULL_FIT))
    assert fit[("fit_configured", "fit_started")] == ["fit_start", "cb.on_fit_start", "lm.on_fit_start"]
    assert fit[("fit_train_epoch_running", "fit_train_epoch_done")] == [
        "train_epoch_end",
        "cb(plain).on_train_epoch_end",
        "lm.on_train_epoch_end",
        "cb(monitor).on_train_epoch_end",
    ]
    assert fit[("fit_setup", "fit_setup")][:2] == ["load_checkpoint", "lm.on_load_checkpoint"]
    dot_text = dot_mod.dot(LIFECYCLE, FULL_FIT)
    assert re.search(r"<b>fit_start</b>.*cb\.on_fit_start.*lm\.on_fit_start", dot_text)
    # callbacks and module hooks are told apart by colour too
    assert '<font color="#1d4ed8" point-size="10">cb.on_fit_start</font>' in dot_text
    assert '<font color="#b45309" point-size="10">lm.on_fit_start</font>' in dot_text


def test_legend_lists_only_the_notation_a_view_uses() -> None:
    predict = mermaid_mod.mermaid(LIFECYCLE, "predict")
    fit = mermaid_mod.mermaid(LIFECYCLE, FULL_FIT)
    assert "cb(plain).hook" not in predict and "cb(plain).hook" in fit
    assert "dm|lm.hook" in predict and "hook! = isolated" in predict
    assert "cb(monitor).hook" in dot_mod.dot(LIFECYCLE, FULL_FIT)
    assert "cb(monitor).hook" not in dot_mod.dot(LIFECYCLE, "test")


def test_mermaid_text_keeps_to_mermaid_grammar() -> None:
    for name in VIEW_NAMES:
        text = mermaid_mod.mermaid(LIFECYCLE, name)
        ids = re.findall(r'^\s*state "[^"]*" as (\S+?)\{?$', text, re.MULTILINE)
        assert len(ids) == len(set(ids)), "state ids must be unique"
        assert all(re.fullmatch(r"[A-Za-z0-9_]+", i) for i in ids), "ids: no '.' or '-'"
        assert text.count("{") == text.count("}")
        for line in text.splitlines():
            found = _EDGE.match(line)
            if found:
                assert found.group(1) in ids and found.group(2) in ids, line
                assert ":" not in found.group(3) and ";" not in found.group(3), line


def test_views_show_their_entry_point_and_the_run_endings() -> None:
    for name in ("fit", "validate", "test", "predict"):
        graph = views_mod.build(LIFECYCLE, views_mod.view_named(LIFECYCLE, name))
        paths = {n.path for n in graph.all_nodes()}
        assert {"idle", "interrupted", name} <= paths
        others = {"fit", "validate", "test", "predict"} - {name}
        assert not any(p.split(SEPARATOR)[0] in others for p in paths)
        triggers = {a.transition.trigger.name for a in graph.arrows}
        assert {name, "setup", "teardown", "finish", "interrupt"} <= triggers
        assert {"collect_state", "save_checkpoint"} <= {a.transition.trigger.name for a in graph.anywhere}
    overview = views_mod.build(LIFECYCLE, views_mod.view_named(LIFECYCLE, "interrupt"))
    kinds = {n.path: n.kind for n in overview.all_nodes()}
    assert kinds["fit.train"] == "collapsed" and kinds["fit"] == "composite"
    assert not any(p.startswith("fit.train.") for p in kinds)


# --------------------------------------------------------------------------- custom events


def test_custom_event_shows_in_every_format() -> None:
    custom = LIFECYCLE.extend(transitions=[EMA])
    validate(custom)
    text = mermaid_mod.mermaid(custom, FULL_FIT)
    loop = _mermaid_edges(text)[("fit_train_epoch_batch_stepped", "fit_train_epoch_batch_stepped")]
    assert "ema_update" in loop and "cb.on_ema_update" in loop
    assert "ema_update" not in mermaid_mod.mermaid(LIFECYCLE, FULL_FIT)
    assert _missing_transitions(custom) == []
    dot_text = dot_mod.dot(custom, FULL_FIT)
    assert "<b>ema_update</b>" in dot_text and "cb.on_ema_update" in dot_text
    if HAVE_DOT:
        svg_text = dot_mod.svg(custom, FULL_FIT)
        assert ">ema_update</text>" in svg_text and ">cb.on_ema_update</text>" in svg_text


def test_custom_states_and_cli_lifecycle_option(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _cli("--lifecycle", f"{__name__}:CUSTOM", "--state", "fit.train.epoch.batch", "--format", "dot") == 0
    out = capsys.readouterr().out
    assert "on_ema_update" in out
    assert _cli("--lifecycle", f"{__name__}:EMA") == 2
    assert "not a lightcycle Lifecycle" in capsys.readouterr().err


CUSTOM = LIFECYCLE.extend(transitions=[EMA])


# --------------------------------------------------------------------------- CLI


def test_cli_single_view_to_stdout_and_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _cli() == 0
    assert capsys.readouterr().out == (DIAGRAMS / "fit.mmd").read_text()
    assert _cli("--entry", "interrupt", "--format", "dot", "-o", str(tmp_path / "i.dot")) == 0
    assert (tmp_path / "i.dot").read_text() == (DIAGRAMS / "interrupt.dot").read_text()
    assert _cli("--entry", "test", "-o", str(tmp_path) + "/") == 0
    assert (tmp_path / "test.mmd").read_text() == (DIAGRAMS / "test.mmd").read_text()


def test_cli_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert _cli("--entry", "nope") == 2
    assert "fit, fit.sanity_check, fit.train" in capsys.readouterr().err
    assert _cli("--entry", "all") == 2
    assert "-o FOLDER" in capsys.readouterr().err
    assert _cli("--check") == 2


def test_missing_dot_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(dot_mod.GraphvizNotFoundError, match="apt-get install -y graphviz"):
        dot_mod.svg(LIFECYCLE, "fit")
    assert _cli("--format", "svg") == 1
    assert "apt-get install -y graphviz" in capsys.readouterr().err


# --------------------------------------------------------------------------- sequence diagrams


def _event(src: str, hook: str, epoch: int = 0, stage: str = "train", **args: Any) -> dict[str, Any]:
    return {
        "src": src,
        "hook": hook,
        "args": args,
        "ctx": {"fn": "fit", "stage": stage, "status": "running", "epoch": epoch},
    }


def test_fold_finds_nested_repetitions() -> None:
    keys = [9, 1, 2, 3, 2, 3, 4, 1, 2, 3, 2, 3, 4, 8]
    folded = fold(keys)
    assert folded[0] == 0 and folded[-1] == 13
    outer = folded[1]
    assert not isinstance(outer, int) and outer.count == 2 and outer.size == 6
    inner = outer.body[1]
    assert not isinstance(inner, int) and inner.count == 2 and inner.body == (2, 3)


def test_synthetic_two_epoch_run_folds_into_loops() -> None:
    events = [_event("module", "configure_optimizers")]
    for epoch in range(2):
        events.append(_event("callback", "on_train_epoch_start", epoch))
        for batch in range(3):
            events.append(_event("callback", "on_train_batch_start", epoch, batch_idx=batch))
            events.append(_event("module", "training_step", epoch, batch_idx=batch))
            events.append({**_event("module", "training_step", epoch, batch_idx=batch), "phase": "return"})
            events.append(_event("datamodule", "on_after_batch_transfer", epoch, dataloader_idx=0))
        events.append(_event("callback", "on_train_epoch_end", epoch))
    events.append(_event("callback", "on_exception", 1, exception="RuntimeError: x; #1"))
    text = sequence_diagram(events, "synthetic")
    assert "    loop 2× epoch 0–1\n" in text
    assert "        loop 3× batch_idx 0–2\n" in text
    assert text.count("on_train_batch_start(batch_idx)") == 1
    assert "Trainer->>+Module: training_step(batch_idx)" in text
    assert "Module-->>-Trainer: training_step returned" in text
    assert "participant DataModule as LightningDataModule" in text
    assert "on_exception(exception=RuntimeError: x#59; #35;1)" in text


def test_long_runs_fold_fast() -> None:
    events = []
    for epoch in range(10):
        events.append(_event("callback", "on_train_epoch_start", epoch))
        for batch in range(100):
            events += [_event("module", f"hook{k}", epoch, batch_idx=batch) for k in range(15)]
        if epoch % 2:
            events += [_event("module", "validation_step", epoch, "validate", batch_idx=b) for b in range(20)]
        events.append(_event("callback", "on_train_epoch_end", epoch))
    started = time.perf_counter()
    text = sequence_diagram(events)
    assert time.perf_counter() - started < 5
    assert "    loop 5× epoch 0–9\n" in text
    assert text.count("        loop 100× batch_idx 0–99\n") == 2
    assert len(text.splitlines()) < 100


def test_fit_basic_trace_is_folded_and_readable() -> None:
    events = read_trace(TRACES / "fit_basic.jsonl")
    text = sequence_diagram(events, "fit_basic")
    lines = text.splitlines()
    # the Trainer between callbacks and module: no label is centred on a lifeline in between
    assert lines[3:7] == [
        "sequenceDiagram",
        "    participant Callbacks",
        "    participant Trainer",
        "    participant Module as LightningModule",
    ]
    assert "    participant Module as LightningModule" in lines
    assert "    loop 2× epoch 0–1" in lines
    assert "        loop 2× batch_idx 0–1" in lines
    assert text.count("Trainer->>Callbacks: on_train_batch_start(batch_idx)") == 1
    assert len(lines) < len(events) * 0.7
    # every hook of the run still appears, in the order of its first call
    hooks = list(dict.fromkeys(e["hook"] for e in events))
    shown = [h for h in hooks if re.search(rf"Trainer->>\+?\w+: {h}\(", text)]
    assert shown == hooks


@pytest.mark.parametrize("trace", sorted(p.name for p in TRACES.glob("*.jsonl")))
def test_every_reference_trace_gives_a_well_formed_sequence_diagram(trace: str) -> None:
    events = read_trace(TRACES / trace)
    text = sequence_diagram(events)
    body = text.splitlines()[1:]
    opened = sum(1 for line in body if line.strip().startswith("loop "))
    assert opened == sum(1 for line in body if line.strip() == "end")
    assert text.count("->>+") == text.count("-->>-")
    calls = sum(1 for line in body if "->>" in line)
    assert calls <= len(events)
    assert all(";" not in line for line in body)


def test_cli_trace(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trace = tmp_path / "run.jsonl"
    trace.write_text("\n".join(json.dumps(e) for e in [_event("callback", "on_fit_start")]) + "\n")
    assert _cli("--trace", str(trace)) == 0
    assert "Trainer->>Callbacks: on_fit_start()" in capsys.readouterr().out
    assert _cli("--trace", str(trace), "-o", str(tmp_path) + "/") == 0
    # titled by what the run was (its entry point), not by the file's name
    assert (
        (tmp_path / "run.mmd").read_text().startswith('---\ntitle: "trainer.fit: 1 hook calls"\n---\nsequenceDiagram\n')
    )
    assert _cli("--trace", str(trace), "--format", "svg") == 2
    trace.write_text("not json\n")
    assert _cli("--trace", str(trace)) == 2
    assert "run.jsonl:1: not JSON" in capsys.readouterr().err


# --------------------------------------------------------------------------- a run over the lifecycle


def test_run_over_the_lifecycle_in_every_format(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trace = FIXTURES / "lightcycle-fit-timed.jsonl"
    assert _cli("--trace", str(trace), "--over-lifecycle") == 0
    text = capsys.readouterr().out
    assert 'title: "trainer.fit(M): 95 hook calls, over the lifecycle"' in text
    # the run entered configuring once, never reached interrupted, took fit_end once from train
    assert 'state "configuring<br/>×1 · 1 hooks' in text
    assert 'state "interrupted<br/>never reached" as interrupted' in text and "class interrupted unreached" in text
    assert "fit_train --> fit_ended : ×1 fit_end" in text and "fit_started --> fit_ended : ×0 fit_end" in text
    assert re.search(r"×1 · \d+ hooks · [\d.]+ m?s", text), "timings recorded but not shown"
    assert _cli("--trace", str(trace), "--over-lifecycle", "--state", "fit.train.epoch.batch", "--format", "dot") == 0
    dot_text = capsys.readouterr().out
    assert "×2</b>" in dot_text and "never reached" in dot_text  # two batches; manual optimization unused
    if HAVE_DOT:
        assert _cli("--trace", str(trace), "--over-lifecycle", "--format", "svg", "-o", str(tmp_path) + "/") == 0
        assert "never reached" in (tmp_path / "lightcycle-fit-timed.lifecycle.svg").read_text()
    lightning = tmp_path / "lightning.jsonl"
    lightning.write_text(json.dumps(_event("callback", "on_fit_start") | {"ctx": {}}) + "\n")
    assert _cli("--trace", str(lightning), "--over-lifecycle") == 2
    assert "no lifecycle states (ctx.state)" in capsys.readouterr().err


# --------------------------------------------------------------------------- overview and drill-downs


def test_overview_collapses_to_a_readable_depth_and_every_box_has_its_drill_down() -> None:
    views = {v.name: v for v in views_mod.views(LIFECYCLE)}
    for name in ("fit", "validate", "test", "predict"):
        graph = views_mod.build(LIFECYCLE, views[name])
        boxes = [n for n in graph.all_nodes() if n.kind != "composite"]
        assert len(boxes) <= views_mod.MAX_STATES, (name, len(boxes))
    fit = views_mod.build(LIFECYCLE, views["fit"])
    collapsed = {n.path: n for n in fit.all_nodes() if n.kind == "collapsed"}
    assert set(collapsed) == {"fit.sanity_check", "fit.train"}
    # a collapsed box says what it holds and how many hooks fire inside
    assert collapsed["fit.train"].summary[0] == "loaded, val_loaded, started"
    assert re.fullmatch(r"\d+ hooks inside", collapsed["fit.train"].summary[-1])
    for view in views.values():
        for node in views_mod.build(LIFECYCLE, view).all_nodes():
            if node.kind == "collapsed" and view.name != views_mod.INTERRUPT_VIEW:
                assert node.path in views, f"{view.name}: {node.path} has no drill-down"
                assert (DIAGRAMS / f"{node.path}.svg").exists()


def test_state_and_depth_options(capsys: pytest.CaptureFixture[str]) -> None:
    assert _cli("--state", "fit.train.epoch.batch", "--depth", "2") == 0
    text = capsys.readouterr().out
    assert 'state "closure ▸<br/>' in text  # depth 2: the closure is one box
    assert "fit_train_epoch_running --> fit_train_epoch_batch_transferred : train_batch_transfer" in text
    assert "class fit_train_epoch_running" in text and "outside" in text  # the epoch around it, dashed
    assert "[*]" not in text  # a drill-down does not draw the initial state
    assert _cli("--state", "fit.train.epoch.batch") == 0
    assert 'state "entered" as fit_train_epoch_batch_closure_entered' in capsys.readouterr().out
    assert _cli("--entry", "fit", "--depth", "3") == 0
    assert 'state "epoch ▸<br/>' in capsys.readouterr().out
    assert _cli("--state", "fit.nope") == 2
    assert "no view or nested state 'fit.nope'" in capsys.readouterr().err
    assert _cli("--depth", "0") == 2
    assert "--depth must be 1 or more" in capsys.readouterr().err
