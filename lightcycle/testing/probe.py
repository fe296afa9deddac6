"""The sweep's probe: sees every hook call of a run, by receiver, and raises at a planned one.

How it reaches every receiver without changing the runtime:

- it is a callback with a ``record_hook`` method, so the lifecycle driver calls it right
  before every module and datamodule hook (the observer protocol of
  :class:`~lightcycle.callbacks.HookRecorder`); raising there is "the hook raised instead of
  running". It goes last in ``trainer.callbacks``, so a user's recorder still records the call;
- the driver calls its ``attach(trainer)`` at each bind (a run's start, and again after
  ``configure_callbacks``) before it compiles the hooks, so the probe then wraps the hook
  methods of every callback in ``trainer.callbacks`` (instance attributes; only the hooks
  the callback overrides, which are the ones the driver calls) and the driver compiles
  the wrappers.

Only a sweep builds a probe: a run without one pays nothing.
"""

from __future__ import annotations

import functools
import os
import signal
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lightcycle._hooks import noop_function
from lightcycle.callbacks.callback import Callback
from lightcycle.engine.dispatch import callback_hook_is_default
from lightcycle.states.model import Lifecycle, Result

_MARK = "__lightcycle_probe__"


@dataclass(frozen=True)
class Call:
    """One hook call a probe saw.

    Attributes:
        receiver: ``"module"``, ``"datamodule"`` or ``"callback:<class name>"`` (with
            ``[k]`` for the k-th further callback of that class, k ≥ 1).
        hook: the hook name.
        occurrence: how many calls of this hook on this receiver came before it.
        state: the lifecycle state the run was in (e.g. ``fit.train.epoch.batch.started``).
    """

    receiver: str
    hook: str
    occurrence: int
    state: str

    @property
    def key(self) -> str:
        """``receiver.hook#occurrence``: what identifies the call across runs."""
        return f"{self.receiver}.{self.hook}#{self.occurrence}"


def _callback_hooks(lifecycle: Lifecycle) -> tuple[tuple[str, ...], frozenset[str]]:
    """The callback hook names of a lifecycle, and those the driver calls even when not overridden."""
    names: dict[str, None] = {}
    always: set[str] = set()
    for transition in lifecycle.transitions:
        for hook in transition.hooks:
            if hook.target.is_callbacks:
                names[hook.name] = None
                if hook.result is Result.COLLECT or hook.per_state_key:
                    always.add(hook.name)
    return tuple(names), frozenset(always)


class Probe(Callback):
    """Records every hook call of one run and raises ``fault`` at the call whose key is ``target``.

    Args:
        target: the :attr:`Call.key` to raise at, or ``None`` to only record.
        fault: the exception to raise there; ``None`` with a target: send this process
            SIGTERM there instead, and let the hook run.
        skip: callbacks not to watch (the sweep's own).
    """

    def __init__(
        self, target: str | None = None, fault: BaseException | None = None, skip: tuple[Any, ...] = ()
    ) -> None:
        self.target = target
        self.fault = fault
        self.skip_ids = {id(cb) for cb in skip}
        self.calls: list[Call] = []
        self.fired_at: int | None = None
        self._counts: Counter[tuple[str, str]] = Counter()
        self._labels: dict[int, str] = {}
        self._classes: Counter[str] = Counter()
        self._patched: list[tuple[Any, str]] = []
        self._driver: Any = None

    @property
    def state_key(self) -> str:
        return "lightcycle.testing.Probe"

    # ------------------------------------------------------------------ the observer protocol

    def attach(self, trainer: Any) -> None:
        """Wrap the hooks of every callback of ``trainer`` (the driver calls this at each bind)."""
        self._driver = trainer._driver
        names, always = _callback_hooks(self._driver.lifecycle)
        for cb in trainer.callbacks:
            if cb is self or id(cb) in self.skip_ids:
                continue
            label = self._labels.get(id(cb))
            if label is None:
                cls = type(cb).__name__
                k = self._classes[cls]
                self._classes[cls] += 1
                label = self._labels[id(cb)] = f"callback:{cls}" + (f"[{k}]" if k else "")
            for name in names:
                method = getattr(cb, name, None)
                if method is None or not callable(method) or getattr(method, _MARK, None) is self:
                    continue
                if name not in always and callback_hook_is_default(cb, name, method, noop_function(Callback, name)):
                    continue  # the driver does not call it: not a site
                setattr(cb, name, self._wrap(label, name, getattr(method, "__wrapped__", method)))
                self._patched.append((cb, name))

    def record_hook(self, src: str, hook: str, named: dict[str, Any]) -> None:
        """Called by the driver right before a module or datamodule hook runs."""
        self.reached(src, hook)

    # ------------------------------------------------------------------ recording and raising

    def _wrap(self, label: str, name: str, method: Callable[..., Any]) -> Callable[..., Any]:
        reached = self.reached

        @functools.wraps(method)
        def hook(*args: Any, **kwargs: Any) -> Any:
            reached(label, name)
            return method(*args, **kwargs)

        setattr(hook, _MARK, self)
        return hook

    def reached(self, receiver: str, hook: str) -> None:
        """Record a call; raise the fault if it is the target.

        Args:
            receiver: who is called.
            hook: the hook name.
        """
        key = (receiver, hook)
        occurrence = self._counts[key]
        self._counts[key] = occurrence + 1
        call = Call(receiver, hook, occurrence, self._driver.state if self._driver is not None else "")
        self.calls.append(call)
        if self.fired_at is None and self.target is not None and call.key == self.target:
            self.fired_at = len(self.calls) - 1
            if self.fault is None:
                os.kill(os.getpid(), signal.SIGTERM)  # the sweep installed a handler: nothing dies
                return
            raise self.fault

    def restore(self) -> None:
        """Remove the wrappers from the callbacks (the instances' own attributes)."""
        for cb, name in self._patched:
            if getattr(cb.__dict__.get(name), _MARK, None) is self:
                del cb.__dict__[name]
        self._patched.clear()
