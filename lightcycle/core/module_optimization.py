"""LightningModule's optimization: its optimizers and schedulers, manual optimization, and the step hooks.

The accessors for manual optimization (``optimizers()``, ``lr_schedulers()``,
``manual_backward``, ``toggle_optimizer``), gradient clipping, and the overridable hooks of the
optimizer step (``backward``, ``optimizer_step``, ``optimizer_zero_grad``,
``lr_scheduler_step``, ``configure_gradient_clipping``) with Lightning 2.6's defaults.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Literal, cast, overload

import torch
from torch import Tensor
from torch.optim import Optimizer

from lightcycle.core.module_properties import ModuleProperties
from lightcycle.core.optim import LightningOptimizer, _iter_params
from lightcycle.errors import MisconfigurationException

if TYPE_CHECKING:
    from lightcycle.core.module import LightningModule

_CLIP_ALGORITHMS = ("value", "norm")


class ModuleOptimization(ModuleProperties):
    """The optimization methods and hooks of :class:`~lightcycle.core.module.LightningModule` (a base of it)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._param_requires_grad_state: dict[Tensor, bool] = {}
        self._lightning_optimizer_cache: dict[int, tuple[Optimizer, LightningOptimizer]] = {}

    @overload
    def optimizers(self, use_pl_optimizer: Literal[True] = True) -> LightningOptimizer | list[LightningOptimizer]: ...

    @overload
    def optimizers(self, use_pl_optimizer: Literal[False]) -> Optimizer | list[Optimizer]: ...

    @overload
    def optimizers(self, use_pl_optimizer: bool) -> Any: ...

    def optimizers(self, use_pl_optimizer: bool = True) -> Any:
        """The optimizer(s) of the running fit (for manual optimization).

        Args:
            use_pl_optimizer: wrap them in :class:`LightningOptimizer`, whose ``step`` runs
                the Trainer's hooks and counts steps.

        Returns:
            The single optimizer, or a list when there are several (or none).
        """
        trainer = self.trainer
        opts: list[Any]
        if use_pl_optimizer:
            provided = getattr(trainer, "_lightning_optimizers", None)
            if provided is not None:
                opts = list(provided)
                for opt in opts:
                    if isinstance(opt, LightningOptimizer) and opt._module is None:
                        opt._module = cast("LightningModule", self)  # only LightningModule is built on this mixin
            else:
                opts = [self._wrap_optimizer(opt) for opt in trainer.optimizers]
        else:
            opts = list(trainer.optimizers)
        if len(opts) == 1 and isinstance(opts[0], (Optimizer, LightningOptimizer)):
            return opts[0]
        return opts

    def _wrap_optimizer(self, optimizer: Optimizer) -> LightningOptimizer:
        if isinstance(optimizer, LightningOptimizer):
            return optimizer
        cached = self._lightning_optimizer_cache.get(id(optimizer))
        if cached is not None and cached[0] is optimizer:
            return cached[1]
        wrapper = LightningOptimizer(optimizer)
        wrapper._module = cast("LightningModule", self)
        self._lightning_optimizer_cache[id(optimizer)] = (optimizer, wrapper)
        return wrapper

    def lr_schedulers(self) -> Any:
        """The LR scheduler(s) of the running fit (for manual optimization).

        Returns:
            ``None`` when there are none, the scheduler when there is one, else a list.
        """
        configs = self.trainer.lr_scheduler_configs
        if not configs:
            return None
        schedulers = [config.scheduler for config in configs]
        return schedulers[0] if len(schedulers) == 1 else schedulers

    def toggle_optimizer(self, optimizer: Optimizer | LightningOptimizer) -> None:
        """Freeze (``requires_grad=False``) parameters that only other optimizers own.

        Args:
            optimizer: the optimizer whose parameters stay trainable.
        """
        state: dict[Tensor, bool] = {}
        for opt in self.trainer.optimizers:
            for param in _iter_params(opt):
                if param in state:
                    continue
                state[param] = param.requires_grad
                param.requires_grad = False
        for param in _iter_params(optimizer):
            param.requires_grad = state[param]
        self._param_requires_grad_state = state

    def untoggle_optimizer(self, optimizer: Optimizer | LightningOptimizer) -> None:
        """Undo :meth:`toggle_optimizer`.

        Args:
            optimizer: the optimizer that was toggled.
        """
        raw = optimizer.optimizer if isinstance(optimizer, LightningOptimizer) else optimizer
        for opt in self.trainer.optimizers:
            if opt is optimizer or opt is raw:
                continue
            for param in _iter_params(opt):
                if param in self._param_requires_grad_state:
                    param.requires_grad = self._param_requires_grad_state[param]
        self._param_requires_grad_state = {}

    @contextmanager
    def toggled_optimizer(self, optimizer: Optimizer | LightningOptimizer) -> Generator[None, None, None]:
        """Context manager form of :meth:`toggle_optimizer` / :meth:`untoggle_optimizer`.

        Args:
            optimizer: the optimizer to toggle.

        Yields:
            Nothing.
        """
        self.toggle_optimizer(optimizer)
        try:
            yield
        finally:
            self.untoggle_optimizer(optimizer)

    def _verify_is_manual_optimization(self, fn_name: str) -> None:
        if self.automatic_optimization:
            raise MisconfigurationException(
                f"to use {fn_name}, please disable automatic optimization:"
                " set model property `automatic_optimization` as False"
            )

    def manual_backward(self, loss: Tensor, *args: Any, **kwargs: Any) -> None:
        """Backward pass in manual optimization; fires the before/after-backward hooks.

        Args:
            loss: the loss to differentiate.
            *args: passed on to :meth:`backward`.
            **kwargs: passed on to :meth:`backward`.

        Raises:
            MisconfigurationException: when automatic optimization is on.
        """
        self._verify_is_manual_optimization("manual_backward")
        self.trainer._manual_backward(loss, *args, **kwargs)

    def backward(self, loss: Tensor, *args: Any, **kwargs: Any) -> None:
        """Compute gradients; override for custom backward logic.

        Args:
            loss: the loss (already divided for gradient accumulation).
            *args: passed to ``loss.backward``.
            **kwargs: passed to ``loss.backward``.
        """
        loss.backward(*args, **kwargs)  # type: ignore[no-untyped-call]

    def clip_gradients(
        self,
        optimizer: Optimizer | LightningOptimizer,
        gradient_clip_val: float | None = None,
        gradient_clip_algorithm: str | None = None,
    ) -> None:
        """Clip the gradients of ``optimizer``'s parameters.

        Unset arguments fall back to the Trainer's ``gradient_clip_val`` /
        ``gradient_clip_algorithm``; a value of ``None`` or ``<= 0`` clips nothing.

        Args:
            optimizer: whose parameters to clip.
            gradient_clip_val: the max norm (``"norm"``) or max absolute value (``"value"``).
            gradient_clip_algorithm: ``"norm"`` (default) or ``"value"``.

        Raises:
            MisconfigurationException: an unknown algorithm, or a value conflicting with the Trainer's.
            TypeError: a non-numeric clip value.
        """
        trainer = self._trainer
        trainer_val = getattr(trainer, "gradient_clip_val", None) if trainer is not None else None
        trainer_algo = getattr(trainer, "gradient_clip_algorithm", None) if trainer is not None else None
        trainer_algo = getattr(trainer_algo, "value", trainer_algo)

        if gradient_clip_val is None:
            gradient_clip_val = trainer_val or 0.0
        elif trainer_val is not None and trainer_val != gradient_clip_val:
            raise MisconfigurationException(
                f"You have set `Trainer(gradient_clip_val={trainer_val!r})`"
                f" and have passed `clip_gradients(gradient_clip_val={gradient_clip_val!r})`."
                " Please use only one of them."
            )
        if gradient_clip_algorithm is None:
            algorithm = str(trainer_algo) if trainer_algo is not None else "norm"
        else:
            algorithm = gradient_clip_algorithm.lower()
            if trainer_algo is not None and trainer_algo != algorithm:
                raise MisconfigurationException(
                    f"You have set `Trainer(gradient_clip_algorithm={trainer_algo!r})`"
                    f" and have passed `clip_gradients(gradient_clip_algorithm={algorithm!r})`."
                    " Please use only one of them."
                )
        if not isinstance(gradient_clip_val, (int, float)):
            raise TypeError(f"`gradient_clip_val` should be an int or a float. Got {gradient_clip_val}.")
        if algorithm not in _CLIP_ALGORITHMS:
            raise MisconfigurationException(
                f"`gradient_clip_algorithm` {algorithm} is invalid. Allowed algorithms: {list(_CLIP_ALGORITHMS)}."
            )
        plugin = getattr(trainer, "precision_plugin", None)
        if plugin is not None:  # Lightning: the precision plugin clips (16-mixed refuses fused optimizers)
            plugin.clip_gradients(getattr(optimizer, "_optimizer", optimizer), gradient_clip_val, algorithm)
            return
        if gradient_clip_val <= 0:
            return
        params = list(_iter_params(optimizer))
        if algorithm == "value":
            torch.nn.utils.clip_grad_value_(params, clip_value=gradient_clip_val)
        else:
            torch.nn.utils.clip_grad_norm_(params, gradient_clip_val)

    def configure_gradient_clipping(
        self,
        optimizer: Optimizer | LightningOptimizer,
        gradient_clip_val: float | None = None,
        gradient_clip_algorithm: str | None = None,
    ) -> None:
        """Hook: clip gradients before each optimizer step (default: :meth:`clip_gradients`).

        Args:
            optimizer: the optimizer about to step.
            gradient_clip_val: the Trainer's ``gradient_clip_val``.
            gradient_clip_algorithm: the Trainer's ``gradient_clip_algorithm``.
        """
        self.clip_gradients(
            optimizer, gradient_clip_val=gradient_clip_val, gradient_clip_algorithm=gradient_clip_algorithm
        )

    def lr_scheduler_step(self, scheduler: Any, metric: Any | None) -> None:
        """Hook: step a scheduler (``step()``, or ``step(metric)`` when a metric is monitored).

        Args:
            scheduler: the scheduler.
            metric: the monitored value, or ``None``.
        """
        if metric is None:
            scheduler.step()
        else:
            scheduler.step(metric)

    def optimizer_step(
        self,
        epoch: int,
        batch_idx: int,
        optimizer: Optimizer | LightningOptimizer,
        optimizer_closure: Callable[[], Any] | None = None,
    ) -> None:
        """Hook: step the optimizer (default ``optimizer.step(closure=optimizer_closure)``).

        Args:
            epoch: the current epoch.
            batch_idx: index of the batch.
            optimizer: the (Lightning-wrapped) optimizer.
            optimizer_closure: runs ``training_step``, zero-grad and backward; must be called.
        """
        optimizer.step(closure=optimizer_closure)

    def optimizer_zero_grad(self, epoch: int, batch_idx: int, optimizer: Optimizer) -> None:
        """Hook: reset gradients (default ``optimizer.zero_grad()``).

        Args:
            epoch: the current epoch.
            batch_idx: index of the batch.
            optimizer: the optimizer.
        """
        optimizer.zero_grad()
