"""One generated function for an automatic-optimization batch that steps (the Trainer's hot path).

:class:`~lightcycle.runtime.steps.AutomaticStep` runs a batch through four layers: the
``optimizer_step`` event calls the module's ``optimizer_step``, which calls the
:class:`~lightcycle.core.optim.LightningOptimizer`'s ``step``, which (on its direct route)
calls the closure, which fires ``training_step``, ``zero_grad`` and ``backward``; then
``before_optimizer_step``, the real ``step()`` and ``optimizer_step_end``. Where all of
that is fixed for an epoch (the module keeps the base ``optimizer_step``, the direct route
is allowed, one micro-batch per step, 32-bit, events as plain generated functions), this
module writes the same calls as one function, with each event's body inlined from the
bound table (:class:`~lightcycle.engine.codegen.Inliner`): the same moves, hooks and
``_current_fx_name`` values, in the same order, without the layers between them.

What is checked on every batch, before anything runs, is what the layers check on every
step: the state, the optimizer's step hooks, grad mode, a replaced ``step``. If any of it
differs, the batch takes :class:`~lightcycle.runtime.steps.AutomaticStep`'s own path.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

import torch
from torch.optim.optimizer import _global_optimizer_post_hooks, _global_optimizer_pre_hooks

from lightcycle.core.module import LightningModule
from lightcycle.core.optim import LightningOptimizer
from lightcycle.states import declaration as ev
from lightcycle.states.model import Stage

if TYPE_CHECKING:
    from lightcycle.engine.driver import LifecycleDriver
    from lightcycle.runtime.steps import AutomaticStep
    from lightcycle.runtime.training import TrainBatch

_NAME = "fire_automatic_batch__optimizer_step_to_optimizer_step_end"


def _scheduler_counter(step: Any) -> bool:
    """An LR scheduler's wrapper of ``optimizer.step`` (it counts, then calls the real one)."""
    return getattr(step, "_wrapped_by_lr_sched", False) is True


def fused_batch(
    driver: LifecycleDriver,
    auto: AutomaticStep,
    module: Any,
    *,
    skip_backward: bool,
    split: Callable[[Any, int], tuple[Any, dict[str, Any]]],
    no_loss_warning: str,
    no_extra: dict[str, Any],
) -> Callable[..., Any] | None:
    """The generated function for ``auto``'s stepping batches, or ``None`` where it does not apply.

    Args:
        driver: the lifecycle driver (bound for this run).
        auto: the epoch's automatic step (its own ``__call__`` is the fallback).
        module: the LightningModule.
        skip_backward: the epoch skips backward (then no function: the closure differs).
        split: :func:`~lightcycle.runtime.steps.split_output`.
        no_loss_warning: the warning for a step that returned ``None``.
        no_extra: the shared empty dict of a tensor output's extra keys.

    Returns:
        ``f(batch, batch_idx, epoch, zero_grad, step)``, called as ``auto`` is, or ``None``.
    """
    lopt = auto.lightning_optimizer
    if not (
        isinstance(lopt, LightningOptimizer)
        and lopt._direct
        and auto.accumulate == 1
        and auto.optimizer is lopt.optimizer
        and not skip_backward
    ):
        return None
    inline = driver.inliner()
    if inline is None:
        return None
    starts = inline.sources(ev.OPTIMIZER_STEP)
    if len(starts) != 1:
        return None
    start = starts[0]
    step = start[id(ev.OPTIMIZER_STEP)]
    # the event must call the module's base optimizer_step and nothing else: that is the
    # layer whose work (``optimizer.step(closure=...)``, the direct route) is written out here
    if len(step.ops) != 1 or len(step.ops[0].fns) != 1 or step.dest is None:
        return None
    hook = step.ops[0].fns[0]
    if (
        getattr(hook, "__func__", None) is not LightningModule.optimizer_step
        or getattr(hook, "__self__", None) is not module
    ):
        return None
    before = lopt._on_before_step  # ``partial(before_optimizer_step event, opt, clip value, clip algorithm)``
    if not (
        isinstance(before, partial)
        and before.func is driver.caller(ev.BEFORE_OPTIMIZER_STEP)
        and not before.keywords
        and len(before.args) == 3
    ):
        return None
    opt = lopt.optimizer
    v = inline.value
    for name, value in (
        ("START", start),
        ("slow", auto.__call__),
        ("opt", opt),
        ("opt_dict", opt.__dict__),
        ("lopt", lopt),
        ("lopt_dict", lopt.__dict__),
        ("BEFORE", before),
        ("GPRE", _global_optimizer_pre_hooks),
        ("GPOST", _global_optimizer_post_hooks),
        ("grad_enabled", torch.is_grad_enabled),
        ("scheduler_counter", _scheduler_counter),
        ("Tensor", torch.Tensor),
        ("split_output", split),
        ("warn", auto.warn),
        ("NO_LOSS", no_loss_warning),
        ("NO_EXTRA", no_extra),
        ("progress", auto.progress),
        ("CLIP_OPT", before.args[0]),
        ("CLIP_VAL", before.args[1]),
        ("CLIP_ALGO", before.args[2]),
    ):
        v(name, value)
    line = inline.line
    # what the layers check on every step (the state, LightningOptimizer.step's direct route)
    line(2, "if (not (zero_grad and step) or holder._ids is not START")
    line(3, "or opt._optimizer_step_pre_hooks or opt._optimizer_step_post_hooks or GPRE or GPOST")
    line(3, "or not grad_enabled() or lopt._on_before_step is not BEFORE or 'step' in lopt_dict")
    line(3, "or ('step' in opt_dict and not scheduler_counter(opt_dict['step']))):")
    line(3, "return slow(batch, batch_idx, epoch, zero_grad, step)")
    # the optimizer_step event, from START (just checked): its move and its hook's bracket
    line(2, f"holder._ids = {v('ENTERED', inline.row(step.dest))}")
    if step.stage is not Stage.KEEP:
        line(2, f"ts.stage = {v('STEP_STAGE', step.stage)}")
    outer = step.ops[0].name
    line(2, "prev = fx.get('_current_fx_name')")
    line(2, "try:")
    line(3, f"fx['_current_fx_name'] = {outer!r}")
    # the closure: training_step, zero_grad, backward
    row = inline.fire(3, ev.TRAINING_STEP, inline.row(step.dest), ["batch", "batch_idx"], "output", outer)
    line(3, "if type(output) is Tensor:")
    line(4, "loss = output")
    line(4, "extra = NO_EXTRA")
    line(3, "else:")
    line(4, "loss, extra = split_output(output, 1)")
    line(3, "if loss is None:")
    line(4, "warn(NO_LOSS)")
    row = inline.fire(3, ev.ZERO_GRAD, row, ["epoch", "batch_idx", "opt"], None, outer)
    line(3, "if loss is not None:")
    row = inline.fire(4, ev.BACKWARD, row, ["loss"], None, outer)
    # after the closure, inside the real step's place: before_optimizer_step, then step()
    row = inline.fire(3, ev.BEFORE_OPTIMIZER_STEP, row, ["CLIP_OPT", "CLIP_VAL", "CLIP_ALGO"], None, outer)
    line(3, "opt.step()")
    line(2, "finally:")
    line(3, "fx['_current_fx_name'] = prev")
    inline.fire(2, ev.OPTIMIZER_STEP_END, row, [])
    line(2, "progress.global_step += 1")
    if auto.outputs:
        line(2, "if loss is None:")
        line(3, "return {}")
        line(2, "if extra:")
        line(3, "return {'loss': loss.detach().clone(), **extra}")
        line(2, "return {'loss': loss.detach().clone()}")
    else:
        line(2, "return {}")
    return inline.compile(_NAME, ["batch", "batch_idx", "epoch", "zero_grad", "step"])


