"""The fault kinds an interruption sweep injects, by name.

Each kind makes the hook call at a site raise instead of running:

- ``"exception"``: an :class:`InjectedError` (a ``RuntimeError``);
- ``"keyboard_interrupt"``: a ``KeyboardInterrupt`` (Ctrl-C);
- ``"base_exception"``: an :class:`InjectedBaseException`, a ``BaseException`` that is not an
  ``Exception`` (what ``except Exception`` in a handler does not catch);
- ``"on_exception_failure"``: an :class:`InjectedError` at the site, and while the run handles
  it, another callback's ``on_exception`` (one the sweep puts first in ``trainer.callbacks``)
  raises :class:`OnExceptionFailure`: the other handlers and the clean-up must still run.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from lightcycle.callbacks.callback import Callback

FAULTS: tuple[str, ...] = ("exception", "keyboard_interrupt", "base_exception", "on_exception_failure")
"""Every fault kind, in the order a sweep tries them (all four by default)."""


class InjectedError(RuntimeError):
    """The exception an ``"exception"`` or ``"on_exception_failure"`` fault raises at its site."""


class InjectedBaseException(BaseException):
    """A ``BaseException`` that is not an ``Exception``: the ``"base_exception"`` fault."""


class OnExceptionFailure(RuntimeError):
    """Raised by the sweep's own ``on_exception`` handler in an ``"on_exception_failure"`` fault."""


def check_faults(faults: Iterable[str]) -> tuple[str, ...]:
    """Validate fault names.

    Args:
        faults: names from :data:`FAULTS`.

    Returns:
        The names as a tuple, in the given order.

    Raises:
        ValueError: an unknown name or none at all (the message lists the known names).
    """
    if isinstance(faults, str):
        faults = (faults,)
    names = tuple(faults)
    unknown = [f for f in names if f not in FAULTS]
    if unknown or not names:
        raise ValueError(f"unknown fault kind(s) {unknown or names!r}: choose from {', '.join(FAULTS)}")
    return names


def make_fault(fault: str, where: str) -> BaseException:
    """The exception object a fault of kind ``fault`` raises at the site ``where``.

    Args:
        fault: a name from :data:`FAULTS`.
        where: the site, for the message.

    Returns:
        A new exception object (a sweep checks the caller gets this very object).
    """
    label = f"lightcycle.testing: {fault} injected at {where}"
    if fault == "keyboard_interrupt":
        return KeyboardInterrupt(label)
    if fault == "base_exception":
        return InjectedBaseException(label)
    return InjectedError(label)


class FailingHandler(Callback):
    """Put first in ``trainer.callbacks`` by an ``"on_exception_failure"`` fault: its handler raises."""

    @property
    def state_key(self) -> str:
        return "lightcycle.testing.FailingHandler"

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        raise OnExceptionFailure(f"lightcycle.testing: on_exception failed while handling {exception!r}")
