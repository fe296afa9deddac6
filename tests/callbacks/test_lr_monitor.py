"""LearningRateMonitor logs what Lightning's logs: names, values, steps, callback_metrics, ``lrs``."""

from __future__ import annotations

from typing import Any

import pytest
import pytorch_lightning as PL

import lightcycle as LC
from lightcycle.callbacks import LearningRateMonitor
from lightcycle.errors import MisconfigurationException
from tests.callback_programs import run

CASES = [
    ("sgd", None, False, False),
    ("sgd_momentum_step_sched", None, True, True),
    ("sgd_momentum_step_sched", "epoch", True, False),
    ("adam_groups_epoch_sched", None, True, True),
    ("adam_groups_epoch_sched", "step", False, False),
    ("two_sgd_named", None, True, False),
]


def _lr_rows(rows: list[Any]) -> list[Any]:
    # Only the monitor's own rows: the step metrics of self.log are the loggers' business.
    return [r for r in rows if any(k.startswith(("lr-", "my-")) for k in r[1])]


def _monitor(interval: Any, momentum: bool, wd: bool) -> Any:
    return lambda fw: [fw.callbacks.LearningRateMonitor(interval, log_momentum=momentum, log_weight_decay=wd)]


@pytest.mark.parametrize(("optimizers", "interval", "momentum", "wd"), CASES)
def test_lr_monitor_equals_lightning(optimizers: str, interval: Any, momentum: bool, wd: bool) -> None:
    manual = optimizers == "two_sgd_named"
    kwargs = dict(optimizers=optimizers, manual=manual, limit_train_batches=3, log_every_n_steps=2)
    pl = run(PL, _monitor(interval, momentum, wd), **kwargs)
    lc = run(LC, _monitor(interval, momentum, wd), **kwargs)
    pl_rows, lc_rows = _lr_rows(pl["rows"]), _lr_rows(lc["rows"])
    assert pl_rows, "Lightning logged no learning rate: the case tests nothing"
    if not manual:
        assert lc_rows == pl_rows
    else:  # manual optimization: Lightning's log step counts batches, lightcycle's optimizer steps
        assert [r for _, r in lc_rows] == [r for _, r in pl_rows]
    assert lc["callback_metrics"] == pl["callback_metrics"]
    assert lc["callbacks"][0].lrs == pl["callbacks"][0].lrs
    assert lc["callbacks"][0].last_momentum_values == pl["callbacks"][0].last_momentum_values
    assert lc["callbacks"][0].last_weight_decay_values == pl["callbacks"][0].last_weight_decay_values


def test_lr_monitor_refuses_bad_interval_and_missing_logger() -> None:
    with pytest.raises(MisconfigurationException, match="logging_interval should be"):
        LearningRateMonitor("batch")  # type: ignore[arg-type]
    with pytest.raises(MisconfigurationException, match="has no logger"):
        run(LC, lambda fw: [fw.callbacks.LearningRateMonitor()], logger=False)
