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

The batch bracket around it (:class:`~lightcycle.runtime.training.TrainBatch`: the transfer,
the counters, the metric store's batch, ``on_train_batch_start``; ``on_train_batch_end``
and the step metrics) is written the same way, as two functions, and, for the Trainer's
epoch loop, together with the step as one (:func:`fused_train_batch`): one call per batch.
Inside that one, ``_current_fx_name`` is saved once: each hook sets its name and leaves it
(nothing of the batch's own code between them reads it) and it is set back before anybody
else's code runs (a fallback event's function, an overridden property, a logger) and in a
``finally``.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any, NamedTuple

import torch
from torch.optim.optimizer import _global_optimizer_post_hooks, _global_optimizer_pre_hooks

from lightcycle.core.batch_transfer import IS_CPU, ONLY_TENSORS, is_cpu_target
from lightcycle.core.metric_store import MetricStore
from lightcycle.core.module import LightningModule
from lightcycle.core.optim import LightningOptimizer
from lightcycle.engine import dispatch as d
from lightcycle.states import declaration as ev
from lightcycle.states.model import Stage

if TYPE_CHECKING:
    from lightcycle.engine.codegen import Inliner
    from lightcycle.engine.driver import LifecycleDriver
    from lightcycle.engine.interpreter import Step
    from lightcycle.runtime.steps import AutomaticStep
    from lightcycle.runtime.training import TrainBatch

_NAME = "fire_automatic_batch__optimizer_step_to_optimizer_step_end"
_WHOLE = "fire_automatic_batch__transfer_to_train_batch_end"


_AUTOMATIC = LightningModule.automatic_optimization  # the base property (the module's own attribute)
_PROPERTY_READ = "module.automatic_optimization"


def automatic_read(module: Any) -> str:
    """How generated code reads ``module.automatic_optimization`` (named ``module`` there).

    Args:
        module: the LightningModule.

    Returns:
        The attribute the base property returns, read directly (no property call), when the
        module's class keeps the base property; else the property (the module's own code).
    """
    if getattr(type(module), "automatic_optimization", None) is _AUTOMATIC:
        return "module._automatic_optimization"
    return _PROPERTY_READ


_BASE_TRANSFER = LightningModule.transfer_batch_to_device
# the base hooks of the closure whose body is one call, written as that call (Inliner.spelled);
# taken at import: a function patched onto the class later is not the base's
BASE_SPELLED = {LightningModule.backward: "{0}.backward()", LightningModule.optimizer_zero_grad: "{2}.zero_grad()"}


def _scheduler_counter(step: Any) -> bool:
    """An LR scheduler's wrapper of ``optimizer.step`` (it counts, then calls the real one)."""
    return getattr(step, "_wrapped_by_lr_sched", False) is True


class StepSource(NamedTuple):
    """What an automatic step's generated functions are written from, besides the step itself.

    Given by :class:`~lightcycle.runtime.steps.AutomaticStep` (which imports this module, so
    its helpers come in here rather than by import), once, for both builders.
    """

    driver: LifecycleDriver
    """The lifecycle driver (bound for this run)."""
    module: Any
    """The LightningModule."""
    skip_backward: bool
    """The epoch skips backward (then no function: the closure differs)."""
    split: Callable[[Any, int], tuple[Any, dict[str, Any]]]
    """:func:`~lightcycle.runtime.steps.split_output`."""
    no_loss_warning: str
    """The warning for a step that returned ``None``."""
    no_extra: dict[str, Any]
    """The shared empty dict of a tensor output's extra keys."""


class _Plan(NamedTuple):
    """What a fused step is written from, checked once for the epoch."""

    start: dict[int, Step]
    """The row ``optimizer_step`` fires from."""
    step: Step
    """Its step there: a move and the module's base ``optimizer_step``."""
    entered: int
    """The state it moves to (``step.dest``)."""
    before: partial[Any]
    """The wrapper's ``before_optimizer_step`` call (the event with the clipping arguments)."""


