"""Optional-package flags (``lightning.pytorch.utilities.imports``) read as Lightning's do.

Also: torchvision models by name, and the PossibleUserWarning switch.

Programs guard optional imports with ``if _TORCHVISION_AVAILABLE:``; the flag must be true
exactly when Lightning's is, in this environment, and a bound on the version must hold.
"""

from __future__ import annotations

import importlib.metadata
import operator
import sys
import types
import warnings
from typing import Any
from unittest import mock

import pytest
import pytorch_lightning.utilities.imports as pl_imports
import torch
from lightning_utilities.core.imports import compare_version as pl_compare_version
from pytorch_lightning.utilities import disable_possible_user_warnings as pl_disable
from pytorch_lightning.utilities.model_helpers import get_torchvision_model as pl_get
from pytorch_lightning.utilities.warnings import PossibleUserWarning as PlPossible

from lightcycle.utilities import disable_possible_user_warnings, imports
from lightcycle.utilities.imports import Requirement, RequirementCache, compare_version
from lightcycle.utilities.model_helpers import get_torchvision_model
from lightcycle.utilities.warnings import PossibleUserWarning

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


def test_get_torchvision_model_without_torchvision_fails_as_lightnings() -> None:
    missing = Requirement("no_such_package_lightcycle_test")
    with (
        mock.patch("lightcycle.utilities.model_helpers._TORCHVISION_AVAILABLE", missing),
        pytest.raises(ModuleNotFoundError, match="pip install torchvision"),
    ):
        get_torchvision_model("resnet18")
    with (
        mock.patch("pytorch_lightning.utilities.imports._TORCHVISION_AVAILABLE", missing),
        pytest.raises(ModuleNotFoundError),
    ):
        pl_get("resnet18")


@pytest.mark.parametrize("has_get_model", [True, False])
def test_get_torchvision_model_builds_by_name(has_get_model: bool) -> None:
    built: list[tuple[str, dict[str, object]]] = []

    def resnet18(**kwargs: object) -> torch.nn.Module:
        built.append(("resnet18", kwargs))
        return torch.nn.Linear(2, 2)

    models = types.ModuleType("torchvision.models")
    models.resnet18 = resnet18  # type: ignore[attr-defined]
    if has_get_model:  # torchvision >= 0.14 builds through get_model(name, **kwargs)
        models.get_model = lambda name, **kwargs: getattr(models, name)(**kwargs)  # type: ignore[attr-defined]
    package = types.ModuleType("torchvision")
    package.models = models  # type: ignore[attr-defined]
    with (
        mock.patch.dict(sys.modules, {"torchvision": package, "torchvision.models": models}),
        mock.patch("lightcycle.utilities.model_helpers._TORCHVISION_AVAILABLE", True),
    ):
        net = get_torchvision_model("resnet18", weights="DEFAULT", num_classes=2)
    assert isinstance(net, torch.nn.Linear)
    assert built == [("resnet18", {"weights": "DEFAULT", "num_classes": 2})]


@pytest.mark.parametrize("spec", ["torch", "torch>=1.0", "torch>=99", "torch>=1.0,<99", "torch<1.0", "no_such_pkg_lc"])
def test_requirement_cache_strings_agree_with_lightnings(spec: str) -> None:
    assert bool(RequirementCache(spec)) == bool(pl_imports.RequirementCache(spec))


def test_requirement_cache_with_an_import_name() -> None:
    assert RequirementCache("pytorch-lightning", module="pytorch_lightning")
    with pytest.raises(ValueError, match="'>=' and '<' only"):
        RequirementCache("torch~=2.0")


def _shown_after_disabling(warn: Any, category: type[Warning], disable: Any) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        disable()
        warn("suspicious setting", category)
        warn("a plain warning", UserWarning)
    return [str(w.message) for w in caught]


def test_disable_possible_user_warnings_silences_the_category_as_lightnings() -> None:
    ours = _shown_after_disabling(warnings.warn, PossibleUserWarning, disable_possible_user_warnings)
    theirs = _shown_after_disabling(warnings.warn, PlPossible, pl_disable)
    assert ours == theirs == ["a plain warning"]
    assert issubclass(PossibleUserWarning, UserWarning)
