"""What the parts of :class:`~lightcycle.custom_loop.loop_driver.LoopDriver` share: its state and its checks.

:class:`DriverBase` declares the attributes :class:`~lightcycle.custom_loop.loop_driver.LoopDriver`'s
constructor sets, binds the run's hooks, holds the per-batch training events (through the
precision plugin's wrappers) and checks a call against the declaration (:meth:`DriverBase._require`).
The training protocol (:mod:`lightcycle.custom_loop.training`) and the evaluation protocol
(:mod:`lightcycle.custom_loop.evaluation`) build on it; ``LoopDriver`` joins them.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

import torch

from lightcycle.custom_loop.errors import refusal
from lightcycle.runtime.host import RunHost
from lightcycle.runtime.training import TrainBatch
from lightcycle.states import declaration as ev

if TYPE_CHECKING:
    from collections.abc import Callable

    from lightcycle.core.datamodule import LightningDataModule
    from lightcycle.core.module import LightningModule
    from lightcycle.runtime import steps
    from lightcycle.runtime.evaluation import EvalRun
    from lightcycle.states.model import Event, Lifecycle

# Per-batch events, bound once (the hot path looks nothing up by name).
_OWN_STEP = ev.MANUAL_TRAINING_STEP
_BACKWARD = ev.BACKWARD
_OWN_OPT_STEP = ev.MANUAL_OPTIMIZER_STEP


class DriverBase(RunHost):
    """The state and checks of a :class:`~lightcycle.custom_loop.loop_driver.LoopDriver` (a base of it)."""

    lightning_module: LightningModule  # given at construction, never None
    datamodule: LightningDataModule | None
    accumulate_grad_batches: int
    gradient_clip_val: float | None
    gradient_clip_algorithm: str | None
    inference_mode: bool
    _device_arg: torch.device | None  # the device given, else None: the module's, at each run's start
    _device: torch.device
    _automatic_step: steps.AutomaticStep | None
    _step_at_batch: int  # global_step when the current training batch started
    _stepped_pending: bool  # the last batch stepped: counted once its validation ran
    _skip: frozenset[str]  # hooks the bind skips: the steps your loop runs itself
    _own_train: bool  # the module has no training_step: your loop is the step
    _own_eval: dict[str, bool]  # the same, per evaluation noun
    _val_requested: bool  # the val dataloader hook ran in this fit
    _eval: EvalRun | None  # the open evaluation run
    _batch: Any  # the current training batch (its index: fit_loop.batch_idx)
    _ebatch: Any  # the current evaluation batch, its index and dataloader index
    _eidx: int
    _edl: int | None
    _fire: Callable[..., Any]
    _triggers: dict[str, Event]
    _log_fx: dict[str, str]  # state -> the hook name lc.log logs as there
    _bracket: TrainBatch
    _own_step_event: Callable[..., Any]
    _backward_event: Callable[..., Any]
    _own_opt_step_event: Callable[..., Any]
    _batch_functions: dict[str, Callable[..., Any]] | None  # the generated per-batch methods on the instance

    def _bind(self) -> None:
        """Compile the run's hooks (at its start and after ``configure_callbacks``)."""
        self._driver.bind(self.lightning_module, self.callbacks, self.datamodule, skip=self._skip)

    def _hold_events(self) -> None:
        """Hold the per-batch training events' functions of the current bind (``fire`` without the lookup)."""
        self._drop_batch_functions()  # (they hold the bracket replaced here)
        caller = self._driver.caller
        p = self.precision_plugin  # wraps nothing in 32-bit
        self._bracket = TrainBatch(self, self._device)  # (the transfer through p.wrap_transfer)
        self._own_step_event = p.wrap_step(caller(_OWN_STEP), p.train_step_context)
        self._backward_event = p.wrap_backward(caller(_BACKWARD))
        self._own_opt_step_event = caller(_OWN_OPT_STEP)

    def _drop_batch_functions(self) -> None:
        """Remove the generated per-batch methods from the instance: the class's methods run again."""
        mine = self.__dict__
        for name, fn in (self._batch_functions or {}).items():
            if mine.get(name) is fn:  # (not one assigned since, by the user or a strategy)
                del mine[name]
        self._batch_functions = None  # (made again at the next run's first epoch)

    # -------------------------------------------------------------- more trainer attributes

    @property
    def device(self) -> torch.device:
        """Where batches are moved by the transfer hook in the current run."""
        return self._device

    @property
    def lifecycle(self) -> Lifecycle:
        """The declaration this driver follows."""
        return self._driver.lifecycle

    def legal(self) -> tuple[str, ...]:
        """Names of the events the lifecycle allows now."""
        return self._driver.legal()

    # -------------------------------------------------------------- checks

    def _require(self, trigger: Event, *more: Event) -> None:
        """Raise LifecycleError unless ``trigger`` (or one of ``more``) is legal now."""
        can_fire = self._driver.can_fire
        if can_fire(trigger) or any(can_fire(t) for t in more):
            return
        raise refusal(self._driver.state, trigger.name, self._driver.legal())

    def _skip_hooks(self) -> frozenset[str]:
        return self._skip

    def _grad_context(self) -> AbstractContextManager[Any]:
        return torch.inference_mode() if self.inference_mode else torch.no_grad()
