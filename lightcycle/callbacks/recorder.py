"""HookRecorder: a callback that records every hook call of a run as JSON-lines events.

Events have the format of the Lightning reference traces (``shared/traces``)::

    {"src": "callback"|"module"|"datamodule", "hook": str, "args": {...}, "ctx": {...}}

``ctx`` holds the trainer state at the call: ``fn``, ``stage``, ``status``, ``epoch``
(current_epoch), ``global_step``, ``sanity``, ``should_stop``, ``training``
(module.training), ``model`` (the module's class name) and ``state`` (the lifecycle
state path). The recorder's own callback
hooks give the ``callback`` events; module and datamodule hooks are observed through the
lifecycle driver, which calls :meth:`HookRecorder.record_hook` for each of them.
"""

from __future__ import annotations

import inspect
import json
import os
import time
from typing import Any

import torch

from lightcycle.callbacks.callback import Callback

_SKIP_ARGS = frozenset({"trainer", "pl_module", "self"})


def jsonable(value: Any) -> Any:
    """A JSON-safe summary of a hook argument (tensors by shape, objects by type)."""
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    if isinstance(value, BaseException):
        return f"{type(value).__name__}: {value}"
    if isinstance(value, torch.Tensor):
        return f"Tensor{tuple(value.shape)}"
    if isinstance(value, torch.device):
        return str(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return type(value).__name__


def checkpoint_summary(ckpt: dict[str, Any]) -> dict[str, Any]:
    """Keys, epoch, global_step and callback state keys of a checkpoint (as the traces show)."""
    return {
        "keys": sorted(ckpt.keys()),
        "epoch": ckpt.get("epoch"),
        "global_step": ckpt.get("global_step"),
        "callbacks": sorted(str(k) for k in (ckpt.get("callbacks") or {})),
    }


def _args(named: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in named.items():
        if key in _SKIP_ARGS:
            continue
        if key == "checkpoint" and isinstance(value, dict):
            out[key] = checkpoint_summary(value)
        else:
            out[key] = jsonable(value)
    return out


class HookRecorder(Callback):
    """Records every callback and module hook of the runs it is attached to.

    Args:
        path: when given, events are appended to this JSON-lines file as they happen
            (so a crashed run still leaves its trace); under several processes one file
            per rank, ``<name>.rank{R}<ext>``.
        keep: keep the events in :attr:`events` too.
        timings: also record ``"t"``, the ``time.perf_counter()`` seconds at each call
            (``lightcycle diagram --trace T --over-lifecycle`` then shows the time spent
            in each state); off by default, so traces stay comparable with Lightning's.

    Attributes:
        events: the recorded events, in call order.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, keep: bool = True, timings: bool = False) -> None:
        self.path = os.fspath(path) if path is not None else None
        self.keep = keep
        self.timings = timings
        self.events: list[dict[str, Any]] = []
        self._trainer: Any = None
        self._fh: Any = None

    @property
    def state_key(self) -> str:
        return f"HookRecorder[{id(self)}]"

    def __getattr__(self, name: str) -> Any:
        """Record hooks of custom events too (names starting with ``on_``).

        A lifecycle extended with, say, an ``ema_update`` event binding
        ``on_ema_update`` to callbacks reaches the recorder through here, since
        :class:`Callback` has no such method.
        """
        if name.startswith("on_") and not name.startswith("on__"):

            def custom_hook(trainer: Any, pl_module: Any, *args: Any) -> None:
                self._trainer = trainer
                self.record_hook("callback", name, {f"arg{i}": a for i, a in enumerate(args)})

            custom_hook.__name__ = name
            return custom_hook
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def attach(self, trainer: Any) -> None:
        """Remember the trainer whose state goes into ``ctx`` (called by the driver).

        Under several processes the recorder also hears of the strategy's collectives
        (``src: "strategy"`` events, which ``lightcycle verify`` compares across ranks) and
        writes its file per rank: ``trace.jsonl`` becomes ``trace.rank{R}.jsonl``.
        """
        self._trainer = trainer
        observers = getattr(getattr(trainer, "strategy", None), "observers", None)
        if isinstance(observers, list) and self not in observers:
            observers.append(self)

    def record_collective(self, op: str, name: str | None) -> None:
        """Record a collective the strategy begins (``barrier``, ``broadcast``, ``reduce``...)."""
        self.record_hook("strategy", op, {"name": name} if name is not None else {})

    def _file_path(self) -> str:
        assert self.path is not None
        t = self._trainer
        world = getattr(t, "world_size", 1) if t is not None else 1
        if world <= 1:
            return self.path
        root, ext = os.path.splitext(self.path)
        return f"{root}.rank{t.global_rank}{ext}"

    def clear(self) -> None:
        """Forget the recorded events."""
        self.events.clear()

    def _context(self) -> dict[str, Any]:
        t = self._trainer
        ctx: dict[str, Any] = {}
        if t is None:
            return ctx
        st = t.state
        ctx["fn"] = st.fn.value if st.fn is not None else None
        ctx["stage"] = st.stage.value if st.stage is not None else None
        ctx["status"] = st.status.value
        ctx["epoch"] = t.current_epoch
        ctx["global_step"] = t.global_step
        ctx["sanity"] = t.sanity_checking
        ctx["should_stop"] = t.should_stop
        module = t.lightning_module
        if module is not None:
            ctx["training"] = module.training
            ctx["model"] = type(module).__name__  # for diagram titles: what the run was
        # lightcycle's Trainer has a lifecycle driver (its state path pins each event to one
        # state); a Lightning Trainer has none, and its events carry only what it exposes.
        driver = getattr(t, "_driver", None)
        if driver is not None:
            ctx["state"] = driver.state
        world = getattr(t, "world_size", 1)
        if world > 1:
            ctx["rank"] = t.global_rank
            ctx["world_size"] = world
        return ctx

    def record_hook(self, src: str, hook: str, named: dict[str, Any]) -> None:
        """Record one call (used by the driver for module and datamodule hooks).

        Args:
            src: ``callback``, ``module`` or ``datamodule``.
            hook: the hook name.
            named: the arguments by parameter name.
        """
        event: dict[str, Any] = {"src": src, "hook": hook, "args": _args(named), "ctx": self._context()}
        if self.timings:
            event["t"] = time.perf_counter()
        if self.keep:
            self.events.append(event)
        if self.path is not None:
            if self._fh is None:
                self._fh = open(self._file_path(), "a", encoding="utf-8")  # noqa: SIM115 - kept open across the run
            self._fh.write(json.dumps(event) + "\n")
            self._fh.flush()

    def write_jsonl(self, path: str | os.PathLike[str]) -> None:
        """Write the kept events to ``path`` as JSON lines."""
        with open(path, "w", encoding="utf-8") as fh:
            for event in self.events:
                fh.write(json.dumps(event) + "\n")

    def close(self) -> None:
        """Close the live trace file, if any."""
        if self._fh is not None:
            self._fh.close()
            self._fh = None


def _recording(name: str) -> Any:
    base = getattr(Callback, name)
    sig = inspect.signature(base)

    def method(self: HookRecorder, *args: Any, **kwargs: Any) -> Any:
        named = dict(sig.bind(self, *args, **kwargs).arguments)
        trainer = named.get("trainer")
        if trainer is not None:
            self._trainer = trainer
        if name == "load_state_dict":
            named = {"state_dict": named.get("state_dict")}
        self.record_hook("callback", name, named)
        if name == "state_dict":
            return {"recorder": 1}
        return None

    method.__name__ = name
    method.__qualname__ = f"HookRecorder.{name}"
    method.__doc__ = f"Record ``{name}``."
    return method


CALLBACK_HOOKS = tuple(
    sorted(
        n for n in vars(Callback) if n.startswith("on_") or n in ("setup", "teardown", "state_dict", "load_state_dict")
    )
)
"""Every hook of :class:`Callback`, by name."""

for _name in CALLBACK_HOOKS:
    setattr(HookRecorder, _name, _recording(_name))
del _name
