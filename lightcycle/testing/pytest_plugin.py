"""lightcycle's pytest plugin (entry point ``pytest11: lightcycle``).

- the ``lightcycle_kit`` fixture: the kit's helpers in one object;
- the ``lightcycle_fault_sites(make_trainer, run, faults=..., max_sites=None, seed=0, only=None)``
  marker: the test runs once per hook site of ``run(make_trainer())`` and fault kind, each
  time taking the ``lightcycle_injection`` fixture (the injected run's ``trainer`` and
  ``outcome``) and asserting what it must;
- a terminal summary line with the number of sites and faults tried (only when some were).

Importing this module imports neither torch nor lightcycle's runtime: a pytest run that uses
none of it pays nothing.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

import pytest

import lightcycle.testing as kit

MARKER = "lightcycle_fault_sites"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(make_trainer, run, faults=FAULTS, max_sites=None, seed=0, only=None): run the test once "
        "per hook site and fault kind of run(make_trainer()); it takes the lightcycle_injection fixture",
    )


@dataclass(frozen=True)
class FaultCase:
    """One parametrization of a marked test: a site and a fault kind."""

    site: Any
    fault: str

    def __str__(self) -> str:
        return f"{self.site.key}-{self.fault}"


@dataclass(frozen=True)
class Injection:
    """What ``lightcycle_injection`` gives a marked test.

    Attributes:
        trainer: the Trainer (or LoopDriver) that ran with the fault injected.
        outcome: the :class:`~lightcycle.testing.Outcome` (site, fault, raised, after, ...).
    """

    trainer: Any
    outcome: Any


def _marker_args(marker: pytest.Mark) -> tuple[Any, Any, dict[str, Any]]:
    if len(marker.args) != 2:
        raise pytest.UsageError(f"@pytest.mark.{MARKER} takes make_trainer and run, e.g. {MARKER}(make, run)")
    make_trainer, run = marker.args
    unknown = set(marker.kwargs) - {"faults", "max_sites", "seed", "only"}
    if unknown:
        raise pytest.UsageError(f"@pytest.mark.{MARKER}: unknown option(s) {sorted(unknown)}")
    return make_trainer, run, dict(marker.kwargs)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    marker = metafunc.definition.get_closest_marker(MARKER)
    if marker is None:
        return
    if "lightcycle_injection" not in metafunc.fixturenames:
        raise pytest.UsageError(f"{metafunc.definition.nodeid}: a test marked {MARKER} takes lightcycle_injection")
    # deferred: torch for the pytest plugin start-up (loaded by every pytest run)
    from lightcycle.testing.faults import FAULTS, check_faults
    from lightcycle.testing.sweep import enumerate_sites, select_sites

    make_trainer, run, options = _marker_args(marker)
    faults = check_faults(options.get("faults", FAULTS))
    sites = select_sites(
        enumerate_sites(make_trainer, run),
        max_sites=options.get("max_sites"),
        seed=options.get("seed", 0),
        only=options.get("only"),
    )
    cases = [FaultCase(site, fault) for site in sites for fault in faults]
    metafunc.parametrize("lightcycle_fault", cases, ids=[str(c) for c in cases])


@pytest.fixture
def lightcycle_fault(request: pytest.FixtureRequest) -> FaultCase:
    """The site and fault of this run of a marked test (set by the marker)."""
    raise pytest.UsageError(f"{request.node.nodeid}: lightcycle_fault comes from the @pytest.mark.{MARKER} marker")


@pytest.fixture
def lightcycle_injection(request: pytest.FixtureRequest, lightcycle_fault: FaultCase) -> Injection:
    """Run the marked test's ``run(make_trainer())`` with its fault injected at its site."""
    # deferred: torch for the pytest plugin start-up (loaded by every pytest run)
    from lightcycle.testing.sweep import inject, tally

    marker = request.node.get_closest_marker(MARKER)
    assert marker is not None  # lightcycle_fault is parametrized only under the marker
    make_trainer, run, _ = _marker_args(marker)
    trainer, outcome = inject(make_trainer, run, lightcycle_fault.site, lightcycle_fault.fault)
    if not outcome.reached:
        pytest.fail(f"the run never reached {lightcycle_fault.site.key} (is it deterministic?)")
    tally(request.node.originalname, [lightcycle_fault.site], [lightcycle_fault.fault], 1)
    return Injection(trainer, outcome)


class Kit:
    """The kit's helpers, as the ``lightcycle_kit`` fixture gives them (imported at first use)."""

    def __getattr__(self, name: str) -> Any:
        if name == "strategies":
            # deferred: heavy optional dependency hypothesis
            import lightcycle.testing.strategies as strategies

            return strategies

        return getattr(kit, name)


@pytest.fixture
def lightcycle_kit() -> Kit:
    """The testing kit: ``interruption_sweep``, ``assert_hook_order``, ``verify``,
    ``tiny_module``, ``tiny_loaders``, ``FAULTS``, ... and ``strategies`` (needs hypothesis)."""
    return Kit()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    sweep = sys.modules.get("lightcycle.testing.sweep")
    tally: dict[str, Any] = getattr(sweep, "TALLY", {})
    if not tally:
        return
    terminalreporter.section("lightcycle fault injection")
    total = 0
    for name, row in sorted(tally.items()):
        total += row.injections
        terminalreporter.write_line(
            f"{name}: {len(row.sites)} hook sites x {len(row.faults)} fault kinds, {row.injections} injections checked"
        )
    terminalreporter.write_line(f"total: {total} injections checked")
