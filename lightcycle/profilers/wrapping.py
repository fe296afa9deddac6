"""How a run's hooks are timed: each bound receiver wrapped, at bind time, in a profiling closure.

Nothing here runs without a profiler: :func:`for_run` returns ``None`` for no profiler or a
:class:`~lightcycle.profilers.PassThroughProfiler`, and the driver then binds the plain
receivers (the hot path is the same code as before profiling existed). With one, the
driver hands every compiled transition's ops to :meth:`RunProfiling.ops` and every
generated event function to :meth:`RunProfiling.event`.

The action names are Lightning 2.6's (``trainer/call.py`` and its loops):

- ``[Callback]<callback.state_key>.<hook>`` for every callback hook call, no-op hooks
  included (Lightning calls and times them all); not ``state_dict``/``load_state_dict``.
- ``[LightningModule]<Class>.<hook>`` and ``[LightningDataModule]<Class>.<hook>``; the
  steps (``training_step``...) are ``[Strategy]<Class>.<step>``, as Lightning calls them
  through the strategy; the module's ``backward`` is timed inside
  ``[Strategy]<Class>.backward`` (the whole backward event, with ``on_before_backward`` and
  ``on_after_backward``; not under manual optimization, where ``manual_backward`` calls
  the strategy directly), as the batch transfer hooks are inside
  ``[Strategy]<Class>.batch_to_device``.
- ``run_training_epoch`` (after ``on_train_epoch_start`` until ``on_train_epoch_end``),
  ``run_training_batch`` (from the step until the schedulers or ``on_train_batch_end``),
  ``[_TrainingEpochLoop].train_dataloader_next``, ``[_EvaluationLoop].val_next`` /
  ``test_next``, ``[_PredictionLoop].predict_next`` (each fetch from the loader, see
  :func:`fetch_timer`), ``save_checkpoint``, and under manual optimization
  ``optimizer_step`` (each ``optimizer.step()``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import attrs

from lightcycle.engine import dispatch as d
from lightcycle.profilers.profiler import PassThroughProfiler, Profiler
from lightcycle.states import declaration as ev
from lightcycle.states.model import Event

STEP_HOOKS = frozenset({"training_step", "validation_step", "test_step", "predict_step"})
"""Module hooks Lightning calls (and times) through the strategy."""

FETCH_ACTIONS = {
    "train": "[_TrainingEpochLoop].train_dataloader_next",
    "val": "[_EvaluationLoop].val_next",
    "test": "[_EvaluationLoop].test_next",
    "predict": "[_PredictionLoop].predict_next",
}
"""Lightning's action names of a batch fetch, by loader kind."""

EPOCH = "run_training_epoch"
BATCH = "run_training_batch"
MANUAL_STEP = "optimizer_step"
"""Lightning's action of one ``optimizer.step()`` under manual optimization."""

_TRANSFERS = frozenset({ev.TRAIN_BATCH_TRANSFER.name, *(e.batch_transfer.name for e in ev.EVAL.values())})
_BATCH_OPENERS = frozenset({ev.OPTIMIZER_STEP.name, ev.TRAINING_STEP.name})
_BATCH_CLOSERS = frozenset({ev.LR_SCHEDULER_STEP.name, ev.TRAIN_BATCH_END.name})
_EPOCH_OPENERS = frozenset({ev.TRAIN_EPOCH_START.name, ev.RESUME_EPOCH.name})


def active(profiler: Any) -> Profiler | None:
    """The profiler to time a run with, or ``None`` when there is nothing to time.

    Args:
        profiler: the host's ``profiler`` attribute (possibly missing: ``None``).

    Returns:
        ``profiler`` unless it is ``None`` or a :class:`PassThroughProfiler`.
    """
    if profiler is None or isinstance(profiler, PassThroughProfiler):
        return None
    return profiler  # type: ignore[no-any-return]


def timed(fn: Callable[..., Any], name: str, profiler: Profiler) -> Callable[..., Any]:
    """``fn`` timed as action ``name`` (stopped when it raises too).

    Args:
        fn: the receiver.
        name: the action's name.
        profiler: the profiler.

    Returns:
        A function taking ``fn``'s arguments; it keeps ``fn``'s ``__self__`` (a failing
        ``on_exception`` handler is named by it).
    """
    start, stop = profiler.start, profiler.stop

    def profiled(*args: Any, **kwargs: Any) -> Any:
        start(name)
        try:
            return fn(*args, **kwargs)
        finally:
            stop(name)

    owner = getattr(fn, "__self__", None)
    if owner is not None:
        profiled.__self__ = owner  # type: ignore[attr-defined]
    return profiled


def fetch_timer(profiler: Any, kind: str) -> Callable[[Iterator[Any]], Iterator[Any]] | None:
    """A wrapper for a loader's iterator that times each ``next`` as Lightning's fetch action.

    Args:
        profiler: the host's profiler.
        kind: ``train``, ``val``, ``test`` or ``predict``.

    Returns:
        ``None`` when nothing is profiled (the iterator is used as it is).
    """
    chosen = active(profiler)
    if chosen is None:
        return None
    name = FETCH_ACTIONS[kind]
    start, stop = chosen.start, chosen.stop

    def wrap(it: Iterator[Any]) -> Iterator[Any]:
        while True:
            start(name)
            try:
                item = next(it)
            except StopIteration:
                return
            finally:
                stop(name)
            yield item

    return wrap


