"""The profiler classes and ``Trainer(profiler=...)``: choices, refusals, report files, no cost when off."""

from __future__ import annotations

import os
import pickle
import warnings
from pathlib import Path
from typing import Any

import pytest
import pytorch_lightning as PL
import torch

import lightcycle as LC
from lightcycle.demos.boring_classes import BoringModel
from lightcycle.errors import MisconfigurationException
from lightcycle.profilers import AdvancedProfiler, PassThroughProfiler, PyTorchProfiler, SimpleProfiler

QUIET: dict[str, Any] = dict(accelerator="cpu", devices=1, enable_progress_bar=False, enable_model_summary=False)


class Recording(LC.Callback):
    def __init__(self) -> None:
        self.events: list[str] = []

    def setup(self, trainer: Any, pl_module: Any, stage: str) -> None:
        self.events.append("setup")


def _fit(tmp_path: Path, profiler: Any, **kwargs: Any) -> Any:
    t = LC.Trainer(
        **QUIET,
        max_epochs=1,
        limit_train_batches=2,
        limit_val_batches=1,
        default_root_dir=tmp_path,
        profiler=profiler,
        **kwargs,
    )
    t.fit(BoringModel())
    return t


@pytest.mark.parametrize(
    ("name", "kind"), [("simple", SimpleProfiler), ("Advanced", AdvancedProfiler), ("pytorch", PyTorchProfiler)]
)
def test_names_choose_the_profiler(name: str, kind: type) -> None:
    assert type(LC.Trainer(**QUIET, profiler=name).profiler) is kind


def test_no_profiler_is_a_pass_through_and_binds_plain_receivers(tmp_path: Path) -> None:
    t = LC.Trainer(**QUIET, max_epochs=1, limit_train_batches=1, limit_val_batches=0, default_root_dir=tmp_path)
    assert isinstance(t.profiler, PassThroughProfiler)
    t.fit(BoringModel())
    assert t._driver.profiling is None  # nothing was wrapped: the hot path is the unprofiled code
    with t.profiler.profile("user action") as name:  # user code may still call it, as in Lightning
        assert name == "user action"


def test_unknown_name_is_refused_with_lightnings_message_before_any_hook() -> None:
    rec = Recording()
    with pytest.raises(MisconfigurationException) as ours:
        LC.Trainer(**QUIET, callbacks=[rec], profiler="fancy")
    with pytest.raises(PL.utilities.exceptions.MisconfigurationException) as theirs:
        PL.Trainer(**QUIET, profiler="fancy")
    assert str(ours.value) == str(theirs.value)
    assert rec.events == []
    with pytest.raises(MisconfigurationException, match="Profiler instance"):
        LC.Trainer(**QUIET, profiler=3)


def test_barebones_refuses_a_profiler_as_lightning() -> None:
    with pytest.raises(ValueError) as ours:
        LC.Trainer(accelerator="cpu", barebones=True, profiler="simple")
    with warnings.catch_warnings(), pytest.raises(ValueError) as theirs:
        warnings.simplefilter("ignore")
        PL.Trainer(accelerator="cpu", barebones=True, profiler="simple")
    assert str(ours.value) == str(theirs.value)


def test_report_file_is_named_as_lightnings(tmp_path: Path) -> None:
    t = _fit(tmp_path, SimpleProfiler(dirpath=tmp_path / "prof", filename="perf"))
    text = (tmp_path / "prof" / "fit-perf.txt").read_text()
    assert text.startswith("FIT Profiler Report")
    for action in ("run_training_epoch", "run_training_batch", "[Strategy]SingleDeviceStrategy.training_step"):
        assert f"|  {action} " in text
    assert "|  Total " in text and "Num calls" in text
    lines = [line for line in text.splitlines() if line.startswith("|  run_training_batch ")]
    assert lines[0].split("|")[3].strip() == "2"  # two batches
    t.validate(BoringModel())  # the trainer's log_dir is used when dirpath is not given...
    assert (tmp_path / "prof" / "validate-perf.txt").exists()


def test_report_goes_to_log_dir_when_no_dirpath(tmp_path: Path) -> None:
    t = _fit(tmp_path, SimpleProfiler(filename="perf"))
    assert t.log_dir is not None and os.path.exists(os.path.join(t.log_dir, "fit-perf.txt"))


def test_report_without_file_goes_to_the_log(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("INFO", logger="lightcycle.profilers.profiler"):
        _fit(tmp_path, "simple")
    assert any(r.getMessage().startswith("FIT Profiler Report") for r in caplog.records)


def test_simple_profiler_interface_errors_and_non_extended_table() -> None:
    p = SimpleProfiler(extended=False)
    with pytest.raises(ValueError, match="never started"):
        p.stop("a")
    p.start("a")
    with pytest.raises(ValueError, match="already started"):
        p.start("a")
    p.stop("a")
    with p.profile("b"):
        pass
    summary = p.summary()
    assert "Profiler Report" in summary and "|  a" in summary and "Num calls" not in summary


def test_advanced_profiler_reports_pstats_per_action(tmp_path: Path) -> None:
    p = AdvancedProfiler(dirpath=tmp_path, filename="adv", dump_stats=True)
    _fit(tmp_path, p)
    text = (tmp_path / "fit-adv.txt").read_text()
    assert "Profile stats for: [Strategy]SingleDeviceStrategy.training_step" in text
    assert "function calls" in text and "cumulative" in text
    assert any(name.endswith(".prof") for name in os.listdir(tmp_path))
    copy = pickle.loads(pickle.dumps(AdvancedProfiler(filename="x", line_count_restriction=0.5)))
    assert copy.filename == "x" and copy.line_count_restriction == 0.5


def test_pytorch_profiler_labels_actions_and_writes_a_trace(tmp_path: Path) -> None:
    p = PyTorchProfiler(dirpath=tmp_path, filename="pt", row_limit=-1)
    _fit(tmp_path, p)
    text = (tmp_path / "fit-pt.txt").read_text()
    assert "Profile stats for: records" in text and "[pl][profile]run_training_batch" in text
    assert (tmp_path / "fit-pt.pt.trace.json").exists()
    with pytest.raises(ValueError, match="sort_by_key"):
        PyTorchProfiler(sort_by_key="nonsense")


def test_user_actions_and_an_exception_close_the_open_spans(tmp_path: Path) -> None:
    class Failing(BoringModel):
        def training_step(self, batch: Any, batch_idx: int) -> Any:
            with self.trainer.profiler.profile("my_block"):
                out = super().training_step(batch, batch_idx)
            if batch_idx == 1:
                raise RuntimeError("boom")
            return out

    p = SimpleProfiler()
    t = LC.Trainer(
        **QUIET, max_epochs=1, limit_train_batches=3, limit_val_batches=0, default_root_dir=tmp_path, profiler=p
    )
    with pytest.raises(RuntimeError, match="boom"):
        t.fit(Failing())
    assert len(p.recorded_durations["my_block"]) == 2
    assert p.current_actions == {}  # the epoch and batch spans and the step were stopped
    assert len(p.recorded_durations["run_training_epoch"]) == 1
    assert len(p.recorded_durations["run_training_batch"]) == 2


def test_a_lightning_profiler_object_is_accepted(tmp_path: Path) -> None:
    from pytorch_lightning.profilers import SimpleProfiler as LightningSimpleProfiler

    p = LightningSimpleProfiler()
    _fit(tmp_path, p)
    assert len(p.recorded_durations["run_training_batch"]) == 2
    assert torch.is_grad_enabled()
