"""LightningDataModule: a shareable bundle of a project's data steps (Lightning-compatible).

Its data hooks are :class:`~lightcycle.core.hooks.DataHooks`, shared with LightningModule;
moving batches to a device is :mod:`lightcycle.core.batch_transfer`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from typing import IO, TYPE_CHECKING, Any

import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset

from lightcycle._hooks import noop_hook
from lightcycle.core.batch_transfer import apply_to_collection, move_data_to_device
from lightcycle.core.checkpoint_loading import read_checkpoint
from lightcycle.core.hooks import DataHooks
from lightcycle.core.hparams import (
    HyperparametersMixin,
    instantiate_from_checkpoint,
    restricted_classmethod,
)

if TYPE_CHECKING:
    from os import PathLike

    from typing_extensions import Self

    from lightcycle.runtime.host import RunHost

# Importable from here too, where they lived before the split (tests and user code import them).
__all__ = ["DataHooks", "LightningDataModule", "apply_to_collection", "move_data_to_device"]


class LightningDataModule(DataHooks, HyperparametersMixin):
    """A shareable, reusable bundle of the data steps of a project (Lightning-compatible).

    Attributes:
        trainer: the Trainer running with this datamodule, set by the Trainer (else ``None``).
    """

    name: str | None = None
    CHECKPOINT_HYPER_PARAMS_KEY = "datamodule_hyper_parameters"
    CHECKPOINT_HYPER_PARAMS_NAME = "datamodule_hparams_name"
    CHECKPOINT_HYPER_PARAMS_TYPE = "datamodule_hparams_type"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()
        self.trainer: RunHost | None = None

    @classmethod
    def from_datasets(
        cls,
        train_dataset: Dataset[Any] | Iterable[Dataset[Any]] | None = None,
        val_dataset: Dataset[Any] | Iterable[Dataset[Any]] | None = None,
        test_dataset: Dataset[Any] | Iterable[Dataset[Any]] | None = None,
        predict_dataset: Dataset[Any] | Iterable[Dataset[Any]] | None = None,
        batch_size: int = 1,
        num_workers: int = 0,
        **datamodule_kwargs: Any,
    ) -> Self:
        """Build a datamodule whose dataloader hooks wrap the given datasets.

        Args:
            train_dataset: dataset (or collection of datasets) for training; shuffled.
            val_dataset: dataset(s) for validation.
            test_dataset: dataset(s) for testing.
            predict_dataset: dataset(s) for prediction.
            batch_size: batch size of every DataLoader.
            num_workers: worker processes of every DataLoader.
            **datamodule_kwargs: passed to the class's ``__init__``.

        Returns:
            The new datamodule.
        """
        pin_memory = torch.cuda.is_available()

        def loader(ds: Dataset[Any], shuffle: bool = False) -> DataLoader[Any]:
            return DataLoader(
                ds,
                batch_size=batch_size,
                shuffle=shuffle and not isinstance(ds, IterableDataset),
                num_workers=num_workers,
                pin_memory=pin_memory,
            )

        def wrap(datasets: Any, shuffle: bool = False) -> Callable[[], Any]:
            return lambda: apply_to_collection(datasets, lambda d: isinstance(d, Dataset), lambda d: loader(d, shuffle))

        candidates = {"batch_size": batch_size, "num_workers": num_workers}
        params = inspect.signature(cls.__init__).parameters
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
            special = candidates
        else:
            special = {k: v for k, v in candidates.items() if k in params and k != "self"}
        datamodule = cls(**datamodule_kwargs, **special)
        if train_dataset is not None:
            datamodule.train_dataloader = wrap(train_dataset, shuffle=True)  # type: ignore[method-assign]
        if val_dataset is not None:
            datamodule.val_dataloader = wrap(val_dataset)  # type: ignore[method-assign]
        if test_dataset is not None:
            datamodule.test_dataloader = wrap(test_dataset)  # type: ignore[method-assign]
        if predict_dataset is not None:
            datamodule.predict_dataloader = wrap(predict_dataset)  # type: ignore[method-assign]
        return datamodule

    def state_dict(self) -> dict[str, Any]:
        """State stored in checkpoints under the class's ``__qualname__``.

        Returns:
            ``{}`` by default (nothing stored).
        """
        return {}

    @noop_hook
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned.

        Args:
            state_dict: the stored state.
        """

    @noop_hook
    def on_exception(self, exception: BaseException) -> None:
        """Called after every callback's ``on_exception`` when a run is aborted.

        Args:
            exception: the exception that ended the run.
        """

    @restricted_classmethod
    def load_from_checkpoint(
        cls,
        checkpoint_path: str | PathLike[str] | IO[bytes],
        map_location: Any = None,
        hparams_file: str | PathLike[str] | None = None,
        weights_only: bool | None = None,
        **kwargs: Any,
    ) -> Self:
        """Build the datamodule from the hyper-parameters in a checkpoint and restore its state.

        Args:
            checkpoint_path: path or file object of the checkpoint.
            map_location: as for :func:`torch.load`.
            hparams_file: ``.yaml``/``.csv`` file replacing the stored hyper-parameters.
            weights_only: as for :func:`torch.load`.
            **kwargs: ``__init__`` arguments overriding stored values.

        Returns:
            The datamodule.
        """
        checkpoint = read_checkpoint(cls, checkpoint_path, map_location, hparams_file, weights_only, kwargs)
        datamodule = instantiate_from_checkpoint(
            cls,
            checkpoint,
            cls.CHECKPOINT_HYPER_PARAMS_KEY,
            cls.CHECKPOINT_HYPER_PARAMS_NAME,
            cls.CHECKPOINT_HYPER_PARAMS_TYPE,
            **kwargs,
        )
        if type(datamodule).__qualname__ in checkpoint:
            datamodule.load_state_dict(checkpoint[type(datamodule).__qualname__])
        return datamodule  # type: ignore[no-any-return]
