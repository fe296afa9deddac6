"""Package attributes imported at first use (PEP 562), for packages whose import must stay light."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_names(
    package: str, where: Mapping[str, str], namespace: dict[str, Any]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """A module ``__getattr__`` and ``__dir__`` resolving ``where``'s names at first use.

    Args:
        package: the package's name (for the error message).
        where: public name -> the module defining it.
        namespace: the package's ``globals()`` (a resolved name is cached there).

    Returns:
        ``(__getattr__, __dir__)`` for the package to bind.
    """

    def __getattr__(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted([*namespace, *where])

    return __getattr__, __dir__
