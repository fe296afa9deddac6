"""``DDPStrategy``: one process per device, the module wrapped in ``DistributedDataParallel``.

Lightning's ``strategy="ddp"`` on ``torch.distributed``: gloo on CPU, nccl on CUDA. The
process group is created in :meth:`DDPStrategy.setup_environment` (before ``prepare_data``)
or an existing one is used; the module is wrapped in :meth:`DDPStrategy.setup` only when
fitting (after ``configure_model``, before ``configure_optimizers``) and unwrapped in
:meth:`DDPStrategy.teardown` (before ``on_fit_end``). The ``*_step`` methods run through the
wrapper (Lightning's forward redirection), so DDP's gradient synchronisation happens.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

import lightcycle.strategies.environment as envs
import lightcycle.strategies.sampler as samplers
from lightcycle._hooks import is_overridden
from lightcycle.errors import SIGTERMException
from lightcycle.seed import reset_seed
from lightcycle.strategies.failure import FailureChannel, RankFailedError
from lightcycle.strategies.launch import SubprocessScriptLauncher
from lightcycle.strategies.strategy import Strategy

DEFAULT_TIMEOUT = timedelta(minutes=30)
"""Lightning's ``default_pg_timeout``: how long a collective may wait for the other ranks."""

_STEPS = ("training_step", "validation_step", "test_step", "predict_step")


