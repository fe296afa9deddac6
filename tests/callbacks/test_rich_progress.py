"""RichProgressBar draws what Lightning's draws: the same tasks, totals, descriptions and metrics text.

Each run draws on a recording rich console (not a terminal, so rich writes each display's last
frame when it stops); times and speeds, which differ run to run, are blanked before comparing. The
bar's hooks are also recorded with a snapshot of its tasks and metrics after each, so that the
frames in between are compared too. The bar hands rich a training batch at most once per refresh
interval (``1 / refresh_rate`` s): those comparisons run on a clock that moves a second per reading,
so that every batch is handed over as in Lightning; the tests at the end freeze the clock instead.
"""

from __future__ import annotations

import copy
import io
import itertools
import pickle
import re
from collections.abc import Iterator
from types import ModuleType
from typing import Any, cast

import pytest
import pytorch_lightning as PL
import rich
import torch

import lightcycle as LC
import lightcycle.callbacks
import lightcycle.callbacks.rich_progress as rich_progress
from lightcycle.callbacks.rich_columns import CustomProgress
from tests.callback_programs import loaders, make_module, run

_TIMES = re.compile(r"\d+:\d\d:\d\d • (\d+:\d\d:\d\d|-:--:--) +\d+\.\d\dit/s")


@pytest.fixture(autouse=True)
def _restore_global_console() -> Iterator[None]:
    # The bar reconfigures rich's global console (as Lightning's does): give it back afterwards.
    console = rich.get_console()
    saved = dict(console.__dict__)
    yield
    console.__dict__ = saved


@pytest.fixture(autouse=True)
def _every_batch_due(monkeypatch: pytest.MonkeyPatch) -> None:
    # A second passes between two readings: each batch is past the refresh interval, as in Lightning.
    monkeypatch.setattr(rich_progress, "_clock", itertools.count(0.0, 1.0).__next__)


def _frozen(monkeypatch: pytest.MonkeyPatch) -> None:
    # No time passes: after a hand-over, no batch is due until the epoch's last one.
    monkeypatch.setattr(rich_progress, "_clock", lambda: 0.0)


def _bar(fw: ModuleType, stream: io.StringIO, **bar_kwargs: Any) -> Any:
    """``fw``'s RichProgressBar on ``stream``, logging (hook, tasks, metrics) after each hook it overrides."""
    bar = fw.callbacks.RichProgressBar(
        console_kwargs={"file": stream, "force_terminal": False, "width": 200}, **bar_kwargs
    )
    bar.log_ = []
    base = fw.callbacks.ProgressBar
    for name in dir(type(bar)):
        method = getattr(type(bar), name)
        if (name.startswith("on_") or name in ("setup", "teardown")) and method is not getattr(base, name, None):
            setattr(bar, name, _recording(bar, name, getattr(bar, name)))
    return bar


def _recording(bar: Any, name: str, hook: Any) -> Any:
    def wrapped(*args: Any, **kwargs: Any) -> None:
        hook(*args, **kwargs)
        tasks = None
        if bar.progress is not None:
            tasks = [(t.description, t.completed, t.total, t.visible) for t in bar.progress.tasks]
        metrics = None if bar._metric_component is None else dict(bar._metric_component._metrics)
        bar.log_.append((name, tasks, metrics))

    return wrapped


