"""TQDMProgressBar draws what Lightning's draws: the same bars, descriptions, counts, postfixes and lines.

Both runs write to a captured stdout; the time-dependent parts of each bar (elapsed, remaining,
rate) are blanked before comparing.
"""

from __future__ import annotations

import contextlib
import io
import re
from types import ModuleType
from typing import Any

import pytest
import pytorch_lightning as PL

import lightcycle as LC
from lightcycle.callbacks import TQDMProgressBar
from tests.callback_programs import loaders, make_module, run

_TIMES = re.compile(r"\[[0-9:]+<[^,]*, [^,\]]*")


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