def _step_plan(inline: Inliner, auto: AutomaticStep, source: StepSource) -> _Plan | None:
    """The plan of ``auto``'s stepping batch as generated code, or ``None`` where it does not apply."""
    driver, module = source.driver, source.module
    lopt = auto.lightning_optimizer
    if not (
        isinstance(lopt, LightningOptimizer)
        and lopt._direct
        and auto.accumulate == 1
        and auto.optimizer is lopt.optimizer
        and not source.skip_backward
    ):
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
    return _Plan(start, step, step.dest, before)


def _write_step(
    inline: Inliner, auto: AutomaticStep, plan: _Plan, source: StepSource, *, into: str | None
) -> dict[int, Step] | None:
    """Write ``optimizer_step`` .. ``optimizer_step_end`` of a stepping batch.

    Inside ``optimizer_step`` the closure's events set their hooks' names lazily (``around``):
    between them runs only this code, which reads no ``_current_fx_name``, and a
    ``finally`` restores the value from before the batch's step.

    Args:
        inline: the function's writer.
        auto: the epoch's automatic step (its own ``__call__`` is the fallback).
        plan: from :func:`_step_plan`.
        source: the step's other inputs.
        into: ``None``: the lines are the function's whole body, whose parameters are
            ``auto``'s and which returns the outputs; else the variable the outputs go to,
            in a function whose batch steps (``batch``, ``batch_idx`` and ``loop``), which
            saved ``_current_fx_name`` as ``prev`` and restores it in its ``finally`` (the
            lines then start at level 3, in its ``try``).

    Returns:
        The row expected after ``optimizer_step_end`` (``None``: unknown).
    """
    lopt = auto.lightning_optimizer
    opt = lopt.optimizer
    before, step = plan.before, plan.step
    entered = inline.row(plan.entered)
    v = inline.value
    for name, value in (
        ("START", plan.start),
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
        ("split_output", source.split),
        ("warn", auto.warn),
        ("NO_LOSS", source.no_loss_warning),
        ("NO_EXTRA", source.no_extra),
        ("progress", auto.progress),
        ("CLIP_OPT", before.args[0]),
        ("CLIP_VAL", before.args[1]),
        ("CLIP_ALGO", before.args[2]),
    ):
        v(name, value)
    inline.spelled.update(BASE_SPELLED)
    line = inline.line
    top = 2 if into is None else 3
    # what the layers check on every step (the state, LightningOptimizer.step's direct route)
    if into is None:
        line(top, "if (not (zero_grad and step) or holder._ids is not START")
    else:
        line(top, "epoch = loop.epochs_completed")  # (current_epoch, read once as the epoch loop passes it)
        line(top, "if (holder._ids is not START")
    line(top + 1, "or opt._optimizer_step_pre_hooks or opt._optimizer_step_post_hooks or GPRE or GPOST")
    line(top + 1, "or not grad_enabled() or lopt._on_before_step is not BEFORE or 'step' in lopt_dict")
    line(top + 1, "or ('step' in opt_dict and not scheduler_counter(opt_dict['step']))):")
    if into is None:
        line(top + 1, "return slow(batch, batch_idx, epoch, zero_grad, step)")
        body = top
    else:
        if inline.dirty:  # (its events save and restore what they find: the value from before)
            line(top + 1, "fx['_current_fx_name'] = prev")
        line(top + 1, f"{into} = slow(batch, batch_idx, epoch, True, True)")
        line(top, "else:")
        body = top + 1
    # the optimizer_step event, from START (just checked): its move (written with the first
    # event of the closure: nothing runs between them) and its hook's bracket
    if step.stage is not Stage.KEEP:
        line(body, f"ts.stage = {v('STEP_STAGE', step.stage)}")
    outer = repr(step.ops[0].name)  # set lazily too: only the closure's events' fallbacks read it
    if into is None:
        line(body, "prev = fx.get('_current_fx_name')")
        line(body, "try:")
        b = body + 1
    else:
        b = body
    # the closure: training_step, zero_grad, backward
    if auto.outputs:  # (the extra keys are only wanted for the outputs)
        line(b, "extra = NO_EXTRA")
    row = inline.fire(b, ev.TRAINING_STEP, entered, ["batch", "batch_idx"], "loss", around=outer, known=True)
    line(b, "if type(loss) is not Tensor:")  # (split_output's answer for a tensor: itself)
    line(b + 1, f"loss, {'extra' if auto.outputs else '_'} = split_output(loss, 1)")
    line(b + 1, "if loss is None:")  # (never a tensor's)
    line(b + 2, "warn(NO_LOSS)")
    row = inline.fire(b, ev.ZERO_GRAD, row, ["epoch", "batch_idx", "opt"], None, around=outer)
    line(b, "if loss is not None:")
    row = inline.fire(b + 1, ev.BACKWARD, row, ["loss"], None, around=outer)
    # after the closure, inside the real step's place: before_optimizer_step, then step()
    row = inline.fire(b, ev.BEFORE_OPTIMIZER_STEP, row, ["CLIP_OPT", "CLIP_VAL", "CLIP_ALGO"], None, around=outer)
    line(b, "opt.step()")  # (a built-in step without hooks: it reads no _current_fx_name)
    if into is None:
        line(body, "finally:")
        line(b, "fx['_current_fx_name'] = prev")
        inline.dirty = False
        row = inline.fire(body, ev.OPTIMIZER_STEP_END, row, [])  # (no finally around it here)
    else:
        row = inline.fire(body, ev.OPTIMIZER_STEP_END, row, [], around="prev")
    line(body, "progress.global_step += 1")
    if into is None:
        if auto.outputs:
            line(body, "if loss is None:")
            line(body + 1, "return {}")
            line(body, "if extra:")
            line(body + 1, "return {'loss': loss.detach().clone(), **extra}")
            line(body, "return {'loss': loss.detach().clone()}")
        else:
            line(body, "return {}")
    elif auto.outputs:
        line(body, "if loss is None:")
        line(body + 1, f"{into} = {{}}")
        line(body, "elif extra:")
        line(body + 1, f"{into} = {{'loss': loss.detach().clone(), **extra}}")
        line(body, "else:")
        line(body + 1, f"{into} = {{'loss': loss.detach().clone()}}")
    else:
        line(body, f"{into} = {{}}")
    return row


