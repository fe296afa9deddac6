"""The logging layer behind ``LightningModule.log`` and ``LightningModule.log_dict``.

Two pieces live here:

* :func:`check_logging_allowed` is Lightning's per-hook permission table: which hooks may
  call ``self.log`` and with which ``on_step`` / ``on_epoch`` values, plus the defaults
  used when those are ``None``.
* :class:`MetricStore` holds what was logged during a run and produces
  ``trainer.callback_metrics``, ``trainer.logged_metrics`` and
  ``trainer.progress_bar_metrics`` with Lightning's semantics (``_step`` / ``_epoch``
  forked names, ``/dataloader_idx_{i}`` suffixes, batch-size weighted means, which values
  are visible at which hook).

``LightningModule.log_dict`` needs nothing special: it calls ``log`` once per key with the
same keyword arguments, exactly like Lightning.

Performance: nothing on the ``log`` path forces a host-device synchronisation. Logged
tensors stay on their device (detached), epoch accumulators are tensors, and values are
converted to Python numbers only where they are read (``progress_bar_metrics``, in one
transfer per device). Key strings are formatted once per (hook, name, dataloader) and
cached.

How the Trainer drives a :class:`MetricStore` (Lightning's order of events)::

    reset_run()                         # start of fit / validate / test / predict
    # fit, sanity check (eval loop with stage "sanity_check"):
    start_epoch("sanity_check")         # before on_validation_start hooks
      start_batch("sanity_check", dataloader_idx, batch)  # before on_validation_batch_start
      end_batch("sanity_check")         # after on_validation_batch_end hooks
    end_epoch("sanity_check")           # before on_validation_epoch_end hooks
    close_epoch("sanity_check")         # after on_validation_epoch_end hooks
    discard_stage("sanity_check")       # after on_sanity_check_end hooks
    # each training epoch:
    start_epoch("train")                # before on_train_epoch_start (may also precede on_train_start)
      start_batch("train", None, batch) # before on_train_batch_start hooks
      end_batch("train") -> step dict   # after on_train_batch_end hooks; send to loggers
      (validation inside the epoch: same calls as the sanity check with stage "validate",
       close_epoch("validate") -> epoch dict to send to loggers)
    end_epoch("train")                  # before on_train_epoch_end hooks
    close_epoch("train") -> epoch dict  # after all on_train_epoch_end hooks; send to loggers
    teardown()                          # end of the run (moves stored values to CPU)
"""

from __future__ import annotations

import dataclasses
import numbers
import warnings
from collections import ChainMap
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Final, NoReturn

import torch
from torch import Tensor

from lightcycle.errors import MisconfigurationException

__all__ = [
    "LOGGING_HOOKS",
    "STAGES",
    "MetricStore",
    "check_logging_allowed",
    "extract_batch_size",
]

# ----------------------------------------------------------------------------------------
# Permission table (pytorch_lightning/trainer/connectors/logger_connector/fx_validator.py)
# ----------------------------------------------------------------------------------------

# (allowed on_step values, allowed on_epoch values, default on_step, default on_epoch)
_LogOptions = tuple[tuple[bool, ...], tuple[bool, ...], bool, bool]

_TRAIN_STEP: Final[_LogOptions] = ((False, True), (False, True), True, False)
_EVAL_STEP: Final[_LogOptions] = ((False, True), (False, True), False, True)
_EPOCH_ONLY: Final[_LogOptions] = ((False,), (True,), False, True)

