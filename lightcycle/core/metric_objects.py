"""``torchmetrics`` objects passed to ``self.log`` / ``self.log_dict`` (Lightning's semantics).

Lightning 2.6 (``trainer/connectors/logger_connector/result.py``, ``_ResultMetric`` with
``is_tensor=False``) treats a logged ``torchmetrics.Metric`` differently from a number:

* the user updates it in the step (``metric(preds, target)`` or ``metric.update(...)``);
  ``self.log`` only records the object;
* ``on_step=True`` logs the metric's ``_forward_cache`` (what its last ``forward`` returned;
  nothing when only ``update`` was called);
* ``on_epoch=True`` logs ``metric.compute()``, computed the first time the epoch value is read
  and cached until the next ``self.log`` of that key;
* the metric's ``reset()`` is called when Lightning resets the loop's results: after the
  ``on_train_epoch_end`` hooks, and after the ``on_validation_end`` / ``on_test_end`` hooks;
* ``sync_dist`` does not apply: the metric synchronises its own states in ``compute``;
* the object must be an attribute (a submodule) of the LightningModule, found by identity
  (``metric_attribute`` names it explicitly); its states live on the module's device
  because it moves with the module.

lightcycle never imports ``torchmetrics`` for runs that log no metric object: detection reads
the class hierarchy's module names, and ``torchmetrics`` is imported only once such an object
is seen (it is then already loaded, since the object's class comes from it).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from types import ModuleType
from typing import TYPE_CHECKING, Any

from torch import Tensor

from lightcycle.errors import MisconfigurationException

if TYPE_CHECKING:
    from lightcycle.core.module import LightningModule

__all__ = [
    "collection_items",
    "compute_metric",
    "forward_value",
    "is_metric",
    "is_metric_collection",
    "resolve_metric_attribute",
]


def _from_torchmetrics(value: object, class_name: str) -> bool:
    """Whether ``value``'s class derives from ``torchmetrics``' class ``class_name`` (no import)."""
    for cls in type(value).__mro__:
        if cls.__name__ == class_name and cls.__module__.partition(".")[0] == "torchmetrics":
            return True
    return False


def _torchmetrics() -> ModuleType:
    try:
        return importlib.import_module("torchmetrics")
    except ImportError as err:  # pragma: no cover - the object's class came from torchmetrics
        raise ImportError(
            "Logging a `torchmetrics` object needs the `torchmetrics` package: `pip install lightcycle[torchmetrics]`"
            " (or `pip install torchmetrics`)."
        ) from err


def is_metric(value: object) -> bool:
    """Whether ``value`` is a ``torchmetrics.Metric`` (imports torchmetrics only if it looks like one).

    Args:
        value: any logged value.

    Returns:
        True for an instance of ``torchmetrics.Metric`` (or a subclass).
    """
    return _from_torchmetrics(value, "Metric") and isinstance(value, _torchmetrics().Metric)


def is_metric_collection(value: object) -> bool:
    """Whether ``value`` is a ``torchmetrics.MetricCollection`` (same lazy import as :func:`is_metric`).

    Args:
        value: what was given to ``log`` / ``log_dict``.

    Returns:
        True for an instance of ``torchmetrics.MetricCollection``.
    """
    return _from_torchmetrics(value, "MetricCollection") and isinstance(value, _torchmetrics().MetricCollection)


def collection_items(collection: Any) -> Iterable[tuple[str, Any]]:
    """The ``(name, metric)`` pairs ``log_dict`` logs for a ``MetricCollection``, as Lightning lists them.

    Lightning calls ``items(keep_base=False)``, plus ``copy_state=False`` when compute groups are
    enabled, so that metrics sharing states are logged as the collection holds them.

    Args:
        collection: a ``torchmetrics.MetricCollection``.

    Returns:
        The collection's items with prefixes and postfixes applied.
    """
    kwargs: dict[str, bool] = {"keep_base": False}
    if getattr(collection, "_enable_compute_groups", False):
        kwargs["copy_state"] = False
    items: Iterable[tuple[str, Any]] = collection.items(**kwargs)
    return items


def resolve_metric_attribute(module: LightningModule, name: str, metric: Any, metric_attribute: str | None) -> str:
    """Find the module attribute holding ``metric`` (Lightning's ``_metric_attributes`` lookup).

    The lookup table (``id(submodule) -> attribute name`` for every ``Metric`` submodule) is cached
    on the module as ``_metric_attributes``, as in Lightning, and rebuilt when it misses.

    Args:
        module: the LightningModule that logs.
        name: the logged key (for the error message).
        metric: the logged ``torchmetrics.Metric``.
        metric_attribute: the attribute name given to ``log``, if any (then no lookup).

    Returns:
        The attribute name.

    Raises:
        MisconfigurationException: the module has no ``Metric`` attribute, or not this one.
    """
    if metric_attribute is not None:
        return metric_attribute
    table = module._metric_attributes
    if table is None or id(metric) not in table:
        # built on first use, rebuilt on a miss: metrics created in `setup` or replaced between runs
        # are found (Lightning clears the table at teardown instead)
        metric_cls = _torchmetrics().Metric
        table = {id(sub): sub_name for sub_name, sub in module.named_modules() if isinstance(sub, metric_cls)}
        module._metric_attributes = table
        if not table:
            raise MisconfigurationException(
                "Could not find the `LightningModule` attribute for the `torchmetrics.Metric` logged."
                " You can fix this by setting an attribute for the metric in your `LightningModule`"
                " (e.g. `self.train_acc = Accuracy(...)` in `__init__`)."
            )
    found = table.get(id(metric))
    if found is None:
        raise MisconfigurationException(
            "Could not find the `LightningModule` attribute for the `torchmetrics.Metric` logged."
            f" You can fix this by calling `self.log({name}, ..., metric_attribute=name)` where `name` is one"
            f" of {list(table.values())}"
        )
    return found


def _checked_tensor(name: str, value: Any) -> Tensor:
    if not isinstance(value, Tensor):
        raise ValueError(f"The `.compute()` return of the metric logged as {name!r} must be a tensor. Found {value}")
    return value.detach()


def forward_value(name: str, metric: Any) -> Tensor | None:
    """The step value of a logged metric: what its last ``forward`` returned (Lightning's ``_forward_cache``).

    Args:
        name: the logged key (for the error message).
        metric: the logged ``torchmetrics.Metric``.

    Returns:
        The detached value, or ``None`` when the metric was only ``update``-d (nothing is logged then).

    Raises:
        ValueError: the cached value is not a tensor.
    """
    cache = getattr(metric, "_forward_cache", None)
    return None if cache is None else _checked_tensor(name, cache)


def compute_metric(name: str, metric: Any) -> Tensor:
    """The epoch value of a logged metric: ``metric.compute()``, detached.

    Args:
        name: the logged key (for the error message).
        metric: the logged ``torchmetrics.Metric``.

    Returns:
        The detached result of ``compute``.

    Raises:
        ValueError: ``compute`` did not return a tensor.
    """
    return _checked_tensor(name, metric.compute())
