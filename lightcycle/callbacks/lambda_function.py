"""LambdaCallback: a callback made of functions passed by hook name, as Lightning 2.6's."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lightcycle.callbacks.callback import Callback


class LambdaCallback(Callback):
    """A callback whose hooks are the functions given (each called as ``fn(trainer, pl_module, ...)``).

    Args:
        **hooks: functions by hook name (``setup=...``, ``on_train_batch_end=...``, ...: the names of
            Lightning's LambdaCallback arguments). ``None`` leaves a hook out.

    Raises:
        TypeError: a name is not one of those hooks.
    """

    HOOKS = (
        "setup",
        "teardown",
        "on_fit_start",
        "on_fit_end",
        "on_sanity_check_start",
        "on_sanity_check_end",
        "on_train_batch_start",
        "on_train_batch_end",
        "on_train_epoch_start",
        "on_train_epoch_end",
        "on_validation_epoch_start",
        "on_validation_epoch_end",
        "on_test_epoch_start",
        "on_test_epoch_end",
        "on_validation_batch_start",
        "on_validation_batch_end",
        "on_test_batch_start",
        "on_test_batch_end",
        "on_train_start",
        "on_train_end",
        "on_validation_start",
        "on_validation_end",
        "on_test_start",
        "on_test_end",
        "on_exception",
        "on_save_checkpoint",
        "on_load_checkpoint",
        "on_before_backward",
        "on_after_backward",
        "on_before_optimizer_step",
        "on_before_zero_grad",
        "on_predict_start",
        "on_predict_end",
        "on_predict_batch_start",
        "on_predict_batch_end",
        "on_predict_epoch_start",
        "on_predict_epoch_end",
    )

    def __init__(self, **hooks: Callable[..., Any] | None) -> None:
        unknown = sorted(set(hooks) - set(self.HOOKS))
        if unknown:
            raise TypeError(f"LambdaCallback got unexpected hook name(s) {unknown}; it takes {', '.join(self.HOOKS)}.")
        for name, fn in hooks.items():
            if fn is not None:
                setattr(self, name, fn)  # an instance attribute replaces the base no-op for dispatch