_FX_TABLE: Final[dict[str, _LogOptions | None]] = {
    # backward / optimizer hooks: like training_step
    "on_before_backward": _TRAIN_STEP,
    "backward": _TRAIN_STEP,
    "on_after_backward": _TRAIN_STEP,
    "on_before_optimizer_step": _TRAIN_STEP,
    "optimizer_step": _TRAIN_STEP,
    "lr_scheduler_step": None,
    "configure_gradient_clipping": _TRAIN_STEP,
    "clip_gradients": _TRAIN_STEP,
    "on_before_zero_grad": _TRAIN_STEP,
    "optimizer_zero_grad": _TRAIN_STEP,
    # run-level hooks
    "on_fit_start": None,
    "on_fit_end": None,
    "on_sanity_check_start": None,
    "on_sanity_check_end": None,
    "on_train_start": _EPOCH_ONLY,
    "on_train_end": None,
    "on_validation_start": _EPOCH_ONLY,
    "on_validation_end": None,
    "on_test_start": _EPOCH_ONLY,
    "on_test_end": None,
    "on_predict_start": None,
    "on_predict_end": None,
    # epoch hooks
    "on_train_epoch_start": _EPOCH_ONLY,
    "on_train_epoch_end": _EPOCH_ONLY,
    "on_validation_epoch_start": _EPOCH_ONLY,
    "on_validation_epoch_end": _EPOCH_ONLY,
    "on_test_epoch_start": _EPOCH_ONLY,
    "on_test_epoch_end": _EPOCH_ONLY,
    "on_predict_epoch_start": None,
    "on_predict_epoch_end": None,
    # batch hooks
    "on_before_batch_transfer": None,
    "transfer_batch_to_device": None,
    "on_after_batch_transfer": None,
    "on_train_batch_start": _TRAIN_STEP,
    "on_train_batch_end": _TRAIN_STEP,
    "on_validation_batch_start": _EVAL_STEP,
    "on_validation_batch_end": _EVAL_STEP,
    "on_test_batch_start": _EVAL_STEP,
    "on_test_batch_end": _EVAL_STEP,
    "on_predict_batch_start": None,
    "on_predict_batch_end": None,
    # misc
    "on_exception": None,
    "state_dict": None,
    "on_save_checkpoint": None,
    "on_load_checkpoint": None,
    "load_state_dict": None,
    "setup": None,
    "teardown": None,
    "configure_sharded_model": None,
    "configure_model": None,
    # step methods
    "training_step": _TRAIN_STEP,
    "validation_step": _EVAL_STEP,
    "test_step": _EVAL_STEP,
    "predict_step": None,
    "configure_optimizers": None,
    "train_dataloader": None,
    "val_dataloader": None,
    "test_dataloader": None,
    "prepare_data": None,
    "configure_callbacks": None,
    "on_validation_model_zero_grad": None,
    "on_validation_model_eval": None,
    "on_test_model_eval": None,
    "on_validation_model_train": None,
    "on_test_model_train": None,
}

#: Hooks from which ``self.log`` may be called (module and callback hooks alike).
LOGGING_HOOKS: Final[frozenset[str]] = frozenset(k for k, v in _FX_TABLE.items() if v is not None)

_EXAMPLE_HOOKS = "`training_step`, `validation_step`, `on_train_epoch_end`, `on_validation_epoch_end`"


def check_logging_allowed(fx_name: str | None, on_step: bool | None, on_epoch: bool | None) -> tuple[bool, bool]:
    """Validate a ``self.log`` call against the hook it is made from; resolve the defaults.

    Callback hooks use the same names as module hooks (the Trainer records the hook name
    in ``LightningModule._current_fx_name`` for both).

    Args:
        fx_name: name of the hook currently running, ``None`` outside any Trainer hook.
        on_step: the ``on_step`` argument given to ``log`` (``None``: the hook's default).
        on_epoch: the ``on_epoch`` argument given to ``log`` (``None``: the hook's default).

    Returns:
        The resolved ``(on_step, on_epoch)``.

    Raises:
        MisconfigurationException: logging outside a Trainer hook, from a hook that cannot
            log, or with an ``on_step`` / ``on_epoch`` value the hook does not allow.
    """
    if fx_name is None:
        raise MisconfigurationException(
            "You are trying to `self.log()` but it is not managed by the Trainer control flow:"
            " `log` only works inside hooks the Trainer calls (for example "
            f"{_EXAMPLE_HOOKS}). Move the call into such a hook, or log to the logger directly"
            " with `self.logger.log_metrics(...)`."
        )
    try:
        options = _FX_TABLE[fx_name]
    except KeyError:
        raise MisconfigurationException(
            f"You can't `self.log()` inside `{fx_name}`: it is not a hook the Trainer calls with"
            f" logging support. Log from a Trainer hook such as {_EXAMPLE_HOOKS}."
        ) from None
    if options is None:
        raise MisconfigurationException(
            f"You can't `self.log()` inside `{fx_name}`: this hook does not support logging."
            f" Log from a hook that does (for example {_EXAMPLE_HOOKS}), or log directly to the"
            " logger with `self.logger.experiment`."
        )
    allowed_step, allowed_epoch, default_step, default_epoch = options
    step = default_step if on_step is None else on_step
    epoch = default_epoch if on_epoch is None else on_epoch
    if step not in allowed_step:
        raise MisconfigurationException(
            f"You can't `self.log(on_step={step})` inside `{fx_name}`: `on_step` must be one of {allowed_step} there."
        )
    if epoch not in allowed_epoch:
        raise MisconfigurationException(
            f"You can't `self.log(on_epoch={epoch})` inside `{fx_name}`: `on_epoch` must be one of"
            f" {allowed_epoch} there."
        )
    return step, epoch


# ----------------------------------------------------------------------------------------
# Batch size inference (pytorch_lightning/utilities/data.py::extract_batch_size)
# ----------------------------------------------------------------------------------------


