"""Fabric's ``utilities.apply_func`` and ``utilities.data`` names that Trainer programs import.

Under the import aliases ``lightning.fabric.utilities.apply_func`` and ``...utilities.data`` (and
their ``lightning_fabric`` spellings) answer with this module: ``move_data_to_device``,
``AttributeDict``, ``sized_len``, ``has_iterable_dataset`` and ``pl_worker_init_function``,
lightcycle's own objects. Their other names are refused when used (``apply_to_collection``,
from ``lightning_utilities``, has no lightcycle counterpart with its signature).
"""

from __future__ import annotations

from lightcycle.core.batch_transfer import move_data_to_device
from lightcycle.core.hparams import AttributeDict
from lightcycle.seed import pl_worker_init_function
from lightcycle.utilities.data import has_iterable_dataset, sized_len

__all__ = ["AttributeDict", "has_iterable_dataset", "move_data_to_device", "pl_worker_init_function", "sized_len"]
