"""One training batch, as Lightning runs it: shared by the Trainer's loops and by custom loops.

These functions are the part of a training batch that is the same whoever owns the loop:
Lightning's automatic optimization (``optimizer_step`` wrapping a closure that runs
``training_step``, ``zero_grad`` and ``backward``), the normalisation of what a training
step returns, and the wrapping of optimizers whose ``step`` fires the lifecycle's
optimizer events. Like :mod:`lightcycle.trainer.loops`, nothing here names a hook:
every hook call is an event function of the lifecycle driver (``fire(EVENT, ...)`` without
the lookup, :meth:`~lightcycle.engine.driver.LifecycleDriver.caller`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

import torch

from lightcycle._hooks import is_base_hook
from lightcycle.core.module import LightningModule
from lightcycle.core.optim import LightningOptimizer, closure_first
from lightcycle.core.optim import _do_nothing as _NOTHING_AFTER
from lightcycle.errors import MisconfigurationException
from lightcycle.precision import Precision, scaled_step
from lightcycle.runtime.fused_step import StepSource, fused_batch, fused_train_batch
from lightcycle.states import declaration as ev
from lightcycle.states.model import Event

if TYPE_CHECKING:
    from lightcycle.engine.driver import LifecycleDriver
    from lightcycle.runtime.training import TrainBatch

Caller = Callable[[Event], Callable[..., Any]]
"""``LifecycleDriver.caller``: the function that fires an event."""

_FULL = Precision()  # 32-bit: wraps nothing
_NO_EXTRA: dict[str, Any] = {}  # shared, never mutated: a tensor output has no extra keys
_NOT_RUN: Any = object()  # ``AutomaticStep.loss`` until the closure ran in this batch
_Tensor = torch.Tensor
NO_LOSS_WARNING = "`training_step` returned `None`. The backward pass and the optimizer's gradients are skipped."


def split_output(output: Any, normalize: int) -> tuple[torch.Tensor | None, dict[str, Any]]:
    """The loss (divided by ``normalize`` for accumulation) and the extra keys of a step's output.

    Args:
        output: what ``training_step`` returned: a tensor, a dict with ``"loss"``, or ``None``.
        normalize: the number of accumulated micro-batches (1: no division).

    Raises:
        MisconfigurationException: a dict without ``"loss"``, or another type.
    """
    if output is None:
        return None, _NO_EXTRA
    if isinstance(output, torch.Tensor):
        return output / normalize if normalize > 1 else output, _NO_EXTRA
    if isinstance(output, dict):
        if "loss" not in output:
            raise MisconfigurationException(
                "training_step returned a dict without a 'loss' key. Return the loss tensor, or a dict with 'loss'."
            )
        loss = output["loss"]
        extra = {k: v for k, v in output.items() if k != "loss"}
        return (loss / normalize if normalize > 1 else loss), extra
    raise MisconfigurationException(
        f"training_step returned {type(output).__name__}; return a loss tensor, a dict with 'loss', or None."
    )


def manual_outputs(output: Any) -> dict[str, Any]:
    """The ``outputs`` that ``on_train_batch_end`` receives under manual optimization.

    Args:
        output: what the training step returned: a tensor, a dict, or ``None``.

    Returns:
        ``{"loss": tensor.detach()}`` for a tensor, the dict with tensors detached,
        ``{}`` for ``None``.

    Raises:
        MisconfigurationException: any other type.
    """
    if output is None:
        return {}
    if isinstance(output, torch.Tensor):
        return {"loss": output.detach()}
    if isinstance(output, dict):
        return {k: (v.detach() if isinstance(v, torch.Tensor) else v) for k, v in output.items()}
    raise MisconfigurationException(
        f"training_step returned {type(output).__name__}; under manual optimization return a tensor, a dict or None."
    )


class AutomaticStep:
    """Automatic optimization of one batch (Lightning's ``_AutomaticOptimization.run``).

    Built for one optimizer (per epoch by the Trainer, per run by LoopDriver) and called once
    per batch. When the batch steps, ``optimizer_step`` fires with :attr:`closure`, which
    runs ``training_step``, ``zero_grad`` (first micro-batch of a window) and ``backward``;
    the wrapped optimizer fires ``before_optimizer_step`` after the closure; then
    ``optimizer_step_end`` fires and ``progress.global_step`` advances. An accumulating
    micro-batch runs the closure on its own.

    The closure is one bound method reused for every batch (its inputs are set on the
    object first), so a batch allocates no closure and no result holder.

    Args:
        caller: the lifecycle driver's ``caller`` (read once, here).
        progress: has a ``global_step`` counter (``FitLoopProgress``).
        optimizer: the torch optimizer (passed to the zero-grad hooks).
        lightning_optimizer: its :class:`LightningOptimizer` (passed to ``optimizer_step``).
        accumulate: micro-batches per optimizer step (the loss is divided by it).
        warn: called once with :data:`NO_LOSS_WARNING` when the step returns ``None``.
        outputs: build the outputs (``{"loss": loss.detach().clone(), ...}``); ``False``
            when nobody receives them in this run (no ``on_train_batch_end`` to call):
            the batch then returns an empty dict and skips the clone.
        precision: the precision plugin (default: 32-bit, which wraps nothing).
        module: the LightningModule whose ``optimizer_step`` the event calls; when it keeps
            the base one, the optimizer is an exact built-in type that runs the closure once,
            first (:func:`~lightcycle.core.optim.closure_first`), and the precision is
            32-bit, the wrapper's ``step`` runs the closure, the before-step hooks and the
            real ``step()`` directly (``LightningOptimizer._direct``): the same calls in the
            same order, without the closure wrapper and ``enable_grad`` around it.
        driver: the lifecycle driver whose events ``caller`` fires: given, a stepping batch
            may run as one generated function (:attr:`run`); ``None``: never.
    """

    __slots__ = (
        "_accumulators",
        "_backward",
        "_batch",
        "_batch_idx",
        "_epoch",
        "_fusing",
        "_optimizer_step",
        "_optimizer_step_end",
        "_training_step",
        "_zero_grad",
        "_zero_grad_event",
        "accumulate",
        "closure",
        "extra",
        "lightning_optimizer",
        "loss",
        "optimizer",
        "outputs",
        "progress",
        "run",
        "warn",
    )

    def __init__(
        self,
        caller: Caller,
        progress: Any,
        optimizer: Any,
        lightning_optimizer: Any,
        *,
        accumulate: int,
        warn: Callable[[str], None],
        outputs: bool = True,
        skip_backward: bool = False,
        precision: Precision | None = None,
        module: Any = None,
        driver: LifecycleDriver | None = None,
    ) -> None:
        precision = precision or _FULL
        # the precision wraps the step (autocast) and the backward (loss scaling) once, here;
        # 32-bit returns the event functions themselves
        self._training_step = precision.wrap_step(caller(ev.TRAINING_STEP), precision.train_step_context)
        # Lightning's fit_loop._skip_backward (set for an epoch, e.g. by StochasticWeightAveraging's
        # BatchNorm pass): no zero_grad, no backward, none of their hooks; the optimizer still steps
        # (on the gradients left from before). Chosen once per epoch, not per batch.
        self._zero_grad_event = _skipped if skip_backward else caller(ev.ZERO_GRAD)
        self._backward = _skipped if skip_backward else precision.wrap_backward(caller(ev.BACKWARD))
        self._optimizer_step = caller(ev.OPTIMIZER_STEP)
        self._optimizer_step_end = caller(ev.OPTIMIZER_STEP_END)
        self.progress = progress
        self.optimizer = optimizer
        self.lightning_optimizer = lightning_optimizer
        self.accumulate = accumulate
        self.warn = warn
        self.outputs = outputs
        self.closure: Callable[[], torch.Tensor | None] = self._closure
        self._batch: Any = None
        self._batch_idx = 0
        self._epoch = 0
        self._zero_grad = True
        self.loss: torch.Tensor | None = None
        self.extra: dict[str, Any] = _NO_EXTRA
        self._accumulators = grad_accumulators(optimizer)
        if isinstance(lightning_optimizer, LightningOptimizer):  # (decided per epoch: overrides may change)
            lightning_optimizer._direct = direct_step_allowed(module, lightning_optimizer, precision)
        self.run: Callable[[Any, int, int, bool, bool], dict[str, Any]] = self
        """What the loop calls per batch, as it would call this object: the generated function of
        :mod:`~lightcycle.runtime.fused_step` where ``driver`` allows it, else this object."""
        self._fusing: StepSource | None = None
        if driver is not None:
            source = StepSource(driver, module, skip_backward, split_output, NO_LOSS_WARNING, _NO_EXTRA)
            fused = fused_batch(self, source)
            if fused is not None:
                self.run = fused
                self._fusing = source

    def with_bracket(
        self, bracket: TrainBatch, skipped: object, finished: object, step_due: Callable[[Any], bool]
    ) -> Callable[[Any, int], Any] | None:
        """The Trainer's whole stepping batch as one generated function, where :attr:`run` is one.

        See :func:`~lightcycle.runtime.fused_step.fused_train_batch` (its arguments but these).

        Returns:
            ``f(batch, batch_idx)``, or ``None``.
        """
        if self._fusing is None:
            return None
        return fused_train_batch(
            self,
            self._fusing,
            bracket=bracket,
            skipped=skipped,
            finished=finished,
            step_due=step_due,
        )

    def refresh_accumulators(self) -> None:
        """Read the parameters' gradient accumulators again (for an epoch that reuses this step).

        Parameters frozen or unfrozen, or groups added, between epochs change them.
        """
        self._accumulators = grad_accumulators(self.optimizer)

    def _closure(self) -> torch.Tensor | None:
        output = self._training_step(self._batch, self._batch_idx)
        if type(output) is _Tensor and self.accumulate == 1:  # ``split_output``'s answer, without the call
            loss: torch.Tensor | None = output
            extra = _NO_EXTRA
        else:
            loss, extra = split_output(output, self.accumulate)
        if loss is None:
            self.warn(NO_LOSS_WARNING)
        if self._zero_grad:
            self._zero_grad_event(self._epoch, self._batch_idx, self.optimizer)
        if loss is not None:
            self._backward(loss)
        self.loss = loss  # (no longer ``_NOT_RUN``: the closure ran)
        self.extra = extra
        return loss

    def __call__(self, batch: Any, batch_idx: int, epoch: int, zero_grad: bool, step: bool) -> dict[str, Any]:
        """Run one batch.

        Args:
            batch: the batch, already on the device.
            batch_idx: its index in the epoch.
            epoch: ``current_epoch``, passed to ``optimizer_step`` / ``optimizer_zero_grad``.
            zero_grad: clear gradients in this batch (first micro-batch of a window).
            step: step the optimizer after this batch.

        Returns:
            ``{"loss": detached loss, **extra keys}``, or ``{}`` when the step returned
            ``None`` or the outputs are not wanted (``outputs=False``).

        Raises:
            MisconfigurationException: the module's ``optimizer_step`` did not run the closure.
        """
        self._batch = batch
        self._batch_idx = batch_idx
        self._epoch = epoch
        self._zero_grad = zero_grad
        self.loss = _NOT_RUN
        if not step:
            self._closure()
        else:
            self._optimizer_step(epoch, batch_idx, self.lightning_optimizer, self.closure)
            if self.loss is _NOT_RUN:
                self._batch = self.loss = None
                self.progress.global_step += 1  # Lightning counts the step before it finds the closure unused
                raise MisconfigurationException(
                    "The closure passed to `optimizer_step` was not executed. Call "
                    "`optimizer.step(closure=optimizer_closure)` (or run `optimizer_closure()`) in your "
                    "`optimizer_step` override; an optimizer whose `step` takes a closure must call it."
                )
            self._optimizer_step_end()
            self.progress.global_step += 1
        loss, extra = self.loss, self.extra
        self._batch = self.loss = None  # hold neither the batch nor the graph's output between batches
        if loss is None or not self.outputs:
            return {}
        return {"loss": loss.detach().clone(), **extra} if extra else {"loss": loss.detach().clone()}


def direct_step_allowed(module: Any, lightning_optimizer: LightningOptimizer, precision: Precision) -> bool:
    """Whether ``lightning_optimizer.step(closure)`` may skip the real ``step(closure)`` route.

    The conditions that do not change within an epoch (the wrapper checks the others on
    every step, see :class:`~lightcycle.core.optim.LightningOptimizer`): the module keeps
    the base ``optimizer_step`` (so the closure reaches the wrapper unchanged), the wrapped
    optimizer is an exact built-in type whose ``step`` runs the closure once, first, the
    precision is plain 32-bit (its ``optimizer_step`` is the real one), and nothing replaced
    the wrapper's ``step`` (a scaler's) or set an after-step callable (manual optimization).

    Args:
        module: the LightningModule, or ``None`` (unknown: the real route).
        lightning_optimizer: the wrapper passed to ``optimizer_step``.
        precision: the run's precision plugin.

    Returns:
        True when the direct route runs the same calls in the same order.
    """
    return (
        module is not None
        and is_base_hook("optimizer_step", module, LightningModule)
        and type(precision) is Precision
        and closure_first(lightning_optimizer.optimizer)
        and "step" not in vars(lightning_optimizer)
        and type(lightning_optimizer).step is LightningOptimizer.step
        and lightning_optimizer._on_after_step is _NOTHING_AFTER
    )


def _skipped(*args: Any) -> None:
    """zero_grad and backward in an epoch that skips backward."""


def grad_accumulators(optimizer: Any) -> list[Any]:
    """The autograd nodes that accumulate the gradients of ``optimizer``'s parameters.

    Autograd keeps a parameter's ``AccumulateGrad`` node only while a graph uses it. A raw
    loop's ``loss`` variable keeps the last graph alive into the next forward pass, so the
    nodes are reused; a loop that drops the loss after each batch (as Lightning does, and
    so this one, to free the graph early) makes autograd build and destroy one node per
    parameter per batch. Holding the nodes (as DDP's reducer does) keeps them reused. They
    refer to the parameters, which the optimizer holds anyway.

    Args:
        optimizer: a torch optimizer (anything with ``param_groups``).

    Returns:
        One node per trainable plain parameter (other tensor types are left to autograd).
    """
    nodes = []
    with torch.enable_grad():
        for group in getattr(optimizer, "param_groups", ()):
            for p in group["params"]:
                if type(p) is torch.nn.Parameter and p.requires_grad and p.is_leaf:
                    fn = p.view_as(p).grad_fn
                    if fn is not None and fn.next_functions:
                        nodes.append(fn.next_functions[0][0])
    return nodes


def wrap_optimizers(
    caller: Caller,
    automatic: bool,
    optimizers: Sequence[Any],
    gradient_clip_val: Any,
    gradient_clip_algorithm: Any,
    count_step: Callable[[], None],
    scaler: Any = None,
) -> list[LightningOptimizer]:
    """Wrap optimizers so that their ``step`` fires the lifecycle's optimizer events.

    Under automatic optimization ``step`` fires ``before_optimizer_step`` (with the
    clipping arguments) after the closure; under manual optimization it fires
    ``manual_optimizer_step`` before the real step and calls ``count_step`` after it.

    Args:
        caller: the lifecycle driver's ``caller``.
        automatic: the module's ``automatic_optimization``.
        optimizers: the torch optimizers.
        gradient_clip_val: passed to ``configure_gradient_clipping``.
        gradient_clip_algorithm: passed to ``configure_gradient_clipping``.
        count_step: advances ``global_step`` (manual optimization).
        scaler: a ``GradScaler`` (``"16-mixed"``): ``step`` then unscales, steps and updates
            through it (:func:`lightcycle.precision.scaled_step`); ``None``: the plain step.

    Returns:
        One :class:`LightningOptimizer` per optimizer, in order.
    """
    wrapped = []
    before_step = caller(ev.BEFORE_OPTIMIZER_STEP if automatic else ev.MANUAL_OPTIMIZER_STEP)
    for opt in optimizers:
        lopt = LightningOptimizer(opt)
        if automatic:
            lopt._on_before_step = partial(before_step, opt, gradient_clip_val, gradient_clip_algorithm)
        else:
            lopt._on_before_step = partial(before_step, opt)
            lopt._on_after_step = count_step
        if scaler is not None:  # an instance attribute: without a scaler, the class's step runs untouched
            lopt.step = scaled_step(scaler, lopt, automatic)  # type: ignore[method-assign]
        wrapped.append(lopt)
    return wrapped
