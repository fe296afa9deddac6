"""Lightning's module names, answered by lightcycle's modules: an import-system meta-path finder.

After :func:`install`, ``import lightning.pytorch as pl``, ``import pytorch_lightning`` and
``from lightning.pytorch.callbacks import ModelCheckpoint`` (and every other path under
``lightning.pytorch``, ``pytorch_lightning`` and the ``lightning`` umbrella package) give
lightcycle's objects, whether or not Lightning is installed: the finder sits first on
``sys.meta_path``, so it answers before the installed package is looked at.

Each aliased module is an :class:`AliasModule`, a module object named as the program wrote
it (``lightning.pytorch.callbacks``) that forwards attribute access to the lightcycle module
(``lightcycle.callbacks``). Forwarding rather than putting lightcycle's module itself into
``sys.modules`` under the second name keeps lightcycle's modules untouched (the import system
would overwrite their ``__spec__``) and lets a missing name raise
:class:`~lightcycle.compat.not_offered.NotOfferedError` naming it and the import to change,
where Python would say only "cannot import name". The classes and functions are lightcycle's
own objects, so ``isinstance`` and pickling see one class under either name.

``lightning.pytorch.X`` maps to ``lightcycle.X`` unless :data:`REDIRECTS` says where
lightcycle keeps it (Lightning's layout, lightcycle's code where it already lives). The
``lightning`` umbrella maps to ``lightcycle`` (``lightning.Trainer`` ...). Of ``lightning.fabric``
(``lightning_fabric``) only :data:`FABRIC_REDIRECTS` resolve (``seed_everything`` and a few
utilities, :mod:`lightcycle.compat.fabric`); the rest of it and the umbrella's other parts are refused.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
import types
from collections.abc import Sequence
from typing import Any

from lightcycle.compat.not_offered import NotOfferedError, not_offered

PYTORCH_ROOTS = ("lightning.pytorch", "pytorch_lightning")
"""Spellings of Lightning's Trainer package that map onto ``lightcycle``."""

FABRIC_ROOTS = ("lightning.fabric", "lightning_fabric")
"""Spellings of Lightning Fabric's package: only :data:`FABRIC_REDIRECTS` below them resolve."""

FABRIC_REDIRECTS: dict[str, str] = {
    "": "lightcycle.compat.fabric",
    "plugins": "lightcycle.compat.fabric",
    "plugins.environments": "lightcycle.strategies.environment",
    "utilities": "lightcycle.utilities",
    "utilities.apply_func": "lightcycle.compat.fabric_utilities",
    "utilities.data": "lightcycle.compat.fabric_utilities",
    "utilities.exceptions": "lightcycle.utilities.exceptions",
    "utilities.rank_zero": "lightcycle.utilities.rank_zero",
    "utilities.seed": "lightcycle.utilities.seed",
    "utilities.types": "lightcycle.utilities.types",
    "utilities.warnings": "lightcycle.utilities.warnings",
}
"""The Fabric paths (below a :data:`FABRIC_ROOTS` spelling; ``""``: the package) lightcycle answers."""

REDIRECTS: dict[str, str] = {
    "callbacks.checkpoint": "lightcycle.callbacks.monitoring",
    "callbacks.progress": "lightcycle.compat.lightning_progress",
    "callbacks.progress.progress_bar": "lightcycle.callbacks.progress",
    "callbacks.progress.tqdm_progress": "lightcycle.callbacks.tqdm_progress",
    "callbacks.progress.rich_progress": "lightcycle.callbacks.rich_progress",
    "core.optimizer": "lightcycle.core.optim",
    "core.saving": "lightcycle.core.saving",
    "plugins.environments": "lightcycle.strategies.environment",
    "plugins.io.async_plugin": "lightcycle.plugins.io",
    "plugins.io.checkpoint_plugin": "lightcycle.plugins.io",
    "plugins.io.torch_plugin": "lightcycle.plugins.io",
    "plugins.io.wrapper": "lightcycle.plugins.io",
    "plugins.precision.amp": "lightcycle.precision",
    "plugins.precision.double": "lightcycle.precision",
    "plugins.precision.half": "lightcycle.precision",
    "plugins.precision.precision": "lightcycle.precision",
    "profilers.base": "lightcycle.profilers.profiler",
    "trainer.trainer": "lightcycle.trainer.trainer",
    "trainer.states": "lightcycle.trainer.states",
    "utilities.model_summary": "lightcycle.core.model_summary",
    "utilities.model_summary.model_summary": "lightcycle.core.model_summary",
}
"""Lightning paths (below ``lightning.pytorch``) whose lightcycle module has another name."""


def lightcycle_target(fullname: str) -> str | None:
    """The lightcycle module that answers for the Lightning module ``fullname``.

    Args:
        fullname: a dotted module name as imported.

    Returns:
        The lightcycle module name, or ``None`` when ``fullname`` is not a Lightning name.

    Raises:
        NotOfferedError: ``fullname`` is a Lightning name that lightcycle refuses
            (Fabric beyond :data:`FABRIC_REDIRECTS`, the umbrella's other parts).
    """
    top = fullname.partition(".")[0]
    for root in FABRIC_ROOTS:
        if fullname == root or fullname.startswith(root + "."):
            target = FABRIC_REDIRECTS.get(fullname[len(root) + 1 :])
            if target is None:
                raise not_offered(fullname)
            return target
    for root in PYTORCH_ROOTS:
        if fullname == root:
            return "lightcycle"
        if fullname.startswith(root + "."):
            rest = fullname[len(root) + 1 :]
            return REDIRECTS.get(rest, "lightcycle." + rest)
    if fullname == "lightning":
        return "lightcycle"
    if top == "lightning":
        raise not_offered(fullname)
    return None


