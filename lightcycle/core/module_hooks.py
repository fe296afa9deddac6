"""The module hooks of the standard declaration that the base LightningModule defines, without torch.

:mod:`lightcycle.verify` needs to know which declared module hooks every module has (a
missing event for one of those is a violation). Reading ``dir(LightningModule)`` imports
torch (about 3 s), which ``lightcycle verify`` otherwise never needs; this table answers for
the standard hooks, and ``tests/commands/test_cli_fast.py`` checks it against the class. The hooks
themselves are defined in :mod:`lightcycle.core.hooks` and :mod:`lightcycle.core.module`.
"""

from __future__ import annotations

BASE_MODULE_HOOKS: frozenset[str] = frozenset(
    {
        "backward",
        "configure_callbacks",
        "configure_gradient_clipping",
        "configure_model",
        "configure_optimizers",
        "configure_sharded_model",
        "lr_scheduler_step",
        "on_after_backward",
        "on_before_backward",
        "on_before_optimizer_step",
        "on_before_zero_grad",
        "on_fit_end",
        "on_fit_start",
        "on_load_checkpoint",
        "on_predict_batch_end",
        "on_predict_batch_start",
        "on_predict_end",
        "on_predict_epoch_end",
        "on_predict_epoch_start",
        "on_predict_model_eval",
        "on_predict_start",
        "on_save_checkpoint",
        "on_test_batch_end",
        "on_test_batch_start",
        "on_test_end",
        "on_test_epoch_end",
        "on_test_epoch_start",
        "on_test_model_eval",
        "on_test_model_train",
        "on_test_start",
        "on_train_batch_end",
        "on_train_batch_start",
        "on_train_end",
        "on_train_epoch_end",
        "on_train_epoch_start",
        "on_train_start",
        "on_validation_batch_end",
        "on_validation_batch_start",
        "on_validation_end",
        "on_validation_epoch_end",
        "on_validation_epoch_start",
        "on_validation_model_eval",
        "on_validation_model_train",
        "on_validation_model_zero_grad",
        "on_validation_start",
        "optimizer_step",
        "optimizer_zero_grad",
        "predict_step",
        "prepare_data",
        "setup",
        "teardown",
        "test_step",
        "training_step",
        "validation_step",
    }
)
"""Names of the standard declaration's module hooks that :class:`~lightcycle.core.module.LightningModule` defines."""
