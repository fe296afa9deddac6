"""Run a Lightning program under real Lightning with a hook recorder on every Trainer (the oracle side).

``python tests/lightning_runner.py TRACE SCRIPT [ARGS...]`` is what ``lightcycle run --trace
TRACE SCRIPT [ARGS...]`` is for lightcycle: ``lightning.pytorch`` names are served by the
installed ``pytorch_lightning`` (the umbrella package may be missing), and each Trainer gets a
recorder appended to its callbacks that writes lightcycle's HookRecorder format (without the
lifecycle ``state``, which Lightning has no notion of) to TRACE, then TRACE's numbered series.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import inspect
import json
import os
import runpy
import sys
import types
from typing import Any

import pytorch_lightning

from lightcycle.callbacks.callback import Callback as LightcycleCallback
from lightcycle.callbacks.recorder import CALLBACK_HOOKS, _args
from lightcycle.compat.run_trace import claim


class _UmbrellaFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """``lightning.pytorch[.X]`` -> the installed ``pytorch_lightning[.X]``."""

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname == "lightning" or fullname.startswith("lightning.pytorch"):
            return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
        return None

    def create_module(self, spec: Any) -> Any:
        if spec.name == "lightning":
            module = types.ModuleType("lightning")
            module.__path__ = []  # type: ignore[attr-defined]
            return module
        return importlib.import_module("pytorch_lightning" + spec.name[len("lightning.pytorch") :])

    def exec_module(self, module: Any) -> None:
        pass


def _context(trainer: Any) -> dict[str, Any]:
    st = trainer.state
    ctx = {
        "fn": st.fn.value if st.fn is not None else None,
        "stage": st.stage.value if st.stage is not None else None,
        "status": st.status.value,
        "epoch": trainer.current_epoch,
        "global_step": trainer.global_step,
        "sanity": trainer.sanity_checking,
        "should_stop": trainer.should_stop,
    }
    if trainer.lightning_module is not None:
        ctx["training"] = trainer.lightning_module.training
        ctx["model"] = type(trainer.lightning_module).__name__  # as HookRecorder records it
    return ctx


def _recorder_class() -> type:
    def make(name: str) -> Any:
        sig = inspect.signature(getattr(LightcycleCallback, name))

        def method(self: Any, *args: Any, **kwargs: Any) -> Any:
            named = dict(sig.bind(self, *args, **kwargs).arguments)
            self._trainer = named.get("trainer") or self._trainer
            if name == "load_state_dict":
                named = {"state_dict": named.get("state_dict")}
            event = {"src": "callback", "hook": name, "args": _args(named)}
            if self._trainer is not None:
                event["ctx"] = _context(self._trainer)
            self._fh.write(json.dumps(event) + "\n")
            self._fh.flush()
            return {"recorder": 1} if name == "state_dict" else None

        method.__name__ = name
        return method

    def __init__(self: Any, path: str) -> None:
        self._fh = open(path, "a", encoding="utf-8")  # noqa: SIM115 - open for the run
        self._trainer = None

    namespace: dict[str, Any] = {"__init__": __init__, "state_key": property(lambda self: "HookRecorder")}
    namespace.update({name: make(name) for name in CALLBACK_HOOKS})
    return type("HookRecorder", (pytorch_lightning.Callback,), namespace)


def main() -> None:
    trace, script, *rest = sys.argv[1:]
    sys.meta_path.insert(0, _UmbrellaFinder())
    recorder = _recorder_class()
    original = pytorch_lightning.Trainer.__init__

    def init(self: Any, *args: Any, callbacks: Any = None, **kwargs: Any) -> None:
        given = [] if callbacks is None else [callbacks] if not isinstance(callbacks, list) else list(callbacks)
        original(self, *args, callbacks=[*given, recorder(claim(trace))], **kwargs)

    pytorch_lightning.Trainer.__init__ = init  # type: ignore[method-assign]
    sys.argv = [script, *rest]
    sys.path[0] = os.path.dirname(os.path.abspath(script))
    runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main()
