"""Optional-package flags (``lightning.pytorch.utilities.imports``) read as Lightning's do.

Programs guard optional imports with ``if _TORCHVISION_AVAILABLE:``; the flag must be true
exactly when Lightning's is, in this environment, and a bound on the version must hold.
"""

from __future__ import annotations

import importlib.metadata
import operator
from unittest import mock

import pytest
import pytorch_lightning.utilities.imports as pl_imports
from lightning_utilities.core.imports import compare_version as pl_compare_version

from lightcycle.utilities import imports
from lightcycle.utilities.imports import Requirement, compare_version

FLAGS = [name for name in dir(pl_imports) if name.startswith("_") and name.isupper() and not name.startswith("__")]


def test_every_lightning_flag_is_offered() -> None:
    assert FLAGS, "Lightning's module lists no flags: the differential below would check nothing"
    assert [name for name in FLAGS if not hasattr(imports, name)] == []


@pytest.mark.parametrize("name", FLAGS)
def test_flag_agrees_with_lightnings(name: str) -> None:
    assert bool(getattr(imports, name)) == bool(getattr(pl_imports, name))


def test_a_missing_package_is_not_available() -> None:
    assert not Requirement("no_such_package_lightcycle_test")
    assert "not met" in str(Requirement("no_such_package_lightcycle_test"))


def test_version_bounds_are_checked_once() -> None:
    with mock.patch.object(importlib.metadata, "version", return_value="2.6.0+cu124") as version:
        assert Requirement("torch", "2.6")
        assert Requirement("torch", "2.5.1", below="2.7")
        assert not Requirement("torch", "2.6.1")
        assert not Requirement("torch", "2.0", below="2.6.0")
        flag = Requirement("torch", "2.10")
        assert not flag and not flag
    # Five requirements read, the last one twice: its answer was cached.
    assert version.call_count == 5


def test_compare_version_matches_lightnings() -> None:
    for op in (operator.ge, operator.lt, operator.eq):
        for bound in ("1.0", "2.6.0", "99"):
            assert compare_version("torch", op, bound) == pl_compare_version("torch", op, bound), (op, bound)
    assert compare_version("no_such_package_lightcycle_test", operator.ge, "0") is False


def test_an_unreadable_bound_names_the_fix() -> None:
    with pytest.raises(ValueError, match="digits and dots"):
        bool(Requirement("torch", "latest"))