def _iter_batch_sizes(batch: Any) -> Iterator[int | None]:
    if isinstance(batch, Tensor):
        yield 1 if batch.ndim == 0 else int(batch.size(0))
    elif isinstance(batch, Mapping):
        for sample in batch.values():
            yield from _iter_batch_sizes(sample)
    elif isinstance(batch, (list, tuple)) or (hasattr(batch, "__iter__") and not isinstance(batch, (str, bytes))):
        for sample in batch:
            yield from _iter_batch_sizes(sample)
    elif dataclasses.is_dataclass(batch) and not isinstance(batch, type):
        for field in dataclasses.fields(batch):
            yield from _iter_batch_sizes(getattr(batch, field.name))
    else:
        yield None


def extract_batch_size(batch: Any) -> int:
    """Infer the batch size from a batch as Lightning does: ``len`` of the first tensor.

    Only tensor metadata (shapes) is read, so this never synchronises with a device.

    Args:
        batch: a tensor or a (nested) list, tuple, mapping or dataclass of them.

    Returns:
        ``tensor.size(0)`` of the first tensor found (1 for a 0-dim tensor).

    Raises:
        MisconfigurationException: no tensor could be found in ``batch``.
    """
    error = (
        "We could not infer the batch_size from the batch. Either simplify its structure"
        " or provide the batch_size as `self.log(..., batch_size=batch_size)`."
    )
    size: int | None = None
    try:
        for found in _iter_batch_sizes(batch):
            if size is None:
                size = found
            elif size != found:
                warnings.warn(
                    "Trying to infer the `batch_size` from an ambiguous collection. The batch size"
                    f" we found is {size}. To avoid any miscalculations, use"
                    " `self.log(..., batch_size=batch_size)`.",
                    stacklevel=2,
                )
                break
    except RecursionError:
        raise MisconfigurationException(error) from None
    if size is None:
        raise MisconfigurationException(error)
    return size


# ----------------------------------------------------------------------------------------
# MetricStore
# ----------------------------------------------------------------------------------------

#: Stage names accepted by :class:`MetricStore`.
STAGES: Final[tuple[str, ...]] = ("train", "validate", "test", "predict", "sanity_check")

_MEAN: Final = 0
_SUM: Final = 1
_MAX: Final = 2
_MIN: Final = 3
_REDUCE_NAMES: Final[tuple[str, ...]] = ("mean", "sum", "max", "min")

_REDUCE_CODES: Final[dict[object, int]] = {
    "mean": _MEAN,
    "avg": _MEAN,
    "sum": _SUM,
    "max": _MAX,
    "min": _MIN,
    torch.mean: _MEAN,
    torch.sum: _SUM,
    sum: _SUM,
    torch.max: _MAX,
    max: _MAX,
    torch.min: _MIN,
    min: _MIN,
}

_DATALOADER_SUFFIX: Final = "/dataloader_idx_{}"

#: What ``log`` accepts as a value.
LogValue = Tensor | float | int | bool
_Reduce = str | Callable[..., Any]
_Key = tuple[str, str, int | None]
_Meta = tuple[bool, bool, bool, bool, int, bool, int | None]
_View = tuple[dict[str, Tensor], dict[str, Tensor], dict[str, Tensor]]


def _reduce_code(reduce_fx: _Reduce) -> int:
    try:
        code = _REDUCE_CODES.get(reduce_fx)
    except TypeError:  # unhashable
        code = None
    if code is None and isinstance(reduce_fx, str):
        code = _REDUCE_CODES.get(reduce_fx.lower())
    if code is None:
        raise MisconfigurationException(
            "Only `self.log(..., reduce_fx={min,max,mean,sum})` are supported (as strings or as"
            f" `torch.min`/`torch.max`/`torch.mean`/`torch.sum`). Found: {reduce_fx!r}. For a custom"
            " reduction, compute the value yourself and log the result."
        )
    return code


def _float_dtype() -> torch.dtype:
    dtype = torch.get_default_dtype()
    return dtype if dtype in (torch.float32, torch.float64) else torch.float32


class _Entry:
    """One logged key: metadata, cached key strings and the device-side accumulators."""

    __slots__ = (
        "acc",
        "active",
        "computed",
        "count",
        "dl_idx",
        "fx",
        "key",
        "key_epoch",
        "key_step",
        "logger",
        "meta",
        "name",
        "on_epoch",
        "on_step",
        "prog_bar",
        "reduce",
        "step_value",
        "warned_dtype",
    )

    def __init__(self, fx: str, name: str, meta: _Meta) -> None:
        prog_bar, logger, on_step, on_epoch, reduce, add_dl_idx, dl_idx = meta
        self.fx = fx
        self.name = name
        self.meta = meta
        self.prog_bar = prog_bar
        self.logger = logger
        self.on_step = on_step
        self.on_epoch = on_epoch
        self.reduce = reduce
        self.dl_idx = dl_idx
        suffix = _DATALOADER_SUFFIX.format(dl_idx) if add_dl_idx and dl_idx is not None else ""
        self.key = name + suffix
        forked = on_step and on_epoch
        self.key_step = f"{name}_step{suffix}" if forked else self.key
        self.key_epoch = f"{name}_epoch{suffix}" if forked else self.key
        self.warned_dtype = False
        self.active = False
        self.step_value: Tensor | None = None
        self.acc: Tensor | None = None
        self.count: int = 0
        self.computed: Tensor | None = None

    def reset(self) -> None:
        self.active = False
        self.step_value = None
        self.acc = None
        self.count = 0
        self.computed = None

    def epoch_value(self) -> Tensor | None:
        computed = self.computed
        if computed is None and self.acc is not None:
            computed = self.acc / self.count if self.reduce == _MEAN else self.acc
            self.computed = computed
        return computed


