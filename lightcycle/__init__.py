"""lightcycle: a declarative state-machine training orchestrator for PyTorch.

Drop-in for the Lightning 2.x API: ``import lightcycle as L`` gives ``L.Trainer``,
``L.LightningModule``, ``L.LightningDataModule``, ``L.Callback`` and
``L.seed_everything``, with Lightning's hook order, declared once in
:mod:`lightcycle.states.declaration`.

The public names are loaded lazily (PEP 562 module ``__getattr__``): this ``__init__``
runs on every ``lightcycle.x`` import, so importing the Trainer here would make the
command-line tool (``lightcycle --help``, ``diagram``, ``verify``, which never train)
pay for ``import torch`` (about 3 s). ``L.Trainer`` imports its module on first use.
"""

from __future__ import annotations

import importlib
from importlib import metadata
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the names below, for type checkers and IDEs
    from lightcycle.callbacks.callback import Callback
    from lightcycle.core.datamodule import LightningDataModule
    from lightcycle.core.module import LightningModule
    from lightcycle.errors import LifecycleError, MisconfigurationException
    from lightcycle.logo import LIGHTNING_LOGO, cli_lightning_logo
    from lightcycle.orchestrator.trainer import Trainer
    from lightcycle.seed import seed_everything
    from lightcycle.states import LIFECYCLE
    from lightcycle.states.stages import RunningStage, TrainerFn, TrainerState, TrainerStatus

_LAZY: dict[str, str] = {
    "Callback": "lightcycle.callbacks.callback",
    "LightningDataModule": "lightcycle.core.datamodule",
    "LightningModule": "lightcycle.core.module",
    "LifecycleError": "lightcycle.errors",
    "MisconfigurationException": "lightcycle.errors",
    "LIGHTNING_LOGO": "lightcycle.logo",
    "cli_lightning_logo": "lightcycle.logo",
    "RunningStage": "lightcycle.states.stages",
    "TrainerFn": "lightcycle.states.stages",
    "TrainerState": "lightcycle.states.stages",
    "TrainerStatus": "lightcycle.states.stages",
    "Trainer": "lightcycle.orchestrator.trainer",
    "seed_everything": "lightcycle.seed",
    "LIFECYCLE": "lightcycle.states",
}
"""Public name -> the module that defines it."""


def _version() -> str:
    # one source of truth: the version in pyproject.toml, as the installed metadata has it
    try:
        return metadata.version("lightcycle")
    except metadata.PackageNotFoundError:  # running from a source tree that was never installed
        return "0+unknown"


__version__ = _version()


def __getattr__(name: str) -> Any:
    """Import a public name's module on first access (PEP 562)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'lightcycle' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later accesses skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


__all__ = [
    "LIFECYCLE",
    "LIGHTNING_LOGO",
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
    "__version__",
    "cli_lightning_logo",
    "seed_everything",
]
