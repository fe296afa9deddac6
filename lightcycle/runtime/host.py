"""The run host: the state and the trainer attributes both front ends share.

:class:`~lightcycle.Trainer` and :class:`~lightcycle.custom_loop.LoopDriver` are both a
:class:`RunHost`: it holds what a run needs whoever drives it (the bound lifecycle driver,
the fit loop's progress, the metric store, the loggers, the checkpoint connector, SIGTERM
handling) and the attributes callbacks read (``current_epoch``, ``global_step``,
``callback_metrics``, ``state`` flags, ...), with Lightning's meaning. A subclass says
where its run starts and which settings it has (``default_root_dir``,
``log_every_n_steps``, how to compile the run's hooks); nothing here knows which front
end it serves.
"""

from __future__ import annotations

import abc
import contextlib
import os
import signal
import threading
import warnings
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import torch

from lightcycle._foreign import hook_base, is_kind
from lightcycle._hooks import is_overridden
from lightcycle.callbacks.callback import Callback
from lightcycle.callbacks.early_stopping import EarlyStopping
from lightcycle.callbacks.monitoring import Checkpoint, is_checkpoint
from lightcycle.callbacks.progress import ProgressBar
from lightcycle.core.metric_store import MetricStore
from lightcycle.engine.driver import LifecycleDriver
from lightcycle.errors import MisconfigurationException
from lightcycle.plugins.io import AsyncCheckpointIO, accepts_storage_options, no_storage_options
from lightcycle.profilers.profiler import PassThroughProfiler, Profiler
from lightcycle.runtime import logger_connector
from lightcycle.runtime.checkpointing import CheckpointConnector
from lightcycle.runtime.progress import FitLoopProgress
from lightcycle.states.declaration import BACKWARD
from lightcycle.states.model import Lifecycle
from lightcycle.states.stages import RunningStage, TrainerState, TrainerStatus
from lightcycle.strategies.strategy import Strategy

if TYPE_CHECKING:
    from lightcycle.core.datamodule import LightningDataModule
    from lightcycle.core.module import LightningModule
    from lightcycle.core.optim import LightningOptimizer, LRSchedulerConfig
    from lightcycle.precision import Precision

__all__ = ["RunHost", "check_state_keys", "env_checked", "reorder_callbacks"]


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


def env_checked() -> bool:
    """Whether checked mode is on: the default; ``LIGHTCYCLE_CHECKED=0`` turns it off (any other value keeps it)."""
    return os.environ.get("LIGHTCYCLE_CHECKED", "") != "0"


def reorder_callbacks(callbacks: Iterable[Callback]) -> list[Callback]:
    """Lightning's ``_reorder_callbacks``: checkpoint callbacks last, order kept otherwise."""
    items = list(callbacks)
    return [c for c in items if not is_checkpoint(c)] + [c for c in items if is_checkpoint(c)]


def check_state_keys(callbacks: Sequence[Callback]) -> None:
    """Refuse two stateful callbacks with one ``state_key`` (their checkpointed states would collide).

    Raises:
        RuntimeError: two callbacks that define ``state_dict`` share a ``state_key``.
    """
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


def _same_value(a: Any, b: Any) -> bool:
    """Equal hyper-parameter values, tensors compared element-wise (Lightning's ``_compare``)."""
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and bool(torch.equal(a, b))
    return bool(a == b)


