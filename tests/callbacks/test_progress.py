"""TQDMProgressBar draws what Lightning's draws: the same bars, descriptions, counts, postfixes and lines.

Both runs write to a captured stdout; the time-dependent parts of each bar (elapsed, remaining,
rate) are blanked before comparing. A bar redraws at most every tqdm ``mininterval``: the
comparisons run with bars of ``mininterval=0`` (every batch due, as Lightning draws); the tests at
the end set it to infinity instead (only each bar's last batch and its epoch end draw).
"""

from __future__ import annotations

import contextlib
import io
import math
import re
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest
import pytorch_lightning as PL

import lightcycle as LC
from lightcycle.callbacks import TQDMProgressBar
from tests.callback_programs import loaders, make_module, run

_TIMES = re.compile(r"\[[0-9:]+<[^,]*, [^,\]]*")


def _mininterval(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    """Give every bar lightcycle's TQDMProgressBar creates this tqdm ``mininterval``."""
    new_bar: Callable[..., Any] = TQDMProgressBar._new_bar

    def with_interval(self: TQDMProgressBar, *args: Any) -> Any:
        bar = new_bar(self, *args)
        bar.mininterval = seconds
        return bar

    monkeypatch.setattr(TQDMProgressBar, "_new_bar", with_interval)


@pytest.fixture(autouse=True)
def _every_batch_due(monkeypatch: pytest.MonkeyPatch) -> None:
    _mininterval(monkeypatch, 0.0)


def _normalise(text: str) -> str:
    # Cursor moves become tokens; elapsed/remaining/rate are blanked; the padding tqdm writes to
    # erase a longer previous line depends on those widths, so spaces are dropped.
    text = _TIMES.sub("[T", text.replace("\x1b[A", "<UP>"))
    return text.replace(" ", "")


def _screen(fw: ModuleType, bar_kwargs: dict[str, Any], **trainer_kwargs: Any) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        run(
            fw,
            lambda fw: [fw.callbacks.TQDMProgressBar(**bar_kwargs)],
            enable_progress_bar=True,
            **trainer_kwargs,
        )
    return _normalise(out.getvalue())


def _frames(text: str) -> list[str]:
    return [f.strip() for f in re.split(r"[\r\n]", text) if f.strip()]


CASES = [
    ({}, {}),
    ({"leave": True}, {}),
    ({"refresh_rate": 3}, {"limit_train_batches": 4}),
    ({"refresh_rate": 0}, {}),
    ({"process_position": 1}, {"num_sanity_val_steps": 1}),
]


@pytest.mark.parametrize(("bar_kwargs", "trainer_kwargs"), CASES)
def test_tqdm_bar_draws_like_lightning(bar_kwargs: dict[str, Any], trainer_kwargs: dict[str, Any]) -> None:
    lightning = _screen(PL, bar_kwargs, **trainer_kwargs)
    ours = _screen(LC, bar_kwargs, **trainer_kwargs)
    assert _frames(ours) == _frames(lightning)
    assert ours.count("\n") == lightning.count("\n")  # lines left on screen: one per epoch only with leave=True


def test_tqdm_bar_test_and_predict_like_lightning() -> None:
    def screen(fw: ModuleType) -> str:
        out = io.StringIO()
        model = make_module(fw)
        model.test_step = lambda batch, batch_idx, dataloader_idx=0: None
        model.predict_step = lambda batch, batch_idx: batch[0]
        _, val = loaders()
        # Explicit: Lightning's default bar is its RichProgressBar when rich is installed.
        bar = fw.callbacks.TQDMProgressBar()
        trainer = fw.Trainer(callbacks=[bar], logger=False, enable_checkpointing=False, enable_model_summary=False)
        with contextlib.redirect_stdout(out):
            trainer.validate(model, val, verbose=False)
            trainer.test(model, [val, val], verbose=False)
            trainer.predict(model, val)
        return _normalise(out.getvalue())

    assert _frames(screen(LC)) == _frames(screen(PL))


def test_refresh_interval_is_deprecated_but_kept() -> None:
    with pytest.warns(DeprecationWarning, match="refresh_rate"):
        bar = TQDMProgressBar(refresh_interval=10.0)
    assert bar._should_update(1, 5) and not bar._should_update(2, 5) and bar._should_update(5, 5)


def _bar_metrics_module(fw: ModuleType) -> Any:
    """The program's module, also logging its loss to the bar (the postfix shows it)."""
    model = make_module(fw)
    step = model.training_step

    def training_step(batch: Any, batch_idx: int) -> Any:
        loss = step(batch, batch_idx)
        model.log("loss", loss, prog_bar=True)
        return loss

    model.training_step = training_step
    return model


_COUNT = re.compile(r"\|(\d+)/(\d+)\[")
_POSTFIX = re.compile(r"\[T,[^\]]*\]")


def _no_postfix(frames: list[str]) -> list[str]:
    return [_POSTFIX.sub("[T]", frame) for frame in frames]


def _in_between(frame: str) -> bool:
    """A frame of a batch that is neither the bar's first nor its last (``0 < n < total``)."""
    match = _COUNT.search(frame)
    return match is not None and 0 < int(match[1]) < int(match[2])


def test_tqdm_bar_redraws_at_most_every_mininterval(monkeypatch: pytest.MonkeyPatch) -> None:
    lightning = _frames(_screen(PL, {}, module=_bar_metrics_module(PL)))
    _mininterval(monkeypatch, math.inf)  # no batch is ever due before the bar's last
    ours = _frames(_screen(LC, {}, module=_bar_metrics_module(LC)))
    # What is left out is exactly the frames of the batches in between; every other frame is
    # Lightning's, but for the postfix of a batch's first draw (drawn before the new postfix, as
    # Lightning's: it shows the postfix last set, here older than Lightning's previous batch's).
    assert _no_postfix(ours) == [frame for frame in _no_postfix(lightning) if not _in_between(frame)]
    assert len(ours) < len(lightning)
    # The last frame, with the postfix of the last batch's metrics, is Lightning's.
    assert ours[-1] == lightning[-1] and "4/4" in ours[-1] and ",loss=" in ours[-1]


def _counting_metrics(bar: TQDMProgressBar) -> list[int]:
    calls = [0]
    get_metrics = bar.get_metrics

    def counted(*args: Any) -> Any:
        calls[0] += 1
        return get_metrics(*args)

    bar.get_metrics = counted  # type: ignore[method-assign]
    return calls


def test_tqdm_bar_reads_metrics_only_when_it_redraws(monkeypatch: pytest.MonkeyPatch) -> None:
    _mininterval(monkeypatch, math.inf)
    bar = TQDMProgressBar()
    calls = _counting_metrics(bar)
    with contextlib.redirect_stdout(io.StringIO()):
        run(LC, lambda fw: [bar], module=_bar_metrics_module(LC), enable_progress_bar=True)
    # 2 epochs: each last batch, each epoch end, each validation end (Lightning: 4 + 1 + 1 per epoch,
    # and the sanity check's end, for the disabled placeholder bar).
    assert calls[0] == 2 * 3


@pytest.mark.parametrize("off", ["refresh_rate=0", "disable()"])
def test_a_disabled_tqdm_bar_reads_no_metrics(off: str) -> None:
    bar = TQDMProgressBar(refresh_rate=0 if off == "refresh_rate=0" else 1)
    if off == "disable()":
        bar.disable()
    calls = _counting_metrics(bar)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        run(LC, lambda fw: [bar], module=_bar_metrics_module(LC), enable_progress_bar=True)
    assert calls[0] == 0 and out.getvalue() == ""