def fused_batch(auto: AutomaticStep, source: StepSource) -> Callable[..., Any] | None:
    """The generated function for ``auto``'s stepping batches, or ``None`` where it does not apply.

    Args:
        auto: the epoch's automatic step (its own ``__call__`` is the fallback).
        source: the step's other inputs.

    Returns:
        ``f(batch, batch_idx, epoch, zero_grad, step)``, called as ``auto`` is, or ``None``.
    """
    inline = source.driver.inliner()
    if inline is None:
        return None
    plan = _step_plan(inline, auto, source)
    if plan is None:
        return None
    _write_step(inline, auto, plan, source, into=None)
    return inline.compile(_NAME, ["batch", "batch_idx", "epoch", "zero_grad", "step"])


def bracket_sources(
    driver: LifecycleDriver, inline: Inliner, transfer: Callable[..., Any]
) -> tuple[dict[int, Step], list[dict[int, Step]]] | None:
    """The transfer event's one source row and ``train_batch_end``'s, or ``None`` (no inlined bracket).

    Public, with :func:`write_start` and :func:`write_end`: the bracket's writers serve the
    Trainer's functions here and the LoopDriver's (:mod:`lightcycle.custom_loop.fused`).
    A precision's wrapper of the transfer converts the input first: then nothing is inlined.
    """
    if transfer is not driver.caller(ev.TRAIN_BATCH_TRANSFER):
        return None
    starts = inline.sources(ev.TRAIN_BATCH_TRANSFER)
    ends = inline.sources(ev.TRAIN_BATCH_END)
    if len(starts) != 1 or not ends:
        return None
    return starts[0], ends


