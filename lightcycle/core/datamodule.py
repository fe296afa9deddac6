"""LightningDataModule, the data hooks it shares with LightningModule, and batch transfer."""

from __future__ import annotations

import copy
import dataclasses
import inspect
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import IO, TYPE_CHECKING, Any

import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset

from lightcycle._hooks import noop_hook
from lightcycle.core.hparams import (
    HyperparametersMixin,
    instantiate_from_checkpoint,
    restricted_classmethod,
)
from lightcycle.errors import MisconfigurationException

if TYPE_CHECKING:
    from os import PathLike

    from typing_extensions import Self

    from lightcycle.runtime.host import RunHost

_BLOCKING_DEVICE_TYPES = ("cpu", "mps")
_TARGETS: dict[Any, tuple[bool, bool]] = {}
"""Per target device: (copy with ``non_blocking``, the target is the CPU). Reading
``torch.device.type`` builds a new string each time, so it is asked once per device."""
_Tensor = torch.Tensor


def apply_to_collection(data: Any, is_leaf: Callable[[Any], bool], fn: Callable[[Any], Any]) -> Any:
    """Apply ``fn`` to every leaf of a nested collection, rebuilding the containers.

    Containers walked: dataclass instances (copied, fields replaced), mappings (type kept,
    ``defaultdict`` factories kept), namedtuples, and other sequences except ``str``/``bytes``.

    Args:
        data: the (possibly nested) collection.
        is_leaf: says which objects ``fn`` applies to; checked before walking into them.
        fn: the function to apply.

    Returns:
        A collection of the same shape holding ``fn``'s results.
    """
    if is_leaf(data):
        return fn(data)
    if dataclasses.is_dataclass(data) and not isinstance(data, type):
        values = {f.name: getattr(data, f.name) for f in dataclasses.fields(data)}
        result = copy.deepcopy(data, memo={id(v): v for v in values.values()})
        for field in dataclasses.fields(data):
            if not field.init:
                continue
            try:
                setattr(result, field.name, apply_to_collection(values[field.name], is_leaf, fn))
            except dataclasses.FrozenInstanceError as err:
                raise ValueError(
                    "A frozen dataclass was passed to `apply_to_collection` but this is not allowed."
                ) from err
        return result
    if isinstance(data, Mapping):
        items = [(k, apply_to_collection(v, is_leaf, fn)) for k, v in data.items()]
        mapping_type: Any = type(data)
        if isinstance(data, defaultdict):
            return mapping_type(data.default_factory, OrderedDict(items))
        return mapping_type(OrderedDict(items))
    if isinstance(data, tuple) and hasattr(data, "_fields") and hasattr(data, "_asdict"):
        return type(data)(*(apply_to_collection(d, is_leaf, fn) for d in data))
    if isinstance(data, Sequence) and not isinstance(data, (str, bytes)):
        sequence_type: Any = type(data)
        return sequence_type([apply_to_collection(d, is_leaf, fn) for d in data])
    return data


def _is_transferable(obj: Any) -> bool:
    return not isinstance(obj, type) and callable(getattr(type(obj), "to", None))


def _target_facts(target: Any) -> tuple[bool, bool]:
    if not isinstance(target, torch.device):  # an int (a CUDA index): left to ``.to``
        return False, False
    return target.type not in _BLOCKING_DEVICE_TYPES, target.type == "cpu"


def move_data_to_device(batch: Any, device: torch.device | str | int) -> Any:
    """Move every object with a ``.to`` method inside ``batch`` to ``device``.

    Tensors are moved with ``non_blocking=True`` unless the target is the CPU (or MPS).
    An object whose ``to`` returns ``None`` is kept as is.

    Args:
        batch: a tensor, an object with ``.to``, or a nested collection of them.
        device: the target device.

    Returns:
        The same structure with its contents on ``device``.
    """
    target = torch.device(device) if isinstance(device, str) else device
    known = _TARGETS.get(target)
    if known is None:
        known = _TARGETS[target] = _target_facts(target)
    non_blocking, cpu = known
    # Fast path for what collate functions return: a tensor, or a flat list, tuple or dict
    # of tensors. Exact type checks, so subclasses, namedtuples and anything else take the
    # general walk below, which gives the same result for these shapes. A tensor already on
    # a CPU target is kept without calling ``.to`` (which would return it unchanged, through
    # the dispatcher: ~10x the cost of asking ``is_cpu``); the containers are new, as ever.
    kind = type(batch)
    if kind is _Tensor:
        if cpu and batch.is_cpu:
            return batch
        return batch.to(target, non_blocking=True) if non_blocking else batch.to(target)
    if kind is list or kind is tuple:
        moved: list[Any] = []
        for item in batch:
            if type(item) is not _Tensor:
                break
            if cpu and item.is_cpu:
                moved.append(item)
            else:
                moved.append(item.to(target, non_blocking=True) if non_blocking else item.to(target))
        else:
            return moved if kind is list else tuple(moved)
    elif kind is dict:
        mapped: dict[Any, Any] = {}
        for key, item in batch.items():
            if type(item) is not _Tensor:
                break
            if cpu and item.is_cpu:
                mapped[key] = item
            else:
                mapped[key] = item.to(target, non_blocking=True) if non_blocking else item.to(target)
        else:
            return mapped

    def move(data: Any) -> Any:
        kwargs: dict[str, Any] = {}
        if non_blocking and isinstance(data, torch.Tensor):
            kwargs["non_blocking"] = True
        moved = data.to(target, **kwargs)
        return data if moved is None else moved

    return apply_to_collection(batch, _is_transferable, move)


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
        from lightcycle.core.module import _read_checkpoint

        checkpoint = _read_checkpoint(cls, checkpoint_path, map_location, hparams_file, weights_only, kwargs)
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
