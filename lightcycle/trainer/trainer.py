"""``lightcycle.Trainer``: Lightning's Trainer API on the declared lifecycle.

The Trainer checks its arguments and resolves its settings; the run's state (``trainer.state``,
counters, callbacks, optimizers, metrics, loggers) and the attributes callbacks read are its
:class:`~lightcycle.runtime.host.RunHost`'s, shared with
:class:`~lightcycle.custom_loop.LoopDriver`; the loops themselves live in
:mod:`lightcycle.trainer.loops`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import attrs
import torch

from lightcycle._foreign import hook_base, is_kind, refuse_lightning_module
from lightcycle._hooks import is_base_hook, is_overridden
from lightcycle.callbacks.callback import Callback
from lightcycle.callbacks.monitoring import is_checkpoint
from lightcycle.errors import InvalidTypeError, MisconfigurationException
from lightcycle.profilers import Profiler, select_profiler
from lightcycle.runtime import preflight, steps
from lightcycle.runtime.data import as_loader_list
from lightcycle.runtime.host import RunHost
from lightcycle.runtime.progress import FitLoopProgress
from lightcycle.states.declaration import EVAL_OF_ENTRY, EVAL_OF_KIND, LIFECYCLE
from lightcycle.states.model import Lifecycle, Trigger
from lightcycle.states.stages import TrainerFn, TrainerStatus
from lightcycle.strategies.strategy import Strategy
from lightcycle.trainer import flags, loops
from lightcycle.trainer.config import resolve

if TYPE_CHECKING:
    from lightcycle.core.datamodule import LightningDataModule
    from lightcycle.core.module import LightningModule

__all__ = ["FitLoopProgress", "Trainer"]


class Trainer(RunHost):
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
        profiler: Profiler | str | None = None,
        max_time: str | timedelta | dict[str, int] | None = None,
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
                profiler=profiler,
            ),
        )
        logger = opted["logger"]
        self._barebones = bool(barebones)
        self._max_time = max_time  # a Timer in _initial_callbacks
        self._fast_dev_run, loop_args = flags.fast_dev_run(
            fast_dev_run,
            dict(
                max_epochs=flags.default_max_epochs(max_epochs, max_steps, max_time, callbacks),
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
        chosen_profiler = select_profiler(profiler)  # an unknown name fails here, before anything runs
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
        chosen = _select_strategy(
            strategy, self._cfg.device, accelerator, devices, num_nodes, sync_batchnorm, use_distributed_sampler
        )
        self._cfg = attrs.evolve(self._cfg, device=chosen.root_device)  # DDP on CUDA: this rank's device
        if self._cfg.deterministic:
            torch.use_deterministic_algorithms(True, warn_only=self._cfg.deterministic == "warn")
        super().__init__(
            self._initial_callbacks(callbacks),
            logger,
            FitLoopProgress(
                max_epochs=self._cfg.max_epochs,
                min_epochs=self._cfg.min_epochs,
                max_steps=self._cfg.max_steps,
                min_steps=self._cfg.min_steps,
            ),
            chosen,
            self._cfg.precision_plugin,
            lifecycle if lifecycle is not None else LIFECYCLE,
            checked,
        )
        self.profiler = chosen_profiler
        if self._fast_dev_run:
            self.loggers = flags.dummy_loggers(self.loggers)  # Lightning: logging is suppressed
        self.accumulate_grad_batches = self._cfg.accumulate_grad_batches  # a callback may change it
        self._eval_loaders: dict[str, list[Any]] = {}
        self.val_check_batch: int | float = float("inf")
        self._val_has_run = False  # a (non-sanity) validation batch ran in the last validation run
        self._explicit: dict[str, Any] = {}
        self._eval_last_outputs: list[dict[str, float]] = []

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
        out += flags.timer_callbacks(self._max_time, out)  # Lightning: after the checkpoint, before the bar
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
        step = EVAL_OF_ENTRY[fn.value].step_hook
        if not is_overridden(step, model, _module_base()):
            raise MisconfigurationException(
                f"No `{step}()` method defined to run `Trainer.{fn.value}`. "
                f"Implement `{step}` in {type(model).__name__}."
            )
        self._check_eval_source(EVAL_OF_ENTRY[fn.value].kind)
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
                if self.accumulate_grad_batches != 1:
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
            contexts={"configure_model": self._module_init_context},
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
        self.profiler.describe()  # Lightning: the report after the teardown hooks and the loggers' finalize
        return result

    def _setup_environment(self) -> None:
        """The declared ``setup_environment`` action: the process group exists before ``prepare_data``."""
        self.strategy.setup_environment()
        fn = self.state.fn
        if fn is not None:  # (None only when events are fired by hand, outside an entry point)
            self.profiler._lightning_module = self.lightning_module  # the PyTorch profiler's, as Lightning
            local_rank = self.local_rank if self.world_size > 1 else None
            self.profiler.setup(stage=fn.value, local_rank=local_rank, log_dir=self.log_dir)

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
        step = EVAL_OF_KIND[kind].step_hook
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

    def _load_eval_loaders(self, kind: str, sanity: bool) -> tuple[list[Any], list[int | float]]:
        value = self._driver.fire(EVAL_OF_KIND[kind].loader)
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
        per_epoch = -(-batches // self.accumulate_grad_batches)  # ceil
        total = per_epoch * self._cfg.max_epochs if self._cfg.max_epochs != -1 else float("inf")
        if self._cfg.max_steps != -1:
            return min(total, self._cfg.max_steps)
        return total

    @property
    def _logger_connector(self) -> Any:
        # What Lightning's own LearningRateMonitor reads (a callback built on Lightning's classes).
        from lightcycle.runtime.surface import LoggerConnectorView

        return LoggerConnectorView(self)


def _module_base() -> type[LightningModule]:
    from lightcycle.core.module import LightningModule

    return LightningModule


def _finish() -> Trigger:
    from lightcycle.states.declaration import FINISH

    return FINISH


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
    from lightcycle.strategies.select import device_ids, select
    from lightcycle.trainer.config import _cpu_cores

    ids = device_ids(device.type, devices, _cpu_cores(devices) if device.type == "cpu" else 1)
    return select(strategy, device, ids, num_nodes, bool(sync_batchnorm), bool(use_distributed_sampler))
