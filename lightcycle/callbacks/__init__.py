"""Callbacks: the base class and the built-in callbacks (Lightning 2.6's names and behaviour)."""

from lightcycle.callbacks.callback import Callback
from lightcycle.callbacks.device_stats_monitor import DeviceStatsMonitor
from lightcycle.callbacks.early_stopping import EarlyStopping
from lightcycle.callbacks.finetuning import BackboneFinetuning, BaseFinetuning
from lightcycle.callbacks.gradient_accumulation_scheduler import GradientAccumulationScheduler
from lightcycle.callbacks.lambda_function import LambdaCallback
from lightcycle.callbacks.lr_monitor import LearningRateMonitor
from lightcycle.callbacks.model_checkpoint import ModelCheckpoint
from lightcycle.callbacks.model_summary import ModelSummary
from lightcycle.callbacks.monitoring import Checkpoint
from lightcycle.callbacks.on_exception_checkpoint import OnExceptionCheckpoint
from lightcycle.callbacks.prediction_writer import BasePredictionWriter
from lightcycle.callbacks.progress import ProgressBar
from lightcycle.callbacks.recorder import HookRecorder
from lightcycle.callbacks.rich_model_summary import RichModelSummary
from lightcycle.callbacks.rich_progress import RichProgressBar, RichProgressBarTheme
from lightcycle.callbacks.stochastic_weight_avg import StochasticWeightAveraging
from lightcycle.callbacks.timer import Timer
from lightcycle.callbacks.tqdm_progress import TQDMProgressBar

__all__ = [
    "BackboneFinetuning",
    "BaseFinetuning",
    "BasePredictionWriter",
    "Callback",
    "Checkpoint",
    "DeviceStatsMonitor",
    "EarlyStopping",
    "GradientAccumulationScheduler",
    "HookRecorder",
    "LambdaCallback",
    "LearningRateMonitor",
    "ModelCheckpoint",
    "ModelSummary",
    "OnExceptionCheckpoint",
    "ProgressBar",
    "RichModelSummary",
    "RichProgressBar",
    "RichProgressBarTheme",
    "StochasticWeightAveraging",
    "TQDMProgressBar",
    "Timer",
]
