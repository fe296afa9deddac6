"""Lightning's lifecycle inside your own training loop: :class:`LoopDriver`.

You keep your loop (data pipeline, forward, AMP, optimizer code); the driver fires the
lifecycle's events at the points you mark, and every callback and module hook runs as
:class:`~lightcycle.Trainer` would run it for the same schedule, with the same arguments,
the same ``trainer`` state and the same exception contract. The driver is a thin layer
over :class:`~lightcycle.engine.driver.LifecycleDriver` (the one the Trainer walks):
each method fires one or a few declared events and keeps the counters and metrics that
the Trainer keeps at the same points; nothing here names a hook.

Every call is checked against the declaration: one the lifecycle does not allow where it
is raises :class:`~lightcycle.errors.LifecycleError` (naming the refused call, the state
and the driver calls allowed next: :mod:`lightcycle.custom_loop.errors`) before anything
fires or changes.

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
from lightcycle.core.module import LightningModule
from lightcycle.core.optim import parse_optimizers
from lightcycle.custom_loop.distributed import DistributedSteps, begin_distributed, make_strategy, processed
from lightcycle.custom_loop.errors import LoopDriverLifecycleError, refusal
from lightcycle.custom_loop.evaluation import EvaluationProtocol
from lightcycle.custom_loop.training import TrainingProtocol
from lightcycle.errors import MisconfigurationException
from lightcycle.precision import Precision, resolve_precision
from lightcycle.runtime import steps
from lightcycle.runtime.evaluation import EvalRun
from lightcycle.runtime.progress import FitLoopProgress
from lightcycle.states import declaration as ev
from lightcycle.states.declaration import LIFECYCLE
from lightcycle.states.model import Event, Lifecycle
from lightcycle.states.stages import RunningStage, TrainerFn, TrainerStatus

if TYPE_CHECKING:
    from lightcycle.core.datamodule import LightningDataModule
    from lightcycle.core.optim import LightningOptimizer

__all__ = ["LoopDriver"]

_VAL = ev.EVAL["validation"]

_LOG_FX = {
    # stage -> (fx inside a batch, fx between batches): what ``lc.log`` logs as
    RunningStage.TRAINING: ("training_step", "on_train_epoch_end"),
    RunningStage.SANITY_CHECKING: (_VAL.step_hook, _VAL.epoch_end_hook),
    **{e.stage: (e.step_hook, e.epoch_end_hook) for e in ev.EVAL.values()},
}


class LoopDriver(DistributedSteps, TrainingProtocol, EvaluationProtocol):
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
        checked: prove every step against the ``transitions`` machine before it first runs
            (``None``: on, unless the environment variable ``LIGHTCYCLE_CHECKED=0``).
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
        self._ebatch: Any = None
        self._eidx = 0
        self._edl: int | None = None
        self._driver.refusal = refusal  # refused calls name the driver's methods, not the events
        self._fire = self._driver.fire
        self._batch_functions = None
        self._hold_events()
        self._triggers = self._driver.table.triggers
        self._log_fx: dict[str, str] = {}

    # -------------------------------------------------------------- runs

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
        # the last run's (before begin_distributed: it wraps the method unless the instance has its own)
        self._drop_batch_functions()
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
        with self._driver.guard((self._after_exception,)):
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

    def _hooks_to_skip(self, fn: TrainerFn, optimizers_given: bool) -> frozenset[str]:
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
        if value is None:
            optimizers: list[Any] = []
            schedulers: list[Any] = []
        elif given:
            optimizers = [value] if isinstance(value, torch.optim.Optimizer) else list(value)
            schedulers = []
        else:
            optimizers, schedulers = parse_optimizers(value)
        self.lr_scheduler_configs = schedulers
        self.optimizers = optimizers  # (wrapped by the setter)

    def _wrap_optimizers(self, optimizers: list[torch.optim.Optimizer]) -> list[LightningOptimizer]:
        return steps.wrap_optimizers(
            self._driver.caller,
            self.lightning_module.automatic_optimization,
            optimizers,
            self.gradient_clip_val,
            self.gradient_clip_algorithm,
            self._count_manual_step,
            self.precision_plugin.scaler,
        )

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

    def _trigger(self, event: str | Event) -> Event:
        trigger = self._triggers.get(event) if isinstance(event, str) else event
        if trigger is None or self._triggers.get(trigger.name) != trigger:
            name = str(getattr(event, "name", event))
            raise LoopDriverLifecycleError(self._driver.state, name, self._driver.legal(), declared=False)
        return trigger

    def fire(self, event: str | Event, *args: Any) -> Any:
        """Fire any declared event by name, with its parameters in order.

        This is how your own events run: declare them as data on a copy of the
        lifecycle (``LIFECYCLE.extend(transitions=[...])``, see
        ``examples/custom_event.py``), pass it as ``lifecycle=``, and fire them where they
        happen; callbacks that define the hook receive it. ``fire`` runs exactly the
        declared hooks and nothing else: for the built-in events use the named methods,
        which also keep counters and metrics.

        Args:
            event: the event's name (or its :class:`~lightcycle.states.model.Event`).
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
        if not self._driver.can_fire(trigger):  # named as called, not as the method that fires it
            called = f"lc.fire({trigger.name!r}, ...)"
            raise LoopDriverLifecycleError(self._driver.state, trigger.name, self._driver.legal(), called=called)
        return self._fire(trigger, *args)

    def event(self, event: str | Event) -> Callable[..., Any]:
        """A callable that fires ``event`` (checked, like :meth:`fire`), for per-batch use.

        ``ema_update = lc.event("ema_update")`` then ``ema_update(opt)`` in the loop: the
        name is looked up once.
        """
        return functools.partial(self._fire, self._trigger(event))


def _device_of(module: torch.nn.Module) -> torch.device:
    for p in module.parameters():
        return p.device
    return torch.device("cpu")