def write_start(
    inline: Inliner,
    bracket: TrainBatch,
    row: dict[int, Step],
    skipped: object,
    skip: Any,
    indent: int = 2,
    around: str | None = None,
    loop: Any = None,
) -> None:
    """Write :meth:`TrainBatch.start` (the transfer from ``row``) into ``inline``'s function.

    The function's ``batch`` and ``batch_idx`` are the method's arguments; the lines leave
    the transferred batch in ``batch`` and return ``skipped`` for a skipped batch.

    Args:
        inline: the function's writer.
        bracket: the batch bracket.
        row: the transfer event's source row.
        skipped: what the function returns for a skipped batch.
        skip: the skip event's function.
        indent: the lines' level.
        around: the variable holding the ``_current_fx_name`` of before the batch, which the
            events leave lazily (see :meth:`~lightcycle.engine.codegen.Inliner.fire`);
            ``None``: each event restores it.
        loop: the host's fit loop, read once for a function of one epoch's batches
            (``None``: read per call, as the method does).
    """
    host = bracket._host
    v = inline.value
    inline.shared("host", host)
    inline.shared("results", host._results)
    v("DEVICE", bracket.device)
    v("start_results", host._results.start_batch)
    v("SKIPPED", skipped)
    v("skip", skip)
    line = inline.line
    i = indent
    # transfer first: a refused call changes no counter
    after = _write_transfer(inline, row, bracket.device, i, around)
    if loop is None:
        line(i, "loop = host.fit_loop")
    else:
        v("loop", loop)
    line(i, "loop.batch_idx = batch_idx")
    line(i, "loop.batches_ready += 1")
    line(i, "loop.total_batch_idx += 1")
    for text in MetricStore.INLINE_START_TRAIN_BATCH:  # the store's batch, its usual case inlined
        line(i, text.format(store="results", batch="batch"))
    line(i, "else:")
    line(i + 1, "start_results('train', None, batch)")
    inline.fire(i, ev.TRAIN_BATCH_START, after, ["batch", "batch_idx"], "answer", around=around, unset=True)
    if not inline.target_set:  # no inlined hook answers: only the event's own function can say -1
        i += 1
    line(i, "if answer == -1:")
    line(i + 1, "loop.is_last_batch = True")
    if inline.dirty:
        line(i + 1, f"fx['_current_fx_name'] = {around}")
    line(i + 1, "skip()")
    line(i + 1, "return SKIPPED")


def _base_transfer_only(step: Step, module: Any, device: Any) -> bool:
    """Whether ``step`` calls nothing but ``module``'s base ``transfer_batch_to_device``, to a CPU target.

    The before/after transfer hooks are then base no-ops (left out of the step), and no
    datamodule's or observer's function is in its place (those are other functions).
    """
    if len(step.ops) != 1 or not is_cpu_target(device):
        return False
    op = step.ops[0]
    fn = op.fns[0] if len(op.fns) == 1 else None
    return (
        op.kind == d.PIPE
        and op.positions is None
        and not op.kwargs
        and not op.with_trainer
        and getattr(fn, "__func__", None) is _BASE_TRANSFER
        and getattr(fn, "__self__", None) is module
    )


