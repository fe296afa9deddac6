"""The per-key records behind :class:`~lightcycle.core.metric_store.MetricStore`.

Lightning's ``_ResultMetric`` / ``_ResultCollection``
(``pytorch_lightning/trainer/connectors/logger_connector/result.py``): one :class:`_Entry`
per logged key (metadata, cached key strings, device-side accumulators) and one
:class:`_Collection` per stage, whose :meth:`_Collection.view` is Lightning's
``_ResultCollection.metrics(on_step)``.
"""

from __future__ import annotations

from collections import ChainMap
from collections.abc import Callable, Mapping
from typing import Any, Final, NoReturn

import torch
from torch import Tensor

from lightcycle.core.metric_objects import compute_metric
from lightcycle.errors import MisconfigurationException

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
_Meta = tuple[bool, bool, bool, bool, int, bool, int | None] | tuple[bool, bool, bool, bool, int, bool, int | None, str]
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
        "metric",
        "name",
        "on_epoch",
        "on_step",
        "prog_bar",
        "reduce",
        "step_dtype",
        "step_value",
        "warned_dtype",
    )

    def __init__(self, fx: str, name: str, meta: _Meta, metric: Any = None) -> None:
        # a metric object's meta carries its attribute name as an 8th field (see MetricStore.log_metric)
        prog_bar, logger, on_step, on_epoch, reduce, add_dl_idx, dl_idx = meta[:7]
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
        # the last step value: a detached copy, or (a CPU float32/float64 scalar logged again from
        # a known call site, see MetricStore._remember) the number itself, made a tensor of
        # ``step_dtype`` when first read (``step_tensor``); exact both ways
        self.step_value: Tensor | float | None = None
        self.step_dtype: torch.dtype | None = None
        self.acc: Tensor | None = None
        self.count: int = 0
        self.computed: Tensor | None = None
        # a logged ``torchmetrics.Metric`` (None for numbers and tensors): its values come from the
        # object itself, which the user updates; ``reset`` leaves it alone (see reset_metric_objects)
        self.metric: Any = metric

    def reset(self) -> None:
        self.active = False
        self.step_value = None
        self.acc = None
        self.count = 0
        self.computed = None

    def step_tensor(self) -> Tensor | None:
        """The last step value as a tensor (converting a stored number once)."""
        value = self.step_value
        if isinstance(value, float):
            tensor = self.step_value = torch.tensor(value, dtype=self.step_dtype)
            return tensor
        return value

    def epoch_value(self) -> Tensor | None:
        computed = self.computed
        if computed is None:
            if self.acc is not None:
                computed = self.acc / self.count if self.reduce == _MEAN else self.acc
            elif self.metric is not None:
                computed = compute_metric(self.name, self.metric)
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
        "step_logged",
        "training",
    )

    def __init__(self, stage: str) -> None:
        self.stage = stage
        self.training = stage == "train"
        self.entries: dict[_Key, _Entry] = {}
        # some entry sends step values to the loggers (on_step and logger): without one the
        # step view's logger part is empty, and an evaluation batch need not build it
        self.step_logged = False
        self.dataloader_idx: int | None = None
        # Lightning's ``_first_loop_iter is not None``: step-level view when True
        self.in_batches = False
        self.seen_batch = False  # a batch of the current epoch has started
        self.ended = False
        self.batch: Any = None
        self.batch_size: int | None = None
        self.outputs: list[dict[str, Tensor]] = []

    def add(self, key: _Key, entry: _Entry) -> None:
        """Register a new key's entry."""
        self.entries[key] = entry
        if entry.on_step and entry.logger:
            self.step_logged = True

    def clear(self) -> None:
        """Forget every key (the entries are gone, not only reset)."""
        self.entries.clear()
        self.step_logged = False

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

    def reset_metric_objects(self) -> None:
        """Call ``reset()`` on every metric object logged in this stage (Lightning's ``reset_results``)."""
        for entry in self.entries.values():
            if entry.metric is not None:
                entry.computed = None
                entry.metric.reset()

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
                value = entry.step_tensor()
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

    def epoch_outputs(self, final: dict[str, Tensor]) -> dict[str, Tensor]:
        """An evaluation epoch's values for the loggers: each dataloader's, then ``final`` (the epoch end's).

        ``final`` also goes into each dataloader's dict of :attr:`outputs` (``validate`` / ``test`` return them).
        """
        outputs = self.outputs
        out = dict(ChainMap(*outputs))
        out.update(final)
        for per_dl in outputs:
            per_dl.update(final)
        return out

    def bar_view(self) -> dict[str, Tensor | float]:
        """The progress bar's part of ``view(on_step=True)``, stored numbers left as numbers."""
        pbar: dict[str, Tensor | float] = {}
        dl_idx = self.dataloader_idx
        for entry in self.entries.values():
            if entry.prog_bar and entry.on_step and entry.active and entry.dl_idx == dl_idx:
                value = entry.step_value
                if value is not None:
                    pbar[entry.key_step] = value
        return pbar


def raise_meta_mismatch(entry: _Entry, meta: _Meta) -> NoReturn:
    labels = (
        "prog_bar",
        "logger",
        "on_step",
        "on_epoch",
        "reduce_fx",
        "add_dataloader_idx",
        "dataloader_idx",
        "metric_attribute",
    )
    diffs = []
    # numbers and tensors have no 8th field (metric_attribute): compare it as None
    old_meta, new_meta = (m + (None,) * (len(labels) - len(m)) for m in (entry.meta, meta))
    for label, old, new in zip(labels, old_meta, new_meta, strict=True):
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


def raise_bad_value(name: str, value: object) -> NoReturn:
    if isinstance(value, Mapping):
        raise TypeError(
            f"`self.log({name!r}, ...)` was called with a dict. Use `self.log_dict(...)` to log"
            " several values, one number or single-element tensor per key."
        )
    raise TypeError(
        f"`self.log({name!r}, ...)` was called with a value of type {type(value).__name__},"
        " but only Python numbers and single-element tensors can be logged."
    )


def _to_floats(values: dict[str, Tensor | float]) -> dict[str, float]:
    """Convert 0-dim tensors (numbers kept as they are) to floats, with one device transfer per (device, dtype)."""
    floats: dict[str, float] = {}
    for key, value in values.items():
        if isinstance(value, Tensor):
            if not value.is_cpu:
                return _to_floats_grouped(values)
            # Why per value on the CPU: reading one costs no transfer, and grouping and stacking
            # cost more than the reads (each ``tolist`` gives what the stacked group's gives)
            floats[key] = value.tolist()  # type: ignore[assignment]  # (a 0-dim tensor's: a number)
        else:
            floats[key] = value
    return floats


def _to_floats_grouped(values: dict[str, Tensor | float]) -> dict[str, float]:
    tensors = {key: value for key, value in values.items() if isinstance(value, Tensor)}
    groups: dict[tuple[torch.device, torch.dtype], list[str]] = {}
    for key, tensor in tensors.items():
        groups.setdefault((tensor.device, tensor.dtype), []).append(key)
    floats: dict[str, float] = {key: value for key, value in values.items() if not isinstance(value, Tensor)}
    for keys in groups.values():
        numbers_ = torch.stack([tensors[k] for k in keys]).tolist()
        floats.update(zip(keys, numbers_, strict=True))
    return {key: floats[key] for key in values}


_EMPTY_VIEW: Final[_View] = ({}, {}, {})
