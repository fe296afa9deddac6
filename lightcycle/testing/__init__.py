"""lightcycle's testing kit: interruption sweeps, hook-order assertions, drawn Trainer configurations.

Test your own callbacks and modules the way lightcycle tests itself (``docs/testing-kit.md``):

- :func:`interruption_sweep`: interrupt a run at every hook site it reaches, with each fault
  kind, and check what your code left behind;
- :func:`assert_hook_order` and :func:`verify`: check a recorded run;
- :mod:`lightcycle.testing.strategies`: Hypothesis strategies drawing valid Trainer
  configurations; :func:`tiny_module` / :func:`tiny_loaders` for fast runs;
- :mod:`lightcycle.testing.pytest_plugin`: a fixture, a marker running a test once per fault
  site, and a summary line (registered through the ``pytest11`` entry point).

Names resolve on first use, so importing this package (as the pytest plugin does) does not
import torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lightcycle.testing.faults import (
        FAULTS,
        InjectedBaseException,
        InjectedError,
        OnExceptionFailure,
    )
    from lightcycle.testing.order import assert_hook_order, verify
    from lightcycle.testing.sweep import (
        Failure,
        Outcome,
        Site,
        SweepError,
        SweepReport,
        enumerate_sites,
        inject,
        interruption_sweep,
    )
    from lightcycle.testing.tiny import TinyLoaders, TinyModule, tiny_loaders, tiny_module

_WHERE = {
    "FAULTS": "lightcycle.testing.faults",
    "InjectedBaseException": "lightcycle.testing.faults",
    "InjectedError": "lightcycle.testing.faults",
    "OnExceptionFailure": "lightcycle.testing.faults",
    "assert_hook_order": "lightcycle.testing.order",
    "verify": "lightcycle.testing.order",
    "Failure": "lightcycle.testing.sweep",
    "Outcome": "lightcycle.testing.sweep",
    "Site": "lightcycle.testing.sweep",
    "SweepError": "lightcycle.testing.sweep",
    "SweepReport": "lightcycle.testing.sweep",
    "enumerate_sites": "lightcycle.testing.sweep",
    "inject": "lightcycle.testing.sweep",
    "interruption_sweep": "lightcycle.testing.sweep",
    "TinyLoaders": "lightcycle.testing.tiny",
    "TinyModule": "lightcycle.testing.tiny",
    "tiny_loaders": "lightcycle.testing.tiny",
    "tiny_module": "lightcycle.testing.tiny",
}
"""Where each public name is defined."""

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    """Import a public name's module at first use and cache the name here."""
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'lightcycle.testing' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_WHERE])
