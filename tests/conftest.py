"""Shared test configuration: the Hypothesis profiles, and the executors under test.

CI runs the fixed, reproducible ``ci`` profile (derandomized, no deadline). Set
``HYPOTHESIS_PROFILE=long`` for a longer search.

The differential and fault-sweep modules run once per event executor (the generated
functions and the reference interpreter, :mod:`lightcycle.engine`): they say
``pytestmark = pytest.mark.usefixtures("each_executor")``. ``LIGHTCYCLE_TEST_EXECUTORS``
(comma-separated) narrows the list, e.g. to ``generated`` for a quick local run.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    max_examples=60,
    derandomize=True,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "long",
    max_examples=1000,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

EXECUTORS = tuple(e for e in os.environ.get("LIGHTCYCLE_TEST_EXECUTORS", "generated,interpreted").split(",") if e)


# The fault sweep's kinds that the second executor's pass leaves out: a custom BaseException
# takes exactly the executor path of a KeyboardInterrupt (neither is an Exception: it passes the
# isolated handlers and the restoring ``finally``), which that pass keeps; the cell-by-cell
# comparison (tests/engine/test_executors.py) has both executors raise at every call. This keeps
# the second pass under a minute of CPU on two cores.
SECOND_PASS_OMITS = {"fault": ("base_exception",)}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect the tests :data:`SECOND_PASS_OMITS` names for every executor but the first."""
    dropped = []
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if params.get("each_executor", EXECUTORS[0]) != EXECUTORS[0] and any(
            params.get(name) in values for name, values in SECOND_PASS_OMITS.items()
        ):
            dropped.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [item for item in items if item not in dropped]


@pytest.fixture(scope="module", params=EXECUTORS)
def each_executor(request: pytest.FixtureRequest) -> Iterator[str]:
    """Every Trainer built in the module's tests runs its events with this executor.

    Module-scoped, so pytest runs the whole module once per executor (and Hypothesis,
    which refuses function-scoped fixtures, accepts it).
    """
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LIGHTCYCLE_EXECUTOR", request.param)
        yield request.param


def pytest_configure(config: pytest.Config) -> None:
    """Load the testing kit's plugin from this tree when the installed entry point did not."""
    from lightcycle.testing import pytest_plugin

    manager = config.pluginmanager
    if not manager.is_registered(pytest_plugin) and not manager.has_plugin("lightcycle"):
        manager.register(pytest_plugin, "lightcycle")
