"""Timer: time the train/validation/test loops and stop training at a time limit, as Lightning 2.6's."""

from __future__ import annotations

import re
import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from lightcycle.callbacks.callback import Callback
from lightcycle.errors import MisconfigurationException
from lightcycle.states.stages import RunningStage
from lightcycle.utilities.rank_zero import rank_zero_info

if TYPE_CHECKING:
    from lightcycle.core.module import LightningModule
    from lightcycle.runtime.host import RunHost

_INTERVALS = ("step", "epoch")


class Timer(Callback):
    """Track the time spent per stage; set ``trainer.should_stop`` once training used ``duration``.

    Args:
        duration: ``"DD:HH:MM:SS"``, a ``timedelta``, or ``timedelta`` keyword arguments as a dict;
            ``None`` (default) only measures.
        interval: check after every training batch (``"step"``, default) or epoch (``"epoch"``).
        verbose: say when the limit is reached (default ``True``).

    Raises:
        MisconfigurationException: ``duration`` or ``interval`` is malformed.
    """

    def __init__(
        self,
        duration: str | timedelta | dict[str, int] | None = None,
        interval: str = "step",
        verbose: bool = True,
    ) -> None:
        super().__init__()
        if isinstance(duration, str):
            match = re.fullmatch(r"(\d+):(\d\d):(\d\d):(\d\d)", duration.strip())
            if not match:
                raise MisconfigurationException(
                    f"`Timer(duration={duration!r})` is not a valid duration. Expected a string in the format "
                    "DD:HH:MM:SS."
                )
            d, h, m, s = (int(g) for g in match.groups())
            duration = timedelta(days=d, hours=h, minutes=m, seconds=s)
        elif isinstance(duration, dict):
            duration = timedelta(**duration)
        if interval not in _INTERVALS:
            raise MisconfigurationException(
                f"Unsupported parameter value `Timer(interval={interval})`. Possible choices are: "
                f"{', '.join(_INTERVALS)}"
            )
        self._duration = duration.total_seconds() if duration is not None else None
        self._interval = interval
        self._verbose = verbose
        self._start_time: dict[RunningStage, float | None] = dict.fromkeys(RunningStage)
        self._end_time: dict[RunningStage, float | None] = dict.fromkeys(RunningStage)
        self._offset: float = 0

    def start_time(self, stage: str = RunningStage.TRAINING) -> float | None:
        """When ``stage`` last started (``time.monotonic`` seconds), or ``None``."""
        return self._start_time[RunningStage(stage)]

    def end_time(self, stage: str = RunningStage.TRAINING) -> float | None:
        """When ``stage`` last ended, or ``None``."""
        return self._end_time[RunningStage(stage)]

    def time_elapsed(self, stage: str = RunningStage.TRAINING) -> float:
        """Seconds spent in ``stage`` (training includes the time restored from a checkpoint)."""
        start, end = self.start_time(stage), self.end_time(stage)
        offset = self._offset if stage == RunningStage.TRAINING else 0
        if start is None:
            return offset
        if end is None:
            return time.monotonic() - start + offset
        return end - start + offset

    def time_remaining(self, stage: str = RunningStage.TRAINING) -> float | None:
        """Seconds left of ``duration`` (``None`` without one)."""
        return None if self._duration is None else self._duration - self.time_elapsed(stage)

    def on_train_start(self, trainer: RunHost, pl_module: LightningModule) -> None:
        self._start_time[RunningStage.TRAINING] = time.monotonic()

    def on_train_end(self, trainer: RunHost, pl_module: LightningModule) -> None:
        self._end_time[RunningStage.TRAINING] = time.monotonic()

    def on_validation_start(self, trainer: RunHost, pl_module: LightningModule) -> None:
        self._start_time[RunningStage.VALIDATING] = time.monotonic()

    def on_validation_end(self, trainer: RunHost, pl_module: LightningModule) -> None:
        self._end_time[RunningStage.VALIDATING] = time.monotonic()

    def on_test_start(self, trainer: RunHost, pl_module: LightningModule) -> None:
        self._start_time[RunningStage.TESTING] = time.monotonic()

    def on_test_end(self, trainer: RunHost, pl_module: LightningModule) -> None:
        self._end_time[RunningStage.TESTING] = time.monotonic()

    def on_fit_start(self, trainer: RunHost, pl_module: LightningModule) -> None:
        # After a restore: a timer already used up stops the run before it trains.
        if self._duration is not None:
            self._check_time_remaining(trainer)

    def on_train_batch_end(
        self, trainer: RunHost, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if self._interval == "step" and self._duration is not None:
            self._check_time_remaining(trainer)

    def on_train_epoch_end(self, trainer: RunHost, pl_module: LightningModule) -> None:
        if self._interval == "epoch" and self._duration is not None:
            self._check_time_remaining(trainer)

    def state_dict(self) -> dict[str, Any]:
        return {"time_elapsed": {stage.value: self.time_elapsed(stage) for stage in RunningStage}}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._offset = state_dict.get("time_elapsed", {}).get(RunningStage.TRAINING.value, 0)

    def _check_time_remaining(self, trainer: RunHost) -> None:
        assert self._duration is not None
        # rank 0's clock decides for every rank, as Lightning's: ranks never disagree about stopping
        should_stop = bool(trainer.strategy.broadcast(self.time_elapsed() >= self._duration))
        trainer.should_stop = trainer.should_stop or should_stop
        if should_stop and self._verbose:
            elapsed = timedelta(seconds=int(self.time_elapsed(RunningStage.TRAINING)))
            rank_zero_info(f"Time limit reached. Elapsed time is {elapsed}. Signaling Trainer to stop.")
