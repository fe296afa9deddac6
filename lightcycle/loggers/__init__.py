"""Loggers: where the Trainer sends logged metrics and hyper-parameters (Lightning's ``loggers``).

``Logger`` is the base class; ``CSVLogger`` and ``TensorBoardLogger`` write Lightning's
files. Any object with Lightning's logger interface works as well (duck typing).
"""

from lightcycle.loggers.csv_logs import CSVLogger
from lightcycle.loggers.logger import Logger, rank_zero_experiment
from lightcycle.loggers.tensorboard import TensorBoardLogger

__all__ = ["CSVLogger", "Logger", "TensorBoardLogger", "rank_zero_experiment"]
