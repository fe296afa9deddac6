"""Shared test configuration: the Hypothesis profiles.

CI runs the fixed, reproducible ``ci`` profile (derandomized, no deadline). Set
``HYPOTHESIS_PROFILE=long`` for a longer search.
"""

from __future__ import annotations

import os

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


def pytest_configure(config: pytest.Config) -> None:
    """Load the testing kit's plugin from this tree when the installed entry point did not."""
    from lightcycle.testing import pytest_plugin

    manager = config.pluginmanager
    if not manager.is_registered(pytest_plugin) and not manager.has_plugin("lightcycle"):
        manager.register(pytest_plugin, "lightcycle")