def _write_transfer(
    inline: Inliner, row: dict[int, Step], device: Any, indent: int, around: str | None
) -> dict[int, Step] | None:
    """The transfer event from ``row``; where its only hook is the base one, its usual case inlined.

    The base hook's answer for a list of plain CPU tensors to a CPU target (collate's
    default output on a CPU run) is a new list of the same tensors
    (:func:`~lightcycle.core.batch_transfer.move_data_to_device`'s fastest path): written
    here with the event's move, the same test in C, no call. Its ``_current_fx_name`` is
    not set: the base hook logs nothing, and neither reads the name (the plain tensors'
    ``is_cpu`` runs no Python), so nobody can observe it. Anything else (another
    container, a tensor elsewhere or of a subclass, another row) fires the event as ever.

    Returns:
        The row expected after the event, as :meth:`~lightcycle.engine.codegen.Inliner.fire`'s.
    """
    step = row.get(id(ev.TRAIN_BATCH_TRANSFER))
    args = ["batch", "DEVICE", "0"]
    if step is None or not _base_transfer_only(step, inline.ctx.module, device):
        return inline.fire(indent, ev.TRAIN_BATCH_TRANSFER, row, args, "batch", around=around)
    v = inline.value
    line = inline.line
    v("ONLY_TENSORS", ONLY_TENSORS)
    v("IS_CPU", IS_CPU)
    test = "type(batch) is list and ONLY_TENSORS.issuperset(map(type, batch)) and all(map(IS_CPU, batch))"
    line(indent, f"if holder._ids is {v('XFER_ROW', row)} and {test}:")
    if step.dest is not None:
        line(indent + 1, f"holder._ids = {v('XFER_AFTER', inline.row(step.dest))}")
    if step.stage is not Stage.KEEP:
        line(indent + 1, f"ts.stage = {v('XFER_STAGE', step.stage)}")
    line(indent + 1, "batch = [*batch]")
    line(indent, "else:")
    inline.fire(indent + 1, ev.TRAIN_BATCH_TRANSFER, row, args, "batch", around=around)
    return row if step.dest is None else inline.row(step.dest)


def write_end(
    inline: Inliner,
    bracket: TrainBatch,
    ends: list[dict[int, Step]],
    row: dict[int, Step] | None,
    step_due: Callable[[Any], bool],
    stepped: str,
    indent: int = 2,
    around: str | None = None,
    reads: tuple[str, str] | None = None,
    outputs: str = "outputs",
) -> None:
    """Write :meth:`TrainBatch.end` into ``inline``'s function.

    The function must hold ``outputs``, and ``batch`` and ``batch_idx`` (the method's
    arguments) unless ``reads`` says where they are.

    Args:
        inline: the function's writer.
        bracket: the batch bracket.
        ends: the rows ``train_batch_end`` fires from.
        row: the row expected before it (``None``: the row after a stepping automatic batch).
        step_due: :func:`~lightcycle.runtime.logger_connector.train_step_due`.
        stepped: the expression of ``end``'s ``stepped`` argument.
        indent: the lines' level.
        around: as :func:`write_start`'s.
        reads: the expressions of the batch and its index, for a function without those
            variables: read into them where an inlined hook takes them, else only by the
            event's own function (the fallback), whose arguments they are.
        outputs: the expression of the event's ``outputs`` argument (the variable, or a
            conversion made only where the event's hooks or its own function take it).
    """
    results = bracket._host._results
    inline.shared("host", bracket._host)
    inline.shared("results", results)
    inline.value("close", results.close_batch)
    inline.value("step_due", step_due)
    if row is None:
        # expected: the row after a stepping automatic batch (where optimizer_step_end leads)
        row = ends[0]
        step_ends = inline.sources(ev.OPTIMIZER_STEP_END)
        if len(step_ends) == 1 and (dest := step_ends[0][id(ev.OPTIMIZER_STEP_END)].dest) is not None:
            row = inline.row(dest)
    i = indent
    line = inline.line
    args = [outputs, "batch", "batch_idx"]
    if reads is not None:
        step = row.get(id(ev.TRAIN_BATCH_END))
        if step is not None and step.hooks:  # (read once for the hooks)
            line(i, f"batch = {reads[0]}")
            line(i, f"batch_idx = {reads[1]}")
        else:
            args = [outputs, *reads]
    inline.fire(i, ev.TRAIN_BATCH_END, row, args, around=around)
    # the step values are built only for a logger that takes them at this step
    due = "host.loggers and step_due(host)" if stepped == "True" else f"{stepped} and host.loggers and step_due(host)"
    for text in MetricStore.INLINE_CLOSE_TRAIN_BATCH:  # the store's batch closed, its usual case inlined
        line(i, text.format(store="results"))
    line(i + 2, f"if {due}:")
    _write_log(inline, i + 3, around)
    line(i, f"elif close('train') and {due}:")
    _write_log(inline, i + 1, around)


