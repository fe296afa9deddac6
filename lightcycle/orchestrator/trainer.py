"""``lightcycle.Trainer``: Lightning's Trainer API on the declared lifecycle.

The Trainer checks its arguments, owns the run's state (``trainer.state``, counters,
callbacks, optimizers, metrics) and walks the lifecycle through one
:class:`~lightcycle.orchestrator.driver.LifecycleDriver`; the loops themselves live in
:mod:`lightcycle.orchestrator.loops`.
"""

from __future__ import annotations

import math
import os
import signal
import threading
import warnings
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import attrs
import torch

from lightcycle._foreign import hook_base, is_kind, refuse_lightning_module
from lightcycle._hooks import is_base_hook, is_overridden
from lightcycle.callbacks.callback import Callback
from lightcycle.callbacks.monitoring import Checkpoint, is_checkpoint
from lightcycle.errors import InvalidTypeError, MisconfigurationException
from lightcycle.orchestrator import flags, logger_connector, loops, preflight, steps
from lightcycle.orchestrator.config import resolve
from lightcycle.orchestrator.data import as_loader_list
from lightcycle.orchestrator.driver import LifecycleDriver
from lightcycle.orchestrator.state import RunningStage, TrainerFn, TrainerState, TrainerStatus
from lightcycle.states.declaration import BACKWARD, LIFECYCLE
from lightcycle.states.model import Lifecycle, Trigger
from lightcycle.strategies.strategy import SingleDeviceStrategy as _Strategy
from lightcycle.strategies.strategy import Strategy

__all__ = ["Trainer", "_Strategy"]  # _Strategy: loop.py's name for the one-device strategy

if TYPE_CHECKING:
    from lightcycle.core.datamodule import LightningDataModule
    from lightcycle.core.module import LightningModule
    from lightcycle.core.optim import LightningOptimizer, LRSchedulerConfig
    from lightcycle.precision import Precision


@attrs.define
class FitLoopProgress:
    """Progress of the fit loop, with Lightning's attribute names where users read them.

    ``epochs_processed`` counts epochs whose batches ran; ``epochs_completed`` (which is
    ``trainer.current_epoch``) is incremented after ``on_train_epoch_end``.
    """

    epochs_processed: int = 0
    epochs_completed: int = 0
    global_step: int = 0
    batches_that_stepped: int = 0
    """Batches after which the optimizer stepped (Lightning's ``_batches_that_stepped``): the loggers' step."""
    batch_idx: int = -1
    total_batch_idx: int = -1
    batches_ready: int = 0
    is_last_batch: bool = False
    restarting: bool = False
    resume: Any = None
    """The :class:`~lightcycle.orchestrator.checkpointing.ResumePlan` of a restored fit, until its first epoch."""
    epoch_rng: Any = None
    """RNG states at the start of the current epoch (stored in mid-epoch checkpoints)."""
    batches: Any = None
    """The current epoch's :class:`~lightcycle.orchestrator.data.Lookahead` (for the loader's saved state)."""
    max_epochs: int = 0
    min_epochs: int | None = None
    max_steps: int = -1
    min_steps: int | None = None
    _skip_backward: bool = False
    """Lightning's flag: the current epoch runs no backward (set by StochasticWeightAveraging)."""

    @property
    def epoch_loop(self) -> Any:
        """Lightning's ``fit_loop.epoch_loop``, as far as Lightning's callbacks read it."""
        from lightcycle.orchestrator.surface import EpochLoopView

        return EpochLoopView(self)


class _StageFlag:
    """A trainer flag that is true while ``state.stage`` is one stage (Lightning's
    ``trainer.training``, ``validating``, ...); setting it to True sets that stage."""

    def __init__(self, stage: RunningStage) -> None:
        self.stage = stage

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self
        return obj.state.stage is self.stage

    def __set__(self, obj: Any, value: bool) -> None:
        obj._set_stage(self.stage, value)


def _env_checked() -> bool:
    return os.environ.get("LIGHTCYCLE_CHECKED", "") not in ("", "0")