class _Collection:
    """Everything logged in one stage (Lightning: one loop's ``_ResultCollection``)."""

    __slots__ = (
        "batch",
        "batch_size",
        "dataloader_idx",
        "ended",
        "entries",
        "in_batches",
        "outputs",
        "seen_batch",
        "stage",
        "training",
    )

    def __init__(self, stage: str) -> None:
        self.stage = stage
        self.training = stage == "train"
        self.entries: dict[_Key, _Entry] = {}
        self.dataloader_idx: int | None = None
        # Lightning's ``_first_loop_iter is not None``: step-level view when True
        self.in_batches = False
        self.seen_batch = False  # a batch of the current epoch has started
        self.ended = False
        self.batch: Any = None
        self.batch_size: int | None = None
        self.outputs: list[dict[str, Tensor]] = []

    def reset(self) -> None:
        for entry in self.entries.values():
            entry.reset()
        self.dataloader_idx = None
        self.in_batches = False
        self.seen_batch = False
        self.ended = False
        self.batch = None
        self.batch_size = None
        self.outputs = []

    def view(self, on_step: bool) -> _View:
        """Lightning's ``_ResultCollection.metrics(on_step)``: (callback, log, pbar)."""
        callback: dict[str, Tensor] = {}
        log: dict[str, Tensor] = {}
        pbar: dict[str, Tensor] = {}
        dl_idx = self.dataloader_idx
        to_callback = self.training or not on_step
        for entry in self.entries.values():
            if not entry.active or entry.dl_idx != dl_idx:
                continue
            value: Tensor | None
            if on_step:
                if not entry.on_step:
                    continue
                value = entry.step_value
                forked = entry.key_step
            else:
                if not entry.on_epoch:
                    continue
                value = entry.epoch_value()
                forked = entry.key_epoch
            if value is None:
                continue
            if entry.logger:
                log[forked] = value
            if to_callback:
                callback[entry.key] = value
                callback[forked] = value
            if entry.prog_bar:
                pbar[forked] = value
        return callback, log, pbar


def _to_floats(values: dict[str, Tensor]) -> dict[str, float]:
    """Convert 0-dim tensors to floats with one device transfer per (device, dtype)."""
    groups: dict[tuple[torch.device, torch.dtype], list[str]] = {}
    for key, value in values.items():
        groups.setdefault((value.device, value.dtype), []).append(key)
    floats: dict[str, float] = {}
    for keys in groups.values():
        numbers_ = torch.stack([values[k] for k in keys]).tolist()
        floats.update(zip(keys, numbers_, strict=True))
    return {key: floats[key] for key in values}


_EMPTY_VIEW: Final[_View] = ({}, {}, {})


