"""The loops, as straight-line code over the lifecycle driver.

Each function here is the pseudocode of one Lightning loop, with every hook call replaced
by ``fire(EVENT, ...)`` (per-batch events by the event's function, ``fire`` without the
lookup, fetched once per loop): the driver knows which hooks an event fires and in which order
(:mod:`lightcycle.states.declaration`), so no hook name appears in this file. What is left
is the control flow that decides *which* event comes next: epochs, batches, accumulation,
validation intervals, stopping rules and schedulers, as Lightning 2.6 decides them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import torch

from lightcycle.errors import MisconfigurationException, SIGTERMException
from lightcycle.runtime import logger_connector, preflight, steps
from lightcycle.runtime.data import Lookahead, as_loader_list, num_batches, set_sampler_epoch
from lightcycle.runtime.evaluation import EvalRun
from lightcycle.runtime.rng import isolate_rng
from lightcycle.runtime.training import SKIPPED, TrainBatch
from lightcycle.states import declaration as ev
from lightcycle.states.stages import RunningStage, TrainerFn
from lightcycle.trainer import flags

if TYPE_CHECKING:
    from collections.abc import Iterator

    from lightcycle.trainer.trainer import Trainer

_INF = math.inf


# --------------------------------------------------------------------------- fit


def run_fit(t: Trainer, ckpt_path: str | None) -> None:
    """``trainer.fit``: setup, sanity check, epochs, teardown (spec 3.1)."""
    fire = t._driver.fire
    t._attach_model_callbacks(fire(ev.ENTRY["fit"]))
    t.fit_loop.resume = None
    fire(ev.SETUP, TrainerFn.FITTING)
    checkpoint = t._checkpoints.restore_start(ckpt_path) if ckpt_path is not None else None
    t._results.reset_run()
    t._eval_steps.reset()
    module = t.lightning_module
    assert module is not None
    # the declared strategy_setup action: to the device and, under DDP, the wrapper (Lightning's strategy.setup)
    t._configure_optimizers(fire(ev.CONFIGURE_OPTIMIZERS))
    fire(ev.FIT_START)
    t._log_hyperparameters()
    if checkpoint is not None:
        t._checkpoints.restore_training_state(checkpoint)
        checkpoint = None  # release memory, as Lightning does
    module.zero_grad()
    if t._should_sanity_check():
        with isolate_rng():
            _run_sanity_check(t)
    with torch.autograd.set_detect_anomaly(t._detect_anomaly):  # Lightning: around the fit loop, not the sanity check
        _run_training(t)
    t.fit_loop.resume = None
    t.fit_loop.restarting = False
    fire(ev.FIT_END)  # after the declared strategy_teardown action (unwrap, release the device)
    fire(ev.TEARDOWN, TrainerFn.FITTING)


def _run_sanity_check(t: Trainer) -> None:
    fire = t._driver.fire
    t._results.reset_run()
    fire(ev.SANITY_CHECK_START)
    loaders, counts = t._load_eval_loaders("val", sanity=True)
    if sum(counts) > 0:
        run_evaluation(t, ev.EVAL["validation"], loaders, counts, RunningStage.SANITY_CHECKING)
    fire(ev.SANITY_CHECK_END)
    t._results.reset_run()  # metrics logged during the sanity check are discarded


def _run_training(t: Trainer) -> None:
    fire = t._driver.fire
    loop = t.fit_loop
    if t._cfg.limit_train_batches == 0:
        return  # Lightning's "skip": the train dataloader is not even requested
    loader = t._load_train_loader()
    if _fit_done(t) or t.num_training_batches == 0:
        return  # Lightning's "skip": no on_train_start, no epochs, no on_train_end
    if loop.max_steps == -1:  # a restored end-of-epoch checkpoint: current_epoch catches up (fit loop on_run_start)
        loop.epochs_completed = loop.epochs_processed
    if t._should_check_val_epoch() and t.val_dataloaders is None:
        t._load_eval_loaders("val", sanity=False)
    fire(ev.TRAIN_START)
    while not _fit_done(t):
        if flags.reload_due(t.reload_dataloaders_every_n_epochs, t.current_epoch, t._train_loaded_at):
            loader = t._load_train_loader()  # Lightning's fit loop on_advance_start, before on_train_epoch_start
        _run_epoch(t, loader)
        if loop.restarting:
            loop.restarting = False
    fire(ev.TRAIN_END)


def _fit_done(t: Trainer) -> bool:
    return t.fit_loop.fit_done(t.num_training_batches, t.should_stop)


def _run_epoch(t: Trainer, loader: Iterable[Any]) -> None:
    """One training epoch (fit loop ``advance`` + epoch loop + ``on_advance_end``)."""
    fire = t._driver.fire
    loop = t.fit_loop
    set_sampler_epoch(loader, loop.epochs_processed)
    plan, loop.resume = loop.resume, None  # a restored fit's first epoch (checkpointing.ResumePlan)
    results = t._results
    results.start_epoch("train")
    if plan is None or plan.fire_epoch_start:
        t._checkpoints.begin_epoch(loader, plan)
        fire(ev.TRAIN_EPOCH_START)
    else:
        fire(ev.RESUME_EPOCH)
    batches = t._checkpoints.open_epoch(loader, plan)
    skip = plan.skip if plan is not None else 0
    loop.batches_ready = skip
    loop.batch_idx = skip - 1
    loop.is_last_batch = False
    # Whether validation can run in this epoch at all (hooks overridden, loaders, limits,
    # check_val_every_n_epoch): fixed for the epoch, so asked once, not after every batch.
    validate_epoch = t._should_check_val_epoch()
    if plan is not None and plan.pending is not None:  # what the saved batch still had to do
        loop.is_last_batch = plan.is_last_batch
        _after_batch(t, validate=validate_epoch and plan.pending == "batch")
    module = t.lightning_module
    assert module is not None
    # Per-epoch constants of the batch loop, read once: the batch bracket (its events' functions)
    # and the automatic-optimization step for the first optimizer (built at its first use).
    bracket = TrainBatch(t, t._cfg.device)
    start_batch, end_batch = bracket.start, bracket.end
    precision = t.precision_plugin
    manual_step = precision.wrap_step(t._driver.caller(ev.MANUAL_TRAINING_STEP), precision.train_step_context)
    accumulate = t.accumulate_grad_batches
    automatic_step: steps.AutomaticStep | None = None
    items = iter(batches)
    while not _epoch_done(t):
        try:
            batch_idx, batch = next(items)
        except StopIteration:
            break
        loop.is_last_batch = batches.done
        batch = start_batch(batch, batch_idx)
        if batch is SKIPPED:
            _update_schedulers(t, "step", plateau=False)
            if _ready_reached(t):
                _update_schedulers(t, "epoch", plateau=False)
            break
        stepping = accumulate == 1 or not _should_accumulate(t)
        automatic = module.automatic_optimization
        if automatic:
            if automatic_step is None:
                automatic_step = _automatic_step(t)
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
            _update_schedulers(t, "step", plateau=False)
            if _ready_reached(t):
                _update_schedulers(t, "epoch", plateau=False)
        end_batch(outputs, batch, batch_idx, stepping or not automatic)
        _after_batch(t, validate=validate_epoch)
        if stepping:  # after the validation this batch ran: its epoch metrics have the step before
            loop.batches_that_stepped += 1
        if t.should_stop and t.loggers:
            logger_connector.save_on_stop(t)
    # fit loop on_advance_end
    loop.epochs_processed += 1
    results.end_epoch("train")
    fire(ev.TRAIN_EPOCH_END)
    t._log_train_epoch(results.close_epoch("train"))
    loop.batches = None
    if _ready_reached(t) and not loop.restarting:  # Lightning: no plateau step at the end of a restarted epoch
        _update_schedulers(t, "epoch", plateau=True)
    loop.epochs_completed += 1
    if t.received_sigterm:
        raise SIGTERMException()


def _after_batch(t: Trainer, validate: bool) -> None:
    """The epoch loop's ``on_advance_end``: validation when due, plateau schedulers, SIGTERM.

    Args:
        t: the trainer.
        validate: validation may run after this batch (an epoch where it runs at all).
    """
    if validate and _should_check_val(t):
        if not _should_accumulate(t):
            t._driver.fire(ev.VALIDATION_MODEL_ZERO_GRAD)
        _run_fit_validation(t)
        t._driver.fire(ev.VALIDATION_EXIT)
    if t.lr_scheduler_configs:  # (returns at once without schedulers)
        _update_schedulers(t, "step", plateau=True)
    if t.received_sigterm and not _training_done(t):  # the flag first: it is almost always False
        raise SIGTERMException()


def _ready_reached(t: Trainer) -> bool:
    loop = t.fit_loop
    return loop.batches_ready == t.num_training_batches or loop.is_last_batch


def _training_done(t: Trainer) -> bool:
    return t.fit_loop.max_steps_reached() or _ready_reached(t)


def _epoch_done(t: Trainer) -> bool:
    # ``_training_done`` inlined: this runs before every batch
    loop = t.fit_loop
    max_steps = loop.max_steps
    if max_steps != -1 and loop.global_step >= max_steps:  # (loop.max_steps_reached(), without the call)
        return True
    if loop.batches_ready == t.num_training_batches or loop.is_last_batch:
        return True
    if t.should_stop:
        return loop.can_stop_early()
    return False


def _should_accumulate(t: Trainer) -> bool:
    loop = t.fit_loop
    accumulation_done = loop.batches_ready % t.accumulate_grad_batches == 0
    return not accumulation_done and not _ready_reached(t)


def _should_check_val(t: Trainer) -> bool:
    # Lightning's rules for the position in an epoch where validation runs at all (the
    # caller asked ``_should_check_val_epoch`` once for the epoch; it does not change
    # within one: hooks overridden, loaders, limits and the epoch number).
    loop = t.fit_loop
    infinite = t.val_check_batch == _INF
    if (loop.is_last_batch and infinite) or (t.should_stop and loop.can_stop_early()):
        check = True
    else:
        check = loop.is_last_batch
        limit = t._cfg.limit_train_batches
        if isinstance(limit, int) and infinite:
            check = (loop.batch_idx + 1) % limit == 0
        elif t.val_check_batch != _INF:
            current = loop.total_batch_idx if t._cfg.check_val_every_n_epoch is None else loop.batch_idx
            check = (current + 1) % t.val_check_batch == 0
    return bool(check)


def _run_fit_validation(t: Trainer) -> None:
    loaders = t.val_dataloaders
    if loaders is None or flags.reload_due(t.reload_dataloaders_every_n_epochs, t.current_epoch, t._val_loaded_at):
        loaders_list, counts = t._load_eval_loaders("val", sanity=False)
    else:
        loaders_list, counts = t._eval_loaders["val"], t.num_val_batches
    if sum(counts) > 0:
        run_evaluation(t, ev.EVAL["validation"], loaders_list, counts, RunningStage.VALIDATING)


def _update_schedulers(t: Trainer, interval: str, plateau: bool) -> None:
    module = t.lightning_module
    if not t.lr_scheduler_configs or module is None or not module.automatic_optimization:
        return
    if interval == "step" and _should_accumulate(t):
        return
    fire = t._driver.fire
    for config in t.lr_scheduler_configs:
        if plateau != config.reduce_on_plateau:
            continue
        index = (t.fit_loop.batch_idx if interval == "step" else t.current_epoch) + 1
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


# --------------------------------------------------------------------------- one training batch


def _automatic_step(t: Trainer) -> steps.AutomaticStep:
    """Automatic optimization with the first optimizer: the shared :class:`steps.AutomaticStep`.

    The outputs (a clone of the loss) are built only when ``on_train_batch_end`` has a
    receiver in this run: with none, nothing could see them.
    """
    return steps.AutomaticStep(
        t._driver.caller,
        t.fit_loop,
        t.optimizers[0],
        t._lightning_optimizers[0],
        accumulate=t.accumulate_grad_batches,
        warn=t._warn_once,
        skip_backward=t.fit_loop._skip_backward,
        outputs=t._driver.calls_hooks(ev.TRAIN_BATCH_END),
        precision=t.precision_plugin,
    )


# --------------------------------------------------------------------------- evaluation


def run_evaluation(
    t: Trainer,
    e: ev.EvalTriggers,
    loaders: list[Iterable[Any]],
    counts: list[int | float],
    stage: RunningStage,
) -> list[Any]:
    """One evaluation run (validation, test or predict) over its loaders in sequence.

    Returns:
        For predict, the predictions per loader; otherwise an empty list.
    """
    module = t.lightning_module
    prefix = e.kind
    preflight.verify_dataloader_idx(module, e.noun, prefix, len(loaders))  # where Lightning's loops check
    several = len(loaders) > 1
    predict = e.noun == "predict"
    predictions: list[list[Any]] = [[] for _ in loaders]
    stage_name = stage.value
    t._eval_last_outputs = []
    validating = e.noun == "validation"
    if validating:
        t._val_has_run = False  # Lightning's val_loop._has_run (read by ModelCheckpoint)
    with _eval_context(t._cfg.inference_mode):
        run = EvalRun(t, e, stage_name)
        run.open()
        start_batch, step, end_batch = run.start_batch, run.step, run.end_batch
        last_loader = max((i for i, n in enumerate(counts) if n > 0), default=-1)
        for dl_idx, (loader, n) in enumerate(zip(loaders, counts, strict=True)):
            if n == 0:
                continue
            log_idx = dl_idx if several else None
            t._current_dataloader_idx = log_idx
            batches = Lookahead(loader, n)
            for batch_idx, batch in batches:
                batch = start_batch(batch, batch_idx, log_idx)
                out = step(batch, batch_idx, log_idx)
                end_batch(out, batch, batch_idx, log_idx)
                if predict:
                    predictions[dl_idx].append(out)
                if t.received_sigterm and not (batches.done and dl_idx == last_loader):
                    raise SIGTERMException()
        if validating and stage is not RunningStage.SANITY_CHECKING and last_loader >= 0:
            t._val_has_run = True
        run.end_epoch()
        if stage is not RunningStage.SANITY_CHECKING and not predict:
            t._eval_last_outputs = [{k: float(v) for k, v in d.items()} for d in t._results.eval_outputs]
        run.end()
    return predictions


def run_eval_entry(t: Trainer, fn: TrainerFn, ckpt_path: str | None) -> Any:
    """``validate``/``test``/``predict``: setup, one evaluation run, teardown (spec 3.11-3.13)."""
    fire = t._driver.fire
    e = ev.EVAL_OF_ENTRY[fn.value]
    t._attach_model_callbacks(fire(ev.ENTRY[fn.value]))
    fire(ev.SETUP, fn)
    if ckpt_path is not None:
        checkpoint = t._checkpoints.restore_start(ckpt_path)
        t._checkpoints.restore_eval_state(checkpoint)
    t._results.reset_run()
    t._eval_steps.reset()
    module = t.lightning_module
    assert module is not None
    t._log_hyperparameters()
    module.zero_grad()
    result: Any = None if fn is TrainerFn.PREDICTING else []  # Lightning: a skipped predict returns None
    if t._eval_enabled(e.kind):
        loaders, counts = t._load_eval_loaders(e.kind, sanity=False)
        if sum(counts) > 0:
            predictions = run_evaluation(t, e, loaders, counts, e.stage)
            if fn is TrainerFn.PREDICTING:
                result = predictions[0] if len(predictions) == 1 else predictions
            else:
                result = t._eval_last_outputs
    fire(ev.TEARDOWN, fn)  # after the declared strategy_teardown action
    return result


# --------------------------------------------------------------------------- helpers


@contextmanager
def _eval_context(inference: bool) -> Iterator[None]:
    with torch.inference_mode() if inference else torch.no_grad():
        yield


def load_loaders(
    value: Any, kind: str, limit: int | float, what: str, prepare: Any = None
) -> tuple[list[Any], list[int | float]]:
    """Normalise loaders (through the strategy's ``prepare(loader, kind)`` when given) and count their batches."""
    loaders = as_loader_list(value, kind)
    if prepare is not None:
        loaders = [prepare(dl, kind) for dl in loaders]
    return loaders, [num_batches(dl, limit, what) for dl in loaders]
