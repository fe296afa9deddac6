"""``lightcycle diagram --trace rank0.jsonl rank1.jsonl``: the ranks side by side, on Lightning's DDP traces."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest

from lightcycle.commands import diagram as cli_diagram
from lightcycle.diagrams.ranks import DIFFERENCE_FILL, align, differing_rows, ranks_diagram
from lightcycle.diagrams.sequence import read_trace
from tests import paths

FIXTURES = paths.FIXTURES / "lightning-2.6.6-ddp"


def _traces(config: str) -> list[list[dict[str, Any]]]:
    return [read_trace(FIXTURES / f"{config}.rank{r}.jsonl") for r in (0, 1)]


def _cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="lightcycle")
    sub = parser.add_subparsers(dest="command", required=True)
    cli_diagram.add_parser(sub)
    return cli_diagram.run(parser.parse_args(["diagram", *argv]))


def _only(rows: list[Any]) -> list[tuple[int, str, str]]:
    """Each differing row as (rank, src, hook) of its events."""
    return [(r, str(e["src"]), str(e["hook"])) for row in rows for r, e in enumerate(row) if e is not None]


@pytest.mark.parametrize("config", ["ddp_2__fit_test", "ddp_2__fail_rank1", "torchrun_ddp_2__fail_rank1"])
def test_every_event_of_every_rank_is_in_one_row_in_order(config: str) -> None:
    traces = _traces(config)
    rows = align(traces)
    for rank, events in enumerate(traces):
        kept = [e for e in events if e.get("phase") != "return"]
        assert [row[rank] for row in rows if row[rank] is not None] == kept


def test_a_fit_differs_only_where_lightning_declares_it_does() -> None:
    """Lightning's fit+test on 2 ranks: the same events on both ranks but prepare_data, on rank 0 per entry point."""
    traces = _traces("ddp_2__fit_test")
    runs = sum(e["hook"] == "configure_callbacks" for e in traces[0])
    assert runs >= 2 and not any(e["hook"] == "prepare_data" for e in traces[1])
    assert _only(differing_rows(align(traces))) == [(0, "module", "prepare_data")] * runs
    text = ranks_diagram(traces, ["rank 0", "rank 1"], "fit")
    assert text.count(f"rect {DIFFERENCE_FILL}") == runs and "        Note over R0: lm.prepare_data" in text
    assert "    R0->>R1: strategy.barrier(name=pre_setup)" in text  # a collective crosses the lanes
    assert "Note over R0,R1: cb.on_fit_start" in text  # one note for what every rank did
    assert "loop ×" in text  # the epochs and batches folded


def test_a_failing_rank_and_the_error_it_caused_are_highlighted() -> None:
    text = ranks_diagram(_traces("ddp_2__fail_rank1"), ["rank 0", "rank 1"], "fail")
    assert "Note over R1: cb.on_exception(exception=RuntimeError: injected: training_step on rank 1)" in text
    assert "Note over R0: cb.on_exception(exception=RuntimeError: " in text
    assert "Connection closed by peer" in text  # what Lightning's healthy rank got instead of the error
    on_exception = [line for line in text.splitlines() if "on_exception" in line]
    assert all(line.startswith("        Note over R") for line in on_exception)  # inside the red block


def test_a_missing_collective_on_one_rank_is_highlighted() -> None:
    rank0, rank1 = _traces("ddp_2__fit_test")
    index = next(i for i, e in enumerate(rank1) if e["hook"] == "barrier" and e["args"].get("name") == "post_setup")
    rows = align([rank0, rank1[:index] + rank1[index + 1 :]])
    differing = _only(differing_rows(rows))
    assert differing[:2] == [(0, "module", "prepare_data"), (0, "strategy", "barrier")]
    assert set(differing[2:]) == {(0, "module", "prepare_data")}


def test_three_ranks_get_three_lanes() -> None:
    rank0, rank1 = _traces("ddp_2__fit_test")
    text = ranks_diagram([rank0, rank1, rank1], ["a", "b", "c"], "three")
    assert "participant R2 as c" in text and "Note over R0,R2: cb.on_fit_start" in text


def test_cli_draws_ranks_side_by_side(tmp_path: Path) -> None:
    traces = [str(FIXTURES / f"ddp_2__fit_test.rank{r}.jsonl") for r in (0, 1)]
    out = tmp_path / "ranks.mmd"
    assert _cli("--trace", *traces, "-o", str(out)) == 0
    text = out.read_text()
    assert text.startswith("---\ntitle: ") and "2 ranks side by side" in text
    assert "participant R0 as rank 0: ddp_2__fit_test.rank0.jsonl" in text
    assert "participant R1 as rank 1: ddp_2__fit_test.rank1.jsonl" in text
    assert _cli("--trace", *traces, "--over-lifecycle") == 2  # one trace only over the lifecycle
    assert _cli("--trace", traces[0], "-o", str(tmp_path / "one.mmd")) == 0  # one trace: the single-run diagram
    assert "participant R1" not in (tmp_path / "one.mmd").read_text()


def test_fewer_than_two_traces_is_refused() -> None:
    with pytest.raises(ValueError, match="two or more traces"):
        align([[]])
    with pytest.raises(ValueError, match="lane names"):
        ranks_diagram(_traces("ddp_2__fit_test"), ["only one"], "x")