def _model(fw: ModuleType) -> Any:
    model = make_module(fw)
    step = model.training_step

    def training_step(batch: Any, batch_idx: int) -> Any:
        loss = step(batch, batch_idx)
        model.log("loss", loss, prog_bar=True)
        model.log("seen", float(batch_idx), prog_bar=True, on_epoch=True)
        return loss

    def validation_step(batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        model.log("val_acc", torch.tensor(0.25 * batch_idx), prog_bar=True)

    model.training_step = training_step
    model.validation_step = validation_step
    model.test_step = lambda batch, batch_idx, dataloader_idx=0: None
    model.predict_step = lambda batch, batch_idx, dataloader_idx=0: batch[0]
    return model


def _fit(fw: ModuleType, bar_kwargs: dict[str, Any], **trainer_kwargs: Any) -> tuple[str, Any, dict[str, Any]]:
    stream = io.StringIO()
    bar = _bar(fw, stream, **bar_kwargs)
    result = run(fw, lambda fw: [bar], module=_model(fw), enable_progress_bar=True, **trainer_kwargs)
    metrics = bar.get_metrics(result["trainer"], result["module"])
    return _TIMES.sub("T", stream.getvalue()), bar, metrics


CASES = [
    ({}, {}),
    ({"leave": True}, {"num_sanity_val_steps": 1}),
    ({"refresh_rate": 0}, {}),
    ({}, {"max_epochs": -1, "max_steps": 6, "check_val_every_n_epoch": 2}),
]


@pytest.mark.parametrize(("bar_kwargs", "trainer_kwargs"), CASES)
def test_rich_bar_fit_draws_like_lightning(bar_kwargs: dict[str, Any], trainer_kwargs: dict[str, Any]) -> None:
    lightning_text, lightning_bar, lightning_metrics = _fit(PL, bar_kwargs, **trainer_kwargs)
    text, bar, metrics = _fit(LC, bar_kwargs, **trainer_kwargs)
    assert text == lightning_text
    assert bar.log_ == lightning_bar.log_
    assert metrics == lightning_metrics
    if bar.is_enabled:
        assert "v_num: 0.000 loss: " in text  # the metrics text is compared, not empty
    else:
        assert text == ""
    assert bar.state_dict() == lightning_bar.state_dict() == {}


def test_rich_bar_validate_test_predict_like_lightning() -> None:
    def screen(fw: ModuleType) -> tuple[str, list[Any]]:
        stream = io.StringIO()
        bar = _bar(fw, stream)
        model = _model(fw)
        _, val = loaders()
        trainer = fw.Trainer(callbacks=[bar], logger=False, enable_checkpointing=False, enable_model_summary=False)
        trainer.validate(model, val, verbose=False)
        trainer.test(model, [val, val], verbose=False)
        trainer.predict(model, [val, val])
        return _TIMES.sub("T", stream.getvalue()), bar.log_

    ours, lightning = screen(LC), screen(PL)
    assert ours == lightning
    assert "Testing" in ours[0] and "Predicting" in ours[0]


def test_default_bar_is_lightnings_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    def default_bar(fw: ModuleType) -> str:
        trainer = fw.Trainer(logger=False, enable_checkpointing=False, enable_model_summary=False)
        return type(trainer.progress_bar_callback).__name__

    assert default_bar(LC) == default_bar(PL) == "RichProgressBar"  # rich is installed here
    monkeypatch.setattr(lightcycle.callbacks.rich_progress, "rich_available", lambda: False)
    assert default_bar(LC) == "TQDMProgressBar"


def test_rich_bar_copies_without_its_display() -> None:
    # The display and console hold thread locks: a copy or pickle of the bar drops them.
    bar = LC.callbacks.RichProgressBar(leave=True, console_kwargs={"file": io.StringIO(), "force_terminal": False})
    bar._init_progress(cast(Any, None))  # the display started (no trainer needed for that)
    try:
        assert bar.progress is not None and bar._console is not None
        for clone in (copy.deepcopy(bar), pickle.loads(pickle.dumps(bar))):
            assert clone.progress is None and clone._console is None and clone._leave
    finally:
        bar._stop_progress()


def test_rich_bar_without_rich_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "rich" else real(name, *a))
    with pytest.raises(ModuleNotFoundError, match=r"pip install lightcycle\[rich\]"):
        LC.callbacks.RichProgressBar()


def test_lightnings_rich_bar_under_lightcycle_draws_the_same() -> None:
    # A foreign bar (Lightning's own class) driven by lightcycle's Trainer, against Lightning's run.
    lightning_text, lightning_bar, _ = _fit(PL, {})
    stream = io.StringIO()
    bar = _bar(PL, stream)
    result = run(LC, lambda fw: [bar], module=_model(LC), enable_progress_bar=True)
    assert result["trainer"].progress_bar_callback is bar
    assert _TIMES.sub("T", stream.getvalue()) == lightning_text
    assert bar.log_ == lightning_bar.log_


def _fit_failing_at_epoch_1_batch_2(fw: ModuleType) -> tuple[io.StringIO, Any]:
    """A fit with a rich bar on a stream whose training_step raises at epoch 1, batch 2."""
    stream = io.StringIO()
    bar = _bar(fw, stream)
    model = _model(fw)
    step = model.training_step

    def failing_step(batch: Any, batch_idx: int) -> Any:
        if model.current_epoch == 1 and batch_idx == 2:
            raise RuntimeError("boom")
        return step(batch, batch_idx)

    model.training_step = failing_step
    with pytest.raises(RuntimeError, match="boom"):
        run(fw, lambda fw: [bar], module=model, enable_progress_bar=True)
    return stream, bar


