"""One training epoch: Lightning's ``_TrainingEpochLoop`` (``trainer.fit_loop.epoch_loop``).

The epoch loop decides, batch after batch, whether the optimizer steps or gradients
accumulate, whether validation runs after the batch (``val_check_interval``,
``check_val_every_n_epoch``), when schedulers step, and when the epoch ends. The batch
counters it advances are the fit loop's progress record, which the shared runtime (the
batch bracket, the optimizer step, checkpoints, loggers) writes too.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from lightcycle.core.optim import LightningOptimizer
from lightcycle.errors import MisconfigurationException, SIGTERMException
from lightcycle.runtime import logger_connector, steps
from lightcycle.runtime.data import set_sampler_epoch
from lightcycle.runtime.training import FINISHED, SKIPPED, TrainBatch
from lightcycle.states import declaration as ev
from lightcycle.states.stages import RunningStage
from lightcycle.trainer.flags import reload_due
from lightcycle.trainer.loops.data import CombinedBatches, sequential_train_error
from lightcycle.trainer.loops.evaluation_loop import EvaluationLoop, same_items
from lightcycle.trainer.loops.progress import step_counts

if TYPE_CHECKING:
    from lightcycle.trainer.loops.fit_loop import FitLoop
    from lightcycle.trainer.trainer import Trainer

_INF = math.inf
_IN_OPTIMIZER_STEP = "fit.train.epoch.batch.closure."  # the states inside optimizer_step (automatic optimization)


class TrainingEpochLoop:
    """The batches of one training epoch, their optimizer steps and the validation between them.

    Args:
        trainer: the Trainer it runs for.
        fit_loop: the fit loop it belongs to (whose progress record holds the batch counters).
    """

    def __init__(self, trainer: Trainer, fit_loop: FitLoop) -> None:
        self.trainer = trainer
        self.fit_loop = fit_loop
        self.val_loop = EvaluationLoop(trainer, ev.EVAL["validation"], in_fit=True)
        """The fit's validation (and sanity check): Lightning's ``epoch_loop.val_loop``."""
        self.val_check_batch: int | float = _INF
        """Batches between two validations in an epoch (``inf``: at its end), set when the train loader loads."""
        self._steps_at_epoch_start = 0
        self._scheduler_steps = 0  # since the fit began (Lightning's scheduler_progress.total)
        self._scheduler_steps_at_epoch_start = 0
        # the previous epoch's batch functions, with what they were made from (see _bracket)
        self._cached_bracket: tuple[tuple[Any, ...], TrainBatch] | None = None
        self._cached_automatic: tuple[tuple[Any, ...], steps.AutomaticStep, Callable[[Any, int], Any] | None] | None = (
            None
        )

    # ------------------------------------------------------------------ Lightning's attributes

    @property
    def batch_idx(self) -> int:
        """The current batch's index in the epoch."""
        return self.fit_loop.batch_idx

    @property
    def total_batch_idx(self) -> int:
        """The current batch's index since the fit began."""
        return self.fit_loop.total_batch_idx

    @property
    def global_step(self) -> int:
        """Optimizer steps taken (``trainer.global_step``)."""
        return self.fit_loop.global_step

    @property
    def _batches_that_stepped(self) -> int:
        """Batches after which the optimizer stepped: the step Lightning's loggers and LearningRateMonitor use."""
        return self.fit_loop.batches_that_stepped

    # ------------------------------------------------------------------ the train loader

    def resolve_val_check_batch(self) -> None:
        """Lightning's ``val_check_batch`` for the loaded train loader (``val_check_interval``'s rules).

        Raises:
            ValueError: an int ``val_check_interval`` beyond the epoch's batches (Lightning's message).
            MisconfigurationException: a fractional interval with an unsized train loader.
        """
        t = self.trainer
        n = t.num_training_batches
        if n == 0:
            return
        interval = t.val_check_interval
        if isinstance(interval, int):
            self.val_check_batch = interval
            if interval > n and t.check_val_every_n_epoch is not None and t.limit_val_batches > 0:
                raise ValueError(
                    f" `val_check_interval` ({interval}) must be less than or equal to the number of "
                    f"the training batches ({n}). If you want to disable validation set `limit_val_batches` to 0.0 "
                    "instead. If you want to validate based on the total training batches, set "
                    "`check_val_every_n_epoch=None`."
                )
        elif n == _INF:
            if interval != 1.0:
                raise MisconfigurationException(  # Lightning's message, word for word
                    "When using an IterableDataset for `train_dataloader`, `Trainer(val_check_interval)` must be time "
                    "based, `1.0` or an int. An int k specifies checking validation every k training batches."
                )
            self.val_check_batch = _INF
        else:
            self.val_check_batch = max(1, int(n * interval))

    # ------------------------------------------------------------------ one epoch

    def run(self, loader: Iterable[Any]) -> None:
        """One training epoch (the fit loop's ``advance`` and ``on_advance_end``, and this loop).

        Args:
            loader: the train loader.
        """
        t = self.trainer
        fire = t._driver.fire
        loop = self.fit_loop
        set_sampler_epoch(loader, loop.epochs_processed)
        plan, loop.resume = loop.resume, None  # a restored fit's first epoch (checkpointing.ResumePlan)
        results = t._results
        results.start_epoch("train")
        if plan is None or plan.fire_epoch_start:
            t._checkpoints.begin_epoch(loader, plan)
            fire(ev.TRAIN_EPOCH_START)
        else:
            fire(ev.RESUME_EPOCH)
        if isinstance(loader, CombinedBatches) and loader.sequential:
            raise sequential_train_error("_FitLoop")  # where Lightning's fit loop refuses it: its advance
        if plan is None or (plan.fire_epoch_start and plan.skip == 0):
            # Lightning's epoch loop reset; an epoch resumed inside goes on with the restored counts
            self.val_loop.batch_progress.total = 0
            self._steps_at_epoch_start = loop.global_step
            self._scheduler_steps_at_epoch_start = self._scheduler_steps
        batches = t._checkpoints.open_epoch(loader, plan)
        skip = plan.skip if plan is not None else 0
        loop.batches_ready = skip
        loop.batch_idx = skip - 1
        loop.is_last_batch = False
        # Whether validation can run in this epoch at all (hooks overridden, loaders, limits,
        # check_val_every_n_epoch): fixed for the epoch, so asked once, not after every batch.
        validate_epoch = t._should_check_val_epoch()
        # With an interval counted in the epoch (the default), a batch that ends no interval,
        # with no stop pending, no scheduler and no signal, has nothing due after it: answered
        # here (one modulo) instead of in _after_batch. 0: every batch asks _after_batch.
        every = self.val_check_batch
        quiet_every = every if validate_epoch and every != _INF and t.check_val_every_n_epoch is not None else 0
        if plan is not None and plan.pending is not None:  # what the saved batch still had to do
            loop.is_last_batch = plan.is_last_batch
            self._after_batch(validate=validate_epoch and plan.pending == "batch")
        module = t.lightning_module
        assert module is not None
        # Per-epoch constants of the batch loop, read once: the batch bracket (its events' functions)
        # and the automatic-optimization step for the first optimizer (built at its first use).
        bracket = self._bracket()
        start_batch, end_batch = bracket.begin, bracket.finish
        precision = t.precision_plugin
        manual_step = precision.wrap_step(t._driver.caller(ev.MANUAL_TRAINING_STEP), precision.train_step_context)
        accumulate = t.accumulate_grad_batches
        n = t.num_training_batches
        automatic_step: Callable[[Any, int, int, bool, bool], dict[str, Any]] | None = None
        items = t.strategy.train_batches(iter(batches), t)  # under DDP: the SIGTERM decision before each batch
        # Lightning asks whether the epoch is done before each batch is fetched: before the
        # first, then at the end of each (a ``for`` over the batches costs less than ``next``)
        for batch_idx, batch in () if loop.epoch_done(n, t.should_stop) else items:
            loop.is_last_batch = batches.done
            batch = start_batch(batch, batch_idx)
            if batch is FINISHED:  # the whole batch ran in start_batch (TrainBatch.whole): it stepped
                stepping = True
            elif batch is SKIPPED:
                self._update_schedulers("step", plateau=False)
                if loop.ready_reached(n):
                    self._update_schedulers("epoch", plateau=False)
                break
            else:
                stepping = accumulate == 1 or not loop.should_accumulate(accumulate, n)
                automatic = module.automatic_optimization
                if automatic:
                    if automatic_step is None:
                        auto, whole = self._automatic_functions(bracket)
                        automatic_step = auto.run
                        # from the next batch on, the bracket and this step as one function
                        # where they are generated (built here: after the first batch start)
                        start_batch = whole or start_batch
                    outputs = automatic_step(
                        batch,
                        batch_idx,
                        loop.epochs_completed,  # current_epoch
                        batch_idx % accumulate == 0,
                        stepping,
                    )
                else:
                    outputs = steps.manual_outputs(manual_step(batch, batch_idx))
                if t.lr_scheduler_configs:  # (both calls return at once without schedulers)
                    self._update_schedulers("step", plateau=False)
                    if loop.ready_reached(n):
                        self._update_schedulers("epoch", plateau=False)
                end_batch(outputs, batch, batch_idx, stepping or not automatic)
            if (
                quiet_every
                and (loop.batch_idx + 1) % quiet_every
                and not (t.should_stop or t.lr_scheduler_configs or t.received_sigterm)
            ):
                pass  # nothing due (_validation_due's first case, and neither schedulers nor a signal)
            elif validate_epoch or t.lr_scheduler_configs or t.received_sigterm:  # (else it does nothing)
                self._after_batch(validate_epoch)
            if stepping:  # after the validation this batch ran: its epoch metrics have the step before
                loop.batches_that_stepped += 1
            if t.should_stop and t.loggers:
                logger_connector.save_on_stop(t)
            if loop.epoch_done(n, t.should_stop):
                break
        # fit loop on_advance_end
        loop.epochs_processed += 1
        results.end_epoch("train")
        fire(ev.TRAIN_EPOCH_END)
        t._log_train_epoch(results.close_epoch("train"))
        loop.batches = None
        if loop.ready_reached(t.num_training_batches) and not loop.restarting:
            self._update_schedulers("epoch", plateau=True)  # Lightning: none at the end of a restarted epoch
        loop.epochs_completed += 1
        if t.strategy.agree_sigterm(t):
            raise SIGTERMException()

    def _after_batch(self, validate: bool) -> None:
        """The epoch loop's ``on_advance_end``: validation when due, plateau schedulers, SIGTERM.

        Args:
            validate: validation may run after this batch (an epoch where it runs at all).
        """
        t = self.trainer
        if validate and self._validation_due():
            if not self.fit_loop.should_accumulate(t.accumulate_grad_batches, t.num_training_batches):
                t._driver.fire(ev.VALIDATION_MODEL_ZERO_GRAD)
            self._run_validation()
            t._driver.fire(ev.VALIDATION_EXIT)
        if t.lr_scheduler_configs:  # (returns at once without schedulers)
            self._update_schedulers("step", plateau=True)
        if t.received_sigterm:  # the flag first: it is almost always False
            loop = self.fit_loop
            if not (loop.max_steps_reached() or loop.ready_reached(t.num_training_batches)):
                raise SIGTERMException()

    def _validation_due(self) -> bool:
        # _should_check_val's answer, the common cases first (asked after every batch): an interval
        # counted in the epoch (the default ``val_check_interval=1.0`` is the epoch's length) is
        # one modulo unless a stop is pending; with validation at the epoch's end only, no batch
        # but the last one can be due. The full rules answer the rest.
        every = self.val_check_batch
        t = self.trainer
        if t.should_stop:
            return self._should_check_val()
        if every != _INF:
            if t.check_val_every_n_epoch is not None:
                return (self.fit_loop.batch_idx + 1) % every == 0
        elif not self.fit_loop.is_last_batch and not isinstance(t.limit_train_batches, int):
            return False
        return self._should_check_val()

    def _should_check_val(self) -> bool:
        # Lightning's rules for the position in an epoch where validation runs at all (the
        # caller asked ``_should_check_val_epoch`` once for the epoch; it does not change
        # within one: hooks overridden, loaders, limits and the epoch number).
        t = self.trainer
        loop = self.fit_loop
        every = self.val_check_batch
        infinite = every == _INF
        if (loop.is_last_batch and infinite) or (t.should_stop and loop.can_stop_early()):
            return True
        check = loop.is_last_batch
        limit = t.limit_train_batches
        if isinstance(limit, int) and infinite:
            check = (loop.batch_idx + 1) % limit == 0
        elif not infinite:
            current = loop.total_batch_idx if t.check_val_every_n_epoch is None else loop.batch_idx
            check = (current + 1) % every == 0
        return bool(check)

    def _run_validation(self) -> None:
        t = self.trainer
        val = self.val_loop
        if t.val_dataloaders is None or reload_due(
            t.reload_dataloaders_every_n_epochs, t.current_epoch, val._loaded_at
        ):
            loaders, counts = val.setup_data()
        else:
            loaders, counts = val._loaders, val.run_counts()
        if sum(counts) > 0:
            val.run(loaders, counts, RunningStage.VALIDATING)

    def _update_schedulers(self, interval: str, plateau: bool) -> None:
        t = self.trainer
        module = t.lightning_module
        if not t.lr_scheduler_configs or module is None or not module.automatic_optimization:
            return
        loop = self.fit_loop
        if interval == "step" and loop.should_accumulate(t.accumulate_grad_batches, t.num_training_batches):
            return
        fire = t._driver.fire
        for config in t.lr_scheduler_configs:
            if plateau != config.reduce_on_plateau:
                continue
            index = (loop.batch_idx if interval == "step" else t.current_epoch) + 1
            if config.interval != interval or index % config.frequency != 0:
                continue
            metric = None
            if config.reduce_on_plateau:
                metric = t.callback_metrics.get(config.monitor) if config.monitor else None
                if metric is None:
                    if config.strict:
                        raise MisconfigurationException(  # Lightning's message, word for word
                            f"ReduceLROnPlateau conditioned on metric {config.monitor} which is not available. "
                            f"Available metrics are: {list(t.callback_metrics)}. Condition can be set using `monitor` "
                            "key in lr scheduler dict"
                        )
                    continue
            fire(ev.LR_SCHEDULER_STEP, config.scheduler, metric)
            self._scheduler_steps += 1

    def release(self) -> None:
        """Drop the batch functions kept from epoch to epoch (the fit's epochs ended).

        They hold the run's objects (the module, optimizer, bound hooks) and, after a failure
        in a batch, that batch; the next fit builds its own.
        """
        self._cached_bracket = None
        self._cached_automatic = None

    def _bracket(self) -> TrainBatch:
        """The epoch's batch bracket: the previous epoch's while the run's events, precision and device are its.

        Building one generates its functions (thousands of bytecodes, per epoch); what they are
        made from is the driver's bind (a new context at each), the precision, the device and
        the metric store.
        """
        t = self.trainer
        key = (t._driver._context, t.precision_plugin, t.device, t._results)
        cached = self._cached_bracket
        if cached is not None and same_items(cached[0], key):
            return cached[1]
        bracket = TrainBatch(t, t.device)
        self._cached_bracket = (key, bracket)
        self._cached_automatic = None  # (its whole-batch function holds the bracket)
        return bracket

    def _automatic_functions(self, bracket: TrainBatch) -> tuple[steps.AutomaticStep, Callable[[Any, int], Any] | None]:
        """The epoch's automatic step and whole-batch function (:meth:`TrainBatch.whole`).

        Decided where they are first needed, after the epoch's first batch start, as when
        built anew: the previous epoch's are kept while everything they are made from is
        the same objects and values (the bracket, the optimizer and its wrapper, its step's
        before-step call, accumulation, skipped backward, the module and its class's
        ``automatic_optimization``, whether ``on_train_batch_end`` is received, the direct
        step route); the parameters' gradient accumulators are read again each epoch.
        """
        t = self.trainer
        module = t.lightning_module
        lopt = t._lightning_optimizers[0]
        precision = t.precision_plugin
        direct = isinstance(lopt, LightningOptimizer) and steps.direct_step_allowed(module, lopt, precision)
        key = (
            bracket,
            t.optimizers[0],
            lopt,
            getattr(lopt, "_on_before_step", None),
            t.accumulate_grad_batches,
            self.fit_loop._skip_backward,
            module,
            getattr(type(module), "automatic_optimization", None),
            t._driver.calls_hooks(ev.TRAIN_BATCH_END),
            direct,
        )
        cached = self._cached_automatic
        if cached is not None and same_items(cached[0], key):
            auto, whole = cached[1], cached[2]
            if isinstance(lopt, LightningOptimizer):
                lopt._direct = direct  # as the step's constructor sets it
            auto.refresh_accumulators()
            return auto, whole
        auto = self._automatic_step()
        whole = bracket.whole(auto)
        self._cached_automatic = (key, auto, whole)
        return auto, whole

    def _automatic_step(self) -> steps.AutomaticStep:
        """Automatic optimization with the first optimizer: the shared :class:`steps.AutomaticStep`.

        The outputs (a clone of the loss) are built only when ``on_train_batch_end`` has a
        receiver in this run: with none, nothing could see them.
        """
        t = self.trainer
        return steps.AutomaticStep(
            t._driver.caller,
            self.fit_loop,
            t.optimizers[0],
            t._lightning_optimizers[0],
            accumulate=t.accumulate_grad_batches,
            warn=t._warn_once,
            skip_backward=self.fit_loop._skip_backward,
            outputs=t._driver.calls_hooks(ev.TRAIN_BATCH_END),
            precision=t.precision_plugin,
            module=t.lightning_module,
            driver=t._driver,
        )

    # ------------------------------------------------------------------ checkpoint state

    def state_dict(self) -> dict[str, Any]:
        """Lightning's ``epoch_loop.*`` entries of ``loops["fit_loop"]`` that the batch counters do not give.

        Returns:
            The optimization (this epoch's steps and the fit's), scheduler and validation
            progress, with Lightning's key names.
        """
        step = self.fit_loop.global_step
        epoch_steps = step - self._steps_at_epoch_start
        if self._automatic():
            auto, manual = step_counts(step, epoch_steps), step_counts(0, 0)
        else:
            auto, manual = step_counts(0, 0), step_counts(step, step)  # Lightning never resets this one
        zero_grad = {part: {**counts, "started": counts["ready"]} for part, counts in auto.items()}
        if self.trainer._saved_state().startswith(_IN_OPTIMIZER_STEP):
            for counts in auto.values():  # Lightning counts the step ready before the closure runs
                counts["ready"] += 1
        schedulers = self._scheduler_steps
        return {
            # counted after the batch's validation, as Lightning counts it (not derived from global_step)
            "epoch_loop.state_dict": {"_batches_that_stepped": self.fit_loop.batches_that_stepped},
            "epoch_loop.scheduler_progress": step_counts(schedulers, schedulers - self._scheduler_steps_at_epoch_start),
            "epoch_loop.automatic_optimization.state_dict": {},
            "epoch_loop.automatic_optimization.optim_progress": {"optimizer": {"step": auto, "zero_grad": zero_grad}},
            "epoch_loop.manual_optimization.state_dict": {},
            "epoch_loop.manual_optimization.optim_step_progress": manual,
            "epoch_loop.val_loop.state_dict": {},
            "epoch_loop.val_loop.batch_progress": self.val_loop.batch_progress.state_dict(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore the counters :meth:`state_dict` wrote (after the fit loop's own: ``global_step`` first).

        Args:
            state: the checkpoint's ``loops["fit_loop"]`` (a key it lacks counts as zero this epoch).
        """
        optim = state.get("epoch_loop.automatic_optimization.optim_progress", {}).get("optimizer", {})
        self._steps_at_epoch_start = self.fit_loop.global_step - _completed(optim.get("step", {}), "current")
        scheduler = state.get("epoch_loop.scheduler_progress", {})
        self._scheduler_steps = _completed(scheduler, "total")
        self._scheduler_steps_at_epoch_start = self._scheduler_steps - _completed(scheduler, "current")
        self.val_loop.batch_progress.load_state_dict(state.get("epoch_loop.val_loop.batch_progress", {}))

    def _automatic(self) -> bool:
        module = self.trainer.lightning_module
        return module is None or module.automatic_optimization


def _completed(progress: Mapping[str, Any], part: str) -> int:
    """``progress[part]["completed"]`` of one of Lightning's trackers (0 when absent)."""
    return int(progress.get(part, {}).get("completed", 0))