class MetricStore:
    """What ``self.log`` recorded during a run, with Lightning's visibility rules.

    The store mirrors Lightning's logger connector: one collection per stage holds the
    logged keys and their accumulators; ``callback_metrics``, ``logged_metrics`` and
    ``progress_bar_metrics`` are persistent dicts (keys stay until :meth:`reset_run`) that
    are refreshed from the *live view* of the active stage each time they are read and at
    the structural points (end of batch, end of a dataloader, end of epoch).

    The live view depends on where the active stage is:

    * inside its batches (from the first :meth:`start_batch` to :meth:`end_epoch`): the
      last step values of keys logged with ``on_step=True`` (forked keys as ``name_step``;
      in the training stage they also appear as ``name`` in ``callback_metrics``;
      evaluation step values never reach ``callback_metrics``);
    * otherwise (epoch start and epoch end hooks): the running epoch reduction of keys
      logged with ``on_epoch=True`` (forked keys as ``name_epoch``, and ``name`` in
      ``callback_metrics``).

    Only keys logged under the current dataloader index are in the live view; at epoch
    end the index is ``None`` (values of each dataloader were stored when it finished).
    """

    def __init__(self) -> None:
        self._collections: dict[str, _Collection] = {}
        self._stack: list[_Collection] = []
        self._callback: dict[str, Tensor] = {}
        self._logged: dict[str, Tensor] = {}
        self._pbar: dict[str, Tensor] = {}
        self._pbar_floats: dict[str, float] | None = None
        self._snapshots: dict[str, _View] = {}
        self._eval_outputs: list[dict[str, Tensor]] = []
        # generation counter: bumped by anything that changes the live view
        self._gen = 0
        self._view: _View = _EMPTY_VIEW
        self._view_gen = -1
        self._callback_gen = -1
        self._logged_gen = -1
        self._pbar_gen = -1

    # ------------------------------------------------------------------ logging (hot path)

    def log(
        self,
        fx: str,
        name: str,
        value: LogValue,
        *,
        stage: str,
        prog_bar: bool = False,
        logger: bool = True,
        on_step: bool = False,
        on_epoch: bool = True,
        reduce_fx: _Reduce = "mean",
        batch_size: int | None = None,
        dataloader_idx: int | None = None,
        add_dataloader_idx: bool = True,
    ) -> None:
        """Record one logged value (``LightningModule.log`` after argument resolution).

        ``LightningModule.log_dict`` calls this once per key. Never synchronises with the
        device: the value is detached and kept where it is.

        Args:
            fx: the hook the call was made from (``LightningModule._current_fx_name``).
            name: key name; must not contain ``/dataloader_idx_`` when
                ``add_dataloader_idx`` is True.
            value: a Python number or a single-element tensor.
            stage: the stage whose collection receives the value (one of :data:`STAGES`).
            prog_bar: also show the value in ``progress_bar_metrics``.
            logger: also put the value in ``logged_metrics`` (what loggers receive).
            on_step: keep the step value (resolved by :func:`check_logging_allowed`).
            on_epoch: accumulate the value into an epoch reduction.
            reduce_fx: epoch reduction: ``"mean"`` (weighted by batch size), ``"sum"``,
                ``"max"``, ``"min"`` or the matching ``torch``/builtin function.
            batch_size: weight of this value in a mean; ``None`` infers it from the batch
                given to :meth:`start_batch` (1 when there is none).
            dataloader_idx: index of the dataloader being run, ``None`` to use the one
                given to :meth:`start_batch` (``None`` for a single dataloader).
            add_dataloader_idx: suffix the key with ``/dataloader_idx_{i}`` when a
                dataloader index is set.

        Raises:
            MisconfigurationException: ``on_step`` and ``on_epoch`` both False, an unknown
                reduction, a name carrying the dataloader suffix, or the same key logged
                again from the same hook with different arguments.
            TypeError: ``value`` is not a number or a tensor.
            ValueError: ``value`` is a tensor with more than one element, or ``stage`` is
                unknown.
        """
        if not on_step and not on_epoch:
            raise MisconfigurationException(
                f"`self.log({name!r}, on_step=False, on_epoch=False)` is not useful: set"
                " `on_step=True` and/or `on_epoch=True`."
            )
        coll = self._collections.get(stage)
        if coll is None:
            coll = self._collection(stage)
        if dataloader_idx is None:
            dataloader_idx = coll.dataloader_idx
        code = _reduce_code(reduce_fx)
        key: _Key = (fx, name, dataloader_idx if add_dataloader_idx else None)
        meta: _Meta = (prog_bar, logger, on_step, on_epoch, code, add_dataloader_idx, dataloader_idx)
        entry = coll.entries.get(key)
        if entry is None:
            entry = self._new_entry(coll, key, meta)
        elif entry.meta != meta:
            self._raise_meta_mismatch(entry, meta)

        # -- value: detached tensor of a floating dtype, no device sync
        if isinstance(value, Tensor):
            if value.numel() != 1:
                raise ValueError(
                    f"`self.log({name!r}, ...)` was called with a tensor of shape"
                    f" {tuple(value.shape)}, but the tensor must have a single element. Log a"
                    f" reduction instead, e.g. `self.log({name!r}, value.mean())`."
                )
            tensor = value.detach()
            if tensor.ndim:
                tensor = tensor.reshape(())
            dtype = tensor.dtype
            if dtype is torch.float32 or dtype is torch.float64:
                tensor = tensor.clone()  # the caller may modify its tensor in place later
            else:
                if not entry.warned_dtype and not tensor.is_floating_point():
                    entry.warned_dtype = True
                    warnings.warn(
                        f"You called `self.log({name!r}, ...)` in `{fx}` with a {dtype} tensor,"
                        " but the value needs to be floating to be reduced; converting it to"
                        f" {_float_dtype()}. Convert it to floating point yourself to silence"
                        " this warning.",
                        stacklevel=2,
                    )
                tensor = tensor.to(_float_dtype())
        elif type(value) is float or type(value) is int or type(value) is bool:
            tensor = torch.tensor(value, dtype=_float_dtype())
        elif isinstance(value, numbers.Real):
            tensor = torch.tensor(float(value), dtype=_float_dtype())
        else:
            self._raise_bad_value(name, value)

        # -- accumulate (Lightning's _ResultMetric.update)
        entry.active = True
        self._gen += 1
        if on_step:
            entry.step_value = tensor
            if not on_epoch:
                return
        entry.computed = None
        acc = entry.acc
        reduce = entry.reduce
        if reduce == _MEAN:
            if batch_size is None:
                batch_size = coll.batch_size
                if batch_size is None:
                    if coll.batch is not None:
                        batch_size = coll.batch_size = extract_batch_size(coll.batch)
                    else:
                        batch_size = 1
            weighted = tensor * batch_size
            entry.acc = weighted if acc is None else acc + weighted
            entry.count += batch_size
        elif acc is None:
            entry.acc = tensor
        elif reduce == _SUM:
            entry.acc = acc + tensor
        elif reduce == _MAX:
            entry.acc = torch.maximum(acc, tensor)
        else:
            entry.acc = torch.minimum(acc, tensor)

    def _new_entry(self, coll: _Collection, key: _Key, meta: _Meta) -> _Entry:
        fx, name, _ = key
        if not isinstance(name, str):
            raise TypeError(f"`self.log` needs a string name, got {name!r}.")
        if meta[5] and "/dataloader_idx_" in name:
            raise MisconfigurationException(
                f"You called `self.log` with the key `{name}` but it should not contain information"
                " about `dataloader_idx` when `add_dataloader_idx=True`: the suffix is added for"
                " you. Drop it from the name, or pass `add_dataloader_idx=False`."
            )
        entry = _Entry(fx, name, meta)
        coll.entries[key] = entry
        return entry

    @staticmethod
    def _raise_meta_mismatch(entry: _Entry, meta: _Meta) -> NoReturn:
        labels = ("prog_bar", "logger", "on_step", "on_epoch", "reduce_fx", "add_dataloader_idx", "dataloader_idx")
        diffs = []
        for label, old, new in zip(labels, entry.meta, meta, strict=True):
            if old != new:
                if label == "reduce_fx":
                    before, after = _REDUCE_NAMES[int(old or 0)], _REDUCE_NAMES[int(new or 0)]
                    diffs.append(f"{label}: {before!r} then {after!r}")
                else:
                    diffs.append(f"{label}: {old!r} then {new!r}")
        raise MisconfigurationException(
            f"You called `self.log({entry.name!r}, ...)` twice in `{entry.fx}` with different"
            f" arguments ({'; '.join(diffs)}). This is not allowed: log a key with the same"
            " arguments every time, or use a different name (with several dataloaders and"
            " `add_dataloader_idx=False`, one name per dataloader)."
        )

    @staticmethod
    def _raise_bad_value(name: str, value: object) -> NoReturn:
        if isinstance(value, Mapping):
            raise TypeError(
                f"`self.log({name!r}, ...)` was called with a dict. Use `self.log_dict(...)` to log"
                " several values, one number or single-element tensor per key."
            )
        raise TypeError(
            f"`self.log({name!r}, ...)` was called with a value of type {type(value).__name__},"
            " but only Python numbers and single-element tensors can be logged."
        )

    # ------------------------------------------------------------------ lifecycle

    def _collection(self, stage: str) -> _Collection:
        coll = self._collections.get(stage)
        if coll is None:
            if stage not in STAGES:
                raise ValueError(f"unknown stage {stage!r}; expected one of {STAGES}")
            key = STAGES[STAGES.index(stage)]  # a plain str, also for str-enum stages
            coll = self._collections[key] = _Collection(key)
        return coll

    def _merge(self, view: _View) -> None:
        callback, log, pbar = view
        self._callback.update(callback)
        self._logged.update(log)
        if pbar:
            self._pbar.update(pbar)
            self._pbar_floats = None

    def _merge_live(self) -> _View:
        view = self._live_view()
        self._merge(view)
        gen = self._gen
        self._callback_gen = self._logged_gen = self._pbar_gen = gen
        return view

    def _close(self, coll: _Collection) -> None:
        """Merge the epoch view of ``coll`` and reset its accumulators (no output kept)."""
        self._merge(coll.view(on_step=False))
        coll.reset()
        self._gen += 1

    def _activate(self, stage: str) -> _Collection:
        coll = self._collection(stage)
        stack = self._stack
        if stack and stack[-1] is coll:
            return coll
        if coll in stack:
            while stack[-1] is not coll:
                self._close(stack.pop())
        else:
            self._snapshots[stage] = (dict(self._callback), dict(self._logged), dict(self._pbar))
            stack.append(coll)
        self._gen += 1
        return coll

    def reset_run(self) -> None:
        """Forget everything: call at the start of every fit / validate / test / predict.

        Lightning clears ``callback_metrics`` (and the other two) at the start of each run.
        """
        self._collections = {}
        self._stack = []
        self._callback = {}
        self._logged = {}
        self._pbar = {}
        self._pbar_floats = None
        self._snapshots = {}
        self._eval_outputs = []
        self._gen += 1

    def start_epoch(self, stage: str) -> None:
        """Open an epoch of ``stage`` and make it the active stage.

        Call right before the ``on_train_epoch_start`` hooks (training, every epoch; it may
        also be called before ``on_train_start``), or before the ``on_validation_start`` /
        ``on_test_start`` hooks (evaluation, including the sanity check with stage
        ``"sanity_check"``). Evaluation started inside a training epoch stacks on top of
        the training stage, which becomes active again when it is closed.

        Accumulators are reset by :meth:`close_epoch`; values logged since then (e.g. in
        ``on_train_start`` / ``on_validation_start``) count toward this epoch, as in
        Lightning. An epoch that was ended but never closed is closed here; one abandoned
        after some batches (no :meth:`end_epoch`) has its values dropped.

        Args:
            stage: one of :data:`STAGES`.
        """
        coll = self._activate(stage)
        if coll.ended:
            self._close(coll)
        elif coll.seen_batch:  # the previous epoch was abandoned mid-way: drop its values
            coll.reset()
        coll.dataloader_idx = None
        coll.outputs = []
        coll.seen_batch = False
        # Lightning shares ``_first_loop_iter`` between loops: evaluation started inside a
        # training epoch begins with the training loop's (step-level) view.
        stack = self._stack
        coll.in_batches = len(stack) > 1 and stack[-2].in_batches
        self._gen += 1

    def start_batch(self, stage: str, dataloader_idx: int | None = None, batch: Any = None) -> None:
        """Enter a batch: call before the ``on_*_batch_start`` hooks.

        When the dataloader index changes (several evaluation dataloaders), the epoch
        values of the finished dataloader are stored first, as Lightning does.

        Args:
            stage: one of :data:`STAGES`.
            dataloader_idx: index of the dataloader the batch comes from, ``None`` when the
                stage has a single dataloader (Lightning passes ``None`` then).
            batch: the batch, used to infer the batch size for mean reductions when
                ``log`` gets no ``batch_size``. Only read when needed.
        """
        coll = self._collections.get(stage)
        stack = self._stack
        if coll is None or not stack or stack[-1] is not coll:
            coll = self._activate(stage)
        if coll.seen_batch and dataloader_idx != coll.dataloader_idx and not coll.training:
            self._store_dataloader(coll)
        coll.seen_batch = True
        coll.in_batches = True
        coll.dataloader_idx = dataloader_idx
        coll.batch = batch
        coll.batch_size = None
        self._gen += 1

    def end_batch(self, stage: str) -> dict[str, Tensor]:
        """Leave a batch: call after the ``on_*_batch_end`` hooks (module and callbacks).

        Args:
            stage: one of :data:`STAGES`.

        Returns:
            The step values to send to the loggers for this batch (empty during the sanity
            check). The Trainer decides whether to send them (``log_every_n_steps``).
        """
        coll = self._collections.get(stage)
        stack = self._stack
        if coll is None or not stack or stack[-1] is not coll:
            coll = self._activate(stage)
        coll.batch = None
        coll.batch_size = None
        if not coll.entries:
            # Nothing was ever logged in this stage: the live view is empty, merging it
            # changes nothing. O(1), no allocation but the returned dict.
            gen = self._gen
            self._view = _EMPTY_VIEW
            self._view_gen = self._callback_gen = self._logged_gen = self._pbar_gen = gen
            return {}
        view = self._merge_live()
        if coll.stage == "sanity_check":
            return {}
        return dict(view[1])

    def _store_dataloader(self, coll: _Collection) -> None:
        view = coll.view(on_step=False)
        if coll.stage != "sanity_check":
            self._merge(view)
            coll.outputs.append(dict(view[1]))
        self._gen += 1

    def end_epoch(self, stage: str) -> None:
        """Reduce the epoch accumulators: call before the ``on_*_epoch_end`` hooks.

        From here until :meth:`close_epoch` the live view holds the epoch reductions
        (including values logged in the epoch-end hooks themselves, so a callback running
        after ``LightningModule.on_train_epoch_end`` sees what it logged). For evaluation,
        the values of the last dataloader are stored and the dataloader index becomes
        ``None``.

        Args:
            stage: one of :data:`STAGES`.
        """
        coll = self._activate(stage)
        if not coll.training:
            self._store_dataloader(coll)
            coll.dataloader_idx = None
        coll.in_batches = False
        coll.ended = True
        coll.batch = None
        coll.batch_size = None
        self._gen += 1

    def close_epoch(self, stage: str) -> dict[str, Tensor]:
        """Finish the epoch: call after all ``on_*_epoch_end`` hooks.

        Merges the epoch values into the stored metrics, resets the stage's accumulators and
        deactivates it (the enclosing stage, if any, becomes active again).

        Args:
            stage: one of :data:`STAGES`.

        Returns:
            The epoch values to send to the loggers (for evaluation: all dataloaders plus
            what was logged at epoch end; empty for the sanity check). For ``validate`` /
            ``test``, :attr:`eval_outputs` then holds the per-dataloader results.
        """
        coll = self._activate(stage)
        if not coll.ended:
            self.end_epoch(stage)
        view = self._merge_live()
        out: dict[str, Tensor]
        if coll.training:
            out = dict(view[1])
        elif coll.stage == "sanity_check":
            out = {}
        else:
            final = view[1]
            outputs = coll.outputs
            out = dict(ChainMap(*outputs))
            out.update(final)
            for per_dl in outputs:
                per_dl.update(final)
            self._eval_outputs = outputs
        coll.reset()
        self._stack.pop()
        self._gen += 1
        return out

    def discard_stage(self, stage: str) -> None:
        """Drop everything logged during ``stage`` (after the sanity check).

        The stage is closed without merging, its accumulators are reset, and the stored
        ``callback_metrics`` / ``logged_metrics`` / ``progress_bar_metrics`` go back to
        what they were when ``stage`` was last activated.

        Args:
            stage: one of :data:`STAGES`.
        """
        coll = self._collection(stage)
        stack = self._stack
        if coll in stack:
            while stack:
                top = stack.pop()
                top.reset()
                if top is coll:
                    break
        coll.reset()
        coll.entries.clear()
        snapshot = self._snapshots.pop(stage, None)
        if snapshot is not None:
            self._callback, self._logged, self._pbar = (dict(d) for d in snapshot)
            self._pbar_floats = None
        self._gen += 1

    def teardown(self) -> None:
        """End of run: fold the live view in and move the stored values to the CPU."""
        self._merge_live()
        self._callback = {k: v.cpu() for k, v in self._callback.items()}
        self._logged = {k: v.cpu() for k, v in self._logged.items()}
        self._pbar = {k: v.cpu() for k, v in self._pbar.items()}
        self._eval_outputs = [{k: v.cpu() for k, v in d.items()} for d in self._eval_outputs]
        self._gen += 1

    # ------------------------------------------------------------------ reading

    def _live_view(self) -> _View:
        if self._view_gen != self._gen:
            stack = self._stack
            if stack:
                top = stack[-1]
                self._view = top.view(on_step=top.in_batches)
            else:
                self._view = _EMPTY_VIEW
            self._view_gen = self._gen
        return self._view

    @property
    def callback_metrics(self) -> dict[str, Tensor]:
        """Values callbacks can monitor (``trainer.callback_metrics``).

        Returns:
            The stored dict (same object between reads), refreshed from the live view.
        """
        if self._callback_gen != self._gen:
            self._callback.update(self._live_view()[0])
            self._callback_gen = self._gen
        return self._callback

    @property
    def logged_metrics(self) -> dict[str, Tensor]:
        """Values sent to the loggers (``trainer.logged_metrics``).

        Returns:
            The stored dict (same object between reads), refreshed from the live view.
        """
        if self._logged_gen != self._gen:
            self._logged.update(self._live_view()[1])
            self._logged_gen = self._gen
        return self._logged

    @property
    def progress_bar_metrics(self) -> dict[str, float]:
        """Values for the progress bar (``trainer.progress_bar_metrics``), as floats.

        Reading converts the tensors with one transfer per device; the result is cached
        until something changes.

        Returns:
            A dict of Python floats.
        """
        if self._pbar_gen != self._gen:
            pbar = self._live_view()[2]
            if pbar:
                self._pbar.update(pbar)
                self._pbar_floats = None
            self._pbar_gen = self._gen
        if self._pbar_floats is None:
            self._pbar_floats = _to_floats(self._pbar)
        return self._pbar_floats

    @property
    def eval_outputs(self) -> list[dict[str, Tensor]]:
        """Per-dataloader results of the last closed ``validate`` / ``test`` epoch.

        Returns:
            One dict per dataloader (what ``Trainer.validate`` / ``test`` return once
            converted to floats); each includes the values logged at epoch end.
        """
        return self._eval_outputs

    @property
    def active_stage(self) -> str | None:
        """The stage whose values make up the live view.

        Returns:
            The stage name, or ``None`` when no stage is open.
        """
        return self._stack[-1].stage if self._stack else None
