"""Trainer state: the entry point, the running stage and the status (beside the declaration that uses them).

The values are str enums equal to Lightning's strings, so ``trainer.state.stage == "train"``
holds in both libraries.
"""

from __future__ import annotations

from enum import Enum

import attrs


class _StrEnum(str, Enum):
    def __str__(self) -> str:
        return str(self.value)


class TrainerFn(_StrEnum):
    """The public entry point being run."""

    FITTING = "fit"
    VALIDATING = "validate"
    TESTING = "test"
    PREDICTING = "predict"


class RunningStage(_StrEnum):
    """What the trainer is doing right now inside an entry point."""

    TRAINING = "train"
    SANITY_CHECKING = "sanity_check"
    VALIDATING = "validate"
    TESTING = "test"
    PREDICTING = "predict"

    @property
    def evaluating(self) -> bool:
        return self in (RunningStage.VALIDATING, RunningStage.TESTING, RunningStage.SANITY_CHECKING)


class TrainerStatus(_StrEnum):
    """Where the trainer is in its life."""

    INITIALIZING = "initializing"
    RUNNING = "running"
    FINISHED = "finished"
    INTERRUPTED = "interrupted"

    @property
    def stopped(self) -> bool:
        return self in (TrainerStatus.FINISHED, TrainerStatus.INTERRUPTED)


@attrs.define
class TrainerState:
    """``trainer.state``: the entry point, stage and status, as Lightning names them."""

    status: TrainerStatus = TrainerStatus.INITIALIZING
    fn: TrainerFn | None = None
    stage: RunningStage | None = None

    @property
    def finished(self) -> bool:
        return self.status == TrainerStatus.FINISHED

    @property
    def stopped(self) -> bool:
        return self.status.stopped