def fused_bracket(
    driver: LifecycleDriver,
    bracket: TrainBatch,
    transfer: Callable[..., Any],
    skipped: object,
    step_due: Callable[[Any], bool],
) -> tuple[Callable[..., Any], Callable[..., None]] | None:
    """Generated ``start`` and ``end`` of a :class:`~lightcycle.runtime.training.TrainBatch`, or ``None``.

    The same work as its methods, with the transfer, ``train_batch_start`` and
    ``train_batch_end`` events' bodies inlined (one call each fewer, and the host's objects
    read once, here).

    Args:
        driver: the lifecycle driver (bound for this run).
        bracket: the batch bracket whose methods these replace.
        transfer: the bracket's transfer function (the event's own, or a precision's wrapper
            of it: then no function, the conversion comes first).
        skipped: what ``start`` returns for a skipped batch.
        step_due: :func:`~lightcycle.runtime.logger_connector.train_step_due`.

    Returns:
        ``(start, end)``, called as the methods are, or ``None`` where events must not be inlined.
    """
    if transfer is not driver.caller(ev.TRAIN_BATCH_TRANSFER):
        return None
    inline = driver.inliner()
    if inline is None:
        return None
    starts = inline.sources(ev.TRAIN_BATCH_TRANSFER)
    ends = inline.sources(ev.TRAIN_BATCH_END)
    if len(starts) != 1 or not ends:
        return None
    host = bracket._host
    results = host._results
    v = inline.value
    v("host", host)
    v("DEVICE", bracket.device)
    v("start_results", results.start_batch)
    v("SKIPPED", skipped)
    v("skip", driver.caller(ev.SKIP_REST_OF_EPOCH))
    line = inline.line
    # transfer first: a refused call changes no counter
    row = inline.fire(2, ev.TRAIN_BATCH_TRANSFER, starts[0], ["batch", "DEVICE", "0"], "batch")
    line(2, "loop = host.fit_loop")
    line(2, "loop.batch_idx = batch_idx")
    line(2, "loop.batches_ready += 1")
    line(2, "loop.total_batch_idx += 1")
    line(2, "start_results('train', None, batch)")
    inline.fire(2, ev.TRAIN_BATCH_START, row, ["batch", "batch_idx"], "answer")
    line(2, "if answer == -1:")
    line(3, "loop.is_last_batch = True")
    line(3, "skip()")
    line(3, "return SKIPPED")
    line(2, "return batch")
    start = inline.compile("fire_train_batch_bracket_start", ["batch", "batch_idx"])

    inline = driver.inliner()
    assert inline is not None
    v = inline.value
    v("host", host)
    v("results", results)
    v("close", results.close_batch)
    v("step_due", step_due)
    # expected: the row after a stepping automatic batch (where optimizer_step_end leads)
    expected = ends[0]
    step_ends = inline.sources(ev.OPTIMIZER_STEP_END)
    if len(step_ends) == 1 and (dest := step_ends[0][id(ev.OPTIMIZER_STEP_END)].dest) is not None:
        expected = inline.row(dest)
    inline.fire(2, ev.TRAIN_BATCH_END, expected, ["outputs", "batch", "batch_idx"])
    line = inline.line
    # the step values are built only for a logger that takes them at this step
    line(2, "if close('train') and stepped and host.loggers and step_due(host):")
    line(3, "metrics = results.step_metrics()")
    line(3, "if metrics:")
    line(4, "host._log_step(metrics)")
    end = inline.compile("fire_train_batch_bracket_end", ["outputs", "batch", "batch_idx", "stepped"])
    return start, end
