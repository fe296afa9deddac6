"""Markers shared by every class that carries hooks.

A hook whose base implementation does nothing is decorated with :func:`noop_hook`. The
compiled dispatch table skips such hooks entirely, so a callback or module that does not
override a hook costs nothing on the per-batch path (the Keras ``is_default`` idea).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

_NOOP_ATTR = "__lightcycle_noop__"


def noop_hook(fn: F) -> F:
    """Mark a base-class hook as a pure no-op that dispatch may skip.

    Args:
        fn: the base implementation; it must have no effect and return ``None``.

    Returns:
        The same function, marked.
    """
    setattr(fn, _NOOP_ATTR, True)
    return fn


def is_noop(method: Any) -> bool:
    """Tell whether a (bound or plain) method is a base no-op hook nobody overrode.

    Args:
        method: the attribute found on an object, e.g. ``getattr(cb, "on_fit_start")``.

    Returns:
        True when calling it would do nothing.
    """
    fn = getattr(method, "__func__", method)
    return bool(getattr(fn, _NOOP_ATTR, False))


def is_overridden(name: str, obj: object, base: type) -> bool:
    """Tell whether ``obj``'s class replaces ``base``'s implementation of ``name``.

    A hook set to a non-callable (for example ``None``) counts as not overridden, as in
    Lightning.

    Args:
        name: attribute name of the hook.
        obj: the instance (module, datamodule or callback).
        base: the class that defines the default.

    Returns:
        True when ``obj`` has its own callable implementation.
    """
    attr = getattr(obj, name, None)
    if attr is None or not callable(attr):
        return False
    fn = getattr(attr, "__func__", attr)
    base_fn = getattr(base, name, None)
    return fn is not base_fn