class AliasModule(types.ModuleType):
    """A Lightning module name whose attributes are those of a lightcycle module.

    Args:
        name: the Lightning name (``lightning.pytorch.callbacks``).
        target: the lightcycle module answering for it.
    """

    def __init__(self, name: str, target: types.ModuleType) -> None:
        super().__init__(name, target.__doc__)
        self.__dict__["__lightcycle_target__"] = target

    def __getattr__(self, name: str) -> Any:
        target = self.__dict__["__lightcycle_target__"]
        try:
            return getattr(target, name)
        except AttributeError:
            if name.startswith("__") and name.endswith("__"):
                raise
        # Lightning's packages import their subpackages, so `pl.utilities.x` works after
        # `import lightning.pytorch as pl`; here the submodule is imported on first use.
        full = f"{self.__name__}.{name}"
        try:
            return importlib.import_module(full)
        except NotOfferedError as err:
            if err.name != full:
                raise
        raise not_offered(full)

    def __dir__(self) -> list[str]:
        return sorted(set(dir(self.__dict__["__lightcycle_target__"])) | set(self.__dict__))

    def __repr__(self) -> str:
        target = self.__dict__["__lightcycle_target__"]
        return f"<module {self.__name__!r} (lightcycle: {target.__name__!r})>"


class _AliasLoader(importlib.abc.Loader):
    def __init__(self, target: str) -> None:
        self.target = target

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        return AliasModule(spec.name, importlib.import_module(self.target))

    def exec_module(self, module: types.ModuleType) -> None:
        """Nothing to run: the lightcycle module was imported by :meth:`create_module`."""


class LightningAliasFinder(importlib.abc.MetaPathFinder):
    """Finds Lightning's module names and answers them with lightcycle's modules."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: types.ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        """A spec for ``fullname`` when it is a Lightning name lightcycle offers.

        Raises:
            NotOfferedError: a Lightning name with no lightcycle module.
        """
        lightcycle_name = lightcycle_target(fullname)
        if lightcycle_name is None:
            return None
        try:
            found = importlib.util.find_spec(lightcycle_name)
        except ModuleNotFoundError:  # a parent of lightcycle_name is a module, not a package
            found = None
        if found is None or not _in_this_lightcycle(found):
            raise not_offered(fullname)
        # Every alias is a package (``__path__ = []``) so that deeper imports reach this finder,
        # which then answers or refuses them; the empty path finds nothing on disk.
        return importlib.machinery.ModuleSpec(fullname, _AliasLoader(lightcycle_name), is_package=True)


_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _in_this_lightcycle(spec: importlib.machinery.ModuleSpec) -> bool:
    """Whether ``spec`` is a module of the lightcycle package in use.

    Another finder (e.g. a stale editable install of a different checkout) can answer for a
    ``lightcycle.X`` this package lacks; that module would mix two versions, so it is refused.
    """
    return spec.origin is not None and os.path.abspath(spec.origin).startswith(_PACKAGE_DIR + os.sep)


def _is_lightning_name(name: str) -> bool:
    top = name.partition(".")[0]
    return top in ("lightning", "pytorch_lightning", "lightning_fabric")


def installed_finder() -> LightningAliasFinder | None:
    """The finder on ``sys.meta_path``, if :func:`install` put one there."""
    for finder in sys.meta_path:
        if isinstance(finder, LightningAliasFinder):
            return finder
    return None


def install() -> LightningAliasFinder:
    """Make Lightning's import names resolve to lightcycle in this process (idempotent).

    Returns:
        The finder (first on ``sys.meta_path``).

    Raises:
        RuntimeError: real Lightning modules were imported before; they would be used
            instead (call :func:`install` before anything imports Lightning).
    """
    finder = installed_finder()
    if finder is not None:
        return finder
    real = sorted(
        name
        for name, module in list(sys.modules.items())
        if _is_lightning_name(name) and module is not None and not isinstance(module, AliasModule)
    )
    # The shim package being imported right now replaces itself once the finder is in.
    real = [name for name in real if not getattr(sys.modules[name], "__lightcycle_shim__", False)]
    if real:
        raise RuntimeError(
            f"Lightning is already imported in this process ({', '.join(real[:3])}"
            f"{', ...' if len(real) > 3 else ''}); install lightcycle's aliases before anything imports Lightning."
        )
    finder = LightningAliasFinder()
    sys.meta_path.insert(0, finder)
    return finder


def uninstall() -> None:
    """Remove the finder and every aliased module from this process (for tests)."""
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, LightningAliasFinder)]
    for name in [n for n, m in sys.modules.items() if isinstance(m, AliasModule)]:
        del sys.modules[name]


def alias_module(fullname: str) -> types.ModuleType:
    """Build the alias module for ``fullname`` without importing it (the shim packages use this).

    Args:
        fullname: a Lightning top-level name (``lightning``, ``pytorch_lightning``).

    Returns:
        The :class:`AliasModule`, with its import-system attributes set.
    """
    spec = install().find_spec(fullname, None)
    if spec is None:  # pragma: no cover - only called with Lightning names
        raise ValueError(f"{fullname!r} is not a Lightning module name")
    return importlib.util.module_from_spec(spec)
