"""Errors raised by lightcycle. Each message names the problem and the fix."""

from __future__ import annotations

from collections.abc import Iterable


class MisconfigurationException(Exception):
    """A Trainer, module or callback is configured in a way lightcycle cannot run.

    Raised before any hook fires. The name matches Lightning's so that ``except``
    clauses written for Lightning keep working.
    """


class InvalidValueError(MisconfigurationException, ValueError):
    """An argument has a value it cannot take.

    Also a ``ValueError``: Lightning raises one for some of these (an unknown accelerator
    name), so ``except ValueError`` written for Lightning catches it too.
    """


class InvalidTypeError(MisconfigurationException, TypeError):
    """An argument, or what a hook returned, has a type it cannot have.

    Also a ``TypeError``, as Lightning raises for these (a ``gradient_clip_val`` that is
    not a number, a ``callbacks`` that is not a callback or a list, a dataloader hook
    that returned ``None``).
    """


class LifecycleError(RuntimeError):
    """A lifecycle event was requested where the declaration does not allow it.

    Args:
        state: the state the lifecycle was in.
        trigger: the event that was attempted (also ``event``: ``trigger`` is the name the
            ``transitions`` library gives it, kept for code written against it).
        legal: the events the declaration allows from ``state``.
    """

    def __init__(self, state: str, trigger: str, legal: Iterable[str]) -> None:
        self.state = state
        self.event = trigger
        self.trigger = trigger
        self.legal = tuple(sorted(legal))
        allowed = ", ".join(self.legal) if self.legal else "(none)"
        super().__init__(
            f"illegal lifecycle event {trigger!r} in state {state!r}; "
            f"legal events there: {allowed}. Fire the events in the order the lifecycle "
            f"declares (see `lightcycle diagram`), or declare the event for this state."
        )


class SIGTERMException(SystemExit):
    """Raised inside a run after the process received SIGTERM (exit code 143)."""

    def __init__(self) -> None:
        super().__init__(143)


class PossibleUserWarning(UserWarning):
    """A configuration that is valid but often a mistake (Lightning's ``PossibleUserWarning``).

    For example a ``validation_step`` with no validation dataloader: the val loop is skipped.
    Silence it with ``warnings.filterwarnings("ignore", category=PossibleUserWarning)``.
    """