def test_rich_bar_stops_its_display_on_an_exception_like_lightning() -> None:
    def screen(fw: ModuleType) -> tuple[str, list[Any]]:
        stream, bar = _fit_failing_at_epoch_1_batch_2(fw)
        assert bar._progress_stopped  # the display was stopped: its last frame is on the stream
        return _TIMES.sub("T", stream.getvalue()), bar.log_

    ours, lightning = screen(LC), screen(PL)
    assert ours == lightning
    assert "2/4" in ours[0]
    # The console is free for the next display (a new fit draws again).
    assert _fit(LC, {})[0] == _fit(PL, {})[0]


class _Stream(torch.utils.data.IterableDataset[Any]):
    """Four batches from a dataset without a length: the bars' total is infinite."""

    def __iter__(self) -> Iterator[Any]:
        return iter([(torch.ones(4),)] * 4)


def test_rich_bar_without_a_length_like_lightning() -> None:
    def screen(fw: ModuleType) -> tuple[str, list[Any]]:
        stream = io.StringIO()
        bar = _bar(fw, stream)
        trainer = fw.Trainer(
            callbacks=[bar], logger=False, enable_checkpointing=False, enable_model_summary=False, max_epochs=2
        )
        loader = torch.utils.data.DataLoader(_Stream(), batch_size=2)
        trainer.fit(_model(fw), loader, loader)
        return _TIMES.sub("T", stream.getvalue()), bar.log_

    ours, lightning = screen(LC), screen(PL)
    assert ours == lightning
    assert "2/--" in ours[0]


def _counting_metrics(bar: Any) -> list[int]:
    """Count the bar's ``get_metrics`` calls (each one reads and converts the logged tensors)."""
    calls = [0]
    get_metrics = bar.get_metrics

    def counted(*args: Any) -> Any:
        calls[0] += 1
        return get_metrics(*args)

    bar.get_metrics = counted
    return calls


def _fit_counted(fw: ModuleType, bar_kwargs: dict[str, Any], **trainer_kwargs: Any) -> tuple[str, Any, list[int]]:
    stream = io.StringIO()
    bar = _bar(fw, stream, **bar_kwargs)
    calls = _counting_metrics(bar)
    run(fw, lambda fw: [bar], module=_model(fw), enable_progress_bar=True, **trainer_kwargs)
    return _TIMES.sub("T", stream.getvalue()), bar, calls


def _train_batch_counts(log: list[Any]) -> list[float]:
    # the completed count of the training task ("Epoch ...") after each training batch
    return [t[1] for name, tasks, _ in log if name == "on_train_batch_end" for t in tasks if t[0].startswith("Epoch")]


def _val_batch_counts(log: list[Any]) -> list[float]:
    # the completed count of the newest evaluation task (sanity check or validation) after each validation batch
    eval_tasks = ("Sanity Checking", "Validation")
    return [
        [t for t in tasks if t[0] in eval_tasks][-1][1] for name, tasks, _ in log if name == "on_validation_batch_end"
    ]


_PER_BATCH_HOOKS = ("on_train_batch_end", "on_validation_batch_start", "on_validation_batch_end")


def test_rich_bar_hands_a_batch_over_at_most_once_per_refresh_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    lightning_text, lightning_bar, _ = _fit(PL, {})
    _frozen(monkeypatch)
    text, bar, calls = _fit_counted(LC, {})
    # The frames left on screen are Lightning's: the last batch of each task is always handed over.
    assert text == lightning_text
    assert "4/4" in text and "loss: " in text
    # In between, a batch inside the refresh interval (one for the whole display) only records its
    # count: the sanity check hands over its first batch (nothing was due before) and its last; after
    # that, each training epoch and each validation only its last.
    assert _train_batch_counts(lightning_bar.log_) == [1, 2, 3, 4] * 2
    assert _train_batch_counts(bar.log_) == [0, 0, 0, 4] * 2
    assert _val_batch_counts(lightning_bar.log_) == [1, 2] * 3
    assert _val_batch_counts(bar.log_) == [1, 2, 0, 2, 0, 2]
    # Every other hook leaves the tasks and the metrics as Lightning's does.
    ours = [entry for entry in bar.log_ if entry[0] not in _PER_BATCH_HOOKS]
    theirs = [entry for entry in lightning_bar.log_ if entry[0] not in _PER_BATCH_HOOKS]
    assert ours == theirs
    # Metrics read: the last batch of each epoch (2), one read per epoch end (2) and per validation
    # end (the sanity check's and 2 epochs'), against Lightning's 8 + 2 + 3.
    assert calls[0] == 2 + 2 + 3


