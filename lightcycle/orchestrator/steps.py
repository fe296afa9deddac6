"""One training batch, as Lightning runs it: shared by the Trainer's loops and by custom loops.

These functions are the part of a training batch that is the same whoever owns the loop:
Lightning's automatic optimization (``optimizer_step`` wrapping a closure that runs
``training_step``, ``zero_grad`` and ``backward``), the normalisation of what a training
step returns, and the wrapping of optimizers whose ``step`` fires the lifecycle's
optimizer events. Like :mod:`lightcycle.orchestrator.loops`, nothing here names a hook:
every hook call is ``fire(EVENT, ...)``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import torch

from lightcycle.core.optim import LightningOptimizer
from lightcycle.errors import MisconfigurationException
from lightcycle.states import declaration as ev

Fire = Callable[..., Any]

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
        return None, {}
    if isinstance(output, torch.Tensor):
        return output / normalize if normalize > 1 else output, {}
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


def automatic_step(
    fire: Fire,
    progress: Any,
    batch: Any,
    batch_idx: int,
    epoch: int,
    optimizer: Any,
    lightning_optimizer: Any,
    *,
    accumulate: int,
    zero_grad: bool,
    step: bool,
    warn: Callable[[str], None],
) -> dict[str, Any]:
    """One batch of automatic optimization (Lightning's ``_AutomaticOptimization.run``).

    When ``step`` is true, ``optimizer_step`` fires with a closure that runs
    ``training_step``, ``zero_grad`` (when ``zero_grad``) and ``backward``; the wrapped
    optimizer fires ``before_optimizer_step`` after the closure; then
    ``optimizer_step_end`` fires and ``progress.global_step`` advances. Otherwise (an
    accumulating micro-batch) the closure runs on its own.

    Args:
        fire: the lifecycle driver's ``fire``.
        progress: has a ``global_step`` counter (``FitLoopProgress``).
        batch: the batch, already on the device.
        batch_idx: its index in the epoch.
        epoch: ``current_epoch``, passed to ``optimizer_step`` / ``optimizer_zero_grad``.
        optimizer: the torch optimizer (passed to the zero-grad hooks).
        lightning_optimizer: its :class:`LightningOptimizer` (passed to ``optimizer_step``).
        accumulate: micro-batches per optimizer step (the loss is divided by it).
        zero_grad: clear gradients in this batch (first micro-batch of a window).
        step: step the optimizer after this batch.
        warn: called once with :data:`NO_LOSS_WARNING` when the step returns ``None``.

    Returns:
        ``{"loss": detached loss, **extra keys}``, or ``{}`` when the step returned ``None``.

    Raises:
        MisconfigurationException: the module's ``optimizer_step`` did not run the closure.
    """
    result: list[Any] = []

    def closure() -> torch.Tensor | None:
        loss, extra = split_output(fire(ev.TRAINING_STEP, batch, batch_idx), accumulate)
        if loss is None:
            warn(NO_LOSS_WARNING)
        if zero_grad:
            fire(ev.ZERO_GRAD, epoch, batch_idx, optimizer)
        if loss is not None:
            fire(ev.BACKWARD, loss)
        result[:] = [loss, extra]
        return loss

    if not step:
        closure()
    else:
        fire(ev.OPTIMIZER_STEP, epoch, batch_idx, lightning_optimizer, closure)
        if not result:
            raise MisconfigurationException(
                "The closure passed to `optimizer_step` was not executed. Call "
                "`optimizer.step(closure=optimizer_closure)` (or run `optimizer_closure()`) in your "
                "`optimizer_step` override."
            )
        fire(ev.OPTIMIZER_STEP_END)
        progress.global_step += 1
    loss, extra = result
    if loss is None:
        return {}
    return {"loss": loss.detach().clone(), **extra}


def wrap_optimizers(
    fire: Fire,
    automatic: bool,
    optimizers: Sequence[Any],
    gradient_clip_val: Any,
    gradient_clip_algorithm: Any,
    count_step: Callable[[], None],
) -> list[LightningOptimizer]:
    """Wrap optimizers so that their ``step`` fires the lifecycle's optimizer events.

    Under automatic optimization ``step`` fires ``before_optimizer_step`` (with the
    clipping arguments) after the closure; under manual optimization it fires
    ``manual_optimizer_step`` before the real step and calls ``count_step`` after it.

    Args:
        fire: the lifecycle driver's ``fire``.
        automatic: the module's ``automatic_optimization``.
        optimizers: the torch optimizers.
        gradient_clip_val: passed to ``configure_gradient_clipping``.
        gradient_clip_algorithm: passed to ``configure_gradient_clipping``.
        count_step: advances ``global_step`` (manual optimization).

    Returns:
        One :class:`LightningOptimizer` per optimizer, in order.
    """
    wrapped = []
    for opt in optimizers:
        lopt = LightningOptimizer(opt)
        if automatic:
            lopt._on_before_step = partial(
                fire, ev.BEFORE_OPTIMIZER_STEP, opt, gradient_clip_val, gradient_clip_algorithm
            )
        else:
            lopt._on_before_step = partial(fire, ev.MANUAL_OPTIMIZER_STEP, opt)
            lopt._on_after_step = count_step
        wrapped.append(lopt)
    return wrapped
