"""Where the module runs and how processes cooperate: ``trainer.strategy`` (Lightning's names)."""

from lightcycle.strategies.ddp import DDPStrategy
from lightcycle.strategies.environment import (
    ClusterEnvironment,
    LightningEnvironment,
    SLURMEnvironment,
    TorchElasticEnvironment,
)
from lightcycle.strategies.failure import RankFailedError
from lightcycle.strategies.strategy import SingleDeviceStrategy, Strategy

__all__ = [
    "ClusterEnvironment",
    "DDPStrategy",
    "LightningEnvironment",
    "RankFailedError",
    "SLURMEnvironment",
    "SingleDeviceStrategy",
    "Strategy",
    "TorchElasticEnvironment",
]
