"""lightcycle: a declarative state-machine training orchestrator for PyTorch.

Drop-in for the Lightning 2.x API: ``import lightcycle as L`` gives ``L.Trainer``,
``L.LightningModule``, ``L.LightningDataModule``, ``L.Callback`` and
``L.seed_everything``, with Lightning's hook order, declared once in
:mod:`lightcycle.states.declaration`.
"""

from importlib.metadata import PackageNotFoundError as _PackageNotFoundError
from importlib.metadata import version as _version

from lightcycle.callbacks.callback import Callback
from lightcycle.core.datamodule import LightningDataModule
from lightcycle.core.module import LightningModule
from lightcycle.errors import LifecycleError, MisconfigurationException
from lightcycle.orchestrator.state import RunningStage, TrainerFn, TrainerState, TrainerStatus
from lightcycle.orchestrator.trainer import Trainer
from lightcycle.seed import seed_everything
from lightcycle.states import LIFECYCLE

try:
    __version__ = _version("lightcycle")  # the package metadata: pyproject's version, one source
except _PackageNotFoundError:  # a source checkout used without installing it
    __version__ = "0+unknown"

__all__ = [
    "LIFECYCLE",
    "Callback",
    "LifecycleError",
    "LightningDataModule",
    "LightningModule",
    "MisconfigurationException",
    "RunningStage",
    "Trainer",
    "TrainerFn",
    "TrainerState",
    "TrainerStatus",
    "seed_everything",
]
