"""``BasePredictionWriter``: write predictions per batch and/or per predict epoch (Lightning's callback).

A subclass overrides ``write_on_batch_end`` and/or ``write_on_epoch_end``; ``write_interval``
(``"batch"``, ``"epoch"`` or ``"batch_and_epoch"``) says which are called. Each write gets the
batch indices: the dataset indices of the samples in the batch, as the dataloader's batch
sampler drew them. Lightning records them by rebuilding the predict dataloaders around an
index-recording batch sampler; lightcycle leaves the dataloaders as they are and, for the
predict run only, puts a recording wrapper around each one's batch sampler, taken off again
when the run ends (also when it fails). Loaders without a batch sampler (iterable datasets)
give ``[]`` per batch and a warning, as Lightning's do.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from enum import Enum
from typing import TYPE_CHECKING, Any

import torch
from torch.utils.data import DataLoader, IterableDataset

from lightcycle.callbacks.callback import Callback
from lightcycle.core.batch_transfer import move_data_to_device

if TYPE_CHECKING:
    from lightcycle.core.module import LightningModule
    from lightcycle.runtime.host import RunHost


class WriteInterval(str, Enum):
    """When a :class:`BasePredictionWriter` writes (Lightning's enum; its values are the strings)."""

    BATCH = "batch"
    EPOCH = "epoch"
    BATCH_AND_EPOCH = "batch_and_epoch"

    @property
    def on_batch(self) -> bool:
        """Returns: whether ``write_on_batch_end`` is called."""
        return self in (WriteInterval.BATCH, WriteInterval.BATCH_AND_EPOCH)

    @property
    def on_epoch(self) -> bool:
        """Returns: whether ``write_on_epoch_end`` is called."""
        return self in (WriteInterval.EPOCH, WriteInterval.BATCH_AND_EPOCH)


WRITE_INTERVALS = tuple(interval.value for interval in WriteInterval)
"""The values ``write_interval`` takes."""


class _RecordingBatchSampler:
    """Passes a batch sampler's batches through and keeps each batch's indices, in order."""

    def __init__(self, batch_sampler: Any) -> None:
        self.batch_sampler = batch_sampler
        self.seen: list[list[int]] = []

    def __iter__(self) -> Iterator[list[int]]:
        self.seen = []
        for indices in self.batch_sampler:
            self.seen.append(list(indices))
            yield indices

    def __len__(self) -> int:
        return len(self.batch_sampler)

    def __getattr__(self, name: str) -> Any:
        # batch_size, drop_last, sampler ... are read through (the DataLoader and progress bars read them).
        return getattr(self.__dict__["batch_sampler"], name)


class BasePredictionWriter(Callback):
    """Base class for writing predictions during ``trainer.predict``.

    Args:
        write_interval: ``"batch"`` (after each batch), ``"epoch"`` (once, with every
            prediction) or ``"batch_and_epoch"``, or the :class:`WriteInterval` member.

    Raises:
        ValueError: ``write_interval`` is none of the three.
    """

    def __init__(self, write_interval: str | WriteInterval = "batch") -> None:
        if write_interval not in WRITE_INTERVALS:
            raise ValueError(
                f"BasePredictionWriter(write_interval={write_interval!r}): use one of {', '.join(WRITE_INTERVALS)}"
            )
        self.interval = WriteInterval(write_interval)
        self._recorders: list[_RecordingBatchSampler | None] = []
        self._loaders: list[DataLoader[Any]] = []
        self._predictions: list[list[Any]] = []
        self._batch_indices: list[list[list[int]]] = []

    def write_on_batch_end(
        self,
        trainer: RunHost,
        pl_module: LightningModule,
        prediction: Any,
        batch_indices: Sequence[int] | None,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int,
    ) -> None:
        """Write one batch's prediction; override it for ``write_interval`` ``"batch"``.

        Raises:
            NotImplementedError: the subclass asked for batch writes without defining this.
        """
        raise NotImplementedError(f"{type(self).__name__} writes per batch: define write_on_batch_end")

    def write_on_epoch_end(
        self,
        trainer: RunHost,
        pl_module: LightningModule,
        predictions: Sequence[Any],
        batch_indices: Sequence[Any],
    ) -> None:
        """Write every prediction of the run; override it for ``write_interval`` ``"epoch"``.

        Args:
            trainer: the trainer.
            pl_module: the module.
            predictions: the batches' predictions (a list per dataloader when there are several).
            batch_indices: per dataloader, the indices of each batch.

        Raises:
            NotImplementedError: the subclass asked for epoch writes without defining this.
        """
        raise NotImplementedError(f"{type(self).__name__} writes per epoch: define write_on_epoch_end")

    def on_predict_start(self, trainer: RunHost, pl_module: LightningModule) -> None:
        """Put an index-recording wrapper around each predict dataloader's batch sampler."""
        self._release()
        loaders = trainer.predict_dataloaders
        if loaders is None:
            loaders = []
        elif not isinstance(loaders, (list, tuple)):
            loaders = [loaders]
        for loader in loaders:
            recorder = None
            if not isinstance(loader, DataLoader) or isinstance(loader.dataset, IterableDataset):
                # An iterable dataset's batch sampler draws placeholders, not dataset indices.
                warnings.warn(
                    f"Couldn't infer the batch indices fetched from your dataloader: `{type(loader).__name__}`",
                    stacklevel=2,
                )
            elif loader.batch_sampler is not None:
                recorder = _RecordingBatchSampler(loader.batch_sampler)
                # DataLoader refuses a new batch_sampler after construction; the wrapper yields the
                # very same batches, and _release puts the original back when predict ends.
                object.__setattr__(loader, "batch_sampler", recorder)
                self._loaders.append(loader)
            self._recorders.append(recorder)
        self._predictions = [[] for _ in self._recorders]
        self._batch_indices = [[] for _ in self._recorders]

    def _indices_of(self, dataloader_idx: int, batch_idx: int) -> list[int]:
        recorder = self._recorders[dataloader_idx] if dataloader_idx < len(self._recorders) else None
        if recorder is None or batch_idx >= len(recorder.seen):
            return []
        return recorder.seen[batch_idx]

    def on_predict_batch_end(
        self,
        trainer: RunHost,
        pl_module: LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        """Write the batch (``"batch"`` intervals) and keep it for the epoch write (``"epoch"`` intervals)."""
        indices = self._indices_of(dataloader_idx, batch_idx)
        if self.interval.on_epoch and dataloader_idx < len(self._predictions):
            # Kept on the CPU, as Lightning keeps predictions, so a long run does not fill the device.
            self._predictions[dataloader_idx].append(move_data_to_device(outputs, torch.device("cpu")))
            self._batch_indices[dataloader_idx].append(indices)
        if self.interval.on_batch:
            self.write_on_batch_end(trainer, pl_module, outputs, indices, batch, batch_idx, dataloader_idx)

    def on_predict_epoch_end(self, trainer: RunHost, pl_module: LightningModule) -> None:
        """Write every prediction (``"epoch"`` intervals): one list, or a list per dataloader when several."""
        if not self.interval.on_epoch:
            return
        predictions: Sequence[Any] = self._predictions[0] if len(self._predictions) == 1 else self._predictions
        self.write_on_epoch_end(trainer, pl_module, predictions, self._batch_indices)

    def on_predict_end(self, trainer: RunHost, pl_module: LightningModule) -> None:
        """Give the dataloaders their own batch samplers back."""
        self._release()

    def on_exception(self, trainer: RunHost, pl_module: LightningModule, exception: BaseException) -> None:
        """Give the dataloaders their own batch samplers back when the run fails."""
        self._release()

    def _release(self) -> None:
        for loader in self._loaders:
            recorder = loader.batch_sampler
            if isinstance(recorder, _RecordingBatchSampler):
                object.__setattr__(loader, "batch_sampler", recorder.batch_sampler)
        self._loaders = []
        self._recorders = []
