"""The scenarios of shared/traces, plus more, for differential tests against live Lightning."""

from __future__ import annotations

from tests.recording import Scenario

SHARED = {
    "fit_basic": Scenario(dict(max_epochs=2, limit_train_batches=2, limit_val_batches=1, num_sanity_val_steps=1)),
    "fit_accum2": Scenario(
        dict(
            max_epochs=2, limit_train_batches=4, limit_val_batches=1, num_sanity_val_steps=1, accumulate_grad_batches=2
        )
    ),
    "fit_valcheck_half": Scenario(
        dict(max_epochs=1, limit_train_batches=4, val_check_interval=0.5, limit_val_batches=1)
    ),
    "fit_val_every2": Scenario(
        dict(max_epochs=3, check_val_every_n_epoch=2, limit_train_batches=1, limit_val_batches=1)
    ),
    "fit_no_sanity": Scenario(dict(max_epochs=2, limit_train_batches=2, limit_val_batches=1, num_sanity_val_steps=0)),
    "fit_no_val": Scenario(dict(max_epochs=1, limit_train_batches=2), module="noval"),
    "fit_max_steps": Scenario(dict(max_steps=3, max_epochs=-1, limit_train_batches=2, limit_val_batches=1)),
    "fit_should_stop": Scenario(
        dict(max_epochs=3, limit_train_batches=3, limit_val_batches=1), behaviour=dict(stop_at=(0, 0))
    ),
    "fit_exception_step": Scenario(
        dict(max_epochs=2, limit_train_batches=2, limit_val_batches=1),
        behaviour=dict(step_raise={(1, 0): RuntimeError("injected: training_step")}),
    ),
    "fit_exception_callback": Scenario(
        dict(max_epochs=2, limit_train_batches=2, limit_val_batches=1),
        behaviour=dict(
            raise_in={("callback", "on_validation_batch_end"): ValueError("injected: callback on_validation_batch_end")}
        ),
    ),
    "fit_exception_setup": Scenario(
        dict(max_epochs=1, limit_train_batches=2, limit_val_batches=1),
        behaviour=dict(raise_in={("callback", "setup"): RuntimeError("injected: callback setup")}),
    ),
    "validate": Scenario(dict(limit_val_batches=2), entry="validate"),
    "test": Scenario(dict(limit_test_batches=2), entry="test"),
    "predict": Scenario(dict(limit_predict_batches=2), entry="predict"),
    "fit_two_val_loaders": Scenario(
        dict(max_epochs=1, limit_train_batches=1, limit_val_batches=1), behaviour=dict(two_val_loaders=True)
    ),
    "fit_gradient_clip": Scenario(
        dict(max_epochs=1, limit_train_batches=1, limit_val_batches=1, gradient_clip_val=1.0)
    ),
    "fit_manual_opt": Scenario(
        dict(max_epochs=1, limit_train_batches=2, limit_val_batches=1), behaviour=dict(manual=True)
    ),
    "fit_batch_start_minus1": Scenario(
        dict(max_epochs=2, limit_train_batches=3, limit_val_batches=1),
        behaviour=dict(batch_start_return={(0, 1): -1, (1, 1): -1}),
    ),
}
"""Scenarios recorded in shared/traces (except checkpoint save/resume and KeyboardInterrupt,
whose outcome differs by design: see the README's deviations)."""

