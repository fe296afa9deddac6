"""The Trainer's loops, as Lightning's loop objects.

Each loop is built once per Trainer and holds the state of its own progress:

- :class:`FitLoop` (``trainer.fit_loop``): epochs, ``min_epochs``/``max_epochs``, the resume
  plan of a restored fit, the sanity check; its ``epoch_loop`` runs the batches.
- :class:`TrainingEpochLoop` (``trainer.fit_loop.epoch_loop``): one training epoch, gradient
  accumulation, when validation runs, the schedulers; its ``val_loop`` is the fit's validation.
- :class:`EvaluationLoop` (``trainer.validate_loop``, ``trainer.test_loop`` and the fit's
  ``val_loop``): one evaluation run over its loaders.
- :class:`PredictionLoop` (``trainer.predict_loop``): the same, collecting predictions.

Every hook call is an event of the lifecycle driver (``fire(EVENT, ...)``, or the event's
function on the per-batch path): the driver knows which hooks an event fires and in which
order (:mod:`lightcycle.states.declaration`), so no hook name appears in these modules. What
is left is the control flow that decides *which* event comes next, as Lightning 2.6 decides.
"""

from lightcycle.trainer.loops.data import load_loaders
from lightcycle.trainer.loops.evaluation_loop import EvaluationLoop, PredictionLoop, print_results
from lightcycle.trainer.loops.fit_loop import FitLoop
from lightcycle.trainer.loops.training_epoch_loop import TrainingEpochLoop

__all__ = ["EvaluationLoop", "FitLoop", "PredictionLoop", "TrainingEpochLoop", "load_loaders", "print_results"]
