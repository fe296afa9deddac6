"""Former home of the stage enums, now :mod:`lightcycle.states.stages` (beside the declaration).

Kept so that code written against ``lightcycle.trainer.states`` goes on importing.
"""

from lightcycle.states.stages import RunningStage, TrainerFn, TrainerState, TrainerStatus

__all__ = ["RunningStage", "TrainerFn", "TrainerState", "TrainerStatus"]