def test_rich_bar_hands_over_each_evaluation_task_last_count(monkeypatch: pytest.MonkeyPatch) -> None:
    # Loaders without a length (no "last batch" to hand over) and several dataloaders: the count
    # waiting is handed over when the dataloader or the stage ends, so each task ends as Lightning's.
    def screen(fw: ModuleType) -> tuple[str, list[Any]]:
        stream = io.StringIO()
        bar = _bar(fw, stream)
        model = _model(fw)
        unsized = torch.utils.data.DataLoader(_Stream(), batch_size=2)
        _, val = loaders()
        trainer = fw.Trainer(callbacks=[bar], logger=False, enable_checkpointing=False, enable_model_summary=False)
        trainer.validate(model, unsized, verbose=False)
        trainer.test(model, [unsized, val], verbose=False)
        trainer.predict(model, [val, unsized])
        per_batch = {
            f"on_{stage}_batch_{end}" for stage in ("validation", "test", "predict") for end in ("start", "end")
        }
        return _TIMES.sub("T", stream.getvalue()), [entry for entry in bar.log_ if entry[0] not in per_batch]

    lightning = screen(PL)
    _frozen(monkeypatch)
    ours = screen(LC)
    assert ours == lightning
    assert "2/--" in ours[0] and "Predicting" in ours[0]


def test_rich_bar_hands_over_an_epoch_cut_short(monkeypatch: pytest.MonkeyPatch) -> None:
    # max_steps ends the second epoch at its 2nd of 4 batches: no "last batch" to hand over, so the
    # count waiting is handed over at the epoch end.
    kwargs = {"max_epochs": 2, "max_steps": 6}
    lightning_text, lightning_bar, _ = _fit(PL, {}, **kwargs)
    _frozen(monkeypatch)
    text, bar, _ = _fit_counted(LC, {}, **kwargs)
    assert text == lightning_text
    assert "2/4" in text
    ours = [entry for entry in bar.log_ if entry[0] == "on_train_epoch_end"]
    assert ours == [entry for entry in lightning_bar.log_ if entry[0] == "on_train_epoch_end"]


def test_rich_bar_on_an_exception_shows_the_last_finished_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    _frozen(monkeypatch)
    stream, bar = _fit_failing_at_epoch_1_batch_2(LC)
    # Batches 1 and 2 of epoch 1 were not handed over (no time passed); the display's last frame
    # still shows the count of the last finished batch, as Lightning's.
    assert _train_batch_counts(bar.log_)[-2:] == [0, 0]
    assert "2/4" in stream.getvalue()


def test_a_disabled_rich_bar_reads_no_metrics() -> None:
    text, bar, calls = _fit_counted(LC, {"refresh_rate": 0})
    assert text == "" and bar.progress is None
    assert calls[0] == 0
    stream = io.StringIO()
    bar = _bar(LC, stream)
    bar.disable()  # disabled by hand (as on a rank other than 0)
    calls = _counting_metrics(bar)
    run(LC, lambda fw: [bar], module=_model(LC), enable_progress_bar=True)
    assert calls[0] == 0 and stream.getvalue() == ""


@pytest.mark.parametrize("terminal", [False, True])
def test_rich_bar_renders_frames_in_between_only_where_they_can_be_seen(
    monkeypatch: pytest.MonkeyPatch, terminal: bool
) -> None:
    renders = [0]
    get_renderable = CustomProgress.get_renderable

    def counted(self: CustomProgress) -> Any:
        renders[0] += 1
        return get_renderable(self)

    monkeypatch.setattr(CustomProgress, "get_renderable", counted)
    stream = io.StringIO()
    bar = LC.callbacks.RichProgressBar(console_kwargs={"file": stream, "force_terminal": terminal, "width": 200})
    run(LC, lambda fw: [bar], module=_model(LC), enable_progress_bar=True)
    assert "4/4" in stream.getvalue()
    if terminal:
        assert renders[0] > 3  # each task added, each epoch: redrawn where the terminal shows them
    else:
        assert renders[0] == 3  # rich's own, as the display is built and started, and its last frame
