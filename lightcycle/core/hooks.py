"""The hook stubs of LightningModule and LightningDataModule, grouped as Lightning's ``core/hooks.py``.

:class:`ModelHooks` are the module's lifecycle hooks, :class:`DataHooks` those a module and a
datamodule share (data preparation, loaders, batch transfer), :class:`CheckpointHooks` the two
checkpoint hooks. Stubs that do nothing carry ``@noop_hook``, so dispatch skips them where a
subclass does not override them. The names are also tabulated without torch in
:mod:`lightcycle.core.module_hooks`, for the command-line tool.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lightcycle._hooks import noop_hook
from lightcycle.core.batch_transfer import move_data_to_device
from lightcycle.errors import MisconfigurationException

if TYPE_CHECKING:
    import torch
    from torch import Tensor
    from torch.optim import Optimizer


class ModelHooks:
    """Hooks of :class:`~lightcycle.core.module.LightningModule` around fit, the loops and the steps."""

    @noop_hook
    def on_fit_start(self) -> None:
        """Called at the very beginning of fit (after setup and ``configure_optimizers``)."""

    @noop_hook
    def on_fit_end(self) -> None:
        """Called at the very end of fit."""

    @noop_hook
    def on_train_start(self) -> None:
        """Called at the beginning of training, after the sanity check."""

    @noop_hook
    def on_train_end(self) -> None:
        """Called at the end of training, before ``on_fit_end``."""

    @noop_hook
    def on_validation_start(self) -> None:
        """Called at the beginning of every validation run."""

    @noop_hook
    def on_validation_end(self) -> None:
        """Called at the end of every validation run."""

    @noop_hook
    def on_test_start(self) -> None:
        """Called at the beginning of testing."""

    @noop_hook
    def on_test_end(self) -> None:
        """Called at the end of testing."""

    @noop_hook
    def on_predict_start(self) -> None:
        """Called at the beginning of prediction."""

    @noop_hook
    def on_predict_end(self) -> None:
        """Called at the end of prediction."""

    @noop_hook
    def on_train_batch_start(self, batch: Any, batch_idx: int) -> int | None:
        """Called before ``training_step``; return ``-1`` to end the epoch early.

        Args:
            batch: the batch (already on the device).
            batch_idx: its index.

        Returns:
            ``-1`` to skip the rest of the epoch, else ``None``.
        """
        return None

    @noop_hook
    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        """Called after the training batch (and its optimizer step).

        Args:
            outputs: ``training_step``'s output as a dict (``{}`` for ``None``).
            batch: the batch.
            batch_idx: its index.
        """

    @noop_hook
    def on_validation_batch_start(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        """Called before ``validation_step``.

        Args:
            batch: the batch.
            batch_idx: its index.
            dataloader_idx: index of its dataloader.
        """

    @noop_hook
    def on_validation_batch_end(self, outputs: Any, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        """Called after ``validation_step``.

        Args:
            outputs: what ``validation_step`` returned.
            batch: the batch.
            batch_idx: its index.
            dataloader_idx: index of its dataloader.
        """

    @noop_hook
    def on_test_batch_start(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        """Called before ``test_step``.

        Args:
            batch: the batch.
            batch_idx: its index.
            dataloader_idx: index of its dataloader.
        """

    @noop_hook
    def on_test_batch_end(self, outputs: Any, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        """Called after ``test_step``.

        Args:
            outputs: what ``test_step`` returned.
            batch: the batch.
            batch_idx: its index.
            dataloader_idx: index of its dataloader.
        """

    @noop_hook
    def on_predict_batch_start(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        """Called before ``predict_step``.

        Args:
            batch: the batch.
            batch_idx: its index.
            dataloader_idx: index of its dataloader.
        """

    @noop_hook
    def on_predict_batch_end(self, outputs: Any | None, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        """Called after ``predict_step``.

        Args:
            outputs: the predictions.
            batch: the batch.
            batch_idx: its index.
            dataloader_idx: index of its dataloader.
        """

    @noop_hook
    def on_train_epoch_start(self) -> None:
        """Called at the beginning of every training epoch."""

    @noop_hook
    def on_train_epoch_end(self) -> None:
        """Called at the end of every training epoch (after its end-of-epoch validation)."""

    @noop_hook
    def on_validation_epoch_start(self) -> None:
        """Called at the beginning of the validation epoch."""

    @noop_hook
    def on_validation_epoch_end(self) -> None:
        """Called at the end of the validation epoch."""

    @noop_hook
    def on_test_epoch_start(self) -> None:
        """Called at the beginning of the test epoch."""

    @noop_hook
    def on_test_epoch_end(self) -> None:
        """Called at the end of the test epoch."""

    @noop_hook
    def on_predict_epoch_start(self) -> None:
        """Called at the beginning of the predict epoch."""

    @noop_hook
    def on_predict_epoch_end(self) -> None:
        """Called at the end of the predict epoch."""

    @noop_hook
    def on_before_zero_grad(self, optimizer: Optimizer) -> None:
        """Called before ``optimizer_zero_grad`` (automatic optimization).

        Args:
            optimizer: the optimizer whose gradients are about to be reset.
        """

    @noop_hook
    def on_before_backward(self, loss: Tensor) -> None:
        """Called before ``backward``.

        Args:
            loss: the loss about to be differentiated.
        """

    @noop_hook
    def on_after_backward(self) -> None:
        """Called after ``backward``, before the optimizer step."""

    @noop_hook
    def on_before_optimizer_step(self, optimizer: Optimizer) -> None:
        """Called after the gradients are computed and before clipping and the step.

        Args:
            optimizer: the optimizer about to step.
        """

    @noop_hook
    def configure_sharded_model(self) -> None:
        """Deprecated in Lightning; use :meth:`configure_model`."""

    @noop_hook
    def configure_model(self) -> None:
        """Create layers lazily, after ``setup``; runs every run, so make it idempotent."""


class DataHooks:
    """Data hooks shared by :class:`LightningModule` and :class:`LightningDataModule`."""

    #: Run ``prepare_data`` on local rank 0 of every node (``False``: global rank 0 only).
    prepare_data_per_node: bool = True
    #: Allow a zero-length dataloader when several devices are used.
    allow_zero_length_dataloader_with_multiple_devices: bool = False

    @noop_hook
    def prepare_data(self) -> None:
        """Download or write data once per node, before ``setup`` (do not set state here)."""

    @noop_hook
    def setup(self, stage: str) -> None:
        """Build datasets or layers at the start of every run.

        Args:
            stage: ``"fit"``, ``"validate"``, ``"test"`` or ``"predict"``.
        """

    @noop_hook
    def teardown(self, stage: str) -> None:
        """Clean up at the end of every successful run.

        Args:
            stage: ``"fit"``, ``"validate"``, ``"test"`` or ``"predict"``.
        """

    def train_dataloader(self) -> Any:
        """Return the training dataloader(s).

        Returns:
            A DataLoader or a collection of them.
        """
        raise MisconfigurationException("`train_dataloader` must be implemented to be used with the Lightning Trainer")

    def val_dataloader(self) -> Any:
        """Return the validation dataloader(s).

        Returns:
            A DataLoader or a sequence of them.
        """
        raise MisconfigurationException("`val_dataloader` must be implemented to be used with the Lightning Trainer")

    def test_dataloader(self) -> Any:
        """Return the test dataloader(s).

        Returns:
            A DataLoader or a sequence of them.
        """
        raise MisconfigurationException("`test_dataloader` must be implemented to be used with the Lightning Trainer")

    def predict_dataloader(self) -> Any:
        """Return the prediction dataloader(s).

        Returns:
            A DataLoader or a sequence of them.
        """
        raise MisconfigurationException(
            "`predict_dataloader` must be implemented to be used with the Lightning Trainer"
        )

    def transfer_batch_to_device(self, batch: Any, device: torch.device, dataloader_idx: int) -> Any:
        """Move a batch to ``device`` (tensors and anything with ``.to``, through nested collections).

        Args:
            batch: the batch from the dataloader (after ``on_before_batch_transfer``).
            device: the target device.
            dataloader_idx: index of the dataloader the batch came from.

        Returns:
            The batch on ``device``.
        """
        return move_data_to_device(batch, device)

    def on_before_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Alter a batch before it is moved to the device.

        Args:
            batch: the batch.
            dataloader_idx: index of the dataloader the batch came from.

        Returns:
            The (possibly altered) batch.
        """
        return batch

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Alter a batch after it was moved to the device.

        Args:
            batch: the batch.
            dataloader_idx: index of the dataloader the batch came from.

        Returns:
            The (possibly altered) batch.
        """
        return batch


class CheckpointHooks:
    """Hooks of LightningModule around saving and restoring a checkpoint."""

    @noop_hook
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Last hook of a checkpoint dump; may add to ``checkpoint``.

        Args:
            checkpoint: the checkpoint dict being saved.
        """

    @noop_hook
    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """First hook of a restore; may read extra entries from ``checkpoint``.

        Args:
            checkpoint: the loaded checkpoint dict.
        """
