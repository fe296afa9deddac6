"""DeviceStatsMonitor logs Lightning's keys at Lightning's steps (values are the machine's, so not compared)."""

from __future__ import annotations

from typing import Any

import pytest
import pytorch_lightning as PL

import lightcycle as LC
from tests.callback_programs import run


def _shape(rows: list[Any]) -> list[tuple[Any, list[str]]]:
    return [(step, sorted(r)) for step, r in rows if any(k.startswith("DeviceStatsMonitor") for k in r)]


@pytest.mark.parametrize("accumulate", [1, 2])
def test_device_stats_keys_and_steps_equal_lightning(accumulate: int) -> None:
    kwargs: dict[str, Any] = dict(
        limit_train_batches=3, log_every_n_steps=2, num_sanity_val_steps=2, accumulate_grad_batches=accumulate
    )
    pl = run(PL, lambda fw: [fw.callbacks.DeviceStatsMonitor()], **kwargs)
    lc = run(LC, lambda fw: [fw.callbacks.DeviceStatsMonitor()], **kwargs)
    assert any("on_validation_batch_end" in k for _, keys in _shape(pl["rows"]) for k in keys)
    assert _shape(lc["rows"]) == _shape(pl["rows"])


def test_device_stats_needs_a_logger_as_in_lightning() -> None:
    for fw in (PL, LC):
        with pytest.raises(Exception, match="DeviceStatsMonitor"):
            run(fw, lambda fw: [fw.callbacks.DeviceStatsMonitor()], logger=False)
    assert LC.callbacks.DeviceStatsMonitor(cpu_stats=False)._cpu_stats is False