class Trainer:
    """Runs a LightningModule through fit, validate, test and predict.

    Takes Lightning 2.6's arguments with their meaning and defaults (see the README's
    "Trainer arguments" table). Arguments lightcycle does not support raise a clear
    error naming them. Two arguments are lightcycle's own:

    Args:
        lifecycle: the lifecycle to follow (default: :data:`lightcycle.states.LIFECYCLE`);
            pass an extended copy to add custom events.
        checked: run the ``transitions`` machine in lockstep with the compiled table
            and fail on any disagreement (slow; for tests). The environment variable
            ``LIGHTCYCLE_CHECKED=1`` turns it on for every Trainer.
    """

    def __init__(
        self,
        *,
        accelerator: str = "auto",
        devices: Any = "auto",
        callbacks: Callback | Sequence[Callback] | None = None,
        logger: Any = None,
        max_epochs: int | None = None,
        min_epochs: int | None = None,
        max_steps: int = -1,
        min_steps: int | None = None,
        limit_train_batches: int | float | None = None,
        limit_val_batches: int | float | None = None,
        limit_test_batches: int | float | None = None,
        limit_predict_batches: int | float | None = None,
        num_sanity_val_steps: int | None = None,
        val_check_interval: int | float | None = None,
        check_val_every_n_epoch: int | None = 1,
        accumulate_grad_batches: int = 1,
        gradient_clip_val: int | float | None = None,
        gradient_clip_algorithm: str | None = None,
        default_root_dir: str | os.PathLike[str] | None = None,
        enable_progress_bar: bool | None = None,
        enable_checkpointing: bool | None = None,
        enable_model_summary: bool | None = None,
        inference_mode: bool = True,
        deterministic: bool | str | None = None,
        log_every_n_steps: int | None = None,
        precision: Any = None,
        plugins: Any = None,
        fast_dev_run: int | bool = False,
        benchmark: bool | None = None,
        detect_anomaly: bool = False,
        barebones: bool = False,
        overfit_batches: int | float = 0.0,
        reload_dataloaders_every_n_epochs: int = 0,
        strategy: str | Strategy = "auto",
        num_nodes: int = 1,
        sync_batchnorm: bool = False,
        use_distributed_sampler: bool = True,
        lifecycle: Lifecycle | None = None,
        checked: bool | None = None,
        **unsupported: Any,
    ) -> None:
        opted = flags.barebones(
            barebones,
            dict(
                enable_checkpointing=enable_checkpointing,
                logger=logger,
                enable_progress_bar=enable_progress_bar,
                log_every_n_steps=log_every_n_steps,
                enable_model_summary=enable_model_summary,
                num_sanity_val_steps=num_sanity_val_steps,
                fast_dev_run=fast_dev_run,
                detect_anomaly=detect_anomaly,
            ),
        )
        logger = opted["logger"]
        self._barebones = bool(barebones)
        self._fast_dev_run, loop_args = flags.fast_dev_run(
            fast_dev_run,
            dict(
                max_epochs=max_epochs,
                max_steps=max_steps,
                limit_train_batches=limit_train_batches,
                limit_val_batches=limit_val_batches,
                limit_test_batches=limit_test_batches,
                limit_predict_batches=limit_predict_batches,
                num_sanity_val_steps=opted["num_sanity_val_steps"],
                val_check_interval=val_check_interval,
                check_val_every_n_epoch=check_val_every_n_epoch,
            ),
            overfit=bool(overfit_batches),
        )
        self._overfit_batches = flags.overfit_batches(overfit_batches)
        if self._overfit_batches > 0:  # Lightning: train and val both limited to it (val: its own loader)
            loop_args.update(limit_train_batches=self._overfit_batches, limit_val_batches=self._overfit_batches)
        self._detect_anomaly = flags.check_detect_anomaly(detect_anomaly)
        self.reload_dataloaders_every_n_epochs = flags.reload_every(reload_dataloaders_every_n_epochs)
        self._train_loaded_at = self._val_loaded_at = -math.inf  # epochs of the last loads (reloading)
        self._cfg = resolve(
            accelerator=accelerator,
            devices=devices,
            min_epochs=min_epochs,
            min_steps=min_steps,
            accumulate_grad_batches=accumulate_grad_batches,
            gradient_clip_val=gradient_clip_val,
            gradient_clip_algorithm=gradient_clip_algorithm,
            default_root_dir=default_root_dir,
            enable_progress_bar=opted["enable_progress_bar"],
            enable_checkpointing=opted["enable_checkpointing"],
            enable_model_summary=opted["enable_model_summary"],
            inference_mode=inference_mode,
            deterministic=deterministic,
            log_every_n_steps=opted["log_every_n_steps"],
            precision=precision,
            plugins=plugins,
            unsupported=unsupported,
            **loop_args,
        )
        flags.set_torch_flags(benchmark, deterministic)
        self.strategy: Strategy = _select_strategy(
            strategy, self._cfg.device, accelerator, devices, num_nodes, sync_batchnorm, use_distributed_sampler
        )
        self._cfg = attrs.evolve(self._cfg, device=self.strategy.root_device)  # DDP on CUDA: this rank's device
        if self._cfg.deterministic:
            torch.use_deterministic_algorithms(True, warn_only=self._cfg.deterministic == "warn")
        self.state = TrainerState()
        self.callbacks: list[Callback] = _reorder(self._initial_callbacks(callbacks))
        _check_state_keys(self.callbacks)
        self.loggers: list[Any] = self._make_loggers(logger)
        if self._fast_dev_run:
            self.loggers = flags.dummy_loggers(self.loggers)  # Lightning: logging is suppressed
        self._eval_steps = logger_connector.EvalSteps()
        self.should_stop = False
        self.received_sigterm = False
        self.fit_loop = FitLoopProgress(
            max_epochs=self._cfg.max_epochs,
            min_epochs=self._cfg.min_epochs,
            max_steps=self._cfg.max_steps,
            min_steps=self._cfg.min_steps,
        )
        self.strategy.precision_plugin = self._cfg.precision_plugin
        self.lightning_module: LightningModule | None = None
        self.datamodule: LightningDataModule | None = None
        self.optimizers: list[torch.optim.Optimizer] = []
        self.lr_scheduler_configs: list[LRSchedulerConfig] = []
        self._lightning_optimizers: list[LightningOptimizer] = []
        self.train_dataloader: Any = None
        self.val_dataloaders: Any = None
        self.test_dataloaders: Any = None
        self.predict_dataloaders: Any = None
        self._eval_loaders: dict[str, list[Any]] = {}
        self.num_training_batches: int | float = float("inf")
        self.num_val_batches: list[int | float] = []
        self.num_sanity_val_batches: list[int | float] = []
        self.num_test_batches: list[int | float] = []
        self.num_predict_batches: list[int | float] = []
        self.val_check_batch: int | float = float("inf")
        self.ckpt_path: str | None = None
        self._val_has_run = False  # a (non-sanity) validation batch ran in the last validation run
        self._interrupted_from: str | None = None
        self._explicit: dict[str, Any] = {}
        self._current_dataloader_idx: int | None = None
        self._eval_last_outputs: list[dict[str, float]] = []
        self._warned: set[str] = set()
        self._sigterm_previous: Any = None
        from lightcycle.core.metric_store import MetricStore
        from lightcycle.orchestrator.checkpointing import CheckpointConnector

        self._results = MetricStore()
        self._checkpoints = CheckpointConnector(self)
        lifecycle = lifecycle if lifecycle is not None else LIFECYCLE
        self._driver = LifecycleDriver(self, lifecycle, checked=_env_checked() if checked is None else checked)

    # ------------------------------------------------------------------ construction helpers

    def _initial_callbacks(self, callbacks: Callback | Sequence[Callback] | None) -> list[Callback]:
        if callbacks is None:
            given: list[Callback] = []
        elif is_kind(callbacks, Callback, "Callback"):
            given = [callbacks]  # type: ignore[list-item]
        elif isinstance(callbacks, (list, tuple)):
            given = list(callbacks)
        else:
            raise InvalidTypeError(
                f"Trainer(callbacks=...) takes a Callback or a list of them, got {type(callbacks).__name__}."
            )
        for cb in given:
            if not is_kind(cb, Callback, "Callback"):
                raise MisconfigurationException(
                    f"Trainer(callbacks=...) got {type(cb).__name__}, which is not a Callback. Subclass "
                    "lightcycle.Callback (or Lightning's Callback: both are driven alike)."
                )
        from lightcycle.callbacks.model_checkpoint import ModelCheckpoint
        from lightcycle.callbacks.model_summary import ModelSummary
        from lightcycle.callbacks.progress import ProgressBar
        from lightcycle.callbacks.rich_model_summary import RichModelSummary
        from lightcycle.callbacks.rich_progress import RichProgressBar, rich_available
        from lightcycle.callbacks.tqdm_progress import TQDMProgressBar
        from lightcycle.compat.run_trace import recorders_from_env

        out = list(given) + recorders_from_env()  # `lightcycle run --trace`: one recorder per Trainer
        has_checkpoint = any(is_checkpoint(cb) for cb in out)
        if self._cfg.enable_checkpointing and not has_checkpoint:
            out.append(ModelCheckpoint())
        elif not self._cfg.enable_checkpointing and has_checkpoint:
            raise MisconfigurationException(
                "Trainer was configured with enable_checkpointing=False but found a Checkpoint callback in "
                "callbacks. Remove the callback or set enable_checkpointing=True."
            )
        has_bar = any(is_kind(cb, ProgressBar, "ProgressBar") for cb in out)
        if self._cfg.enable_progress_bar and not has_bar:
            # Lightning's choice (callback_connector): the rich bar when rich >= 10.2.2 is installed.
            out.append(RichProgressBar() if rich_available() else TQDMProgressBar())
        elif not self._cfg.enable_progress_bar and has_bar:
            raise MisconfigurationException(
                "Trainer was configured with enable_progress_bar=False but found a progress bar in callbacks. "
                "Remove it or set enable_progress_bar=True."
            )
        if self._cfg.enable_model_summary and not any(is_kind(cb, ModelSummary, "ModelSummary") for cb in out):
            # Lightning's choice: the rich table when rich >= 10.2.2 is installed.
            out.append(RichModelSummary() if rich_available() else ModelSummary())
        return out

    def _make_loggers(self, logger: Any) -> list[Any]:
        # Lightning's Trainer: ``logger=None`` is ``logger=True`` (the default logger).
        return logger_connector.make_loggers(
            True if logger is None else logger, self.default_root_dir, type(self).__name__
        )

    def _finalize_loggers(self, status: str) -> None:
        if not self.strategy.is_global_zero:
            return  # Lightning's loggers write on rank 0 only
        for lg in self.loggers:
            finalize = getattr(lg, "finalize", None)
            if callable(finalize):
                finalize(status)

    def _log_hyperparameters(self) -> None:
        """Send the initial hyper-parameters to the loggers (Lightning's ``_log_hyperparams``).

        Those of the module and of the datamodule that called ``save_hyperparameters``
        (with ``logger=True``, the default), merged; then each logger's ``log_graph`` and
        ``save``, where it has them.

        Raises:
            RuntimeError: the module and the datamodule log a key with different values
                (Lightning's message).
        """
        if not self.loggers or not self.strategy.is_global_zero:
            return
        module, dm = self.lightning_module, self.datamodule
        log_module = bool(getattr(module, "_log_hyperparams", False))
        log_dm = dm is not None and bool(getattr(dm, "_log_hyperparams", False))
        hparams: Any = None
        if log_module and log_dm:
            assert module is not None and dm is not None
            ours, theirs = module.hparams_initial, dm.hparams_initial
            clash = [k for k in ours if k in theirs and not _same_value(ours[k], theirs[k])]
            if clash:
                raise RuntimeError(
                    f"Error while merging hparams: the keys {clash} are present in both the LightningModule's and "
                    "LightningDataModule's hparams but have different values."
                )
            hparams = {**ours, **theirs}
        elif log_module:
            assert module is not None
            hparams = module.hparams_initial
        elif log_dm:
            assert dm is not None
            hparams = dm.hparams_initial
        for lg in self.loggers:
            if hparams is not None and callable(getattr(lg, "log_hyperparams", None)):
                lg.log_hyperparams(hparams)
            log_graph = getattr(lg, "log_graph", None)
            if callable(log_graph):
                log_graph(module)
            save = getattr(lg, "save", None)
            if callable(save):
                save()

    # ------------------------------------------------------------------ public entry points

    def fit(
        self,
        model: LightningModule,
        train_dataloaders: Any = None,
        val_dataloaders: Any = None,
        datamodule: LightningDataModule | None = None,
        ckpt_path: str | os.PathLike[str] | None = None,
    ) -> None:
        """Train ``model``: setup, sanity check, epochs with validation, teardown.

        Args:
            model: the LightningModule.
            train_dataloaders: a DataLoader (or a LightningDataModule, as Lightning allows).
            val_dataloaders: a DataLoader or a list of them.
            datamodule: supplies the dataloaders instead.
            ckpt_path: a checkpoint to resume from: a path, ``"last"`` or ``"best"``.
        """
        from lightcycle.core.datamodule import LightningDataModule

        if is_kind(train_dataloaders, LightningDataModule, "LightningDataModule"):
            datamodule, train_dataloaders = train_dataloaders, None
        self._begin(TrainerFn.FITTING, model, datamodule, {"train": train_dataloaders, "val": val_dataloaders})
        ckpt = self._checkpoints.resolve_path(ckpt_path, TrainerFn.FITTING)
        self.should_stop = False
        self._run(lambda: loops.run_fit(self, ckpt))

    def validate(
        self,
        model: LightningModule | None = None,
        dataloaders: Any = None,
        ckpt_path: str | os.PathLike[str] | None = None,
        verbose: bool = True,
        datamodule: LightningDataModule | None = None,
    ) -> list[dict[str, float]]:
        """Run one validation epoch. Returns the logged epoch metrics per dataloader."""
        return self._evaluate(TrainerFn.VALIDATING, "val", model, dataloaders, ckpt_path, verbose, datamodule)

    def test(
        self,
        model: LightningModule | None = None,
        dataloaders: Any = None,
        ckpt_path: str | os.PathLike[str] | None = None,
        verbose: bool = True,
        datamodule: LightningDataModule | None = None,
    ) -> list[dict[str, float]]:
        """Run one test epoch. Returns the logged epoch metrics per dataloader."""
        return self._evaluate(TrainerFn.TESTING, "test", model, dataloaders, ckpt_path, verbose, datamodule)

    def predict(
        self,
        model: LightningModule | None = None,
        dataloaders: Any = None,
        datamodule: LightningDataModule | None = None,
        return_predictions: bool | None = None,
        ckpt_path: str | os.PathLike[str] | None = None,
    ) -> list[Any] | None:
        """Run prediction. Returns the predictions (a list per dataloader when several)."""
        from lightcycle.core.datamodule import LightningDataModule

        if is_kind(dataloaders, LightningDataModule, "LightningDataModule"):
            datamodule, dataloaders = dataloaders, None
        provided = model is not None
        model = self._model_or_current(model, "predict")
        self._begin(TrainerFn.PREDICTING, model, datamodule, {"predict": dataloaders})
        self._check_eval_source("predict")
        ckpt = self._checkpoints.resolve_path(ckpt_path, TrainerFn.PREDICTING, model_provided=provided)
        out = self._run(lambda: loops.run_eval_entry(self, TrainerFn.PREDICTING, ckpt))
        return out if return_predictions is not False else None

    def save_checkpoint(
        self, filepath: str | os.PathLike[str], weights_only: bool | None = False, storage_options: Any = None
    ) -> None:
        """Write a checkpoint of the current state to ``filepath``.

        The file is written atomically (a temporary file in the same folder, flushed,
        fsynced, then renamed), so an existing checkpoint at ``filepath`` is replaced by a
        whole new one or stays as it was. Contents and resume guarantees:
        ``docs/checkpoints.md``.

        Args:
            filepath: where to write (its folder is created).
            weights_only: only the weights, progress and hyper-parameters (no optimizer,
                scheduler or callback states; cannot resume a fit).
            storage_options: not supported (Lightning's CheckpointIO option).
        """
        if self.lightning_module is None:
            raise AttributeError(
                "Saving a checkpoint is only possible if a model is attached to the Trainer. Did you call"
                " `Trainer.save_checkpoint()` before calling `Trainer.{fit,validate,test,predict}`?"
            )
        if storage_options is not None:
            raise MisconfigurationException("save_checkpoint(storage_options=...) is not supported; remove it.")
        self._checkpoints.save(filepath, bool(weights_only))

    def _evaluate(
        self,
        fn: TrainerFn,
        kind: str,
        model: LightningModule | None,
        dataloaders: Any,
        ckpt_path: Any,
        verbose: bool,
        datamodule: LightningDataModule | None,
    ) -> list[dict[str, float]]:
        from lightcycle.core.datamodule import LightningDataModule

        if is_kind(dataloaders, LightningDataModule, "LightningDataModule"):
            datamodule, dataloaders = dataloaders, None
        provided = model is not None
        model = self._model_or_current(model, fn.value)
        self._begin(fn, model, datamodule, {kind: dataloaders})
        step = "validation_step" if fn is TrainerFn.VALIDATING else "test_step"
        if not is_overridden(step, model, _module_base()):
            raise MisconfigurationException(
                f"No `{step}()` method defined to run `Trainer.{fn.value}`. "
                f"Implement `{step}` in {type(model).__name__}."
            )
        self._check_eval_source("val" if fn is TrainerFn.VALIDATING else "test")
        ckpt = self._checkpoints.resolve_path(ckpt_path, fn, model_provided=provided)
        results: list[dict[str, float]] = self._run(lambda: loops.run_eval_entry(self, fn, ckpt))
        if verbose and results:
            _print_results(results, fn.value)
        return results

    def _model_or_current(self, model: LightningModule | None, verb: str) -> LightningModule:
        if model is not None:
            return model
        if self.lightning_module is None:
            raise TypeError(  # Lightning's type
                f"`trainer.{verb}()` needs a model: pass one, or call it after `trainer.fit(model)`."
            )
        return self.lightning_module

    # ------------------------------------------------------------------ run plumbing

    def _begin(self, fn: TrainerFn, model: Any, datamodule: Any, loaders: dict[str, Any]) -> None:
        """Check inputs and attach the objects; raises before any hook fires."""
        from lightcycle.core.datamodule import LightningDataModule

        base = _module_base()
        refuse_lightning_module(model)
        if not isinstance(model, base):
            raise TypeError(
                f"`model` must be a lightcycle.LightningModule, got {type(model).__name__}. Subclass "
                "lightcycle.LightningModule (import lightcycle as L; class M(L.LightningModule))."
            )
        if datamodule is not None and not is_kind(datamodule, LightningDataModule, "LightningDataModule"):
            raise TypeError(
                f"`datamodule` must be a lightcycle.LightningDataModule (or one built on Lightning's), got "
                f"{type(datamodule).__name__}."
            )
        given = {k: v for k, v in loaders.items() if v is not None}
        if datamodule is not None and given:
            raise MisconfigurationException(
                f"You cannot pass `{'`, `'.join(k + '_dataloaders' for k in given)}` and `datamodule` together; "
                "pass one or the other."
            )
        if self.state.status is TrainerStatus.RUNNING:
            raise MisconfigurationException(
                "this Trainer is already running; fit/validate/test/predict cannot be nested. Use a second Trainer."
            )
        if fn is TrainerFn.FITTING:
            if not is_overridden("training_step", model, base):
                raise MisconfigurationException(
                    f"No `training_step()` method defined. Implement `training_step` in {type(model).__name__} to fit."
                )
            if not is_overridden("configure_optimizers", model, base):
                raise MisconfigurationException(
                    f"No `configure_optimizers()` method defined. Implement `configure_optimizers` in "
                    f"{type(model).__name__} to fit: return an optimizer (and optionally LR schedulers)."
                )
            source = datamodule if datamodule is not None else model
            source_base = hook_base(datamodule, LightningDataModule) if datamodule is not None else base
            if loaders.get("train") is None and not is_overridden("train_dataloader", source, source_base):
                raise MisconfigurationException(
                    f"No `train_dataloader()` method defined and no `train_dataloaders` passed. Implement "
                    f"`train_dataloader` in {type(source).__name__} or pass `train_dataloaders` to `fit`."
                )
            if not model.automatic_optimization:
                if self._cfg.accumulate_grad_batches != 1:
                    raise MisconfigurationException(
                        "Automatic gradient accumulation is not supported for manual optimization. Remove "
                        "`Trainer(accumulate_grad_batches=...)` or switch to automatic optimization."
                    )
                if self._cfg.gradient_clip_val:
                    raise MisconfigurationException(
                        "Automatic gradient clipping is not supported for manual optimization. Remove "
                        "`Trainer(gradient_clip_val=...)` and call `self.clip_gradients(...)` in training_step."
                    )
        self.state.fn = fn
        self.lightning_module = model
        self.strategy.lightning_module = model
        model.trainer = self
        self.datamodule = datamodule
        if datamodule is not None:
            datamodule.trainer = self
        self._explicit = given
        if fn is TrainerFn.FITTING:
            preflight.warn_val_loop_configuration(
                self._source_defines("val"), is_overridden("validation_step", model, base)
            )
            self.train_dataloader = None
            self.val_dataloaders = None
            self.num_val_batches = []
        elif fn is TrainerFn.VALIDATING:
            self.val_dataloaders = None
        self._eval_loaders = {}

    def _bind(self) -> None:
        """Compile the run's hooks (at its start and after ``configure_callbacks``)."""
        skip = frozenset(f"{kind}_dataloader" for kind in self._explicit)
        if self.strategy.local_rank != 0:
            skip |= {"prepare_data"}  # Lightning: prepare_data on local rank 0 of each node only
        self._driver.bind(
            self.lightning_module,
            self.callbacks,
            self.datamodule,
            skip=skip,
            noops=frozenset({"configure_gradient_clipping"}) if self._clipping_is_noop() else frozenset(),
        )

    def _clipping_is_noop(self) -> bool:
        """Whether ``configure_gradient_clipping`` would do nothing in this run.

        True when clipping is off in the Trainer and the module keeps the default
        ``configure_gradient_clipping`` and ``clip_gradients``: the call would only read
        the Trainer's settings, already checked when it was built. (The driver still calls
        it when a HookRecorder observes, so that traces show every call Lightning makes.)
        """
        from lightcycle.core.module import LightningModule

        module = self.lightning_module
        if module is None or self._cfg.gradient_clip_val:
            return False
        # a skip, not a Lightning decision: any wrapper around either hook is called
        return is_base_hook("configure_gradient_clipping", module, LightningModule) and is_base_hook(
            "clip_gradients", module, LightningModule
        )

    def _run(self, body: Any) -> Any:
        self.state.status = TrainerStatus.RUNNING
        self.received_sigterm = False
        self._interrupted_from = None
        driver = self._driver
        strategy = self.strategy
        module = self.lightning_module
        if strategy.distributed and self.state.fn is TrainerFn.FITTING and module is not None:
            strategy.redirect_steps(module, _module_base())
        self._bind()
        self._install_sigterm()
        try:
            with driver.guard(teardown=self._teardown_after_exception):
                try:
                    result = strategy.launch(body)
                except BaseException as exc:
                    self._interrupted_from = driver.state  # for checkpoints saved in on_exception or afterwards
                    reported = strategy.on_failure(exc)  # another rank's failure, named; no collective after this
                    if reported is not exc:
                        raise reported from exc
                    raise
        finally:
            self._restore_sigterm()
        self.state.status = TrainerStatus.FINISHED
        driver.fire(_finish())
        self._finalize_loggers("success")
        return result

    def _setup_environment(self) -> None:
        """The declared ``setup_environment`` action: the process group exists before ``prepare_data``."""
        self.strategy.setup_environment()

    def _strategy_setup(self) -> None:
        """The declared ``strategy_setup`` action (after ``configure_model``; fit: before ``configure_optimizers``)."""
        self.strategy.barrier("post_setup")
        if self.lightning_module is not None:  # Lightning's strategy.setup: convert, then move (and wrap)
            self.precision_plugin.convert_module(self.lightning_module)
        self.strategy.setup(fitting=self.state.fn is TrainerFn.FITTING)

    def _teardown_internal(self) -> None:
        """Lightning's strategy teardown: unwrap and release the device, as before on_fit_end."""
        self.strategy.teardown()

    def _teardown_after_exception(self) -> None:
        self._finalize_loggers("failed")
        self._teardown_internal()

    def _install_sigterm(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            self._sigterm_previous = None
            return
        previous = signal.getsignal(signal.SIGTERM)

        def handler(signum: int, frame: Any) -> None:
            self.received_sigterm = True
            if callable(previous):  # not SIG_DFL / SIG_IGN
                previous(signum, frame)

        self._sigterm_previous = previous
        signal.signal(signal.SIGTERM, handler)

    def _restore_sigterm(self) -> None:
        if self._sigterm_previous is not None:
            signal.signal(signal.SIGTERM, self._sigterm_previous)
            self._sigterm_previous = None

    def _attach_model_callbacks(self, model_callbacks: Any) -> None:
        """Merge what ``configure_callbacks`` returned (Lightning's rules) and recompile."""
        if model_callbacks:
            if is_kind(model_callbacks, Callback, "Callback"):
                model_callbacks = [model_callbacks]
            model_types = {type(c) for c in model_callbacks}
            trainer_types = {type(c) for c in self.callbacks} - {Callback}
            override = {tt for mt in model_types for tt in trainer_types if issubclass(mt, tt)}
            merged = [c for c in self.callbacks if type(c) not in override] + list(model_callbacks)
            self.callbacks = _reorder(merged)
            _check_state_keys(self.callbacks)
            self._bind()

    def _configure_optimizers(self, returned: Any) -> None:
        from lightcycle.core.optim import resolve_optimizers

        module = self.lightning_module
        assert module is not None
        optimizers, schedulers = resolve_optimizers(module, returned)
        self.optimizers = optimizers
        self.lr_scheduler_configs = schedulers
        self._lightning_optimizers = steps.wrap_optimizers(
            self._driver.caller,
            module.automatic_optimization,
            optimizers,
            self._cfg.gradient_clip_val,
            self._cfg.gradient_clip_algorithm,
            self._count_manual_step,
            self._cfg.precision_plugin.scaler,
        )

    def _count_manual_step(self) -> None:
        self.fit_loop.global_step += 1

    def _manual_backward(self, loss: torch.Tensor, *args: Any, **kwargs: Any) -> None:
        module = self.lightning_module
        if module is None or module.automatic_optimization:
            raise MisconfigurationException(
                "`manual_backward` is for manual optimization. Set `self.automatic_optimization = False` in your "
                "module's __init__, or return the loss from training_step and let the Trainer call backward."
            )
        if args or kwargs:
            raise MisconfigurationException(
                "manual_backward(loss, *args, **kwargs): extra arguments are not supported yet; call "
                "manual_backward(loss) (or override `backward` in your module)."
            )
        # the precision's pre_backward: the scaler's scale, which on_before_backward sees (Lightning)
        self._driver.fire(BACKWARD, self.precision_plugin.pre_backward(loss, module))

    def _log_step(self, metrics: dict[str, torch.Tensor]) -> None:
        """Training step metrics of a batch that stepped, every ``log_every_n_steps`` (Lightning's rule)."""
        if self.loggers:
            logger_connector.log_train_step(self, metrics)

    def _log_train_epoch(self, metrics: dict[str, torch.Tensor]) -> None:
        logger_connector.log_train_epoch(self, metrics)

    def _log_eval_step(self, metrics: dict[str, torch.Tensor], dataloader_idx: int) -> None:
        self._eval_steps.log(self, metrics, dataloader_idx)

    def _log_epoch(self, metrics: dict[str, torch.Tensor]) -> None:
        """Evaluation epoch metrics (with ``epoch``, at ``batches_that_stepped``)."""
        logger_connector.send(self, metrics)

    def _warn_once(self, message: str) -> None:
        if message not in self._warned:
            self._warned.add(message)
            warnings.warn(message, UserWarning, stacklevel=3)

    # ------------------------------------------------------------------ data

    def _source(self) -> Any:
        return self.datamodule if self.datamodule is not None else self.lightning_module

    def _source_defines(self, kind: str) -> bool:
        from lightcycle.core.datamodule import LightningDataModule

        if kind in self._explicit:
            return True
        source = self._source()
        base = hook_base(self.datamodule, LightningDataModule) if self.datamodule is not None else _module_base()
        return is_overridden(f"{kind}_dataloader", source, base)

    def _check_eval_source(self, kind: str) -> None:
        """Refuse validate/test/predict without a loader of its kind, as Lightning does (before any hook)."""
        from lightcycle.core.datamodule import LightningDataModule

        base = hook_base(self.datamodule, LightningDataModule) if self.datamodule is not None else _module_base()
        limit = getattr(self._cfg, f"limit_{kind}_batches")
        preflight.check_loaders_defined(kind, self._source(), base, kind in self._explicit, limit)

    def _eval_enabled(self, kind: str) -> bool:
        step = {"val": "validation_step", "test": "test_step", "predict": "predict_step"}[kind]
        limit = getattr(self._cfg, f"limit_{kind}_batches")
        if kind == "predict":
            return self._source_defines(kind) and limit > 0
        return self._source_defines(kind) and is_overridden(step, self.lightning_module, _module_base()) and limit > 0

    @property
    def enable_validation(self) -> bool:
        """Whether validation runs during fit (a val source, ``validation_step``, a non-zero limit)."""
        return self.lightning_module is not None and self._eval_enabled("val")

    def _should_sanity_check(self) -> bool:
        return self.enable_validation and self._cfg.num_sanity_val_steps > 0 and not self.fit_loop.restarting

    def _should_check_val_epoch(self) -> bool:
        n = self._cfg.check_val_every_n_epoch
        return self.enable_validation and (n is None or (self.current_epoch + 1) % n == 0)

    def _load_train_loader(self) -> Any:
        from lightcycle.states.declaration import TRAIN_DATALOADER

        value = self._driver.fire(TRAIN_DATALOADER)
        if "train" in self._explicit:
            value = self._explicit["train"]
        if self._overfit_batches > 0:
            value = flags.sequential_loaders(as_loader_list(value, "train"), "train")[0]
        loaders, counts = loops.load_loaders(
            value, "train", self._cfg.limit_train_batches, "limit_train_batches", self._loader_preparer()
        )
        self._train_loaded_at = self.current_epoch
        self.train_dataloader = loaders[0]
        self.num_training_batches = counts[0]
        self._resolve_val_check_batch()
        return loaders[0]

    def _loader_preparer(self) -> Any:
        """Under several processes, the strategy's loader step (barrier, DistributedSampler); else None."""
        strategy = self.strategy
        if not strategy.distributed:
            return None
        fn = self.state.fn.value if self.state.fn is not None else "fit"
        return lambda loader, kind: strategy.process_dataloader(loader, kind, fn)

    def _resolve_val_check_batch(self) -> None:
        cfg = self._cfg
        n = self.num_training_batches
        if n == 0:
            return
        if isinstance(cfg.val_check_interval, int):
            self.val_check_batch = cfg.val_check_interval
            if self.val_check_batch > n and cfg.check_val_every_n_epoch is not None and cfg.limit_val_batches > 0:
                raise ValueError(
                    f" `val_check_interval` ({cfg.val_check_interval}) must be less than or equal to the number of "
                    f"the training batches ({n}). If you want to disable validation set `limit_val_batches` to 0.0 "
                    "instead. If you want to validate based on the total training batches, set "
                    "`check_val_every_n_epoch=None`."
                )
        elif n == float("inf"):
            if cfg.val_check_interval != 1.0:
                raise MisconfigurationException(  # Lightning's message, word for word
                    "When using an IterableDataset for `train_dataloader`, `Trainer(val_check_interval)` must be time "
                    "based, `1.0` or an int. An int k specifies checking validation every k training batches."
                )
            self.val_check_batch = float("inf")
        else:
            self.val_check_batch = max(1, int(n * cfg.val_check_interval))

    def _load_eval_loaders(self, kind: str, trigger: Trigger, sanity: bool) -> tuple[list[Any], list[int | float]]:
        value = self._driver.fire(trigger)
        if kind in self._explicit:
            value = self._explicit[kind]
        limit = getattr(self._cfg, f"limit_{kind}_batches")
        if self._overfit_batches > 0 and kind == "val" and self.state.fn is TrainerFn.FITTING:
            value = flags.sequential_loaders(as_loader_list(value, "val"), "val")  # before any sampler wrapping
        loaders, counts = loops.load_loaders(value, kind, limit, f"limit_{kind}_batches", self._loader_preparer())
        self._eval_loaders[kind] = loaders
        stored = loaders[0] if len(loaders) == 1 else loaders
        if kind == "val":
            if self.state.fn is TrainerFn.FITTING:
                self._val_loaded_at = self.current_epoch
            self.val_dataloaders = stored
            self.num_val_batches = counts
            if sanity:
                counts = [min(self._cfg.num_sanity_val_steps, c) for c in counts]
                self.num_sanity_val_batches = counts
        elif kind == "test":
            self.test_dataloaders = stored
            self.num_test_batches = counts
        else:
            self.predict_dataloaders = stored
            self.num_predict_batches = counts
        return loaders, counts

    # ------------------------------------------------------------------ attributes (spec 5)

    @property
    def precision_plugin(self) -> Precision:
        """The precision plugin (Lightning's ``trainer.precision_plugin``)."""
        return self._cfg.precision_plugin

    @property
    def precision(self) -> str:
        """The resolved precision flag, e.g. ``"32-true"`` or ``"bf16-mixed"``."""
        return self._cfg.precision_plugin.precision

    @property
    def current_epoch(self) -> int:
        """Completed epochs; unchanged inside an epoch, including its on_train_epoch_end."""
        return self.fit_loop.epochs_completed

    @property
    def global_step(self) -> int:
        """Optimizer steps taken."""
        return self.fit_loop.global_step

    @property
    def is_last_batch(self) -> bool:
        return self.fit_loop.is_last_batch

    @property
    def model(self) -> Any:
        return self.lightning_module

    @property
    def max_epochs(self) -> int:
        return self.fit_loop.max_epochs  # Lightning's: a callback may change fit_loop.max_epochs

    @property
    def min_epochs(self) -> int | None:
        return self._cfg.min_epochs

    @property
    def max_steps(self) -> int:
        return self._cfg.max_steps

    @property
    def min_steps(self) -> int | None:
        return self._cfg.min_steps

    @property
    def accumulate_grad_batches(self) -> int:
        return self._cfg.accumulate_grad_batches

    @accumulate_grad_batches.setter
    def accumulate_grad_batches(self, value: int) -> None:
        # Lightning's is a plain attribute; GradientAccumulationScheduler sets it at each epoch start,
        # and the epoch loop reads it after on_train_epoch_start.
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise MisconfigurationException(
                f"trainer.accumulate_grad_batches = {value!r} is invalid: expected an int >= 1."
            )
        self._cfg.accumulate_grad_batches = value

    @property
    def gradient_clip_val(self) -> float | None:
        return self._cfg.gradient_clip_val

    @property
    def gradient_clip_algorithm(self) -> str | None:
        return self._cfg.gradient_clip_algorithm

    @property
    def val_check_interval(self) -> int | float:
        return self._cfg.val_check_interval

    @property
    def check_val_every_n_epoch(self) -> int | None:
        return self._cfg.check_val_every_n_epoch

    @property
    def num_sanity_val_steps(self) -> int | float:
        return self._cfg.num_sanity_val_steps

    @property
    def limit_train_batches(self) -> int | float:
        return self._cfg.limit_train_batches

    @property
    def limit_val_batches(self) -> int | float:
        return self._cfg.limit_val_batches

    @property
    def limit_test_batches(self) -> int | float:
        return self._cfg.limit_test_batches

    @property
    def limit_predict_batches(self) -> int | float:
        return self._cfg.limit_predict_batches

    @property
    def log_every_n_steps(self) -> int:
        return self._cfg.log_every_n_steps

    @property
    def fast_dev_run(self) -> int | bool:
        """``True`` (one batch), the number of batches, or ``False`` (Lightning's ``trainer.fast_dev_run``)."""
        return self._fast_dev_run

    @property
    def overfit_batches(self) -> int | float:
        """``Trainer(overfit_batches=...)``: ``0.0`` (off), a number of batches or a fraction."""
        return self._overfit_batches

    @property
    def barebones(self) -> bool:
        """``Trainer(barebones=True)``: every feature that costs speed is off."""
        return self._barebones

    @property
    def default_root_dir(self) -> str:
        return self._cfg.default_root_dir

    @property
    def log_dir(self) -> str | None:
        """The first logger's folder (Lightning's rule: see :func:`logger_connector.log_dir`)."""
        return logger_connector.log_dir(self.loggers, self.default_root_dir)

    @property
    def logger(self) -> Any:
        return self.loggers[0] if self.loggers else None

    @property
    def device(self) -> torch.device:
        """The device the module trains on (lightcycle's addition; Lightning: strategy.root_device)."""
        return self._cfg.device

    @property
    def inference_mode(self) -> bool:
        return self._cfg.inference_mode

    @property
    def estimated_stepping_batches(self) -> int | float:
        """Estimated optimizer steps of the whole fit (Lightning's formula)."""
        if self.train_dataloader is None:
            source = self._explicit.get("train")
            if source is None and self.lightning_module is not None and self._source_defines("train"):
                source = self._source().train_dataloader()
            _, counts = loops.load_loaders(source, "train", self._cfg.limit_train_batches, "limit_train_batches")
            batches = counts[0]
        else:
            batches = self.num_training_batches
        if batches == float("inf"):
            return self._cfg.max_steps if self._cfg.max_steps != -1 else float("inf")
        per_epoch = -(-batches // self._cfg.accumulate_grad_batches)  # ceil
        total = per_epoch * self._cfg.max_epochs if self._cfg.max_epochs != -1 else float("inf")
        if self._cfg.max_steps != -1:
            return min(total, self._cfg.max_steps)
        return total

    @property
    def _logger_connector(self) -> Any:
        # What Lightning's own LearningRateMonitor reads (a callback built on Lightning's classes).
        from lightcycle.orchestrator.surface import LoggerConnectorView

        return LoggerConnectorView(self)

    @property
    def callback_metrics(self) -> dict[str, torch.Tensor]:
        return self._results.callback_metrics

    @property
    def logged_metrics(self) -> dict[str, torch.Tensor]:
        return self._results.logged_metrics

    @property
    def progress_bar_metrics(self) -> dict[str, float]:
        return self._results.progress_bar_metrics

    @property
    def checkpoint_callbacks(self) -> list[Any]:
        # Checkpoint instances, lightcycle's or Lightning's (which do not derive from ours).
        return [cb for cb in self.callbacks if is_checkpoint(cb)]

    @property
    def checkpoint_callback(self) -> Checkpoint | None:
        cbs = self.checkpoint_callbacks
        return cbs[0] if cbs else None

    @property
    def early_stopping_callbacks(self) -> list[Callback]:
        from lightcycle.callbacks.early_stopping import EarlyStopping

        return [cb for cb in self.callbacks if is_kind(cb, EarlyStopping, "EarlyStopping")]

    @property
    def early_stopping_callback(self) -> Callback | None:
        cbs = self.early_stopping_callbacks
        return cbs[0] if cbs else None

    @property
    def progress_bar_callback(self) -> Callback | None:
        from lightcycle.callbacks.progress import ProgressBar

        return next((cb for cb in self.callbacks if is_kind(cb, ProgressBar, "ProgressBar")), None)

    @property
    def global_rank(self) -> int:
        return self.strategy.global_rank

    @property
    def local_rank(self) -> int:
        return self.strategy.local_rank

    @property
    def node_rank(self) -> int:
        return self.strategy.node_rank

    @property
    def world_size(self) -> int:
        return self.strategy.world_size

    @property
    def num_devices(self) -> int:
        return self.strategy.num_devices

    @property
    def num_nodes(self) -> int:
        return self.strategy.num_nodes

    @property
    def is_global_zero(self) -> bool:
        return self.strategy.is_global_zero

    @property
    def distributed_sampler_kwargs(self) -> dict[str, int] | None:
        """Lightning's ``num_replicas``/``rank`` for a user-made ``DistributedSampler`` (``None``: one process)."""
        if not self.strategy.distributed:
            return None
        return {"num_replicas": self.strategy.world_size, "rank": self.strategy.global_rank}

    @property
    def interrupted(self) -> bool:
        return self.state.status is TrainerStatus.INTERRUPTED

    @property
    def lifecycle_state(self) -> str:
        """The lifecycle's current state path (lightcycle's addition), e.g. ``fit.train.epoch.running``."""
        return self._driver.state

    training = _StageFlag(RunningStage.TRAINING)
    sanity_checking = _StageFlag(RunningStage.SANITY_CHECKING)
    validating = _StageFlag(RunningStage.VALIDATING)
    testing = _StageFlag(RunningStage.TESTING)
    predicting = _StageFlag(RunningStage.PREDICTING)

    @property
    def evaluating(self) -> bool:
        stage = self.state.stage
        return stage is not None and stage.evaluating

    def _set_stage(self, stage: RunningStage, value: bool) -> None:
        if value:
            self.state.stage = stage
        elif self.state.stage is stage:
            self.state.stage = None


def _same_value(a: Any, b: Any) -> bool:
    """Equal hyper-parameter values, tensors compared element-wise (Lightning's ``_compare``)."""
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and bool(torch.equal(a, b))
    return bool(a == b)


def _module_base() -> type[LightningModule]:
    from lightcycle.core.module import LightningModule

    return LightningModule


def _finish() -> Trigger:
    from lightcycle.states.declaration import FINISH

    return FINISH


def _reorder(callbacks: Iterable[Callback]) -> list[Callback]:
    """Lightning's ``_reorder_callbacks``: checkpoint callbacks last, order kept otherwise."""
    items = list(callbacks)
    return [c for c in items if not is_checkpoint(c)] + [c for c in items if is_checkpoint(c)]


def _check_state_keys(callbacks: Sequence[Callback]) -> None:
    seen: dict[str, Callback] = {}
    for cb in callbacks:
        if not is_overridden("state_dict", cb, hook_base(cb, Callback)):
            continue
        if cb.state_key in seen:
            raise RuntimeError(
                f"Found more than one stateful callback of type `{type(cb).__name__}` with state_key "
                f"{cb.state_key!r}. Their checkpointed states would overwrite each other. Give each instance a "
                "unique `state_key` (override the property, e.g. with `self._generate_state_key(...)`)."
            )
        seen[cb.state_key] = cb


def _print_results(results: list[dict[str, float]], verb: str) -> None:
    for i, metrics in enumerate(results):
        if not metrics:
            continue
        title = f"{verb} metric" + (f" (dataloader {i})" if len(results) > 1 else "")
        width = max([len(title)] + [len(k) for k in metrics])
        print(f"{title:<{width}}  value")
        for key, value in metrics.items():
            print(f"{key:<{width}}  {value:.6g}")


def _select_strategy(
    strategy: Any,
    device: torch.device,
    accelerator: str,
    devices: Any,
    num_nodes: int,
    sync_batchnorm: bool,
    use_distributed_sampler: bool,
) -> Strategy:
    from lightcycle.orchestrator.config import _cpu_cores
    from lightcycle.strategies.select import device_ids, select

    ids = device_ids(device.type, devices, _cpu_cores(devices) if device.type == "cpu" else 1)
    return select(strategy, device, ids, num_nodes, bool(sync_batchnorm), bool(use_distributed_sampler))