EXTRA = {
    "fit_should_stop_min_epochs": Scenario(
        dict(max_epochs=3, min_epochs=2, limit_train_batches=2, limit_val_batches=1), behaviour=dict(stop_at=(0, 0))
    ),
    "fit_should_stop_on_fit_start": Scenario(
        dict(max_epochs=2, limit_train_batches=2, limit_val_batches=1), behaviour=dict(stop_in_hook="on_fit_start")
    ),
    "fit_should_stop_on_train_start": Scenario(
        dict(max_epochs=2, limit_train_batches=2, limit_val_batches=1), behaviour=dict(stop_in_hook="on_train_start")
    ),
    "fit_should_stop_validation_end": Scenario(
        dict(max_epochs=3, limit_train_batches=2, limit_val_batches=1), behaviour=dict(stop_in_hook="on_validation_end")
    ),
    "fit_int_val_check_across_epochs": Scenario(
        dict(
            max_epochs=2, limit_train_batches=2, limit_val_batches=1, val_check_interval=3, check_val_every_n_epoch=None
        )
    ),
    "fit_val_check_0_3": Scenario(
        dict(max_epochs=1, limit_train_batches=10, limit_val_batches=1, val_check_interval=0.3, num_sanity_val_steps=0)
    ),
    "fit_accum3_valcheck": Scenario(
        dict(max_epochs=1, limit_train_batches=5, limit_val_batches=1, accumulate_grad_batches=3, val_check_interval=2)
    ),
    "fit_step_scheduler": Scenario(
        dict(max_epochs=2, limit_train_batches=2, limit_val_batches=1), behaviour=dict(scheduler="step")
    ),
    "fit_epoch_scheduler": Scenario(
        dict(max_epochs=2, limit_train_batches=3, limit_val_batches=1),
        behaviour=dict(scheduler="epoch", batch_start_return={(1, 1): -1}),
    ),
    "fit_plateau_scheduler": Scenario(
        dict(max_epochs=2, limit_train_batches=2, limit_val_batches=1),
        behaviour=dict(scheduler="plateau", log_metrics=True),
    ),
    "fit_val_every2_no_sanity": Scenario(
        dict(
            max_epochs=2, check_val_every_n_epoch=2, limit_train_batches=1, limit_val_batches=1, num_sanity_val_steps=0
        )
    ),
    "fit_limit_train_zero": Scenario(dict(max_epochs=2, limit_train_batches=0, limit_val_batches=1)),
    "fit_max_epochs_zero": Scenario(dict(max_epochs=0, limit_train_batches=2, limit_val_batches=1)),
    "fit_two_callbacks": Scenario(dict(max_epochs=1, limit_train_batches=2, limit_val_batches=1), extra_callbacks=1),
    "fit_exception_module_hook": Scenario(
        dict(max_epochs=1, limit_train_batches=2, limit_val_batches=1),
        behaviour=dict(
            raise_in={("module", "on_train_epoch_end"): RuntimeError("injected: module on_train_epoch_end")}
        ),
    ),
    "fit_exception_sanity": Scenario(
        dict(max_epochs=1, limit_train_batches=2, limit_val_batches=1),
        behaviour=dict(
            raise_in={("callback", "on_validation_start"): RuntimeError("injected: sanity")}, raise_skip_sanity=False
        ),
    ),
    "fit_logging": Scenario(
        dict(max_epochs=2, limit_train_batches=2, limit_val_batches=2), behaviour=dict(log_metrics=True)
    ),
    "validate_two_loaders": Scenario(
        dict(limit_val_batches=2), entry="validate", behaviour=dict(two_val_loaders=True, log_metrics=True)
    ),
    "test_two_loaders": Scenario(dict(limit_test_batches=2), entry="test", behaviour=dict(two_val_loaders=True)),
    "predict_two_loaders": Scenario(
        dict(limit_predict_batches=1), entry="predict", behaviour=dict(two_val_loaders=True)
    ),
    "test_exception_step": Scenario(
        dict(limit_test_batches=2),
        entry="test",
        behaviour=dict(raise_in={("module", "test_step"): RuntimeError("injected: test_step")}),
    ),
    "fit_max_steps_accum": Scenario(
        dict(max_steps=2, limit_train_batches=3, limit_val_batches=1, accumulate_grad_batches=2)
    ),
    # found by test_hypothesis_differential
    "fit_plateau_metric_missing": Scenario(
        dict(max_epochs=1, limit_train_batches=1, limit_val_batches=1), behaviour=dict(scheduler="plateau")
    ),
    "fit_should_stop_min_steps_only": Scenario(
        dict(max_epochs=2, min_steps=0, limit_train_batches=1, limit_val_batches=1),
        behaviour=dict(stop_in_hook="setup"),
    ),
    "fit_iterable_train_fraction_val_check": Scenario(
        dict(max_epochs=1, limit_val_batches=1, val_check_interval=0.5), behaviour=dict(iterable_train=True)
    ),
    "fit_iterable_train_shorter_than_limit_accum2": Scenario(
        dict(max_epochs=1, limit_train_batches=2, limit_val_batches=1, accumulate_grad_batches=2),
        behaviour=dict(n_train=1, iterable_train=True),
    ),
    "fit_iterable_train_shorter_than_limit_epoch_scheduler": Scenario(
        dict(max_epochs=2, limit_train_batches=3, limit_val_batches=1),
        behaviour=dict(n_train=2, iterable_train=True, scheduler="epoch"),
    ),
    "predict_limit_zero": Scenario(dict(limit_predict_batches=0), entry="predict"),  # returns None, not []
    "fit_limit_val_fraction_too_small": Scenario(
        dict(max_epochs=1, limit_train_batches=1, limit_val_batches=0.25), behaviour=dict(n_eval=2)
    ),
    # issue 17 flags: fast_dev_run (True, an int; with checkpointing on, nothing is saved), barebones,
    # detect_anomaly, benchmark
    "fit_fast_dev_run": Scenario(
        dict(fast_dev_run=True, max_epochs=3, limit_train_batches=4), behaviour=dict(log_metrics=True)
    ),
    "fit_fast_dev_run_3_checkpointing": Scenario(
        dict(fast_dev_run=3, enable_checkpointing=True), behaviour=dict(log_metrics=True)
    ),
    "test_fast_dev_run_2": Scenario(dict(fast_dev_run=2), entry="test"),
    "predict_fast_dev_run": Scenario(dict(fast_dev_run=True), entry="predict"),
    "fit_barebones": Scenario(
        dict(barebones=True, max_epochs=2, limit_train_batches=2, limit_val_batches=1, num_sanity_val_steps=0),
        behaviour=dict(log_metrics=True),
    ),
    "fit_detect_anomaly": Scenario(dict(detect_anomaly=True, max_epochs=1, limit_train_batches=2, limit_val_batches=1)),
    "fit_benchmark": Scenario(dict(benchmark=False, max_epochs=1, limit_train_batches=2, limit_val_batches=1)),
    "fit_reload_every_1": Scenario(
        dict(reload_dataloaders_every_n_epochs=1, max_epochs=3, limit_train_batches=2, limit_val_batches=1)
    ),
    "fit_reload_every_2_val_half": Scenario(
        dict(
            reload_dataloaders_every_n_epochs=2,
            max_epochs=5,
            limit_train_batches=4,
            limit_val_batches=1,
            val_check_interval=0.5,
        )
    ),
    "fit_reload_every_1_val_every_2": Scenario(
        dict(
            reload_dataloaders_every_n_epochs=1,
            max_epochs=4,
            limit_train_batches=1,
            limit_val_batches=1,
            check_val_every_n_epoch=2,
        )
    ),
    # found by test_hypothesis_differential: an iterable train loader has no sampler to replace (Lightning still warns)
    "fit_overfit_iterable_train": Scenario(
        dict(overfit_batches=1, max_epochs=1), behaviour=dict(n_train=1, iterable_train=True)
    ),
    "fit_overfit_2": Scenario(dict(overfit_batches=2, max_epochs=2, limit_train_batches=5)),
    "fit_overfit_fraction_fast_dev_run": Scenario(
        dict(overfit_batches=0.5, fast_dev_run=2, max_epochs=2), behaviour=dict(n_train=6)
    ),
}
"""Scenarios beyond the shared traces: the rest of the spec's sections 3 and 4."""