class RunHost(abc.ABC):
    """What a run needs and what callbacks read, for the Trainer and for LoopDriver alike.

    Args:
        callbacks: the callbacks, already checked (they are reordered here: checkpoints last).
        logger: the ``logger`` argument (``None`` or ``True``: Lightning's default logger).
        fit_loop: the fit loop's progress, with its limits.
        strategy: the strategy (``strategy.root_device``: where the run's batches go).
        precision: the precision plugin (the strategy carries it as well).
        lifecycle: the declaration to follow.
        checked: prove every step against the ``transitions`` machine (``None``: on unless
            ``LIGHTCYCLE_CHECKED=0``).
    """

    def __init__(
        self,
        callbacks: Sequence[Callback],
        logger: Any,
        fit_loop: FitLoopProgress,
        strategy: Strategy,
        precision: Precision,
        lifecycle: Lifecycle,
        checked: bool | None,
    ) -> None:
        self.state = TrainerState()
        self._accumulate_grad_batches = 1
        self.callbacks: list[Callback] = reorder_callbacks(callbacks)
        check_state_keys(self.callbacks)
        self.loggers: list[Any] = self._make_loggers(logger)
        self._eval_steps = logger_connector.EvalSteps()
        self.should_stop = False
        self.received_sigterm = False
        self.fit_loop = fit_loop
        self.strategy = strategy
        self.precision_plugin = precision
        strategy.precision_plugin = precision
        self.lightning_module: LightningModule | None = None
        self.datamodule: LightningDataModule | None = None
        self._optimizers: list[torch.optim.Optimizer] = []
        self.lr_scheduler_configs: list[LRSchedulerConfig] = []
        self._lightning_optimizers: list[LightningOptimizer] = []
        self.train_dataloader: Any = None
        self.val_dataloaders: Any = None
        self.test_dataloaders: Any = None
        self.predict_dataloaders: Any = None
        self.num_training_batches: int | float = float("inf")
        self.num_val_batches: list[int | float] = []
        self.num_sanity_val_batches: list[int | float] = []
        self.num_test_batches: list[int | float] = []
        self.num_predict_batches: list[int | float] = []
        self.ckpt_path: str | None = None
        self._interrupted_from: str | None = None  # the state an exception interrupted (for on_exception checkpoints)
        self._current_dataloader_idx: int | None = None
        self._warned: set[str] = set()
        self._sigterm_previous: Any = None
        self._results = MetricStore()
        self._checkpoints = CheckpointConnector(self)
        self.profiler: Profiler = PassThroughProfiler()  # a front end sets its own; read at each bind
        self._driver = LifecycleDriver(self, lifecycle, checked=env_checked() if checked is None else checked)

    # ------------------------------------------------------------------ what a front end supplies

    @property
    @abc.abstractmethod
    def default_root_dir(self) -> str:
        """Where default loggers and checkpoints write."""

    @property
    @abc.abstractmethod
    def log_every_n_steps(self) -> int:
        """Training steps between two step-metric logs."""

    @property
    @abc.abstractmethod
    def fast_dev_run(self) -> int | bool:
        """Lightning's ``fast_dev_run`` flag (callbacks skip their work under it)."""

    @property
    @abc.abstractmethod
    def val_check_interval(self) -> int | float:
        """How often validation runs within a training epoch (a fraction, or batches)."""

    @property
    @abc.abstractmethod
    def check_val_every_n_epoch(self) -> int | None:
        """Epochs between validation runs (``None``: by batches across epochs)."""

    @property
    @abc.abstractmethod
    def enable_validation(self) -> bool:
        """Whether validation runs during fit."""

    @abc.abstractmethod
    def _wrap_optimizers(self, optimizers: list[torch.optim.Optimizer]) -> list[LightningOptimizer]:
        """A :class:`~lightcycle.core.optim.LightningOptimizer` per optimizer (its step fires the events)."""

    @property
    def optimizers(self) -> list[torch.optim.Optimizer]:
        """The run's torch optimizers (``configure_optimizers``' or the ones given)."""
        return self._optimizers

    @optimizers.setter
    def optimizers(self, optimizers: Sequence[torch.optim.Optimizer]) -> None:
        # As Lightning's setter (``Strategy.optimizers``): the new optimizers are wrapped again, so
        # ``model.optimizers()`` and the next steps use them, not the wrappers of the old ones.
        self._optimizers = list(optimizers)
        self._lightning_optimizers = self._wrap_optimizers(self._optimizers) if self._optimizers else []

    @abc.abstractmethod
    def _bind(self) -> None:
        """Compile the run's hooks into the driver (at the start of a run and after ``configure_callbacks``)."""

    # ------------------------------------------------------------------ loggers

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

    def _log_step(self, metrics: dict[str, torch.Tensor]) -> None:
        """Training step metrics of a batch that stepped, every ``log_every_n_steps`` (Lightning's rule)."""
        if self.loggers:
            logger_connector.log_train_step(self, metrics)

    def _log_train_epoch(self, metrics: dict[str, torch.Tensor]) -> None:
        logger_connector.log_train_epoch(self, metrics)

    def _log_epoch(self, metrics: dict[str, torch.Tensor]) -> None:
        """Evaluation epoch metrics (with ``epoch``, at ``batches_that_stepped``)."""
        logger_connector.send(self, metrics)

    def _warn_once(self, message: str) -> None:
        if message not in self._warned:
            self._warned.add(message)
            warnings.warn(message, UserWarning, stacklevel=3)

    # ------------------------------------------------------------------ run plumbing

    def _install_sigterm(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            self._sigterm_previous = None
            return
        previous = signal.getsignal(signal.SIGTERM)

        def handler(signum: int, frame: Any) -> None:
            if self.strategy.distributed:
                # one rank's signal: every rank acts on it at the same batch, once agreed
                # (Strategy.train_batches); acting here alone would leave the others waiting
                self.strategy.sigterm_pending = True
            else:
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
            self.callbacks = reorder_callbacks(merged)
            check_state_keys(self.callbacks)
            self._bind()

    def _saved_state(self) -> str:
        """The lifecycle state a checkpoint saved now describes: the interrupted one after an exception."""
        state = self._driver.state
        if state in ("interrupted", "idle") and self._interrupted_from is not None:
            return self._interrupted_from  # saved in on_exception, or after the interrupted run returned
        return state

    def _eval_loop_states(self) -> dict[str, dict[str, Any]]:
        """The evaluation loops' entries of a checkpoint's ``loops`` (Lightning's names; empty here)."""
        return {"validate_loop": {}, "test_loop": {}, "predict_loop": {}}

    def _should_check_val_epoch(self) -> bool:
        """Whether the current epoch validates (Lightning's ``check_val_every_n_epoch`` rule)."""
        n = self.check_val_every_n_epoch
        return self.enable_validation and (n is None or (self.current_epoch + 1) % n == 0)

    @contextlib.contextmanager
    def _module_init_context(self) -> Iterator[None]:
        """Where ``configure_model`` runs: Lightning's ``strategy.tensor_init_context`` and
        ``precision.module_init_context`` (tensors on the root device, in the precision's dtype)."""
        device = self.strategy.root_device
        with device if device is not None else contextlib.nullcontext(), self.precision_plugin.module_init_context():
            yield

    def _count_manual_step(self) -> None:
        self.fit_loop.global_step += 1
        timing = self._driver.profiling
        if timing is not None:  # Lightning's manual "optimizer_step" action ends after the real step
            timing.manual_step_done()

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

    def save_checkpoint(
        self, filepath: str | os.PathLike[str], weights_only: bool | None = False, storage_options: Any = None
    ) -> None:
        """Write a checkpoint of the current state to ``filepath``.

        Through ``trainer.strategy.checkpoint_io``: by default the file is written atomically
        (a temporary file in the same folder, flushed, fsynced, then renamed), so an existing
        checkpoint at ``filepath`` is replaced by a whole new one or stays as it was; with
        ``AsyncCheckpointIO`` it is written in the background during a run, and before this
        returns when called outside one (after ``fit``). Contents and resume guarantees:
        ``docs/checkpoints.md``.

        Args:
            filepath: where to write (its folder is created).
            weights_only: only the weights, progress and hyper-parameters (no optimizer,
                scheduler or callback states; cannot resume a fit).
            storage_options: passed to the checkpoint IO plugin; only a custom one
                (``Trainer(plugins=[MyCheckpointIO()])``) takes them.

        Raises:
            AttributeError: no module is attached yet (Lightning's message).
            TypeError: ``storage_options`` with the default plugin (Lightning's message),
                before any hook.
        """
        if self.lightning_module is None:
            raise AttributeError(
                "Saving a checkpoint is only possible if a model is attached to the Trainer. Did you call"
                " `Trainer.save_checkpoint()` before calling `Trainer.{fit,validate,test,predict}`?"
            )
        if storage_options is not None and not accepts_storage_options(self.strategy.checkpoint_io):
            raise no_storage_options(self.strategy.checkpoint_io)
        with self.profiler.profile("save_checkpoint"):  # Lightning's action (not on the per-batch path)
            self._checkpoints.save(filepath, bool(weights_only), storage_options)
        plugin = self.strategy.checkpoint_io
        if isinstance(plugin, AsyncCheckpointIO) and self.state.status is not TrainerStatus.RUNNING:
            plugin.wait()  # called outside a run (after fit): the caller reads the file next, so it is whole

    # ------------------------------------------------------------------ attributes (spec 5)

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
    def max_epochs(self) -> int:
        """Lightning's ``fit_loop.max_epochs`` (-1: none); a callback may change it (SWA does)."""
        return self.fit_loop.max_epochs

    @property
    def min_epochs(self) -> int | None:
        return self.fit_loop.min_epochs

    @property
    def max_steps(self) -> int:
        return self.fit_loop.max_steps

    @property
    def min_steps(self) -> int | None:
        return self.fit_loop.min_steps

    @property
    def accumulate_grad_batches(self) -> int:
        """Micro-batches per optimizer step under automatic optimization."""
        return self._accumulate_grad_batches

    @accumulate_grad_batches.setter
    def accumulate_grad_batches(self, value: int) -> None:
        # Lightning's is a plain attribute; GradientAccumulationScheduler sets it at each epoch start,
        # and the epoch loop reads it after on_train_epoch_start.
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise MisconfigurationException(
                f"trainer.accumulate_grad_batches = {value!r} is invalid: expected an int >= 1."
            )
        self._accumulate_grad_batches = value

    @property
    def model(self) -> Any:
        return self.lightning_module

    @property
    def log_dir(self) -> str | None:
        """The first logger's folder (Lightning's rule: see :func:`logger_connector.log_dir`)."""
        return logger_connector.log_dir(self.loggers, self.default_root_dir)

    @property
    def logger(self) -> Any:
        return self.loggers[0] if self.loggers else None

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
        return [cb for cb in self.callbacks if is_kind(cb, EarlyStopping, "EarlyStopping")]

    @property
    def early_stopping_callback(self) -> Callback | None:
        cbs = self.early_stopping_callbacks
        return cbs[0] if cbs else None

    @property
    def progress_bar_callback(self) -> Callback | None:
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
    def is_global_zero(self) -> bool:
        return self.strategy.is_global_zero

    @property
    def num_nodes(self) -> int:
        return self.strategy.num_nodes

    @property
    def distributed_sampler_kwargs(self) -> dict[str, int] | None:
        """Lightning's ``num_replicas``/``rank`` for a user-made ``DistributedSampler`` (``None``: one process)."""
        if not self.strategy.distributed:
            return None
        return {"num_replicas": self.strategy.world_size, "rank": self.strategy.global_rank}

    @property
    def precision(self) -> str:
        """The resolved precision flag, e.g. ``"32-true"`` or ``"bf16-mixed"``."""
        return self.precision_plugin.precision

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
