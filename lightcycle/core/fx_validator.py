"""Lightning's per-hook logging permission table (``self.log`` from which hook, with what).

Mirrors ``pytorch_lightning/trainer/connectors/logger_connector/fx_validator.py``: which hooks
may call ``self.log`` and with which ``on_step`` / ``on_epoch`` values, plus the defaults used
when those are ``None``. Callback hooks share the module hooks' names.
"""

from __future__ import annotations

from typing import Final

from lightcycle.errors import MisconfigurationException

__all__ = ["LOGGING_HOOKS", "check_logging_allowed"]

# (allowed on_step values, allowed on_epoch values, default on_step, default on_epoch)
_LogOptions = tuple[tuple[bool, ...], tuple[bool, ...], bool, bool]

_TRAIN_STEP: Final[_LogOptions] = ((False, True), (False, True), True, False)
_EVAL_STEP: Final[_LogOptions] = ((False, True), (False, True), False, True)
_EPOCH_ONLY: Final[_LogOptions] = ((False,), (True,), False, True)

_FX_TABLE: Final[dict[str, _LogOptions | None]] = {
    # backward / optimizer hooks: like training_step
    "on_before_backward": _TRAIN_STEP,
    "backward": _TRAIN_STEP,
    "on_after_backward": _TRAIN_STEP,
    "on_before_optimizer_step": _TRAIN_STEP,
    "optimizer_step": _TRAIN_STEP,
    "lr_scheduler_step": None,
    "configure_gradient_clipping": _TRAIN_STEP,
    "clip_gradients": _TRAIN_STEP,
    "on_before_zero_grad": _TRAIN_STEP,
    "optimizer_zero_grad": _TRAIN_STEP,
    # run-level hooks
    "on_fit_start": None,
    "on_fit_end": None,
    "on_sanity_check_start": None,
    "on_sanity_check_end": None,
    "on_train_start": _EPOCH_ONLY,
    "on_train_end": None,
    "on_validation_start": _EPOCH_ONLY,
    "on_validation_end": None,
    "on_test_start": _EPOCH_ONLY,
    "on_test_end": None,
    "on_predict_start": None,
    "on_predict_end": None,
    # epoch hooks
    "on_train_epoch_start": _EPOCH_ONLY,
    "on_train_epoch_end": _EPOCH_ONLY,
    "on_validation_epoch_start": _EPOCH_ONLY,
    "on_validation_epoch_end": _EPOCH_ONLY,
    "on_test_epoch_start": _EPOCH_ONLY,
    "on_test_epoch_end": _EPOCH_ONLY,
    "on_predict_epoch_start": None,
    "on_predict_epoch_end": None,
    # batch hooks
    "on_before_batch_transfer": None,
    "transfer_batch_to_device": None,
    "on_after_batch_transfer": None,
    "on_train_batch_start": _TRAIN_STEP,
    "on_train_batch_end": _TRAIN_STEP,
    "on_validation_batch_start": _EVAL_STEP,
    "on_validation_batch_end": _EVAL_STEP,
    "on_test_batch_start": _EVAL_STEP,
    "on_test_batch_end": _EVAL_STEP,
    "on_predict_batch_start": None,
    "on_predict_batch_end": None,
    # misc
    "on_exception": None,
    "state_dict": None,
    "on_save_checkpoint": None,
    "on_load_checkpoint": None,
    "load_state_dict": None,
    "setup": None,
    "teardown": None,
    "configure_sharded_model": None,
    "configure_model": None,
    # step methods
    "training_step": _TRAIN_STEP,
    "validation_step": _EVAL_STEP,
    "test_step": _EVAL_STEP,
    "predict_step": None,
    "configure_optimizers": None,
    "train_dataloader": None,
    "val_dataloader": None,
    "test_dataloader": None,
    "prepare_data": None,
    "configure_callbacks": None,
    "on_validation_model_zero_grad": None,
    "on_validation_model_eval": None,
    "on_test_model_eval": None,
    "on_validation_model_train": None,
    "on_test_model_train": None,
}

#: Hooks from which ``self.log`` may be called (module and callback hooks alike).
LOGGING_HOOKS: Final[frozenset[str]] = frozenset(k for k, v in _FX_TABLE.items() if v is not None)

_EXAMPLE_HOOKS = "`training_step`, `validation_step`, `on_train_epoch_end`, `on_validation_epoch_end`"


def check_logging_allowed(fx_name: str | None, on_step: bool | None, on_epoch: bool | None) -> tuple[bool, bool]:
    """Validate a ``self.log`` call against the hook it is made from; resolve the defaults.

    Callback hooks use the same names as module hooks (the Trainer records the hook name
    in ``LightningModule._current_fx_name`` for both).

    Args:
        fx_name: name of the hook currently running, ``None`` outside any Trainer hook.
        on_step: the ``on_step`` argument given to ``log`` (``None``: the hook's default).
        on_epoch: the ``on_epoch`` argument given to ``log`` (``None``: the hook's default).

    Returns:
        The resolved ``(on_step, on_epoch)``.

    Raises:
        MisconfigurationException: logging outside a Trainer hook, from a hook that cannot
            log, or with an ``on_step`` / ``on_epoch`` value the hook does not allow.
    """
    if fx_name is None:
        raise MisconfigurationException(
            "You are trying to `self.log()` but it is not managed by the Trainer control flow:"
            " `log` only works inside hooks the Trainer calls (for example "
            f"{_EXAMPLE_HOOKS}). Move the call into such a hook, or log to the logger directly"
            " with `self.logger.log_metrics(...)`."
        )
    try:
        options = _FX_TABLE[fx_name]
    except KeyError:
        raise MisconfigurationException(
            f"You can't `self.log()` inside `{fx_name}`: it is not a hook the Trainer calls with"
            f" logging support. Log from a Trainer hook such as {_EXAMPLE_HOOKS}."
        ) from None
    if options is None:
        raise MisconfigurationException(
            f"You can't `self.log()` inside `{fx_name}`: this hook does not support logging."
            f" Log from a hook that does (for example {_EXAMPLE_HOOKS}), or log directly to the"
            " logger with `self.logger.experiment`."
        )
    allowed_step, allowed_epoch, default_step, default_epoch = options
    step = default_step if on_step is None else on_step
    epoch = default_epoch if on_epoch is None else on_epoch
    if step not in allowed_step:
        raise MisconfigurationException(
            f"You can't `self.log(on_step={step})` inside `{fx_name}`: `on_step` must be one of {allowed_step} there."
        )
    if epoch not in allowed_epoch:
        raise MisconfigurationException(
            f"You can't `self.log(on_epoch={epoch})` inside `{fx_name}`: `on_epoch` must be one of"
            f" {allowed_epoch} there."
        )
    return step, epoch
