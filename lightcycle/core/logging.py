"""Former home of the logging layer, kept so existing imports keep working.

The permission table is :mod:`lightcycle.core.fx_validator`, batch size inference
:mod:`lightcycle.core.batch_size`, the metric store :mod:`lightcycle.core.metric_store`.
"""

from __future__ import annotations

from lightcycle.core.batch_size import extract_batch_size
from lightcycle.core.fx_validator import LOGGING_HOOKS, check_logging_allowed
from lightcycle.core.metric_store import STAGES, MetricStore

__all__ = [
    "LOGGING_HOOKS",
    "STAGES",
    "MetricStore",
    "check_logging_allowed",
    "extract_batch_size",
]
