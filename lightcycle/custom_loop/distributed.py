"""A :class:`~lightcycle.custom_loop.LoopDriver` under a distributed strategy (DDP, torchrun).

The lifecycle declares the strategy steps as actions (``setup_environment``,
``prepare_data_barrier``, ``strategy_setup``, ``strategy_teardown``); the driver asks the run
host for them by name. :class:`DistributedSteps` gives the LoopDriver those steps. They act only
when the strategy spans several processes: a one-device LoopDriver leaves the module where the
user put it, as before.

What a run gets under DDP, as a Trainer run does: the other ranks started (self-launch) or the
launcher's environment used (torchrun, SLURM), the process group before ``prepare_data``
(local rank 0 only) and every rank waiting for it, the module wrapped in
``DistributedDataParallel`` after ``configure_model`` for fit with ``training_step`` and the
other steps run through the wrapper, a ``DistributedSampler`` in the loaders the module's (or
datamodule's) ``*_dataloader`` hooks return, files written by rank 0 only, SIGTERM agreed
before every training batch, and a failing rank named on the others (see
:meth:`~lightcycle.strategies.ddp.DDPStrategy.on_failure`).
"""

from __future__ import annotations

import functools
from typing import Any

import torch

from lightcycle.core.module import LightningModule
from lightcycle.errors import MisconfigurationException
from lightcycle.runtime.prepare_data import prepare_data_defined
from lightcycle.states.stages import TrainerFn
from lightcycle.strategies.select import device_ids, select
from lightcycle.strategies.strategy import SingleDeviceStrategy, Strategy


def make_strategy(strategy: Any, devices: int, num_nodes: int, device: torch.device, module: Any) -> Strategy:
    """The LoopDriver's strategy: one device (the default) or DDP over ``devices`` processes per node.

    Args:
        strategy: ``None`` (one device), ``"ddp"``, ``"auto"`` or a configured-later ``DDPStrategy``.
        devices: processes per node (CPU) or CUDA devices per node.
        num_nodes: nodes in the job.
        device: the device the user asked for (or the module's).
        module: the LightningModule.

    Returns:
        The strategy, configured.

    Raises:
        MisconfigurationException: ``devices`` is not an int >= 1, or the strategy is refused.
    """
    if isinstance(devices, bool) or not isinstance(devices, int) or devices < 1:
        raise MisconfigurationException(f"LoopDriver(devices={devices!r}) is invalid: expected an int >= 1.")
    if strategy is None:
        if devices * num_nodes > 1:
            raise MisconfigurationException(
                f"LoopDriver(devices={devices}, num_nodes={num_nodes}) needs a distributed strategy: "
                "pass strategy='ddp' (or run one process per device under torchrun with strategy='ddp')."
            )
        return SingleDeviceStrategy(device, module)
    chosen = select(strategy, device, device_ids(device.type, devices, devices), num_nodes, False, True)
    chosen.lightning_module = module
    return chosen


class DistributedSteps:
    """The strategy steps of a LoopDriver run (a mixin: the driver finds them on the run host)."""

    strategy: Strategy
    lightning_module: Any
    datamodule: Any
    state: Any

    def _setup_environment(self) -> None:
        if self.strategy.distributed:
            self.strategy.setup_environment()

    def _prepare_data_barrier(self) -> None:
        if not self.strategy.distributed:
            return
        self.strategy.prepare_data_barrier(prepare_data_defined(self.lightning_module, self.datamodule))

    def _strategy_setup(self) -> None:
        if not self.strategy.distributed:
            return
        self.strategy.barrier("post_setup")
        self.strategy.setup(fitting=self.state.fn is TrainerFn.FITTING)

    def _teardown_internal(self) -> None:
        if self.strategy.distributed:
            self.strategy.teardown()


def begin_distributed(lc: Any, fitting: bool) -> None:
    """At a run's start: start the other ranks once, route the steps through the wrapper, agree on SIGTERM.

    Nothing happens for a one-process strategy (no per-batch cost is added there).

    Args:
        lc: the LoopDriver.
        fitting: the run is a fit.
    """
    strategy: Strategy = lc.strategy
    strategy.launch(_nothing)
    if not strategy.distributed:
        return
    if fitting:
        strategy.redirect_steps(lc.lightning_module, LightningModule)
    if "train_batch_start" not in lc.__dict__:
        # the ranks agree before every training batch; bound on this instance for this
        # distributed driver only, so a one-device LoopDriver's batch path stays as it is
        lc.train_batch_start = _agreeing(lc, type(lc).train_batch_start.__get__(lc))


def _agreeing(lc: Any, start: Any) -> Any:
    @functools.wraps(start)
    def train_batch_start(batch: Any, batch_idx: int) -> Any:
        lc.strategy.agree_sigterm(lc)
        return start(batch, batch_idx)

    return train_batch_start


def _nothing() -> None:
    """The launch's body: a LoopDriver run is the caller's own code, run after ``begin``."""


def processed(lc: Any, loader: Any, kind: str) -> Any:
    """A loader from a ``*_dataloader`` hook as this strategy iterates it (DDP: with a distributed sampler).

    Args:
        lc: the LoopDriver.
        loader: the hook's result (one loader, a list of loaders, or ``None``).
        kind: ``train``, ``val``, ``test`` or ``predict``.

    Returns:
        The loader(s) to iterate.
    """
    strategy: Strategy = lc.strategy
    if not strategy.distributed or loader is None:
        return loader
    fn = lc.state.fn.value if lc.state.fn is not None else "fit"
    if isinstance(loader, (list, tuple)):
        return type(loader)(strategy.process_dataloader(one, kind, fn) for one in loader)
    return strategy.process_dataloader(loader, kind, fn)
