"""Optional-package flags under Lightning's names (``lightning.pytorch.utilities.imports``).

Programs written for Lightning guard optional imports with these flags
(``if _TORCHVISION_AVAILABLE: import torchvision``). Each flag is a :class:`Requirement`: true
when the package is installed (and, with a version bound, when the installed version meets
it). The check runs when the flag is first read as a bool, not at import, and is cached, as
Lightning's ``RequirementCache`` does.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import re
import sys
from collections.abc import Callable

_RELEASE = re.compile(r"\d+(?:\.\d+)*")


def _release(version: str) -> tuple[int, ...] | None:
    """The release numbers of a version string (``"2.6.0+cu124"`` -> ``(2, 6, 0)``), ``None`` if unreadable.

    Local and dev suffixes are dropped, so a local build of 2.6 counts as 2.6 (as Lightning
    compares). Trailing zeros are stripped so ``2.6`` equals ``2.6.0``.
    """
    found = _RELEASE.match(version.strip().lstrip("vV"))
    if found is None:
        return None
    numbers = [int(part) for part in found.group().split(".")]
    while len(numbers) > 1 and numbers[-1] == 0:
        numbers.pop()
    return tuple(numbers)


def _installed(package: str) -> tuple[int, ...] | None:
    try:
        return _release(importlib.metadata.version(package))
    except importlib.metadata.PackageNotFoundError:
        return None


class Requirement:
    """Whether an optional package is installed, at least at a given version; read as a bool.

    Args:
        package: the distribution (and import) name, e.g. ``"torchvision"``.
        minimum: the lowest acceptable version, or ``None`` for any.
        below: the first version no longer accepted, or ``None`` for no upper bound.
        module: the import name when it differs from the distribution's (``"sklearn"``).
    """

    def __init__(
        self, package: str, minimum: str | None = None, below: str | None = None, module: str | None = None
    ) -> None:
        self.package = package
        self.minimum = minimum
        self.below = below
        self.module = module or package
        self._met: bool | None = None

    def _check(self) -> bool:
        if importlib.util.find_spec(self.module) is None:
            return False
        if self.minimum is None and self.below is None:
            return True
        installed = _installed(self.package)
        if installed is None:
            # Importable but without readable metadata (a source checkout): a bound cannot be checked.
            return False
        low_ok = self.minimum is None or installed >= _bound(self.minimum)
        high_ok = self.below is None or installed < _bound(self.below)
        return low_ok and high_ok

    def __bool__(self) -> bool:
        """Returns: whether the requirement is met (checked once, then cached)."""
        if self._met is None:
            self._met = self._check()
        return self._met

    def __str__(self) -> str:
        """Returns: ``"Requirement 'pkg>=x' met"`` or ``"... not met"``, for messages."""
        spec = self.package + (f">={self.minimum}" if self.minimum else "") + (f",<{self.below}" if self.below else "")
        return f"Requirement {spec!r} {'met' if self else 'not met'}"

    def __repr__(self) -> str:
        return f"Requirement({self.package!r}, minimum={self.minimum!r}, below={self.below!r})"


_SPEC = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(.*)$")


class RequirementCache(Requirement):
    """A :class:`Requirement` written as a requirement string, as Lightning's ``RequirementCache`` takes it.

    Args:
        requirement: ``"package"``, ``"package>=1.2"``, ``"package>=1.2,<2"``.
        module: the import name when it differs from the distribution's.

    Raises:
        ValueError: the string uses an operator other than ``>=`` and ``<`` (the message says so).
    """

    def __init__(self, requirement: str, module: str | None = None) -> None:
        found = _SPEC.match(requirement)
        if found is None:
            raise ValueError(
                f"RequirementCache({requirement!r}): write it as 'package', 'package>=1.2' or 'package>=1.2,<2'"
            )
        package, rest = found.groups()
        minimum = below = None
        for part in filter(None, (piece.strip() for piece in rest.split(","))):
            if part.startswith(">="):
                minimum = part[2:].strip()
            elif part.startswith("<") and not part.startswith("<="):
                below = part[1:].strip()
            else:
                raise ValueError(
                    f"RequirementCache({requirement!r}): lightcycle reads the bounds '>=' and '<' only, not {part!r}"
                )
        super().__init__(package, minimum, below, module)


def _bound(version: str) -> tuple[int, ...]:
    release = _release(version)
    if release is None:
        raise ValueError(f"{version!r} is not a version number; write it as digits and dots ('2.6.0')")
    return release


def compare_version(package: str, op: Callable[[tuple[int, ...], tuple[int, ...]], bool], version: str) -> bool:
    """Compare an installed package's version with ``version`` (false when it is not installed).

    Args:
        package: the distribution name.
        op: a comparison from :mod:`operator` (``operator.ge`` ...), applied to release tuples.
        version: the version to compare with.

    Returns:
        ``op(installed, version)``; ``False`` when the package or its version cannot be read.
    """
    installed = _installed(package)
    if installed is None:
        return False
    return bool(op(installed, _bound(version)))


_PYTHON_GREATER_EQUAL_3_11_0 = sys.version_info[:2] >= (3, 11)
_TORCH_GREATER_EQUAL_2_6 = Requirement("torch", "2.6.0")
_TORCH_GREATER_EQUAL_2_8 = Requirement("torch", "2.8.0")
_TORCH_EQUAL_2_8 = Requirement("torch", "2.8.0", below="2.9.0")
_TORCH_EQUAL_2_9 = Requirement("torch", "2.9.0", below="2.10.0")
_TORCHMETRICS_GREATER_EQUAL_0_8_0 = Requirement("torchmetrics", "0.8.0")
_TORCHMETRICS_GREATER_EQUAL_0_9_1 = Requirement("torchmetrics", "0.9.1")
_TORCHMETRICS_GREATER_EQUAL_0_11 = Requirement("torchmetrics", "0.11.0")
_TORCHMETRICS_GREATER_EQUAL_1_0_0 = Requirement("torchmetrics", "1.0.0")
_TORCHVISION_AVAILABLE = Requirement("torchvision")
_RICH_AVAILABLE = Requirement("rich", "10.2.2")
_OMEGACONF_AVAILABLE = Requirement("omegaconf")

__all__ = ["Requirement", "RequirementCache", "compare_version"]