@attrs.define
class RunProfiling:
    """The action names of one bind, and the loop spans open now.

    Args:
        profiler: the profiler timing the run.
        strategy: the strategy's class name.
        module: the LightningModule's class name.
        datamodule: the datamodule's class name (``""`` without one).
    """

    profiler: Profiler
    strategy: str
    module: str
    datamodule: str
    _open: list[str] = attrs.field(factory=list)
    _manual: bool = False

    # ------------------------------------------------------------------ hooks

    def _hook_name(self, op: d.Op, fn: Callable[..., Any]) -> str | None:
        if op.src == "callback":
            owner = getattr(fn, "__self__", None)
            key = owner.state_key if owner is not None else getattr(fn, "__qualname__", type(fn).__name__)
            return f"[Callback]{key}.{op.name}"
        if op.src == "datamodule":
            return f"[LightningDataModule]{self.datamodule}.{op.name}"
        if op.name in STEP_HOOKS:
            return f"[Strategy]{self.strategy}.{op.name}"
        if op.name == "backward":
            return None  # the precision plugin calls module.backward inside [Strategy].backward, untimed
        return f"[LightningModule]{self.module}.{op.name}"

    def ops(self, ops: tuple[d.Op, ...]) -> tuple[d.Op, ...]:
        """A transition's compiled ops with every timed receiver wrapped.

        Args:
            ops: from :func:`~lightcycle.engine.dispatch.compile_transition`.

        Returns:
            The same ops; runtime actions and the callbacks' ``state_dict`` /
            ``load_state_dict`` (which Lightning does not time) unchanged.
        """
        out = []
        for op in ops:
            if op.kind in (d.ACTION, d.COLLECT, d.PER_KEY):
                out.append(op)
                continue
            fns = []
            for fn in op.fns:
                name = self._hook_name(op, fn)
                fns.append(fn if name is None else timed(fn, name, self.profiler))
            out.append(attrs.evolve(op, fns=tuple(fns)))
        return tuple(out)

    # ------------------------------------------------------------------ events

    def _begin(self, name: str) -> None:
        if name not in self._open:
            self._open.append(name)
            self.profiler.start(name)

    def _end(self, name: str) -> None:
        if name in self._open:
            self._open.remove(name)
            self.profiler.stop(name)

    def _end_epoch(self) -> None:
        self._end(BATCH)
        self._end(EPOCH)

    def manual_step_done(self) -> None:
        """A manual ``optimizer.step()`` returned: its ``optimizer_step`` action ends."""
        self._end(MANUAL_STEP)

    def close_all(self) -> None:
        """Stop the loop spans still open (innermost first): the run is being interrupted."""
        while self._open:
            self.profiler.stop(self._open.pop())
        self._manual = False

    def event(self, trigger: Event, fire: Callable[..., Any]) -> Callable[..., Any]:
        """A generated event function, with the loop spans Lightning times around it.

        Args:
            trigger: the event.
            fire: its generated function.

        Returns:
            ``fire`` itself when the event opens or closes no span.
        """
        name = trigger.name
        if name in _TRANSFERS:
            return timed(fire, f"[Strategy]{self.strategy}.batch_to_device", self.profiler)
        if name == ev.BACKWARD.name:
            return self._backward(fire)
        if name == ev.MANUAL_TRAINING_STEP.name:
            return self._manual_step(fire)
        if name == ev.MANUAL_OPTIMIZER_STEP.name:  # ended by manual_step_done, after the real step
            return self._before(fire, lambda: self._begin(MANUAL_STEP))
        if name in _BATCH_OPENERS:
            return self._before(fire, lambda: self._begin(BATCH))
        if name in _BATCH_CLOSERS:
            return self._before(fire, lambda: self._end(BATCH))
        if name == ev.TRAIN_EPOCH_END.name:
            return self._before(fire, self._end_epoch)
        if name == ev.INTERRUPT.name:
            return self._before(fire, self.close_all)
        if name in _EPOCH_OPENERS:

            def opening(*args: Any) -> Any:
                result = fire(*args)
                self._begin(EPOCH)
                return result

            return opening
        return fire

    @staticmethod
    def _before(fire: Callable[..., Any], first: Callable[[], Any]) -> Callable[..., Any]:
        def wrapped(*args: Any) -> Any:
            first()
            return fire(*args)

        return wrapped

    def _backward(self, fire: Callable[..., Any]) -> Callable[..., Any]:
        action = f"[Strategy]{self.strategy}.backward"
        start, stop = self.profiler.start, self.profiler.stop

        def backward(*args: Any) -> Any:
            if self._manual:  # manual_backward calls the strategy directly: Lightning times no span
                return fire(*args)
            start(action)
            try:
                return fire(*args)
            finally:
                stop(action)

        return backward

    def _manual_step(self, fire: Callable[..., Any]) -> Callable[..., Any]:
        # (its training_step receiver is timed as [Strategy].training_step by ``ops``)
        def manual(*args: Any) -> Any:
            self._begin(BATCH)
            self._manual = True
            try:
                return fire(*args)
            finally:
                self._manual = False

        return manual


def for_run(profiler: Any, trainer: Any, module: Any, datamodule: Any) -> RunProfiling | None:
    """The profiling of one bind, or ``None`` when nothing is profiled.

    Args:
        profiler: the host's ``profiler`` attribute.
        trainer: the host (its ``strategy`` names the strategy actions).
        module: the LightningModule.
        datamodule: the datamodule or ``None``.

    Returns:
        ``None`` without a module or without an active profiler.
    """
    chosen = active(profiler)
    if chosen is None or module is None:
        return None
    strategy = getattr(trainer, "strategy", None)
    return RunProfiling(
        chosen,
        type(strategy).__name__ if strategy is not None else "Strategy",
        type(module).__name__,
        type(datamodule).__name__ if datamodule is not None else "",
    )
