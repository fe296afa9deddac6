"""The fault kinds an interruption sweep injects, by name.

Each kind makes the hook call at a site raise instead of running:

- ``"exception"``: an :class:`InjectedError` (a ``RuntimeError``);
- ``"keyboard_interrupt"``: a ``KeyboardInterrupt`` (Ctrl-C);
- ``"base_exception"``: an :class:`InjectedBaseException`, a ``BaseException`` that is not an
  ``Exception`` (what ``except Exception`` in a handler does not catch);
- ``"on_exception_failure"``: an :class:`InjectedError` at the site, and while the run handles
  it, another callback's ``on_exception`` (one the sweep puts first in ``trainer.callbacks``)
  raises :class:`OnExceptionFailure`: the other handlers and the clean-up must still run;
- ``"sigterm"`` (POSIX only, not in the default set): the process sends itself SIGTERM at the
  site and the hook runs; the run stops where lightcycle acts on the signal (after the batch's
  end-of-batch work, at an epoch's end, at the next evaluation batch), raising
  ``SIGTERMException`` there, or finishes if no such point follows.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from lightcycle.callbacks.callback import Callback

FAULTS: tuple[str, ...] = ("exception", "keyboard_interrupt", "base_exception", "on_exception_failure")
"""The default fault kinds, in the order a sweep tries them."""

SIGTERM = "sigterm"
"""The opt-in fault kind: SIGTERM delivered at the site (POSIX)."""


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
    unknown = [f for f in names if f not in (*FAULTS, SIGTERM)]
    if unknown or not names:
        raise ValueError(f"unknown fault kind(s) {unknown or names!r}: choose from {', '.join(FAULTS)}, {SIGTERM}")
    if SIGTERM in names and os.name != "posix":
        raise ValueError(f"the {SIGTERM!r} fault needs a POSIX platform (a process cannot signal itself safely here)")
    return names


def make_fault(fault: str, where: str) -> BaseException | None:
    """The exception object a fault of kind ``fault`` raises at the site ``where``.

    Args:
        fault: a name from :data:`FAULTS`, or :data:`SIGTERM`.
        where: the site, for the message.

    Returns:
        A new exception object (a sweep checks the caller gets this very object); ``None``
        for :data:`SIGTERM`, which raises nothing at the site.
    """
    if fault == SIGTERM:
        return None
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
