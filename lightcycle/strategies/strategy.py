"""``trainer.strategy``: where the module runs and how processes talk (Lightning's names).

:class:`Strategy` is the single-process base: collectives return their input, the module is
moved to ``root_device``. :class:`~lightcycle.strategies.ddp.DDPStrategy` overrides the
collectives and the set-up. The Trainer calls a handful of methods at Lightning's places:
``launch`` (entry points), ``setup_environment`` (before ``prepare_data``), ``setup``
(before ``configure_optimizers``, fit only wraps), ``process_dataloader`` (after each
``*_dataloader()``), ``teardown`` (before ``on_fit_end``) and ``on_failure`` (an exception,
before ``on_exception``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import torch

from lightcycle.plugins.io import CheckpointIO, TorchCheckpointIO, _WrappingCheckpointIO


class Strategy:
    """One process, one device: Lightning's ``SingleDeviceStrategy`` behaviour.

    Args:
        root_device: the device the module runs on.
        lightning_module: the module (set by the Trainer when a run begins).
        checkpoint_io: how checkpoints are written (default :class:`TorchCheckpointIO`);
            ``Trainer(plugins=[...])`` sets it too.
    """

    strategy_name = "single_device"

    def __init__(
        self,
        root_device: torch.device | None = None,
        lightning_module: Any = None,
        checkpoint_io: CheckpointIO | None = None,
    ) -> None:
        self.root_device = root_device if root_device is not None else torch.device("cpu")
        self.lightning_module = lightning_module
        self._checkpoint_io = checkpoint_io
        self.precision_plugin: Any = None  # set by the Trainer (Lightning's strategy.precision_plugin)
        self._model: Any = None
        self.sigterm_pending = False
        """This rank received SIGTERM and the ranks have not agreed on it yet (distributed runs only)."""

    # ------------------------------------------------------------------ ranks

    @property
    def world_size(self) -> int:
        """Number of processes."""
        return 1

    @property
    def global_rank(self) -> int:
        """This process's rank in the job."""
        return 0

    @property
    def local_rank(self) -> int:
        """This process's rank on its node."""
        return 0

    @property
    def node_rank(self) -> int:
        """This node's rank."""
        return 0

    @property
    def num_devices(self) -> int:
        """Devices per node."""
        return 1

    @property
    def num_nodes(self) -> int:
        """Nodes in the job."""
        return 1

    @property
    def is_global_zero(self) -> bool:
        """Whether this process is rank 0 (the one that writes files)."""
        return self.global_rank == 0

    @property
    def distributed(self) -> bool:
        """Whether more than one process takes part."""
        return False

    @property
    def model(self) -> Any:
        """The module as it trains: the ``DistributedDataParallel`` wrapper while fitting under DDP."""
        return self._model if self._model is not None else self.lightning_module

    @model.setter
    def model(self, value: Any) -> None:
        self._model = value

    # ------------------------------------------------------------------ lifecycle

    def launch(self, function: Callable[[], Any]) -> Any:
        """Run one entry point (``fit``, ``test``...) on every rank; single process: just run it.

        Args:
            function: the entry point's body.

        Returns:
            What ``function`` returned.
        """
        return function()

    def setup_environment(self) -> None:
        """Before ``prepare_data``: nothing to join in one process."""

    def prepare_data_skips(self, module: Any, datamodule: Any) -> frozenset[str]:
        """The ``prepare_data`` hooks this rank does not run (Lightning's ``DataConnector.prepare_data``).

        Each object's ``prepare_data_per_node`` decides: ``True`` (the default) runs it on local
        rank 0 of every node, ``False`` on local rank 0 of node 0 only.

        Args:
            module: the LightningModule.
            datamodule: the datamodule, or ``None``.

        Returns:
            ``"src.prepare_data"`` names for the run's skip set.
        """
        skips = set()
        for src, owner in (("module", module), ("datamodule", datamodule)):
            if owner is None:
                continue
            per_node = getattr(owner, "prepare_data_per_node", True)
            if self.local_rank != 0 or (not per_node and self.node_rank != 0):
                skips.add(f"{src}.prepare_data")
        return frozenset(skips)

    def prepare_data_barrier(self, prepared: bool) -> None:
        """After ``prepare_data``: every rank waits for it, then ``barrier("pre_setup")`` (Lightning's places).

        Args:
            prepared: whether the module or the datamodule overrides ``prepare_data`` (Lightning
                waits for it without a timeout only then; its ``_InfiniteBarrier``).
        """
        if prepared:
            self.barrier_unbounded("prepare_data")
        self.barrier("pre_setup")

    def setup(self, fitting: bool) -> None:
        """Before ``configure_optimizers`` (fit) or the first dataloader: move the module.

        Args:
            fitting: whether the run trains (only then would a wrapper be built).
        """
        self.model_to_device()

    def model_to_device(self) -> None:
        """Move the module to ``root_device``."""
        if self.lightning_module is not None:
            self.lightning_module.to(self.root_device)

    def redirect_steps(self, module: Any, base: type) -> None:
        """Route the module's ``*_step`` through a wrapper (one process: there is none).

        Args:
            module: the LightningModule.
            base: lightcycle's LightningModule class.
        """

    def teardown(self) -> None:
        """Before ``on_fit_end`` and ``teardown``: release the device, then the checkpoint IO's
        teardown (background writes finish; a failed one raises) (Lightning's strategy teardown)."""
        self._model = None
        module = self.lightning_module
        if module is not None and self.root_device.type == "cuda":
            module.to("cpu")
        self.checkpoint_io.teardown()

    def process_dataloader(self, loader: Any, kind: str, trainer_fn: str) -> Any:
        """A loader as this strategy iterates it (single process: unchanged).

        Args:
            loader: what a ``*_dataloader()`` hook (or the caller) gave.
            kind: ``train``, ``val``, ``test`` or ``predict``.
            trainer_fn: the entry point (``fit``, ``validate``...).

        Returns:
            The loader to iterate.
        """
        return loader

    def train_batches(self, items: Iterator[Any], host: Any) -> Iterator[Any]:
        """The epoch's ``(batch_idx, batch)`` iterator as the training loop reads it (one process: unchanged).

        Args:
            items: the epoch's batches.
            host: the run host (its ``received_sigterm`` is set when the ranks agree to stop).

        Returns:
            The iterator to read.
        """
        return items

    def agree_sigterm(self, host: Any) -> bool:
        """At the end of a training epoch: whether the run stops for SIGTERM (one process: the flag).

        Args:
            host: the run host.

        Returns:
            ``host.received_sigterm``.
        """
        return bool(host.received_sigterm)

    def on_failure(self, exception: BaseException) -> BaseException:
        """An exception ends the run on this rank, before ``on_exception``.

        Args:
            exception: what was raised.

        Returns:
            The exception to hand to ``on_exception`` and to raise (single process: itself).
        """
        return exception

    # ------------------------------------------------------------------ collectives

    def barrier(self, name: str | None = None) -> None:
        """Wait for every rank (single process: nothing to wait for)."""

    def barrier_unbounded(self, name: str) -> None:
        """Wait for every rank however long it takes (single process: nothing to wait for).

        Args:
            name: what is waited for (traces show it).
        """

    def broadcast(self, obj: Any, src: int = 0) -> Any:
        """Rank ``src``'s ``obj`` on every rank (single process: ``obj``)."""
        return obj

    def reduce(self, tensor: Any, group: Any | None = None, reduce_op: Any = "mean") -> Any:
        """Reduce ``tensor`` over ranks (single process: ``tensor``)."""
        return tensor

    def all_gather(self, tensor: torch.Tensor, group: Any | None = None, sync_grads: bool = False) -> torch.Tensor:
        """Stack every rank's ``tensor`` (single process: ``tensor``)."""
        return tensor

    def all_gather_object(self, obj: Any) -> list[Any]:
        """Every rank's ``obj``, in rank order (single process: ``[obj]``).

        Args:
            obj: a picklable object.

        Returns:
            One entry per rank.
        """
        return [obj]

    def reduce_boolean_decision(self, decision: bool, all: bool = True) -> bool:
        """Agree on a decision: every rank's (``all=True``) or any rank's (single process: ``decision``)."""
        return decision

    # ------------------------------------------------------------------ files

    @property
    def checkpoint_io(self) -> CheckpointIO:
        """The checkpoint IO plugin: :class:`TorchCheckpointIO` unless one was given; a wrapper
        given without a base (``AsyncCheckpointIO()``) wraps the default."""
        plugin = self._checkpoint_io
        if plugin is None:
            plugin = self._checkpoint_io = TorchCheckpointIO()
        elif isinstance(plugin, _WrappingCheckpointIO) and plugin.checkpoint_io is None:
            plugin.checkpoint_io = TorchCheckpointIO()
        return plugin

    @checkpoint_io.setter
    def checkpoint_io(self, plugin: CheckpointIO) -> None:
        self._checkpoint_io = plugin

    def save_checkpoint(
        self, checkpoint: dict[str, Any], filepath: str | os.PathLike[str], storage_options: Any | None = None
    ) -> None:
        """Write ``checkpoint`` through the checkpoint IO plugin; only rank 0 touches the disk.

        Args:
            checkpoint: the checkpoint dict (every rank made it).
            filepath: where to write.
            storage_options: for a custom plugin.
        """
        if self.is_global_zero:
            self.checkpoint_io.save_checkpoint(checkpoint, filepath, storage_options=storage_options)

    def load_checkpoint(self, checkpoint_path: str | os.PathLike[str], weights_only: bool | None = None) -> Any:
        """Read a checkpoint through the checkpoint IO plugin (Lightning's ``Strategy.load_checkpoint``).

        Args:
            checkpoint_path: the checkpoint.
            weights_only: as for :func:`torch.load`.

        Returns:
            The checkpoint dict.
        """
        return self.checkpoint_io.load_checkpoint(checkpoint_path, weights_only=weights_only)

    def remove_checkpoint(self, filepath: str | os.PathLike[str]) -> None:
        """Delete a checkpoint file or folder if it exists, through the plugin; only rank 0 touches the disk."""
        if self.is_global_zero:
            self.checkpoint_io.remove_checkpoint(filepath)


class SingleDeviceStrategy(Strategy):
    """Lightning's name for the one-process strategy."""