def _write_log(inline: Inliner, indent: int, around: str | None) -> None:
    """The step values of a closed batch to the loggers (:meth:`TrainBatch.end`'s last lines)."""
    if inline.dirty:  # (a logger is anybody's code)
        inline.line(indent, f"fx['_current_fx_name'] = {around}")
    inline.line(indent, "metrics = results.step_metrics()")
    inline.line(indent, "if metrics:")
    inline.line(indent + 1, "host._log_step(metrics)")


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
    inline = driver.inliner()
    if inline is None:
        return None
    sources = bracket_sources(driver, inline, transfer)
    if sources is None:
        return None
    write_start(inline, bracket, sources[0], skipped, driver.caller(ev.SKIP_REST_OF_EPOCH))
    inline.line(2, "return batch")
    start = inline.compile("fire_train_batch_bracket_start", ["batch", "batch_idx"])
    inline = driver.inliner()
    assert inline is not None
    write_end(inline, bracket, sources[1], None, step_due, "stepped")
    end = inline.compile("fire_train_batch_bracket_end", ["outputs", "batch", "batch_idx", "stepped"])
    return start, end


def fused_train_batch(
    auto: AutomaticStep,
    source: StepSource,
    *,
    bracket: TrainBatch,
    skipped: object,
    finished: object,
    step_due: Callable[[Any], bool],
) -> Callable[[Any, int], Any] | None:
    """The whole stepping automatic batch of the Trainer's epoch loop as one generated function.

    Where both :func:`fused_bracket` and :func:`fused_batch` apply: the bracket's start, the
    step and the bracket's end in one call, the same lines as the three functions have. A
    batch that does not step automatically here (the module turned
    ``automatic_optimization`` off, LR schedulers step between the step and the end) returns
    after the start, as ``start`` does, and the loop goes on with the batch as it would.

    Args:
        auto: the epoch's automatic step (its own ``__call__`` is the step's fallback).
        source: the step's other inputs.
        bracket: the epoch's batch bracket (a Trainer's: ``lr_scheduler_configs`` is read).
        skipped: what it returns for a skipped batch.
        finished: what it returns for a batch it ran to the end.
        step_due: :func:`~lightcycle.runtime.logger_connector.train_step_due`.

    Returns:
        ``f(batch, batch_idx)``: :data:`finished`, :data:`skipped`, or the transferred batch
        for the loop to step and end; ``None`` where it does not apply.
    """
    driver, module = source.driver, source.module
    inline = driver.inliner()
    if inline is None:
        return None
    sources = bracket_sources(driver, inline, bracket._transfer)
    plan = _step_plan(inline, auto, source)
    if sources is None or plan is None:
        return None
    line = inline.line
    # one save of _current_fx_name for the batch: the events inside set their hooks' names and
    # leave them (``around``), and it is set back before code that is not the batch's own runs
    line(2, "prev = fx.get('_current_fx_name')")
    line(2, "try:")
    skip = driver.caller(ev.SKIP_REST_OF_EPOCH)
    write_start(inline, bracket, sources[0], skipped, skip, 3, "prev", bracket._host.fit_loop)
    inline.value("module", module)
    inline.value("FINISHED", finished)
    # Lightning reads automatic_optimization per batch; schedulers step between step and end
    automatic = automatic_read(module)
    if automatic == _PROPERTY_READ:
        inline.restore(3, "prev")  # (an overriding property is the module's code)
    line(3, f"if not {automatic} or host.lr_scheduler_configs:")
    line(4, "return batch")
    row = _write_step(inline, auto, plan, source, into="outputs")
    write_end(inline, bracket, sources[1], row, step_due, "True", 3, "prev")
    line(3, "return FINISHED")
    line(2, "finally:")
    line(3, "fx['_current_fx_name'] = prev")
    return inline.compile(_WHOLE, ["batch", "batch_idx"])
