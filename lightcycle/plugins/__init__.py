"""``Trainer(plugins=...)``: precision plugins and checkpoint IO plugins (Lightning's ``lightning.pytorch.plugins``).

The precision plugins live in :mod:`lightcycle.precision`; :mod:`lightcycle.plugins.precision`
names them under Lightning's path. Cluster environments and layer syncs are not plugins here
(``DDPStrategy(cluster_environment=...)``, ``Trainer(sync_batchnorm=True)``).
"""

from __future__ import annotations

from lightcycle.plugins.io import AsyncCheckpointIO, CheckpointIO, TorchCheckpointIO
from lightcycle.precision import DoublePrecision, HalfPrecision, MixedPrecision, Precision

__all__ = [
    "AsyncCheckpointIO",
    "CheckpointIO",
    "DoublePrecision",
    "HalfPrecision",
    "MixedPrecision",
    "Precision",
    "TorchCheckpointIO",
]
