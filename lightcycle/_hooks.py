"""Deciding, once per bind, which hooks a run's objects really implement.

A hook whose base implementation does nothing is decorated with :func:`noop_hook`. The
compiled dispatch table skips a receiver whose hook *is* that base function (the Keras
``is_default`` idea), so a callback or module that does not override a hook costs nothing on
the per-batch path.

Both questions are answered by identity with the base class's own function, looked up on the
instance (so an instance attribute counts) and its class, never by an attribute of the function
found: ``functools.wraps`` / ``update_wrapper`` copy a function's ``__dict__`` onto the wrapper, so a
marker read from the found function would make every wrapper around a base hook look like the
base, and it would never be called.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

_NOOP_ATTR = "__lightcycle_noop__"


def noop_hook(fn: F) -> F:
    """Mark a base-class hook as a pure no-op that dispatch may skip.

    The mark is read only from the base class's own function (see :func:`is_noop`), so a
    wrapper that copies it is still called.

    Args:
        fn: the base implementation; it must have no effect and return ``None``.

    Returns:
        The same function, marked.
    """
    setattr(fn, _NOOP_ATTR, True)
    return fn


def is_marked_noop(fn: Any) -> bool:
    """Tell whether a base class's own function is marked with :func:`noop_hook`.

    Args:
        fn: a function taken from a base class (``Callback.on_fit_start``), not from a receiver:
            a wrapper carries the copied mark too, which is why dispatch asks :func:`is_noop`.

    Returns:
        True for a marked base no-op.
    """
    return bool(getattr(fn, _NOOP_ATTR, False))


def is_noop(name: str, obj: object, base: type | None) -> bool:
    """Tell whether ``obj.name`` is ``base``'s own no-op hook, unreplaced.

    True only for a method bound from the very function that ``base`` defines (or inherits)
    and that is marked with :func:`noop_hook`. Anything else found under ``name`` (an override,
    an instance attribute, a ``functools.partial``, a ``functools.wraps`` wrapper, a
    ``unittest.mock`` object) is called.

    Args:
        name: attribute name of the hook.
        obj: the receiver (callback, module or datamodule).
        base: the class whose implementation is the default; ``None`` for receivers with no
            known base (they are always called).

    Returns:
        True when calling it would do nothing.
    """
    noop = noop_function(base, name)
    return noop is not None and is_bound_from(getattr(obj, name, None), noop)


def noop_function(base: type | None, name: str) -> Any:
    """``base``'s own function for hook ``name`` when it is a marked no-op, else ``None``.

    Args:
        base: the class that defines the default (``None``: no base, nothing is a no-op).
        name: attribute name of the hook.

    Returns:
        The function, for :func:`is_bound_from` tests against many receivers' methods.
    """
    fn = getattr(base, name, None) if base is not None else None
    return fn if is_marked_noop(fn) else None


def is_bound_from(method: Any, fn: Any) -> bool:
    """Whether ``method`` (an attribute found on a receiver) is ``fn`` bound to it, unreplaced.

    A function set on the instance has no ``__func__``, and mocks refuse dunder attributes they
    were not configured with: only a method bound from ``fn`` itself matches.

    Args:
        method: ``getattr(receiver, name)``.
        fn: the base class's function (not ``None``: anything without ``__func__`` would match).

    Returns:
        True when calling ``method`` runs exactly ``fn``.
    """
    return getattr(method, "__func__", None) is fn


def is_base_hook(name: str, obj: object, base: type) -> bool:
    """Tell whether ``obj.name`` is a method bound from ``base``'s own function (nothing replaced it).

    Args:
        name: attribute name of the hook.
        obj: the receiver; its instance attributes count.
        base: the class whose implementation is the default.

    Returns:
        True when calling it runs exactly ``base``'s implementation.
    """
    base_fn = getattr(base, name, None)
    return base_fn is not None and is_bound_from(getattr(obj, name, None), base_fn)


def _unwrap(attr: Any) -> Any:
    """The function a wrapper stands for, as Lightning's ``is_overridden`` unwraps it."""
    wrapped = getattr(attr, "__wrapped__", None)
    if wrapped is not None:  # functools.wraps / update_wrapper / @contextmanager
        attr = wrapped
    mock = sys.modules.get("unittest.mock")  # an object can only be a Mock once mock is imported
    if mock is not None and isinstance(attr, mock.Mock):
        return attr._mock_wraps
    if isinstance(attr, functools.partial):
        return attr.func
    return attr


def is_overridden(name: str, obj: object, base: type) -> bool:
    """Tell whether ``obj`` replaces ``base``'s implementation of ``name``, as Lightning decides it.

    Lightning's ``is_overridden`` (lightning_utilities): the attribute found on the instance is
    unwrapped (``__wrapped__``, ``Mock(wraps=...)``, ``functools.partial``) and compared with the
    base's function by code object; a hook set to ``None`` or to a non-callable counts as not
    overridden. Used where Lightning asks the question (which steps and loaders a module has,
    ``prepare_data``, ``configure_model``, stateful callbacks); whether a call may be skipped is
    :func:`is_noop`'s stricter question.

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
    fn = _unwrap(attr)
    if fn is None:
        return False
    base_fn = getattr(base, name, None)
    if base_fn is None:
        return True
    base_fn = getattr(base_fn, "__wrapped__", base_fn)
    code = getattr(fn, "__code__", None)
    return code is None or code is not getattr(base_fn, "__code__", None)
