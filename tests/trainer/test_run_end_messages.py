"""The messages Lightning's fit loop logs when a fit ends, or when a stop must wait (differential).

Lightning logs ``"`Trainer.fit` stopped: ..."`` through ``rank_zero_info`` (``rank_zero_debug`` for a
``should_stop`` it honours) when ``_FitLoop.done`` becomes true, and ``_TrainingEpochLoop.done``
logs once that a stop waits for ``min_epochs``/``min_steps``. lightcycle logs the same words at
the same levels through the ``lightcycle`` logger hierarchy.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
import pytorch_lightning as pl

import lightcycle as lc
from tests import kit


def _fit_messages(
    fw: Any, caplog: pytest.LogCaptureFixture, stop: bool, **trainer_kwargs: Any
) -> list[tuple[str, str]]:
    model_class = kit.linear_module_class(fw, train_data=kit.regression_loader)
    if stop:

        class Stopping(model_class):  # type: ignore[valid-type, misc]
            def on_train_epoch_start(self) -> None:
                self.trainer.should_stop = True

        model_class = Stopping
    caplog.clear()
    with (
        caplog.at_level(logging.DEBUG, logger="lightcycle"),
        caplog.at_level(logging.DEBUG, logger="pytorch_lightning"),
    ):
        fw.Trainer(**kit.quiet(**trainer_kwargs)).fit(model_class())
    return [
        (r.levelname, r.getMessage())
        for r in caplog.records
        if r.getMessage().startswith(("`Trainer.fit` stopped", "Trainer was signaled"))
    ]


@pytest.mark.parametrize(
    ("stop", "kwargs"),
    [
        (False, {"max_epochs": 2}),
        (False, {"max_steps": 3}),
        (False, {"max_epochs": 0}),
        (False, {"max_epochs": 1, "limit_train_batches": 0}),
        (True, {"max_epochs": 3}),
        (True, {"max_epochs": 3, "min_epochs": 2}),
        (True, {"max_epochs": 3, "min_steps": 5}),
    ],
)
def test_fit_end_messages_match_lightning(caplog: pytest.LogCaptureFixture, stop: bool, kwargs: dict[str, Any]) -> None:
    ours = _fit_messages(lc, caplog, stop, **kwargs)
    theirs = _fit_messages(pl, caplog, stop, **kwargs)
    assert ours == theirs
    assert ours or kwargs.get("limit_train_batches") == 0  # the comparison is not of two empty lists


def test_messages_come_through_the_lightcycle_logger(caplog: pytest.LogCaptureFixture) -> None:
    model = kit.linear_module_class(lc, train_data=kit.regression_loader)()
    with caplog.at_level(logging.INFO, logger="lightcycle"):
        lc.Trainer(**kit.quiet(max_epochs=1)).fit(model)
    names = [r.name for r in caplog.records if r.getMessage() == "`Trainer.fit` stopped: `max_epochs=1` reached."]
    assert len(names) == 1 and names[0].startswith("lightcycle.")
