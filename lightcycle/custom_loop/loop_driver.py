"""Lightning's lifecycle inside your own training loop: :class:`LoopDriver`.

You keep your loop (data pipeline, forward, AMP, optimizer code); the driver fires the
lifecycle's events at the points you mark, and every callback and module hook runs as
:class:`~lightcycle.Trainer` would run it for the same schedule, with the same arguments,
the same ``trainer`` state and the same exception contract. The driver is a thin layer
over :class:`~lightcycle.engine.driver.LifecycleDriver` (the one the Trainer walks):
each method fires one or a few declared events and keeps the counters and metrics that
the Trainer keeps at the same points; nothing here names a hook.

Every call is checked against the declaration: one the lifecycle does not allow where it
is raises :class:`~lightcycle.errors.LifecycleError` (naming the state, the event and
the legal events) before anything fires or changes.

Outline (``with`` scopes are shorthand for the ``begin``/``*_start``/``*_end`` calls)::

    lc = LoopDriver(model, callbacks=[...])
    with lc.fit(optimizers=[opt]):            # fit, setup, configure_optimizers, on_fit_start
        with lc.sanity_check():               # optional: on_sanity_check_start + a validation run
            ...validation batches...
        for epoch in lc.epochs(max_epochs):   # on_train_start once; on_train_epoch_start/_end
            for i, batch in enumerate(loader):
                batch = lc.train_batch_start(batch, i)    # transfer + on_train_batch_start
                if batch is None: break                   # the module asked to end the epoch
                loss = ...                                # your forward
                lc.backward(loss)                         # on_before_backward, backward, on_after_backward
                lc.optimizer_step(opt)                    # on_before_optimizer_step, opt.step()
                lc.train_batch_end(loss)                  # on_train_batch_end
            with lc.validation():                         # on_validation_start ... _end
                for i, batch in enumerate(val_loader):
                    batch = lc.validation_batch_start(batch, i)
                    lc.validation_batch_end(...)
    # leaving the block: on_train_end, on_fit_end, teardown

Which step runs. When the module defines the step (``training_step``,
``validation_step``, ...), call ``lc.training_step()`` (or ``lc.train_batch(batch, i)``)
and the module's step runs under Lightning's rules (automatic or manual optimization).
When it does not, the code between ``*_batch_start`` and ``*_batch_end`` *is* the step:
for training that is Lightning's manual optimization, so ``backward`` and
``optimizer_step`` fire the same hooks a manual-optimization module fires through
``manual_backward`` and ``opt.step()``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Any, cast

import torch

from lightcycle._foreign import is_kind
from lightcycle._hooks import is_overridden
from lightcycle.callbacks.callback import Callback
from lightcycle.custom_loop.distributed import DistributedSteps, begin_distributed, make_strategy, processed
from lightcycle.errors import LifecycleError, MisconfigurationException, SIGTERMException
from lightcycle.precision import Precision, resolve_precision
from lightcycle.runtime import steps
from lightcycle.runtime.data import set_sampler_epoch
from lightcycle.runtime.evaluation import EvalRun
from lightcycle.runtime.host import RunHost
from lightcycle.runtime.progress import FitLoopProgress
from lightcycle.runtime.rng import isolate_rng
from lightcycle.runtime.training import SKIPPED, TrainBatch
from lightcycle.states import declaration as ev
from lightcycle.states.declaration import LIFECYCLE
from lightcycle.states.model import Lifecycle, Trigger
from lightcycle.states.stages import RunningStage, TrainerFn, TrainerStatus

if TYPE_CHECKING:
    from lightcycle.core.datamodule import LightningDataModule
    from lightcycle.core.module import LightningModule

__all__ = ["LoopDriver"]

# Per-batch events, bound once (the hot path looks nothing up by name).
_OWN_STEP = ev.MANUAL_TRAINING_STEP
_BACKWARD = ev.BACKWARD
_OWN_OPT_STEP = ev.MANUAL_OPTIMIZER_STEP
_VAL = ev.EVAL["validation"]
_TEST = ev.EVAL["test"]
_PREDICT = ev.EVAL["predict"]

_LOG_FX = {
    # stage -> (fx inside a batch, fx between batches): what ``lc.log`` logs as
    RunningStage.TRAINING: ("training_step", "on_train_epoch_end"),
    RunningStage.SANITY_CHECKING: (_VAL.step_hook, _VAL.epoch_end_hook),
    **{e.stage: (e.step_hook, e.epoch_end_hook) for e in ev.EVAL.values()},
}


class _Epochs:
    """``for epoch in lc.epochs(n)``: ends the previous epoch and starts the next on each step."""

    __slots__ = ("_done", "_lc", "_started")

    def __init__(self, lc: LoopDriver) -> None:
        self._lc = lc
        self._started = False
        self._done = False

    def __iter__(self) -> _Epochs:
        return self

    def __next__(self) -> int:
        if self._done:
            raise StopIteration
        lc = self._lc
        can_fire = lc._driver.can_fire
        if self._started:
            if can_fire(ev.TRAIN_EPOCH_END):
                lc.train_epoch_end()
        else:
            self._started = True
            if can_fire(ev.TRAIN_DATALOADER) and not can_fire(ev.TRAIN_EPOCH_START):  # (between epochs: a reload)
                lc._load_train()
        if lc._fit_done():
            self._done = True
            if can_fire(ev.TRAIN_END):
                lc.train_end()
            raise StopIteration
        lc.train_epoch_start()
        return lc.current_epoch


class LoopDriver(DistributedSteps, RunHost):
    """The lifecycle of fit, validate, test and predict, driven from your own loop.

    It is also the ``trainer`` every callback receives: ``current_epoch``,
    ``global_step``, ``state`` (fn, stage, status), ``sanity_checking``,
    ``should_stop``, ``callback_metrics`` and the other attributes callbacks read mean
    what they mean on :class:`~lightcycle.Trainer` (both are a
    :class:`~lightcycle.runtime.host.RunHost`). ``lc.should_stop`` set by a callback (EarlyStopping) ends
    :meth:`epochs`.

    Args:
        module: the :class:`~lightcycle.LightningModule` (a plain ``nn.Module`` only needs
            to subclass it; ``forward`` is enough). Callbacks receive it as ``pl_module``.
        callbacks: callbacks, in dispatch order (checkpoint callbacks are moved last).
        datamodule: a datamodule whose hooks (setup, teardown, batch transfer, ...) run too.
        lifecycle: the declaration to follow; pass ``LIFECYCLE.extend(...)`` to add
            your own events (see :meth:`fire`).
        device: where the batch-transfer hook moves batches (default: the module's
            device at the start of each run).
        accumulate_grad_batches: micro-batches per optimizer step for
            :meth:`training_step` under automatic optimization.
        gradient_clip_val: passed to ``configure_gradient_clipping`` (automatic optimization).
        gradient_clip_algorithm: passed to ``configure_gradient_clipping``.
        inference_mode: the evaluation scopes run under ``torch.inference_mode()`` (else
            ``torch.no_grad()``), as the Trainer's evaluation loops do.
        logger: as the Trainer's ``logger`` (``True`` or ``None``: Lightning's default
            logger under :attr:`default_root_dir`, a TensorBoardLogger when ``tensorboard``
            is installed, else a CSVLogger; an object with ``log_metrics``, or a list), except
            that the default is ``False``: no logger, no files. Loggers get what the
            Trainer sends them at the same points: hyper-parameters when a run opens, step
            metrics of batches that stepped the optimizer every :attr:`log_every_n_steps`
            of them, evaluation step metrics, epoch metrics, and ``finalize``.
        precision: as the Trainer's ``precision`` (``"bf16-mixed"``, ``"16-mixed"``, ...), or a
            :class:`lightcycle.precision.Precision` plugin: the steps run in its context, the
            batch and the module are converted, the loss is scaled and the optimizers step
            through the scaler (``"16-mixed"`` on CPU is ``"bf16-mixed"``, as in Lightning; the
            autocast device is ``device``'s type, default CPU).
        checked: run the ``transitions`` machine in lockstep (tests; default from the
            environment variable ``LIGHTCYCLE_CHECKED``).
        strategy: ``None`` (one device), or ``"ddp"`` / a ``DDPStrategy``: one process per
            device, started by re-running the script or by torchrun/SLURM, as the Trainer's
            (see ``docs/distributed.md``).
        devices: processes (CPU) or CUDA devices per node, with a distributed strategy.
        num_nodes: nodes in the job.

    Raises:
        TypeError: ``module`` is not a LightningModule, or a callback is not a Callback.
        MisconfigurationException: ``logger`` has no ``log_metrics``.
    """

    # Lightning settings a custom loop does not have; callbacks read them (EarlyStopping
    # checks at on_train_epoch_end when validation runs every epoch). Assign to change.
    fast_dev_run = False
    barebones = False
    overfit_batches = 0.0
    val_check_interval: int | float = 1.0
    check_val_every_n_epoch: int | None = 1
    log_every_n_steps = 50
    default_root_dir = "."
    lightning_module: LightningModule  # given at construction, never None

    def __init__(
        self,
        module: LightningModule,
        callbacks: Callback | Sequence[Callback] | None = None,
        *,
        datamodule: LightningDataModule | None = None,
        lifecycle: Lifecycle | None = None,
        device: torch.device | str | None = None,
        accumulate_grad_batches: int = 1,
        gradient_clip_val: float | None = None,
        gradient_clip_algorithm: str | None = None,
        inference_mode: bool = True,
        logger: Any = False,
        precision: Any = None,
        checked: bool | None = None,
        strategy: Any = None,
        devices: int = 1,
        num_nodes: int = 1,
    ) -> None:
        from lightcycle.core.module import LightningModule

        if not isinstance(module, LightningModule):
            raise TypeError(
                f"LoopDriver(module=...) must be a lightcycle.LightningModule, got {type(module).__name__}. "
                "Subclass lightcycle.LightningModule instead of torch.nn.Module (forward is all it needs)."
            )
        # A single callback (lightcycle's or one built on Lightning's class), or a sequence of them.
        given: list[Callback] = (
            [cast(Callback, callbacks)] if is_kind(callbacks, Callback, "Callback") else list(callbacks or ())  # type: ignore[arg-type]
        )
        for cb in given:
            if not is_kind(cb, Callback, "Callback"):
                raise TypeError(
                    f"LoopDriver(callbacks=...) got {type(cb).__name__}, which is not a Callback. "
                    "Subclass lightcycle.Callback (or Lightning's Callback)."
                )
        if accumulate_grad_batches < 1:
            raise MisconfigurationException(
                f"LoopDriver(accumulate_grad_batches={accumulate_grad_batches}) is invalid: expected an int >= 1."
            )
        self._device_arg = torch.device(device) if device is not None else None
        self._device = self._device_arg if self._device_arg is not None else torch.device("cpu")
        # No limits until lc.epochs(...) sets them; ckpt_path stays None: a custom loop restores its
        # own state, so no checkpoint needs protecting from pruning.
        plugin: Precision = (
            precision if isinstance(precision, Precision) else resolve_precision(precision, None, self._device)
        )
        super().__init__(
            given,
            logger,
            FitLoopProgress(max_epochs=-1),
            make_strategy(strategy, devices, num_nodes, self._device, module),
            plugin,
            lifecycle if lifecycle is not None else LIFECYCLE,
            checked,
        )
        self.lightning_module = module
        self.strategy.lightning_module = module
        self.datamodule = datamodule
        self._automatic_step: steps.AutomaticStep | None = None
        self._step_at_batch = 0  # global_step when the current training batch started
        self._stepped_pending = False  # the last batch stepped: counted once its validation ran
        self.accumulate_grad_batches = accumulate_grad_batches
        self.gradient_clip_val = gradient_clip_val
        self.gradient_clip_algorithm = gradient_clip_algorithm
        self.inference_mode = inference_mode
        self._skip: frozenset[str] = frozenset()
        self._own_train = True
        self._own_eval: dict[str, bool] = {}
        self._val_requested = False
        self._eval: EvalRun | None = None
        self._batch: Any = None
        self._batch_idx = 0
        self._ebatch: Any = None
        self._eidx = 0
        self._edl: int | None = None
        self._fire = self._driver.fire
        self._hold_events()
        self._triggers = self._driver.table.triggers
        self._log_fx: dict[str, str] = {}

    def _bind(self) -> None:
        """Compile the run's hooks (at its start and after ``configure_callbacks``)."""
        self._driver.bind(self.lightning_module, self.callbacks, self.datamodule, skip=self._skip)

    def _hold_events(self) -> None:
        """Hold the per-batch training events' functions of the current bind (``fire`` without the lookup)."""
        caller = self._driver.caller
        p = self.precision_plugin  # wraps nothing in 32-bit
        self._bracket = TrainBatch(self, self._device)  # (the transfer through p.wrap_transfer)
        self._own_step_event = p.wrap_step(caller(_OWN_STEP), p.train_step_context)
        self._backward_event = p.wrap_backward(caller(_BACKWARD))
        self._own_opt_step_event = caller(_OWN_OPT_STEP)

    # -------------------------------------------------------------- more trainer attributes

    @property
    def device(self) -> torch.device:
        """Where batches are moved by the transfer hook in the current run."""
        return self._device

    @property
    def lifecycle(self) -> Lifecycle:
        """The declaration this driver follows."""
        return self._driver.lifecycle

    def legal(self) -> tuple[str, ...]:
        """Names of the events the lifecycle allows now."""
        return self._driver.legal()

    # -------------------------------------------------------------- runs

    def _require(self, trigger: Trigger, *more: Trigger) -> None:
        """Raise LifecycleError unless ``trigger`` (or one of ``more``) is legal now."""
        can_fire = self._driver.can_fire
        if can_fire(trigger) or any(can_fire(t) for t in more):
            return
        raise LifecycleError(self._driver.state, trigger.name, self._driver.legal())

    def _skip_hooks(self) -> frozenset[str]:
        return self._skip

    def begin(self, fn: str | TrainerFn, optimizers: Any = None) -> None:
        """Open a run: ``fit``, ``validate``, ``test`` or ``predict``.

        Fires the run's opening events as the Trainer does: ``configure_callbacks``,
        ``prepare_data``/``setup``; for fit ``configure_optimizers`` (unless
        ``optimizers`` are given) and ``on_fit_start``; for the others the dataloader
        hook and the start of the run's single evaluation loop.

        Args:
            fn: the entry point.
            optimizers: fit only: your optimizer(s). Given, the module's
                ``configure_optimizers`` is not called; omitted, its result (if the
                module defines it) becomes :attr:`optimizers` and
                :attr:`lr_scheduler_configs`.

        Raises:
            LifecycleError: a run is already open.
        """
        fn = TrainerFn(fn)
        self._begin_run(fn, optimizers)
        if fn is not TrainerFn.FITTING:
            events = ev.EVAL_OF_ENTRY[fn.value]
            self._open_eval(events, events.stage.value)

    def _begin_run(self, fn: TrainerFn, optimizers: Any) -> None:
        self._require(ev.ENTRY[fn.value])
        if optimizers is not None and fn is not TrainerFn.FITTING:
            raise MisconfigurationException(f"optimizers are for fit; {fn.value} takes none.")
        begin_distributed(self, fn is TrainerFn.FITTING)  # under DDP: the other ranks, the step redirection
        module = self.lightning_module
        self.state.fn = fn
        self.state.status = TrainerStatus.RUNNING
        self.received_sigterm = False
        self._restore_sigterm()  # (a run opened by begin() that an unguarded exception left)
        self._install_sigterm()
        module.trainer = self
        if self.datamodule is not None:
            self.datamodule.trainer = self
        self.precision_plugin.convert_module(module)
        if self.strategy.distributed:  # each rank's device comes from its rank
            self._device = self.strategy.root_device
        else:
            self._device = self._device_arg if self._device_arg is not None else _device_of(module)
            self.strategy.root_device = self._device
        self._eval = None
        self._current_dataloader_idx = None
        self._skip = self._hooks_to_skip(fn, optimizers is not None)
        self._bind()
        fire = self._fire
        self._attach_model_callbacks(fire(ev.ENTRY[fn.value]))
        self._hold_events()  # the callbacks are final now
        fire(ev.PREPARE_DATA)
        fire(ev.SETUP, fn)
        self._results.reset_run()
        self._eval_steps.reset()
        self._stepped_pending = False
        if fn is TrainerFn.FITTING:
            self.should_stop = False
            self.fit_loop = FitLoopProgress(max_epochs=-1)
            self.train_dataloader = None
            self.val_dataloaders = None
            self._val_requested = False
            returned = fire(ev.CONFIGURE_OPTIMIZERS)
            self._set_optimizers(optimizers if optimizers is not None else returned, given=optimizers is not None)
            fire(ev.FIT_START)
            self._log_hyperparameters()
            return
        self._log_hyperparameters()
        loaders = processed(self, fire(ev.EVAL_OF_ENTRY[fn.value].loader), ev.EVAL_OF_ENTRY[fn.value].kind)
        if fn is TrainerFn.VALIDATING:
            self.val_dataloaders = loaders
        elif fn is TrainerFn.TESTING:
            self.test_dataloaders = loaders
        else:
            self.predict_dataloaders = loaders

    def end(self) -> None:
        """Close the open run: what the Trainer fires when a run completes.

        For fit: the epoch in progress ends (``on_train_epoch_end``), then
        ``on_train_end`` (if training started), ``on_fit_end`` and ``teardown``. For the
        others: the evaluation loop ends, then ``teardown``. The status becomes finished
        and the lifecycle returns to idle.

        Raises:
            LifecycleError: the run cannot end here (a batch or a validation run is
                still open); nothing fired.
        """
        fn = self.state.fn
        run = self._eval
        if (
            fn is not None
            and fn is not TrainerFn.FITTING
            and run is not None
            and run.events is ev.EVAL_OF_ENTRY[fn.value]
        ):
            self._close_eval(run)
        self._end_run()

    def _end_run(self) -> None:
        fn = self.state.fn
        fire = self._fire
        if fn is TrainerFn.FITTING:
            self._require(ev.FIT_END, ev.TRAIN_END, ev.TRAIN_EPOCH_END)
            if self._driver.can_fire(ev.TRAIN_EPOCH_END):
                self.train_epoch_end()
            if self._driver.can_fire(ev.TRAIN_END):
                fire(ev.TRAIN_END)
            fire(ev.FIT_END)
        else:
            self._require(ev.TEARDOWN)
        fire(ev.TEARDOWN, fn)
        self._restore_sigterm()
        self.state.status = TrainerStatus.FINISHED
        fire(ev.FINISH)
        self._finalize_loggers("success")

    def _after_exception(self) -> None:
        self._restore_sigterm()
        self._finalize_loggers("failed")
        self._eval = None
        self._current_dataloader_idx = None

    @contextmanager
    def guard(self) -> Iterator[None]:
        """A block in which any exception interrupts the run, as in the Trainer.

        Every callback's ``on_exception`` (then the datamodule's) receives the exception
        once, the status becomes interrupted, the lifecycle returns to idle (the driver
        can start a new run), and the same exception is re-raised. The run scopes
        (:meth:`fit`, :meth:`validate`, ...) are guarded already.
        """
        self._interrupted_from = None
        with self._driver.guard(self._after_exception):
            try:
                yield
            except BaseException as exc:
                self._interrupted_from = self._driver.state  # for a checkpoint saved in on_exception
                reported = self.strategy.on_failure(exc)  # under DDP: another rank's failure, named
                if reported is not exc:
                    raise reported from exc
                raise

    @contextmanager
    def _run(self, fn: TrainerFn, optimizers: Any = None) -> Iterator[LoopDriver]:
        self._require(ev.ENTRY[fn.value])
        with self.guard():
            self._begin_run(fn, optimizers)
            if fn is TrainerFn.FITTING:
                yield self
            else:
                events = ev.EVAL_OF_ENTRY[fn.value]
                with self._grad_context():
                    self._open_eval(events, events.stage.value)
                    yield self
                    self._close_eval(cast(EvalRun, self._eval))
            self._end_run()

    def fit(self, optimizers: Any = None) -> AbstractContextManager[LoopDriver]:
        """``with lc.fit(optimizers=[opt]):`` — a fit run (:meth:`begin` ... :meth:`end`, guarded).

        Args:
            optimizers: your optimizer(s); see :meth:`begin`.
        """
        return self._run(TrainerFn.FITTING, optimizers)

    def validate(self) -> AbstractContextManager[LoopDriver]:
        """``with lc.validate():`` — a validation run; call the ``validation_batch*`` methods inside."""
        return self._run(TrainerFn.VALIDATING)

    def test(self) -> AbstractContextManager[LoopDriver]:
        """``with lc.test():`` — a test run; call the ``test_batch*`` methods inside."""
        return self._run(TrainerFn.TESTING)

    def predict(self) -> AbstractContextManager[LoopDriver]:
        """``with lc.predict():`` — a prediction run; call the ``predict_batch*`` methods inside."""
        return self._run(TrainerFn.PREDICTING)

    def _grad_context(self) -> AbstractContextManager[Any]:
        return torch.inference_mode() if self.inference_mode else torch.no_grad()

    def _hooks_to_skip(self, fn: TrainerFn, optimizers_given: bool) -> frozenset[str]:
        from lightcycle.core.module import LightningModule

        module = self.lightning_module
        self._own_train = not is_overridden("training_step", module, LightningModule)
        self._own_eval = {e.noun: not is_overridden(e.step_hook, module, LightningModule) for e in ev.EVAL.values()}
        skip = {ev.EVAL[noun].step_hook for noun, own in self._own_eval.items() if own}
        if self._own_train:
            skip.add("training_step")
        if fn is TrainerFn.FITTING and (
            optimizers_given or not is_overridden("configure_optimizers", module, LightningModule)
        ):
            skip.add("configure_optimizers")
        return frozenset(skip) | self.strategy.prepare_data_skips(module, self.datamodule)

    def _set_optimizers(self, value: Any, given: bool) -> None:
        from lightcycle.core.optim import parse_optimizers

        if value is None:
            optimizers: list[Any] = []
            schedulers: list[Any] = []
        elif given:
            optimizers = [value] if isinstance(value, torch.optim.Optimizer) else list(value)
            schedulers = []
        else:
            optimizers, schedulers = parse_optimizers(value)
        self.optimizers = optimizers
        self.lr_scheduler_configs = schedulers
        self._lightning_optimizers = steps.wrap_optimizers(
            self._driver.caller,
            self.lightning_module.automatic_optimization,
            optimizers,
            self.gradient_clip_val,
            self.gradient_clip_algorithm,
            self._count_manual_step,
            self.precision_plugin.scaler,
        )

    # -------------------------------------------------------------- fit: sanity check and training

    def sanity_check_start(self) -> None:
        """``on_sanity_check_start`` and the val dataloader hook (then run :meth:`validation_start`)."""
        self._require(ev.SANITY_CHECK_START)
        self._results.reset_run()
        self._fire(ev.SANITY_CHECK_START)
        self.val_dataloaders = processed(self, self._fire(ev.VAL_DATALOADER), "val")
        self._val_requested = True

    def sanity_check_end(self) -> None:
        """``on_sanity_check_end``; metrics logged during the sanity check are discarded."""
        self._require(ev.SANITY_CHECK_END)
        self._fire(ev.SANITY_CHECK_END)
        self._results.reset_run()

    @contextmanager
    def sanity_check(self) -> Iterator[LoopDriver]:
        """``with lc.sanity_check():`` — the sanity check and its validation run.

        Call the ``validation_batch*`` methods inside. Random number generators are
        restored afterwards, so the sanity check does not change training (as in the
        Trainer).
        """
        self._require(ev.SANITY_CHECK_START)
        with isolate_rng(), self._grad_context():
            self.sanity_check_start()
            self.validation_start()
            yield self
            self.validation_end()
            self.sanity_check_end()

    def _load_train(self) -> None:
        self.train_dataloader = processed(self, self._fire(ev.TRAIN_DATALOADER), "train")

    def train_start(self) -> None:
        """The train dataloader hook (once) and ``on_train_start``.

        Called by :meth:`epochs` and :meth:`train_epoch_start` when needed. As in the
        Trainer, the val dataloader hook runs here too when the module defines
        ``validation_step`` and its data source defines ``val_dataloader`` and no sanity
        check requested it.
        """
        if self._driver.can_fire(ev.TRAIN_EPOCH_START):
            # between epochs the train dataloader may be requested again (a reload), but training has started
            self._require(ev.TRAIN_START)
        self._require(ev.TRAIN_DATALOADER, ev.TRAIN_START)
        if self._driver.can_fire(ev.TRAIN_DATALOADER):
            self._load_train()
        if not self._val_requested and self._validation_defined():
            self.val_dataloaders = processed(self, self._fire(ev.VAL_DATALOADER), "val")
            self._val_requested = True
        self._fire(ev.TRAIN_START)

    @property
    def enable_validation(self) -> bool:
        """Whether the module defines ``validation_step`` and its data source ``val_dataloader``."""
        return self._validation_defined()

    def _validation_defined(self) -> bool:
        from lightcycle.core.datamodule import LightningDataModule
        from lightcycle.core.module import LightningModule

        module = self.lightning_module
        if not is_overridden("validation_step", module, LightningModule):
            return False
        if self.datamodule is not None:
            return is_overridden("val_dataloader", self.datamodule, LightningDataModule)
        return is_overridden("val_dataloader", module, LightningModule)

    def train_end(self) -> None:
        """``on_train_end`` (:meth:`epochs` and :meth:`end` call it when needed)."""
        self._fire(ev.TRAIN_END)

    def epochs(
        self, max_epochs: int | None = None, *, min_epochs: int | None = None, max_steps: int = -1
    ) -> Iterator[int]:
        """``for epoch in lc.epochs(10):`` — training epochs until a limit or ``should_stop``.

        Each step ends the previous epoch (``on_train_epoch_end``) and starts the next
        (``on_train_epoch_start``); the first also starts training. It stops, firing
        ``on_train_end``, after ``max_epochs`` epochs, at ``max_steps`` optimizer steps,
        or when ``should_stop`` is set (by EarlyStopping, say) and ``min_epochs`` are
        done, as the Trainer stops. Leaving the loop with ``break`` leaves the epoch
        open; :meth:`end` (the end of the ``fit`` block) closes it.

        Args:
            max_epochs: the most epochs (``None`` or -1: no limit).
            min_epochs: ``should_stop`` is ignored until this many epochs are done.
            max_steps: the most optimizer steps (-1: no limit).

        Yields:
            The epoch index (``current_epoch``).
        """
        loop = self.fit_loop
        loop.max_epochs = -1 if max_epochs is None else max_epochs
        loop.min_epochs = min_epochs
        loop.max_steps = max_steps
        return _Epochs(self)

    def _fit_done(self) -> bool:
        return self.fit_loop.fit_done(self.num_training_batches, self.should_stop)

    def train_epoch_start(self) -> None:
        """``on_train_epoch_start`` (training starts first if it has not)."""
        self._require(ev.TRAIN_EPOCH_START, ev.TRAIN_START, ev.TRAIN_DATALOADER)
        if not self._driver.can_fire(ev.TRAIN_EPOCH_START):
            self.train_start()
        loop = self.fit_loop
        loop.batches_ready = 0
        loop.batch_idx = -1
        loop.is_last_batch = False
        set_sampler_epoch(self.train_dataloader, loop.epochs_processed)  # a distributed sampler's shuffle
        self._results.start_epoch("train")
        self._fire(ev.TRAIN_EPOCH_START)

    def train_epoch_end(self) -> None:
        """``on_train_epoch_end``; ``current_epoch`` advances after it."""
        self._require(ev.TRAIN_EPOCH_END)
        loop = self.fit_loop
        loop.epochs_processed += 1
        self._results.end_epoch("train")
        self._count_stepped()
        self._fire(ev.TRAIN_EPOCH_END)
        self._log_train_epoch(self._results.close_epoch("train"))
        loop.epochs_completed += 1
        if self.received_sigterm:  # spec 4.3: at the end of every training epoch
            raise SIGTERMException()

    @contextmanager
    def epoch(self) -> Iterator[int]:
        """``with lc.epoch() as epoch:`` — one training epoch (start and end)."""
        self.train_epoch_start()
        yield self.current_epoch
        self.train_epoch_end()

    # -------------------------------------------------------------- fit: one training batch

    def train_batch_start(self, batch: Any, batch_idx: int) -> Any:
        """Start a training batch: the batch-transfer hooks and ``on_train_batch_start``.

        Args:
            batch: the batch from your loader.
            batch_idx: its index in the epoch.

        Returns:
            The batch as the transfer hooks returned it (on :attr:`device`): use this one.
            ``None`` when the module's ``on_train_batch_start`` returned -1: the rest of
            the epoch is skipped, so leave the batch loop.
        """
        loop = self.fit_loop
        if self._stepped_pending:  # (_count_stepped, inlined: this runs before every batch)
            self._stepped_pending = False
            loop.batches_that_stepped += 1
        self._step_at_batch = loop.global_step
        if self.received_sigterm and loop.batches_ready:
            # Spec 4.3: after a batch's end-of-batch processing, including the validation
            # it triggered. A custom loop runs that validation after train_batch_end, so
            # the check is here, before the next batch fires anything.
            raise SIGTERMException()
        batch = self._bracket.start(batch, batch_idx)
        if batch is SKIPPED:
            return None
        self._batch = batch
        self._batch_idx = batch_idx
        if self._own_train:
            self._own_step_event(batch, batch_idx)
        return batch

    def training_step(self, *, step: bool | None = None) -> dict[str, Any]:
        """Run the module's ``training_step`` on the current batch, as the Trainer does.

        Under automatic optimization: ``optimizer_step`` wrapping ``training_step``,
        ``on_before_zero_grad``/``optimizer_zero_grad``, the backward hooks and
        ``on_before_optimizer_step``, with the first of :attr:`optimizers`. Under manual
        optimization: ``training_step``, which calls ``manual_backward`` and
        ``opt.step()`` itself.

        Args:
            step: automatic optimization only: step the optimizer after this batch
                (default: when ``accumulate_grad_batches`` micro-batches are done).

        Returns:
            The ``outputs`` for :meth:`train_batch_end` (``{"loss": ...}``).

        Raises:
            MisconfigurationException: the module has no ``training_step`` (your loop
                is the step), or no optimizer.
        """
        if self._own_train:
            raise MisconfigurationException(
                f"{type(self.lightning_module).__name__} has no `training_step`, so your loop is the training step: "
                "call lc.backward(loss) and lc.optimizer_step(opt) instead of lc.training_step()."
            )
        batch, batch_idx = self._batch, self._batch_idx
        if not self.lightning_module.automatic_optimization:
            return steps.manual_outputs(self._own_step_event(batch, batch_idx))
        if not self.optimizers:
            raise MisconfigurationException(
                "lc.training_step() under automatic optimization needs an optimizer: pass lc.fit(optimizers=...) "
                "or define configure_optimizers in the module."
            )
        n = self.accumulate_grad_batches
        if step is None:
            step = (batch_idx + 1) % n == 0
        auto = self._automatic_step
        if auto is None or auto.lightning_optimizer is not self._lightning_optimizers[0] or auto.accumulate != n:
            auto = self._automatic_step = steps.AutomaticStep(
                self._driver.caller,
                self.fit_loop,
                self.optimizers[0],
                self._lightning_optimizers[0],
                accumulate=n,
                warn=self._warn_once,
                precision=self.precision_plugin,
            )
        return auto(batch, batch_idx, self.current_epoch, batch_idx % n == 0, step)

    def backward(self, loss: torch.Tensor) -> None:
        """``on_before_backward``, the module's ``backward`` (``loss.backward()``), ``on_after_backward``.

        Pass what should be differentiated (``scaler.scale(loss)`` with a GradScaler).
        """
        self._backward_event(loss)

    def optimizer_step(self, optimizer: Any, step: Callable[[Any], Any] | None = None) -> Any:
        """``on_before_optimizer_step``, then the step; ``global_step`` advances.

        Args:
            optimizer: the optimizer (callbacks receive it).
            step: how to step it, called with the optimizer (e.g. ``scaler.step``);
                default ``optimizer.step()``, or with a ``"16-mixed"`` precision the
                plugin's scaler: ``unscale_`` before the hooks, ``step`` and ``update`` after.

        Returns:
            What the step returned.
        """
        scaler = self.precision_plugin.scaler
        if scaler is not None and step is None:  # "16-mixed": unscale, hooks, scaler.step/update (Lightning's order)
            scaler.unscale_(optimizer)
            self._own_opt_step_event(optimizer)
            out = scaler.step(optimizer)
            scaler.update()
        else:
            self._own_opt_step_event(optimizer)
            out = optimizer.step() if step is None else step(optimizer)
        self.fit_loop.global_step += 1
        return out

    def train_batch_end(self, outputs: Any = None) -> None:
        """``on_train_batch_end`` for the current batch.

        Args:
            outputs: a loss tensor (callbacks receive ``{"loss": loss.detach()}``, as
                from the Trainer), a dict (passed as is), or ``None`` (``{}``).
        """
        kind = type(outputs)
        if kind is torch.Tensor:  # the common case, inlined: steps.manual_outputs's first branch
            outputs = {"loss": outputs.detach()}
        elif kind is not dict:
            outputs = steps.manual_outputs(outputs)
        # As the Trainer: a batch "stepped" when the optimizer stepped in it (always under
        # manual optimization); only those log step metrics, and they are counted after
        # the validation your loop may run next.
        stepped = self.fit_loop.global_step != self._step_at_batch or not self.lightning_module.automatic_optimization
        self._bracket.end(outputs, self._batch, self._batch_idx, stepped)
        self._stepped_pending = stepped

    def _count_stepped(self) -> None:
        if self._stepped_pending:
            self._stepped_pending = False
            self.fit_loop.batches_that_stepped += 1

    def train_batch(self, batch: Any, batch_idx: int, *, step: bool | None = None) -> dict[str, Any] | None:
        """One training batch run by the module: :meth:`train_batch_start`,
        :meth:`training_step`, :meth:`train_batch_end`.

        Returns:
            The outputs, or ``None`` when the rest of the epoch is skipped (leave the loop).
        """
        if self.train_batch_start(batch, batch_idx) is None:
            return None
        outputs = self.training_step(step=step)
        self.train_batch_end(outputs)
        return outputs

    def lr_scheduler_step(self, scheduler: Any, metric: Any = None) -> None:
        """The module's ``lr_scheduler_step(scheduler, metric)`` (default: ``scheduler.step()``)."""
        self._fire(ev.LR_SCHEDULER_STEP, scheduler, metric)

    # -------------------------------------------------------------- evaluation runs

    def _open_eval(self, events: ev.EvalTriggers, stage: str) -> None:
        run = self._eval = EvalRun(self, events, stage)
        run.own_step = self._own_eval.get(events.noun, True)
        run.open()

    def _close_eval(self, run: EvalRun) -> None:
        self._require(run.events.epoch_end)
        run.end_epoch()
        run.end()
        self._eval = None

    def validation_start(self, *, zero_grad: bool = True) -> None:
        """Start a validation run inside fit (or inside the sanity check).

        In training, as in the Trainer: ``on_validation_model_zero_grad`` (unless
        ``zero_grad`` is false: mid-accumulation), the val dataloader hook if nothing
        requested it yet, then ``on_validation_model_eval`` and ``on_validation_start``,
        ``on_validation_epoch_start``.
        """
        in_training = self._driver.can_fire(_VAL.model_zero_grad)  # between training batches
        if not in_training:
            self._require(_VAL.start)
        zero = zero_grad and in_training
        load = in_training and not self._val_requested
        sanity = self.state.stage is RunningStage.SANITY_CHECKING
        if zero:
            self._fire(_VAL.model_zero_grad)
        if load:
            self.val_dataloaders = processed(self, self._fire(ev.VAL_DATALOADER), "val")
            self._val_requested = True
        self._open_eval(_VAL, RunningStage.SANITY_CHECKING.value if sanity else RunningStage.VALIDATING.value)

    def validation_end(self) -> None:
        """End the validation run: ``on_validation_epoch_end``, ``on_validation_end``
        (the module's train mode is restored), then training resumes."""
        run = self._eval
        if run is None or run.events is not _VAL or self.state.fn is not TrainerFn.FITTING:
            raise LifecycleError(self._driver.state, _VAL.epoch_end.name, self._driver.legal())
        self._close_eval(run)
        if self._driver.can_fire(ev.VALIDATION_EXIT):
            self._fire(ev.VALIDATION_EXIT)

    @contextmanager
    def validation(self, *, zero_grad: bool = True) -> Iterator[LoopDriver]:
        """``with lc.validation():`` — a validation run inside fit (under inference mode)."""
        with self._grad_context():
            self.validation_start(zero_grad=zero_grad)
            yield self
            self.validation_end()

    def _run_of(self, e: ev.EvalTriggers, event: Trigger) -> EvalRun:
        """The open run of ``e``'s loop; else LifecycleError naming ``event`` (nothing fires)."""
        run = self._eval
        if run is None or run.events is not e:
            raise LifecycleError(self._driver.state, event.name, self._driver.legal())
        return run

    def _eval_batch_start(self, e: ev.EvalTriggers, batch: Any, batch_idx: int, dataloader_idx: int | None) -> Any:
        if self.received_sigterm and self._eval is not None and self._eval.ended:
            # Spec 4.3: after every evaluation batch but the last; the driver cannot know
            # which is the last, so the check waits for the next batch to start.
            raise SIGTERMException()
        run = self._run_of(e, e.batch_transfer)
        if dataloader_idx is not None:
            self._current_dataloader_idx = dataloader_idx
        batch = run.start_batch(batch, batch_idx, dataloader_idx)
        if run.own_step:
            run.step(batch, batch_idx, dataloader_idx)
        self._ebatch = batch
        self._eidx = batch_idx
        self._edl = dataloader_idx
        return batch

    def _eval_step(self, e: ev.EvalTriggers) -> Any:
        run = self._run_of(e, e.step)
        if run.own_step:
            name = e.step_hook
            raise MisconfigurationException(
                f"{type(self.lightning_module).__name__} has no `{name}`, so your loop is the step: compute the "
                f"outputs yourself and pass them to lc.{e.noun}_batch_end(outputs)."
            )
        return run.step(self._ebatch, self._eidx, self._edl)

    def _eval_batch_end(self, e: ev.EvalTriggers, outputs: Any) -> None:
        self._run_of(e, e.batch_end).end_batch(outputs, self._ebatch, self._eidx, self._edl)

    def _eval_batch(self, e: ev.EvalTriggers, batch: Any, batch_idx: int, dataloader_idx: int | None) -> Any:
        self._eval_batch_start(e, batch, batch_idx, dataloader_idx)
        outputs = self._eval_step(e)
        self._eval_batch_end(e, outputs)
        return outputs

    def validation_batch_start(self, batch: Any, batch_idx: int, dataloader_idx: int | None = None) -> Any:
        """Transfer hooks and ``on_validation_batch_start``; returns the transferred batch.

        Args:
            batch: the batch.
            batch_idx: its index in the dataloader.
            dataloader_idx: with several val dataloaders, which one (hooks then receive it
                and logged keys get the ``/dataloader_idx_N`` suffix); ``None`` for one.
        """
        return self._eval_batch_start(_VAL, batch, batch_idx, dataloader_idx)

    def validation_step(self) -> Any:
        """The module's ``validation_step`` on the current batch; returns its output."""
        return self._eval_step(_VAL)

    def validation_batch_end(self, outputs: Any = None) -> None:
        """``on_validation_batch_end(outputs, ...)`` for the current batch."""
        self._eval_batch_end(_VAL, outputs)

    def validation_batch(self, batch: Any, batch_idx: int, dataloader_idx: int | None = None) -> Any:
        """Start, the module's ``validation_step``, end; returns the step's output."""
        return self._eval_batch(_VAL, batch, batch_idx, dataloader_idx)

    def test_batch_start(self, batch: Any, batch_idx: int, dataloader_idx: int | None = None) -> Any:
        """Transfer hooks and ``on_test_batch_start``; returns the transferred batch."""
        return self._eval_batch_start(_TEST, batch, batch_idx, dataloader_idx)

    def test_step(self) -> Any:
        """The module's ``test_step`` on the current batch; returns its output."""
        return self._eval_step(_TEST)

    def test_batch_end(self, outputs: Any = None) -> None:
        """``on_test_batch_end(outputs, ...)`` for the current batch."""
        self._eval_batch_end(_TEST, outputs)

    def test_batch(self, batch: Any, batch_idx: int, dataloader_idx: int | None = None) -> Any:
        """Start, the module's ``test_step``, end; returns the step's output."""
        return self._eval_batch(_TEST, batch, batch_idx, dataloader_idx)

    def predict_batch_start(self, batch: Any, batch_idx: int, dataloader_idx: int | None = None) -> Any:
        """Transfer hooks and ``on_predict_batch_start``; returns the transferred batch."""
        return self._eval_batch_start(_PREDICT, batch, batch_idx, dataloader_idx)

    def predict_step(self) -> Any:
        """The module's ``predict_step`` on the current batch; returns the prediction."""
        return self._eval_step(_PREDICT)

    def predict_batch_end(self, outputs: Any = None) -> None:
        """``on_predict_batch_end(outputs, ...)`` for the current batch."""
        self._eval_batch_end(_PREDICT, outputs)

    def predict_batch(self, batch: Any, batch_idx: int, dataloader_idx: int | None = None) -> Any:
        """Start, the module's ``predict_step``, end; returns the prediction."""
        return self._eval_batch(_PREDICT, batch, batch_idx, dataloader_idx)

    # -------------------------------------------------------------- metrics and custom events

    def log(self, name: str, value: Any, **kwargs: Any) -> None:
        """Log a metric from your loop, as ``self.log`` in the matching step would.

        Inside a training batch it is logged as from ``training_step`` (default
        ``on_step=True, on_epoch=False``), inside an evaluation batch as from
        ``validation_step``/``test_step`` (``on_epoch=True``), between batches as from
        ``on_*_epoch_end``. It reaches :attr:`callback_metrics` when the Trainer's would
        (EarlyStopping and checkpoints read it there).

        Args:
            name: the key.
            value: a number or a one-element tensor (kept on its device, no sync).
            **kwargs: ``LightningModule.log``'s options (``prog_bar``, ``on_step``,
                ``on_epoch``, ``reduce_fx``, ``batch_size``, ...).
        """
        state = self._driver.state
        fx = self._log_fx.get(state)
        if fx is None:
            fx = self._log_fx_for(state)
        module = self.lightning_module
        slot = module.__dict__
        previous = slot.get("_current_fx_name")
        slot["_current_fx_name"] = fx
        try:
            module.log(name, value, **kwargs)
        finally:
            slot["_current_fx_name"] = previous

    def _log_fx_for(self, state: str) -> str:
        stage = self._driver.table.stages[self._driver.table.index[state]]
        pair = _LOG_FX.get(stage) if isinstance(stage, RunningStage) else None
        if pair is None:
            raise MisconfigurationException(
                f"lc.log() is for inside a run (fit, validate, test); the lifecycle is in {state!r}."
            )
        fx = pair[0] if ".batch." in state else pair[1]
        self._log_fx[state] = fx
        return fx

    def _trigger(self, event: str | Trigger) -> Trigger:
        trigger = self._triggers.get(event) if isinstance(event, str) else event
        if trigger is None or self._triggers.get(trigger.name) != trigger:
            raise LifecycleError(self._driver.state, str(getattr(event, "name", event)), self._driver.legal())
        return trigger

    def fire(self, event: str | Trigger, *args: Any) -> Any:
        """Fire any declared event by name, with its parameters in order.

        This is how your own events run: declare them as data on a copy of the
        lifecycle (``LIFECYCLE.extend(transitions=[...])``, see
        ``examples/custom_event.py``), pass it as ``lifecycle=``, and fire them where they
        happen; callbacks that define the hook receive it. ``fire`` runs exactly the
        declared hooks and nothing else: for the built-in events use the named methods,
        which also keep counters and metrics.

        Args:
            event: the event's name (or its :class:`~lightcycle.states.model.Trigger`).
            *args: its parameters, in the declared order.

        Returns:
            What the event's producing hook returned, if any.

        Raises:
            LifecycleError: the event is unknown or not legal now; nothing fired.
            TypeError: the wrong number of arguments; nothing fired.
        """
        trigger = self._trigger(event)
        n = len(trigger.params)
        if len(args) != n and not (trigger.optional_tail and len(args) == n - 1):
            raise TypeError(f"event {trigger.name!r} takes {n} arguments {trigger.params}, got {len(args)}.")
        return self._fire(trigger, *args)

    def event(self, event: str | Trigger) -> Callable[..., Any]:
        """A callable that fires ``event`` (checked, like :meth:`fire`), for per-batch use.

        ``ema_update = lc.event("ema_update")`` then ``ema_update(opt)`` in the loop: the
        name is looked up once.
        """
        return functools.partial(self._fire, self._trigger(event))


def _device_of(module: torch.nn.Module) -> torch.device:
    for p in module.parameters():
        return p.device
    return torch.device("cpu")
