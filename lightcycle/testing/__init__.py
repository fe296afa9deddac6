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

from typing import TYPE_CHECKING

from lightcycle._lazy import lazy_names

if TYPE_CHECKING:  # the names for type checkers (explicit re-exports); at run time see __getattr__
    from lightcycle.testing.faults import FAULTS as FAULTS
    from lightcycle.testing.faults import InjectedBaseException as InjectedBaseException
    from lightcycle.testing.faults import InjectedError as InjectedError
    from lightcycle.testing.faults import OnExceptionFailure as OnExceptionFailure
    from lightcycle.testing.order import assert_hook_order as assert_hook_order
    from lightcycle.testing.order import verify as verify
    from lightcycle.testing.sweep import Failure as Failure
    from lightcycle.testing.sweep import Outcome as Outcome
    from lightcycle.testing.sweep import Site as Site
    from lightcycle.testing.sweep import SweepError as SweepError
    from lightcycle.testing.sweep import SweepReport as SweepReport
    from lightcycle.testing.sweep import enumerate_sites as enumerate_sites
    from lightcycle.testing.sweep import inject as inject
    from lightcycle.testing.sweep import interruption_sweep as interruption_sweep
    from lightcycle.testing.tiny import TinyLoaders as TinyLoaders
    from lightcycle.testing.tiny import TinyModule as TinyModule
    from lightcycle.testing.tiny import tiny_loaders as tiny_loaders
    from lightcycle.testing.tiny import tiny_module as tiny_module

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

__all__ = [
    "FAULTS",
    "Failure",
    "InjectedBaseException",
    "InjectedError",
    "OnExceptionFailure",
    "Outcome",
    "Site",
    "SweepError",
    "SweepReport",
    "TinyLoaders",
    "TinyModule",
    "assert_hook_order",
    "enumerate_sites",
    "inject",
    "interruption_sweep",
    "tiny_loaders",
    "tiny_module",
    "verify",
]

__getattr__, __dir__ = lazy_names(__name__, _WHERE, globals())
