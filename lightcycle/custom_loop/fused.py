"""The LoopDriver's per-batch training calls as generated functions, made for each fit run.

A custom loop calls four driver methods per training batch (``train_batch_start``,
``backward``, ``optimizer_step``, ``train_batch_end``). As methods, each reads the same
objects through ``self`` on every batch and then calls a held event function, whose body
looks up its step in the current row. Within one fit run all of that is fixed:
the progress object, the batch bracket, whether the loop is its own step, the precision's
wrappers and scaler, and the row each event is expected to fire from (the manual
optimization states: ``batch.started`` after the batch's start, ``batch.manual`` inside
the step). This module writes, for a run, the functions a person would write for it:
the methods' bodies with those objects as closure cells and the per-batch events' bodies
inlined from the bound table (:class:`~lightcycle.engine.codegen.Inliner`), each event
testing the current row against the expected one and calling the event's own function
from any other row (which checks, runs or refuses, as the method's call would).

The methods in :mod:`lightcycle.custom_loop.training` stay the reference: the functions do
the same work in the same order (``tests/custom_loop/test_fused_batch.py`` runs both side by
side). :meth:`~lightcycle.custom_loop.training.TrainingProtocol._install_batch_functions`
puts them on the instance, where they shadow the methods.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch

from lightcycle.errors import SIGTERMException
from lightcycle.runtime import steps
from lightcycle.runtime.fused_step import BASE_SPELLED, automatic_read, bracket_sources, write_end, write_start
from lightcycle.runtime.logger_connector import train_step_due
from lightcycle.runtime.training import SKIPPED
from lightcycle.states import declaration as ev

if TYPE_CHECKING:
    from lightcycle.custom_loop.training import TrainingProtocol
    from lightcycle.engine.codegen import Inliner
    from lightcycle.engine.interpreter import Step
    from lightcycle.states.model import Event

_Rows = tuple[dict[int, "Step"], list[dict[int, "Step"]]]
"""The transfer event's source row and ``train_batch_end``'s (``fused_step.bracket_sources``)."""


def batch_functions(lc: TrainingProtocol) -> dict[str, Callable[..., Any]]:
    """The generated per-batch methods of ``lc`` for the run's epochs, by method name.

    Only those that apply: none where events are not inlined (another executor, a
    profiler, debug logging) or the held event functions are not the bind's own (a
    replaced ``caller``); no ``backward`` when the precision
    changes the loss first, no ``optimizer_step`` with a gradient scaler (the methods keep
    those paths).

    Args:
        lc: the LoopDriver, inside a fit run, its progress object and hooks final.

    Returns:
        ``{"train_batch_start": f, ...}``, called as the methods are.
    """
    driver = lc._driver
    probe = driver.inliner()
    if probe is None:
        return {}
    caller = driver.caller
    # the held event functions must be the bind's own, which the inlined events fall back to
    if lc._own_opt_step_event is not caller(ev.MANUAL_OPTIMIZER_STEP):
        return {}
    starts = probe.sources(ev.TRAIN_BATCH_START)
    if len(starts) != 1:
        return {}
    started = _after(probe, starts[0], ev.TRAIN_BATCH_START)
    manual = _after(probe, started, ev.MANUAL_TRAINING_STEP) if started is not None else None
    # the bracket's own lines (TrainBatch's, from fused_step) where its events inline
    bracket = bracket_sources(driver, probe, lc._bracket._transfer)
    made: dict[str, Callable[..., Any]] = {"train_batch_start": _start(lc, started, bracket)}
    if manual is not None:
        if lc._backward_event is caller(ev.BACKWARD):  # (no loss scaling before the event)
            made["backward"] = _backward(lc, manual)
        if lc.precision_plugin.scaler is None:  # (a scaler's unscale/step/update: the method's path)
            made["optimizer_step"] = _optimizer_step(lc, manual)
    made["train_batch_end"] = _end(lc, manual, bracket)
    return made


def _after(inline: Inliner, row: dict[int, Step] | None, trigger: Event) -> dict[int, Step] | None:
    """The row ``trigger`` moves to from ``row`` (``row`` when it stays), ``None`` if not legal there."""
    step = None if row is None else row.get(id(trigger))
    if step is None:
        return None
    return row if step.dest is None else inline.row(step.dest)


def _inliner(lc: TrainingProtocol) -> Inliner:
    inline = lc._driver.inliner()
    assert inline is not None  # (batch_functions checked that this bind inlines)
    return inline


def _start(lc: TrainingProtocol, started: dict[int, Step] | None, bracket: _Rows | None) -> Callable[..., Any]:
    """:meth:`~lightcycle.custom_loop.training.TrainingProtocol.train_batch_start`, for this run."""
    inline = _inliner(lc)
    v = inline.value
    line = inline.line
    v("host", lc)
    v("SIGTERM", SIGTERMException)
    line(2, "if host._stepped_pending:")  # the previous batch stepped: counted now, after its validation
    line(3, "host._stepped_pending = False")
    line(3, "loop.batches_that_stepped += 1")
    line(2, "host._step_at_batch = loop.global_step")
    line(2, "if host.received_sigterm and loop.batches_ready:")  # spec 4.3 (see the method)
    line(3, "raise SIGTERM()")
    if bracket is not None:  # the bracket's start written here (a skipped batch returns None)
        write_start(inline, lc._bracket, bracket[0], None, lc._driver.caller(ev.SKIP_REST_OF_EPOCH), loop=lc.fit_loop)
    else:
        v("loop", lc.fit_loop)
        v("begin", lc._bracket.begin)
        v("SKIPPED", SKIPPED)
        line(2, "batch = begin(batch, batch_idx)")
        line(2, "if batch is SKIPPED:")
        line(3, "return None")
    line(2, "host._batch = batch")
    if lc._own_train:
        if lc._own_step_event is lc._driver.caller(ev.MANUAL_TRAINING_STEP):
            inline.fire(2, ev.MANUAL_TRAINING_STEP, started, ["batch", "batch_idx"])
        else:  # a precision's step context around the event
            line(2, f"{v('own_step', lc._own_step_event)}(batch, batch_idx)")
    line(2, "return batch")
    return inline.compile("fire_driver_train_batch_start", ["batch", "batch_idx"])


def _backward(lc: TrainingProtocol, manual: dict[int, Step]) -> Callable[..., Any]:
    """:meth:`~lightcycle.custom_loop.training.TrainingProtocol.backward`: the event, inlined."""
    inline = _inliner(lc)
    inline.spelled.update(BASE_SPELLED)  # (the base backward: loss.backward())
    inline.fire(2, ev.BACKWARD, manual, ["loss"])
    return inline.compile("fire_driver_backward", ["loss"])


def _optimizer_step(lc: TrainingProtocol, manual: dict[int, Step]) -> Callable[..., Any]:
    """:meth:`~lightcycle.custom_loop.training.TrainingProtocol.optimizer_step` without a scaler."""
    inline = _inliner(lc)
    inline.value("loop", lc.fit_loop)
    inline.fire(2, ev.MANUAL_OPTIMIZER_STEP, manual, ["optimizer"])
    line = inline.line
    line(2, "if step is None:")
    line(3, "out = optimizer.step()")
    line(2, "else:")
    line(3, "out = step(optimizer)")
    line(2, "loop.global_step += 1")
    line(2, "return out")
    return inline.compile("fire_driver_optimizer_step", ["optimizer", "step=None"])


def _end(lc: TrainingProtocol, manual: dict[int, Step] | None, bracket: _Rows | None) -> Callable[..., Any]:
    """:meth:`~lightcycle.custom_loop.training.TrainingProtocol.train_batch_end`, for this run."""
    inline = _inliner(lc)
    v = inline.value
    v("host", lc)
    v("loop", lc.fit_loop)
    v("module", lc.lightning_module)
    v("Tensor", torch.Tensor)
    v("manual_outputs", steps.manual_outputs)
    line = inline.line
    row = manual if lc._own_train else None  # (None: the module's step, after a stepping batch)
    end = None if row is None else row.get(id(ev.TRAIN_BATCH_END))
    converted = "outputs"
    if bracket is not None and end is not None and not end.hooks:
        # Nobody receives the outputs from the expected row: a loss tensor becomes
        # ``{"loss": loss.detach()}`` (a new tensor each batch) only for the event's own
        # function, the fallback from any other row; other types are checked as before.
        line(2, "if type(outputs) is not Tensor and type(outputs) is not dict:")
        line(3, "outputs = manual_outputs(outputs)")
        converted = "({'loss': outputs.detach()} if type(outputs) is Tensor else outputs)"
    else:
        line(2, "if type(outputs) is Tensor:")
        line(3, "outputs = {'loss': outputs.detach()}")
        line(2, "elif type(outputs) is not dict:")
        line(3, "outputs = manual_outputs(outputs)")
    line(2, f"stepped = loop.global_step != host._step_at_batch or not {automatic_read(lc.lightning_module)}")
    if bracket is not None:  # the bracket's end written here, from the row your loop's step leaves
        write_end(
            inline,
            lc._bracket,
            bracket[1],
            row,
            train_step_due,
            "stepped",
            reads=("host._batch", "loop.batch_idx"),
            outputs=converted,
        )
    else:
        line(2, f"{v('finish', lc._bracket.finish)}(outputs, host._batch, loop.batch_idx, stepped)")
    line(2, "host._stepped_pending = stepped")
    return inline.compile("fire_driver_train_batch_end", ["outputs=None"])
