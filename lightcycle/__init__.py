"""lightcycle: a declarative state-machine training orchestrator for PyTorch.

Drop-in for the Lightning 2.x API: ``import lightcycle as L`` gives ``L.Trainer``,
``L.LightningModule``, ``L.LightningDataModule``, ``L.Callback`` and
``L.seed_everything``, with Lightning's hook order, declared once in
:mod:`lightcycle.states.declaration`.

The names are resolved on first use (PEP 562), so importing a submodule that needs no
torch (the pytest plugin :mod:`lightcycle.testing.pytest_plugin`, loaded in every pytest
run of an environment where lightcycle is installed) does not import torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lightcycle._lazy import lazy_names

if TYPE_CHECKING:  # the names for type checkers (explicit re-exports); at run time see __getattr__
    from lightcycle.callbacks.callback import Callback as Callback
    from lightcycle.core.datamodule import LightningDataModule as LightningDataModule
    from lightcycle.core.module import LightningModule as LightningModule
    from lightcycle.errors import LifecycleError as LifecycleError
    from lightcycle.errors import MisconfigurationException as MisconfigurationException
    from lightcycle.orchestrator.state import RunningStage as RunningStage
    from lightcycle.orchestrator.state import TrainerFn as TrainerFn
    from lightcycle.orchestrator.state import TrainerState as TrainerState
    from lightcycle.orchestrator.state import TrainerStatus as TrainerStatus
    from lightcycle.orchestrator.trainer import Trainer as Trainer
    from lightcycle.seed import seed_everything as seed_everything
    from lightcycle.states import LIFECYCLE as LIFECYCLE

_WHERE = {
    "LIFECYCLE": "lightcycle.states",
    "Callback": "lightcycle.callbacks.callback",
    "LifecycleError": "lightcycle.errors",
    "LightningDataModule": "lightcycle.core.datamodule",
    "LightningModule": "lightcycle.core.module",
    "MisconfigurationException": "lightcycle.errors",
    "RunningStage": "lightcycle.orchestrator.state",
    "Trainer": "lightcycle.orchestrator.trainer",
    "TrainerFn": "lightcycle.orchestrator.state",
    "TrainerState": "lightcycle.orchestrator.state",
    "TrainerStatus": "lightcycle.orchestrator.state",
    "seed_everything": "lightcycle.seed",
}
"""Where each public name is defined."""

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

__getattr__, __dir__ = lazy_names(__name__, _WHERE, globals())
