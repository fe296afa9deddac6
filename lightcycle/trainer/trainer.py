"""``lightcycle.Trainer``: Lightning's Trainer API on the declared lifecycle.

The Trainer checks its arguments and resolves its settings; the run's state (``trainer.state``,
counters, callbacks, optimizers, metrics, loggers) and the attributes callbacks read are its
:class:`~lightcycle.runtime.host.RunHost`'s, shared with
:class:`~lightcycle.custom_loop.LoopDriver`; the loops themselves are
objects of :mod:`lightcycle.trainer.loops` (``fit_loop``, ``validate_loop``, ``test_loop``,
``predict_loop``), built once here, each owning its progress.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Any

import attrs
import torch

import lightcycle.trainer.flags as flags  # the module, not an attribute of the half-built package
from lightcycle._foreign import hook_base, is_kind
from lightcycle._hooks import is_base_hook, is_overridden
from lightcycle.callbacks.callback import Callback
from lightcycle.core.datamodule import LightningDataModule
from lightcycle.core.module import LightningModule
from lightcycle.core.optim import LightningOptimizer, resolve_optimizers
from lightcycle.errors import MisconfigurationException
from lightcycle.loggers.logger import Logger
from lightcycle.plugins.io import CheckpointIO
from lightcycle.precision import Precision
from lightcycle.profilers import Profiler, select_profiler
from lightcycle.runtime import preflight, steps
from lightcycle.runtime.host import RunHost
from lightcycle.runtime.prepare_data import prepare_data_defined
from lightcycle.runtime.surface import LoggerConnectorView
from lightcycle.states.declaration import EVAL, EVAL_OF_ENTRY, EVAL_OF_KIND, FINISH, LIFECYCLE
from lightcycle.states.model import Lifecycle
from lightcycle.states.stages import TrainerFn, TrainerStatus
from lightcycle.strategies.environment import ClusterEnvironment
from lightcycle.strategies.select import device_ids, select
from lightcycle.strategies.strategy import Strategy
from lightcycle.trainer.callback_connector import initial_callbacks
from lightcycle.trainer.config import _cpu_cores, resolve
from lightcycle.trainer.configuration_validator import check_entry
from lightcycle.trainer.loops import EvaluationLoop, FitLoop, PredictionLoop, load_loaders, print_results

__all__ = ["Trainer"]


_PLUGIN_INPUT = Precision | CheckpointIO | ClusterEnvironment
"""What ``Trainer(plugins=...)`` takes, one or a list (Lightning's ``_PLUGIN_INPUT``, less its layer syncs):
annotated so that LightningCLI builds plugins from a ``class_path``."""


class Trainer(RunHost):
    """Runs a LightningModule through fit, validate, test and predict.

    Takes Lightning 2.6's arguments with their meaning and defaults (see the README's
    "Trainer arguments" table). Arguments lightcycle does not support raise a clear
    error naming them. Two arguments are lightcycle's own:

    Args:
        lifecycle: the lifecycle to follow (default: :data:`lightcycle.states.LIFECYCLE`);
            pass an extended copy to add custom events.
        checked: prove every step the run takes (and every event it refuses) against the
            ``transitions`` machine built from the declaration, before the step first runs,
            and fail on any disagreement; free per batch (the proven functions are the
            unchecked ones). ``None`` (the default) is on unless the environment variable
            ``LIGHTCYCLE_CHECKED=0`` turns it off; ``False`` turns it off for this Trainer.
    """

    def __init__(
        self,
        *,
        accelerator: str = "auto",
        devices: Any = "auto",
        callbacks: Callback | Sequence[Callback] | None = None,
        logger: Logger | Iterable[Logger] | bool | None = None,
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
        plugins: _PLUGIN_INPUT | list[_PLUGIN_INPUT] | None = None,
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
        chosen_profiler = select_profiler(profiler)  # an unknown name fails here, before anything runs
        self.reload_dataloaders_every_n_epochs = flags.reload_every(reload_dataloaders_every_n_epochs)
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
            strategy,
            self._cfg.device,
            accelerator,
            devices,
            num_nodes,
            sync_batchnorm,
            use_distributed_sampler,
            self._cfg.cluster_environment,
        )
        self._cfg = attrs.evolve(self._cfg, device=chosen.root_device)  # DDP on CUDA: this rank's device
        if self._cfg.checkpoint_io is not None:
            chosen.checkpoint_io = self._cfg.checkpoint_io  # Lightning: the plugin replaces the strategy's
        if self._cfg.deterministic:
            torch.use_deterministic_algorithms(True, warn_only=self._cfg.deterministic == "warn")
        super().__init__(
            initial_callbacks(
                callbacks,
                checkpointing=self._cfg.enable_checkpointing,
                progress_bar=self._cfg.enable_progress_bar,
                model_summary=self._cfg.enable_model_summary,
                max_time=max_time,
            ),
            logger,
            FitLoop(
                self,
                max_epochs=self._cfg.max_epochs,
                min_epochs=self._cfg.min_epochs,
                max_steps=self._cfg.max_steps,
                min_steps=self._cfg.min_steps,
                detect_anomaly=flags.check_detect_anomaly(detect_anomaly),
            ),
            chosen,
            self._cfg.precision_plugin,
            lifecycle if lifecycle is not None else LIFECYCLE,
            checked,
        )
        self.profiler = chosen_profiler
        if self._fast_dev_run:
            self.loggers = flags.dummy_loggers(self.loggers)  # Lightning: logging is suppressed
        self.fit_loop: FitLoop
        self.validate_loop = EvaluationLoop(self, EVAL["validation"])
        self.test_loop = EvaluationLoop(self, EVAL["test"])
        self.predict_loop = PredictionLoop(self)
        self.accumulate_grad_batches = self._cfg.accumulate_grad_batches  # a callback may change it
        self._explicit: dict[str, Any] = {}  # the loaders passed to the entry point, by kind

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
        if is_kind(train_dataloaders, LightningDataModule, "LightningDataModule"):
            datamodule, train_dataloaders = train_dataloaders, None
        self._begin(TrainerFn.FITTING, model, datamodule, {"train": train_dataloaders, "val": val_dataloaders})
        ckpt = self._checkpoints.resolve_path(ckpt_path, TrainerFn.FITTING)
        self.should_stop = False
        self._run(lambda: self.fit_loop.run(ckpt))

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
        if is_kind(dataloaders, LightningDataModule, "LightningDataModule"):
            datamodule, dataloaders = dataloaders, None
        provided = model is not None
        model = self._model_or_current(model, "predict")
        self._begin(TrainerFn.PREDICTING, model, datamodule, {"predict": dataloaders})
        self._check_eval_source("predict")
        ckpt = self._checkpoints.resolve_path(ckpt_path, TrainerFn.PREDICTING, model_provided=provided)
        out = self._run(lambda: self.predict_loop.run_entry(TrainerFn.PREDICTING, ckpt))
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
        if is_kind(dataloaders, LightningDataModule, "LightningDataModule"):
            datamodule, dataloaders = dataloaders, None
        provided = model is not None
        model = self._model_or_current(model, fn.value)
        self._begin(fn, model, datamodule, {kind: dataloaders})
        step = EVAL_OF_ENTRY[fn.value].step_hook
        if not is_overridden(step, model, LightningModule):
            raise MisconfigurationException(
                f"No `{step}()` method defined to run `Trainer.{fn.value}`. "
                f"Implement `{step}` in {type(model).__name__}."
            )
        self._check_eval_source(EVAL_OF_ENTRY[fn.value].kind)
        ckpt = self._checkpoints.resolve_path(ckpt_path, fn, model_provided=provided)
        loop = self.validate_loop if fn is TrainerFn.VALIDATING else self.test_loop
        results: list[dict[str, float]] = self._run(lambda: loop.run_entry(fn, ckpt))
        if verbose and results:
            print_results(results, fn.value)
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
        given = check_entry(
            fn,
            model,
            datamodule,
            loaders,
            running=self.state.status is TrainerStatus.RUNNING,
            accumulate_grad_batches=self.accumulate_grad_batches,
            gradient_clip_val=self._cfg.gradient_clip_val,
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
                self._source_defines("val"), is_overridden("validation_step", model, LightningModule)
            )
            self.train_dataloader = None
            self.val_dataloaders = None
            self.num_val_batches = []
        elif fn is TrainerFn.VALIDATING:
            self.val_dataloaders = None

    def _bind(self) -> None:
        """Compile the run's hooks (at its start and after ``configure_callbacks``)."""
        skip = frozenset(f"{kind}_dataloader" for kind in self._explicit)
        skip |= self.strategy.prepare_data_skips(self.lightning_module, self.datamodule)
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
        self.strategy.sigterm_pending = False
        self._interrupted_from = None
        driver = self._driver
        strategy = self.strategy
        module = self.lightning_module
        if strategy.distributed and self.state.fn is TrainerFn.FITTING and module is not None:
            strategy.redirect_steps(module, LightningModule)
        self._bind()
        self._install_sigterm()
        try:
            # Lightning's order: the loggers, then the strategy (which drains the checkpoint writes)
            with driver.guard(teardown=(self._finalize_failed_loggers, self._teardown_internal)):
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
        driver.fire(FINISH)
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

    def _prepare_data_barrier(self) -> None:
        """The declared ``prepare_data_barrier`` action: every rank waits for local rank 0's ``prepare_data``."""
        self.strategy.prepare_data_barrier(prepare_data_defined(self.lightning_module, self.datamodule))

    def _strategy_setup(self) -> None:
        """The declared ``strategy_setup`` action (after ``configure_model``; fit: before ``configure_optimizers``)."""
        self.strategy.barrier("post_setup")
        if self.lightning_module is not None:  # Lightning's strategy.setup: convert, then move (and wrap)
            self.precision_plugin.convert_module(self.lightning_module)
        self.strategy.setup(fitting=self.state.fn is TrainerFn.FITTING)

    def _teardown_internal(self) -> None:
        """Lightning's strategy teardown: unwrap and release the device, as before on_fit_end."""
        self.strategy.teardown()

    def _finalize_failed_loggers(self) -> None:
        self._finalize_loggers("failed")

    def _configure_optimizers(self, returned: Any) -> None:
        module = self.lightning_module
        assert module is not None
        optimizers, schedulers = resolve_optimizers(module, returned)
        self.lr_scheduler_configs = schedulers
        self.optimizers = optimizers  # (wrapped by the setter)

    def _wrap_optimizers(self, optimizers: list[torch.optim.Optimizer]) -> list[LightningOptimizer]:
        module = self.lightning_module
        assert module is not None
        return steps.wrap_optimizers(
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
        if kind in self._explicit:
            return True
        source = self._source()
        base = hook_base(self.datamodule, LightningDataModule) if self.datamodule is not None else LightningModule
        return is_overridden(f"{kind}_dataloader", source, base)

    def _check_eval_source(self, kind: str) -> None:
        """Refuse validate/test/predict without a loader of its kind, as Lightning does (before any hook)."""
        base = hook_base(self.datamodule, LightningDataModule) if self.datamodule is not None else LightningModule
        limit = getattr(self._cfg, f"limit_{kind}_batches")
        preflight.check_loaders_defined(kind, self._source(), base, kind in self._explicit, limit)

    def _eval_loop_states(self) -> dict[str, dict[str, Any]]:
        """The evaluation loops' entries of a checkpoint's ``loops``."""
        loops = (
            ("validate_loop", self.validate_loop),
            ("test_loop", self.test_loop),
            ("predict_loop", self.predict_loop),
        )
        return {name: loop.state_dict() for name, loop in loops}

    def _eval_enabled(self, kind: str) -> bool:
        step = EVAL_OF_KIND[kind].step_hook
        limit = getattr(self._cfg, f"limit_{kind}_batches")
        if kind == "predict":
            return self._source_defines(kind) and limit > 0
        return self._source_defines(kind) and is_overridden(step, self.lightning_module, LightningModule) and limit > 0

    @property
    def enable_validation(self) -> bool:
        """Whether validation runs during fit (a val source, ``validation_step``, a non-zero limit)."""
        return self.lightning_module is not None and self._eval_enabled("val")

    def _loader_preparer(self) -> Any:
        """Under several processes, the strategy's loader step (barrier, DistributedSampler); else None."""
        strategy = self.strategy
        if not strategy.distributed:
            return None
        fn = self.state.fn.value if self.state.fn is not None else "fit"
        return lambda loader, kind: strategy.process_dataloader(loader, kind, fn)

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
    def val_check_batch(self) -> int | float:
        """Batches between two validations in an epoch (``inf``: at its end); the epoch loop's."""
        return self.fit_loop.epoch_loop.val_check_batch

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
            _, counts = load_loaders(source, "train", self._cfg.limit_train_batches, "limit_train_batches")
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
    def _logger_connector(self) -> LoggerConnectorView:
        # What Lightning's own LearningRateMonitor reads (a callback built on Lightning's classes).
        return LoggerConnectorView(self)


def _select_strategy(
    strategy: Any,
    device: torch.device,
    accelerator: str,
    devices: Any,
    num_nodes: int,
    sync_batchnorm: bool,
    use_distributed_sampler: bool,
    cluster_environment: ClusterEnvironment | None,
) -> Strategy:
    ids = device_ids(device.type, devices, _cpu_cores(devices) if device.type == "cpu" else 1)
    return select(
        strategy, device, ids, num_nodes, bool(sync_batchnorm), bool(use_distributed_sampler), cluster_environment
    )
