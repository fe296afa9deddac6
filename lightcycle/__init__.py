"""lightcycle: a declarative state-machine training orchestrator for PyTorch.

Drop-in for the Lightning 2.x API: ``import lightcycle as L`` gives ``L.Trainer``,
``L.LightningModule``, ``L.LightningDataModule``, ``L.Callback`` and
``L.seed_everything``, with Lightning's hook order, declared once in
:mod:`lightcycle.states.declaration`.

The public names are resolved on first use (PEP 562, :mod:`lightcycle._lazy`): this
``__init__`` runs on every ``lightcycle.x`` import, so importing the Trainer here would make
the command-line tool (``lightcycle --help``, ``diagram``, ``verify``, which never train) and
the pytest plugin (:mod:`lightcycle.testing.pytest_plugin`, loaded in every pytest run of an
environment where lightcycle is installed) pay for ``import torch``.
"""

from __future__ import annotations

from importlib import metadata
from typing import TYPE_CHECKING

from lightcycle._lazy import lazy_names

if TYPE_CHECKING:  # the names for type checkers (explicit re-exports); at run time see __getattr__
    from lightcycle.callbacks.callback import Callback as Callback
    from lightcycle.core.datamodule import LightningDataModule as LightningDataModule
    from lightcycle.core.module import LightningModule as LightningModule
    from lightcycle.custom_loop.loop_driver import LoopDriver as LoopDriver
    from lightcycle.errors import LifecycleError as LifecycleError
    from lightcycle.errors import MisconfigurationException as MisconfigurationException
    from lightcycle.logo import LIGHTNING_LOGO as LIGHTNING_LOGO
    from lightcycle.logo import cli_lightning_logo as cli_lightning_logo
    from lightcycle.seed import seed_everything as seed_everything
    from lightcycle.states import LIFECYCLE as LIFECYCLE
    from lightcycle.states.stages import RunningStage as RunningStage
    from lightcycle.states.stages import TrainerFn as TrainerFn
    from lightcycle.states.stages import TrainerState as TrainerState
    from lightcycle.states.stages import TrainerStatus as TrainerStatus
    from lightcycle.trainer.trainer import Trainer as Trainer

_WHERE = {
    "LIFECYCLE": "lightcycle.states",
    "Callback": "lightcycle.callbacks.callback",
    "LifecycleError": "lightcycle.errors",
    "LightningDataModule": "lightcycle.core.datamodule",
    "LightningModule": "lightcycle.core.module",
    "LoopDriver": "lightcycle.custom_loop.loop_driver",
    "MisconfigurationException": "lightcycle.errors",
    "LIGHTNING_LOGO": "lightcycle.logo",
    "cli_lightning_logo": "lightcycle.logo",
    "RunningStage": "lightcycle.states.stages",
    "TrainerFn": "lightcycle.states.stages",
    "TrainerState": "lightcycle.states.stages",
    "TrainerStatus": "lightcycle.states.stages",
    "Trainer": "lightcycle.trainer.trainer",
    "seed_everything": "lightcycle.seed",
}
"""Where each public name is defined."""


def _version() -> str:
    # one source of truth: the version in pyproject.toml, as the installed metadata has it
    try:
        return metadata.version("lightcycle")
    except metadata.PackageNotFoundError:  # running from a source tree that was never installed
        return "0+unknown"


__version__ = _version()

__all__ = [
    "LIFECYCLE",
    "LIGHTNING_LOGO",
    "Callback",
    "LifecycleError",
    "LightningDataModule",
    "LightningModule",
    "LoopDriver",
    "MisconfigurationException",
    "RunningStage",
    "Trainer",
    "TrainerFn",
    "TrainerState",
    "TrainerStatus",
    "__version__",
    "cli_lightning_logo",
    "seed_everything",
]

__getattr__, __dir__ = lazy_names(__name__, _WHERE, globals())