class DDPStrategy(Strategy):
    """Distributed data parallel over ``torch.distributed`` (Lightning's ``DDPStrategy``).

    Args:
        cluster_environment: where ranks come from (default: detected, see
            :func:`lightcycle.strategies.environment.detect`).
        process_group_backend: ``"gloo"`` or ``"nccl"`` (default: gloo on CPU, nccl on CUDA).
        timeout: how long a collective waits (Lightning's default: 30 minutes).
        start_method: ``"popen"`` only (Lightning's ``"ddp"``); ``"spawn"``/``"fork"`` are refused.
        **kwargs: passed to ``DistributedDataParallel`` (``find_unused_parameters``...), except
            ``checkpoint_io`` (a checkpoint IO plugin, as Lightning's argument).

    Raises:
        ValueError: a start method other than ``"popen"``.
    """

    strategy_name = "ddp"

    def __init__(
        self,
        cluster_environment: envs.ClusterEnvironment | None = None,
        process_group_backend: str | None = None,
        timeout: timedelta | None = DEFAULT_TIMEOUT,
        start_method: str = "popen",
        **kwargs: Any,
    ) -> None:
        super().__init__(torch.device("cpu"), checkpoint_io=kwargs.pop("checkpoint_io", None))
        if start_method != "popen":
            raise ValueError(
                f"DDPStrategy(start_method={start_method!r}) is not supported: lightcycle starts ranks by re-running "
                "the script (Lightning's 'popen', strategy='ddp') or runs under torchrun. Use strategy='ddp'."
            )
        self.cluster_environment = cluster_environment
        self.process_group_backend = process_group_backend
        self.timeout = timeout if timeout is not None else DEFAULT_TIMEOUT
        self.ddp_kwargs = kwargs
        self.sync_batchnorm = False
        self.use_distributed_sampler = True
        self._num_devices = 1
        self._num_nodes = 1
        self._device_type = "cpu"
        self._device_ids: list[int] = [0]
        self._global_rank = 0
        self._world_size = 1
        self.launcher: SubprocessScriptLauncher | None = None
        self._channel: FailureChannel | None = None
        self._failed = False
        self._sigterm_agreed = False
        self._redirected: list[str] = []
        self.observers: list[Any] = []
        """Objects with ``record_collective(op, name)`` (HookRecorder): told of every collective as it begins."""

    # ------------------------------------------------------------------ configuration

    def configure(
        self, device_type: str, device_ids: list[int], num_nodes: int, sync_batchnorm: bool, use_sampler: bool
    ) -> None:
        """Take the Trainer's device settings (Lightning's accelerator connector).

        Args:
            device_type: ``"cpu"`` or ``"cuda"``.
            device_ids: the devices of this node (CPU: ``range(devices)``).
            num_nodes: nodes in the job.
            sync_batchnorm: convert BatchNorm layers to ``SyncBatchNorm`` when fitting.
            use_sampler: insert ``DistributedSampler`` (Lightning's ``use_distributed_sampler``).

        Raises:
            ValueError: the environment started a different number of processes.
        """
        self._device_type = device_type
        self._device_ids = list(device_ids)
        self._num_devices = len(device_ids)
        self._num_nodes = num_nodes
        self.sync_batchnorm = sync_batchnorm
        self.use_distributed_sampler = use_sampler
        if self.cluster_environment is None:
            self.cluster_environment = envs.detect()
        env = self.cluster_environment
        if dist.is_available() and dist.is_initialized():  # a process group made by the user: its ranks rule
            self._world_size, self._global_rank = dist.get_world_size(), dist.get_rank()
        else:
            env.validate_settings(self._num_devices, num_nodes)
            env.set_world_size(self._num_devices * num_nodes)
            env.set_global_rank(env.node_rank() * self._num_devices + env.local_rank())
            self._world_size, self._global_rank = env.world_size(), env.global_rank()
            if not env.creates_processes_externally:
                self.launcher = SubprocessScriptLauncher(
                    self._num_devices, num_nodes, env.main_address, env.main_port, env.node_rank()
                )
        index = self._device_ids[self.local_rank] if self.local_rank < len(self._device_ids) else self.local_rank
        self.root_device = torch.device("cuda", index) if device_type == "cuda" else torch.device("cpu")

    # ------------------------------------------------------------------ ranks

    @property
    def world_size(self) -> int:
        return self._world_size

    @property
    def global_rank(self) -> int:
        return self._global_rank

    @property
    def local_rank(self) -> int:
        return self.cluster_environment.local_rank() if self.cluster_environment is not None else 0

    @property
    def node_rank(self) -> int:
        return self.cluster_environment.node_rank() if self.cluster_environment is not None else 0

    @property
    def num_devices(self) -> int:
        return self._num_devices

    @property
    def num_nodes(self) -> int:
        return self._num_nodes

    @property
    def distributed(self) -> bool:
        return self._world_size > 1

    # ------------------------------------------------------------------ lifecycle

    def launch(self, function: Callable[[], Any]) -> Any:
        """Start the other ranks once (self-launch), then run ``function`` here as this rank."""
        if self.launcher is not None and not self.launcher.launched:
            self.launcher.launch()
        return function()

    def setup_environment(self) -> None:
        """Join (or create) the process group before ``prepare_data`` (Lightning's ``setup_distributed``)."""
        reset_seed()
        self._failed = False
        self._sigterm_agreed = False
        if self._device_type == "cuda":
            torch.cuda.set_device(self.root_device)
        if not dist.is_initialized():
            env = self.cluster_environment
            assert env is not None
            os.environ["MASTER_ADDR"] = env.main_address
            os.environ["MASTER_PORT"] = str(env.main_port)
            backend = self.process_group_backend or ("nccl" if self._device_type == "cuda" else "gloo")
            dist.init_process_group(backend, rank=self._global_rank, world_size=self._world_size, timeout=self.timeout)
        self._channel = FailureChannel(_default_store(), self._global_rank, self._world_size)

    def setup(self, fitting: bool) -> None:
        """Move the module; when fitting, convert BatchNorm if asked and wrap it in DDP."""
        module = self.lightning_module
        assert module is not None
        self.model_to_device()
        if not fitting:
            _sync_module_states(module)  # no wrapper: start every rank from rank 0's weights
            return
        if self.sync_batchnorm:
            module = torch.nn.SyncBatchNorm.convert_sync_batchnorm(module)  # type: ignore[no-untyped-call]
        device_ids = [self.root_device.index] if self.root_device.type == "cuda" else None
        self.model = torch.nn.parallel.DistributedDataParallel(module, device_ids=device_ids, **self.ddp_kwargs)

    def redirect_steps(self, module: Any, base: type) -> None:
        """Route the module's ``*_step`` through the DDP wrapper while one exists.

        Lightning's forward redirection: DDP's forward (buffer broadcast, reducer
        preparation) must run around the step for gradients to be synchronised. Installed
        once per run as instance attributes, so the compiled hooks stay the module's.

        Args:
            module: the LightningModule.
            base: lightcycle's LightningModule class (only overridden steps are redirected).
        """
        self.restore_steps(module)
        for name in _STEPS:
            if is_overridden(name, module, base):
                setattr(module, name, self._redirector(module, getattr(module, name)))
                self._redirected.append(name)

    def restore_steps(self, module: Any) -> None:
        """Remove what :meth:`redirect_steps` installed."""
        for name in self._redirected:
            module.__dict__.pop(name, None)
        self._redirected = []

    def _redirector(self, module: Any, step: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(step)
        def run(*args: Any, **kwargs: Any) -> Any:
            wrapper = self._model
            if wrapper is None:
                return step(*args, **kwargs)
            had_own = "forward" in module.__dict__
            original_forward = module.forward

            def forward(*a: Any, **kw: Any) -> Any:
                module.forward = original_forward  # the step itself may call self(...)
                return step(*a, **kw)

            module.forward = forward
            try:
                return wrapper(*args, **kwargs)
            finally:
                if had_own:
                    module.forward = original_forward
                else:
                    module.__dict__.pop("forward", None)

        return run

    def teardown(self) -> None:
        """Unwrap before ``on_fit_end`` (Lightning's DDP teardown); the process group stays for later runs."""
        if self.lightning_module is not None:
            self.restore_steps(self.lightning_module)
        super().teardown()

    def process_dataloader(self, loader: Any, kind: str, trainer_fn: str) -> Any:
        """Insert a ``DistributedSampler`` by Lightning's rules, after the loader hook's barrier."""
        self.barrier(f"{kind}_dataloader()")
        return samplers.prepare(loader, kind, self.use_distributed_sampler, self._global_rank, self._world_size)

    def train_batches(self, items: Iterator[Any], host: Any) -> Iterator[Any]:
        """Agree on SIGTERM before each training batch (Lightning's place: the epoch loop's ``advance``).

        Lightning broadcasts rank 0's flag only, so a signal to another rank makes that rank
        alone raise after its batch and leaves rank 0 in its next collective. Here the ranks
        reduce "any rank received SIGTERM": all of them raise ``SIGTERMException`` before the
        same batch, and none of them publishes it as a failure.
        """
        if not self.distributed:
            return items
        return self._agreed_batches(items, host)

    def _agreed_batches(self, items: Iterator[Any], host: Any) -> Iterator[Any]:
        while True:
            self._stop_if_agreed(host)
            try:
                item = next(items)
            except StopIteration:
                return
            yield item

    def agree_sigterm(self, host: Any) -> bool:
        """At the end of a training epoch, the same agreement (a signal during the epoch's last batch)."""
        if self.distributed:
            self._stop_if_agreed(host)
        return bool(host.received_sigterm)

    def _stop_if_agreed(self, host: Any) -> None:
        if self.reduce_boolean_decision(self.sigterm_pending, all=False):
            self.sigterm_pending = False
            self._sigterm_agreed = True
            host.received_sigterm = True
            raise SIGTERMException()

    def on_failure(self, exception: BaseException) -> BaseException:
        """Tell the other ranks, or learn that one of them failed first.

        Returns:
            :class:`RankFailedError` (raised from ``exception``) when another rank published
            its failure before this one's collective broke; else ``exception``.
        """
        self._failed = True  # from here on no collective: on_exception runs rank-locally
        if isinstance(exception, SIGTERMException) and self._sigterm_agreed:
            return exception  # every rank stops at this same point: nothing to tell or learn
        channel = self._channel
        if channel is None or not dist.is_initialized():
            return exception
        if isinstance(exception, RankFailedError):  # learnt from the store while waiting: already named
            _close_group()
            return exception
        peer = channel.peer_failure()
        if peer is not None:
            err = RankFailedError(int(peer["rank"]), str(peer["type"]), str(peer["message"]), exception)
            err.__cause__ = exception
            _close_group()
            return err
        channel.publish(exception)
        _close_group()  # the peers' pending collective fails now instead of at the timeout
        channel.wait_for_readers()
        return exception

    # ------------------------------------------------------------------ collectives

    def _active(self) -> bool:
        return self._world_size > 1 and not self._failed and dist.is_initialized()

    def _note(self, op: str, name: str | None = None) -> None:
        for observer in self.observers:
            observer.record_collective(op, name)

    def barrier(self, name: str | None = None) -> None:
        """Wait for every rank (skipped on the failure path: no collective there)."""
        if self._active():
            self._note("barrier", name)
            dist.barrier()

    def barrier_unbounded(self, name: str) -> None:
        """Wait for every rank with no timeout: local rank 0's ``prepare_data`` may download for hours.

        Lightning waits with a gloo barrier of "infinite" timeout (``_InfiniteBarrier``), so a
        rank whose ``prepare_data`` raises leaves the others waiting for ever. Here the ranks
        meet in the rendezvous store, and a waiting rank looks for a published failure between
        short polls: it raises :class:`RankFailedError` naming the failing rank instead.

        Raises:
            RankFailedError: another rank failed while this one waited.
        """
        if not self._active():
            return
        self._note("barrier", name)
        channel = self._channel
        if channel is None or channel.store is None:
            dist.barrier()  # no store to meet in: the group's own barrier (its timeout applies)
            return
        peer = channel.meet(name)
        if peer is not None:
            raise RankFailedError(int(peer["rank"]), str(peer["type"]), str(peer["message"]), None)

    def broadcast(self, obj: Any, src: int = 0) -> Any:
        """Rank ``src``'s ``obj`` on every rank (pickled, as Lightning's ``broadcast_object_list``)."""
        if not self._active():
            return obj
        self._note("broadcast")
        box = [obj]
        dist.broadcast_object_list(box, src)
        return box[0]

    def reduce(self, tensor: Any, group: Any | None = None, reduce_op: Any = "mean") -> Any:
        """All-reduce ``tensor``: ``"mean"``/``"avg"`` (default), ``"sum"``, ``"max"``, ``"min"``."""
        if not isinstance(tensor, torch.Tensor) or not self._active():
            return tensor
        self._note("reduce")
        op_name = str(reduce_op).lower() if reduce_op is not None else "mean"
        op = {"sum": dist.ReduceOp.SUM, "max": dist.ReduceOp.MAX, "min": dist.ReduceOp.MIN}.get(
            op_name, dist.ReduceOp.SUM
        )
        mean = op_name in ("mean", "avg", "reduceop.avg")
        out = tensor.detach().clone()
        if mean and not out.is_floating_point():
            out = out.float()
        dist.all_reduce(out, op=op, group=group)
        if mean:
            out = out / (dist.get_world_size(group) if group is not None else self._world_size)
        return out

    def all_gather(self, tensor: torch.Tensor, group: Any | None = None, sync_grads: bool = False) -> torch.Tensor:
        """Every rank's ``tensor``, stacked on a new first dimension."""
        if not self._active():
            return tensor
        self._note("all_gather")
        parts = [torch.empty_like(tensor) for _ in range(self._world_size)]
        dist.all_gather(parts, tensor.contiguous(), group=group)
        return torch.stack(parts)

    def all_gather_object(self, obj: Any) -> list[Any]:
        """Every rank's ``obj`` (pickled), in rank order; this rank's alone on the failure path."""
        if not self._active():
            return [obj]
        self._note("all_gather_object")
        out: list[Any] = [None] * self._world_size
        dist.all_gather_object(out, obj)
        return out

    def reduce_boolean_decision(self, decision: bool, all: bool = True) -> bool:
        """Every rank's decision (``all=True``) or any rank's."""
        if not self._active():
            return decision
        self._note("reduce_boolean_decision")
        votes = self.reduce(torch.tensor(int(decision), device=self.root_device), reduce_op="sum")
        return bool(votes == self._world_size) if all else bool(votes > 0)


def _default_store() -> Any:
    try:
        return dist.distributed_c10d._get_default_store()
    except Exception:  # an unusual backend without a store: no failure channel
        return None


def _close_group() -> None:
    """Close this rank's connections so that the peers' pending collective fails at once."""
    if dist.is_initialized():
        with contextlib.suppress(Exception):  # already broken: nothing left to close
            dist.destroy_process_group()


def _sync_module_states(module: torch.nn.Module) -> None:
    """Broadcast rank 0's parameters and buffers (Lightning's ``_sync_module_states``)."""
    if not (dist.is_initialized() and dist.get_world_size() > 1):
        return
    for tensor in list(module.parameters()) + list(module.buffers()):
        with torch.no_grad():
            dist.broadcast(tensor.data, 0)
