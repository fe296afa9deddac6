"""What lightcycle does not offer of Lightning's import paths, and the error a program gets.

:data:`NOT_OFFERED` maps Lightning paths (spelled ``lightning.pytorch.X`` or, outside the
``pytorch`` part, ``lightning.X``) to the reason; an entry covers the path and everything
below it. The table only explains: a name is refused because lightcycle has no module or
attribute for it, so a name that lightcycle gains later resolves without editing this table
(``tests/compat/test_lightning_paths.py`` then names the stale entry to remove).
"""

from __future__ import annotations

import linecache
import os
import sys

_ONE_DEVICE = "lightcycle trains on one device in one process; pass accelerator=/devices= as strings"
_NOT_YET_CALLBACK = "this callback is not in lightcycle.callbacks yet"
_NOT_YET_LOGGER = "this logger is not in lightcycle.loggers yet"
_PROGRESS_INTERNAL = "a progress-bar internal of Lightning's"
_ENUMS = "gradient_clip_algorithm takes the strings 'norm' and 'value'"
_HELPER = "this Lightning helper is not offered yet"
_OUR_STRATEGIES = "lightcycle's strategies are lightcycle.strategies.DDPStrategy and SingleDeviceStrategy"
_OTHER_ENVIRONMENTS = (
    "lightcycle's cluster environments are SLURMEnvironment, TorchElasticEnvironment and LightningEnvironment "
    "(lightcycle.strategies.environment); subclass ClusterEnvironment for another scheduler"
)
_NO_DEEPSPEED = "DeepSpeed is not supported; use strategy='ddp'"
_OUR_LAUNCHER = "the launcher is lightcycle.strategies.launch (the subprocess script launcher only)"

NOT_OFFERED: dict[str, str] = {
    "lightning.fabric": (
        "lightcycle replaces Lightning's Trainer (lightning.pytorch) only; Fabric has no counterpart (of"
        " lightning.fabric only seed_everything and some of its utilities modules are offered)"
    ),
    "lightning.Fabric": "lightcycle replaces Lightning's Trainer (lightning.pytorch) only; Fabric has no counterpart",
    "lightning.app": "lightcycle replaces lightning.pytorch only",
    "lightning.data": "lightcycle replaces lightning.pytorch only",
    "lightning.store": "lightcycle replaces lightning.pytorch only",
    "lightning.pytorch.accelerators": _ONE_DEVICE,
    "lightning.pytorch.overrides": _ONE_DEVICE,
    "lightning.pytorch.strategies.DeepSpeedStrategy": "DeepSpeed is not supported; use strategy='ddp'",
    "lightning.pytorch.strategies.deepspeed": "DeepSpeed is not supported; use strategy='ddp'",
    "lightning.pytorch.strategies.FSDPStrategy": "FSDP is not supported yet; use strategy='ddp'",
    "lightning.pytorch.strategies.fsdp": "FSDP is not supported yet; use strategy='ddp'",
    "lightning.pytorch.strategies.ModelParallelStrategy": "model parallelism is not supported; use strategy='ddp'",
    "lightning.pytorch.strategies.model_parallel": "model parallelism is not supported; use strategy='ddp'",
    "lightning.pytorch.strategies.ParallelStrategy": _OUR_STRATEGIES,
    "lightning.pytorch.strategies.parallel": _OUR_STRATEGIES,
    "lightning.pytorch.strategies.single_device": "SingleDeviceStrategy is lightcycle.strategies.SingleDeviceStrategy",
    "lightning.pytorch.strategies.launchers": _OUR_LAUNCHER,
    "lightning.pytorch.strategies.xla": "TPUs (XLA) are not supported",
    "lightning.pytorch.strategies.single_xla": "TPUs (XLA) are not supported",
    "lightning.pytorch.plugins.environments.KubeflowEnvironment": _OTHER_ENVIRONMENTS,
    "lightning.pytorch.plugins.environments.LSFEnvironment": _OTHER_ENVIRONMENTS,
    "lightning.pytorch.plugins.environments.MPIEnvironment": _OTHER_ENVIRONMENTS,
    "lightning.pytorch.plugins.environments.XLAEnvironment": "TPUs (XLA) are not supported",
    "lightning.pytorch.plugins.ClusterEnvironment": (
        "import it from lightning.pytorch.plugins.environments (lightcycle.strategies.environment)"
    ),
    "lightning.pytorch.plugins.layer_sync": "use Trainer(sync_batchnorm=True)",
    "lightning.pytorch.plugins.LayerSync": "use Trainer(sync_batchnorm=True)",
    "lightning.pytorch.plugins.TorchSyncBatchNorm": "use Trainer(sync_batchnorm=True)",
    "lightning.pytorch.plugins.XLACheckpointIO": "TPUs (XLA) are not supported",
    "lightning.pytorch.plugins.XLAPrecision": "TPUs (XLA) are not supported",
    "lightning.pytorch.plugins.precision.xla": "TPUs (XLA) are not supported",
    "lightning.pytorch.plugins.io.xla": "TPUs (XLA) are not supported",
    "lightning.pytorch.plugins.io.XLACheckpointIO": "TPUs (XLA) are not supported",
    "lightning.pytorch.plugins.io.xla_plugin": "TPUs (XLA) are not supported",
    "lightning.pytorch.plugins.precision.precision.FabricPrecision": "lightcycle replaces lightning.pytorch only",
    "lightning.pytorch.plugins.precision.double.LightningDoublePrecisionModule": (
        "DoublePrecision converts the module itself (no wrapper module)"
    ),
    "lightning.pytorch.plugins.precision.XLAPrecision": "TPUs (XLA) are not supported",
    "lightning.pytorch.plugins.precision.DeepSpeedPrecision": "DeepSpeed is not supported; use strategy='ddp'",
    "lightning.pytorch.plugins.precision.FSDPPrecision": "FSDP is not supported yet; use strategy='ddp'",
    "lightning.pytorch.plugins.precision.BitsandbytesPrecision": "bitsandbytes quantization is not supported yet",
    "lightning.pytorch.plugins.precision.TransformerEnginePrecision": "Transformer Engine precision is not supported",
    "lightning.pytorch.plugins.DeepSpeedPrecision": "DeepSpeed is not supported; use strategy='ddp'",
    "lightning.pytorch.plugins.precision.deepspeed": "DeepSpeed is not supported; use strategy='ddp'",
    "lightning.pytorch.plugins.FSDPPrecision": "FSDP is not supported yet; use strategy='ddp'",
    "lightning.pytorch.plugins.precision.fsdp": "FSDP is not supported yet; use strategy='ddp'",
    "lightning.pytorch.plugins.BitsandbytesPrecision": "bitsandbytes quantization is not supported yet",
    "lightning.pytorch.plugins.precision.bitsandbytes": "bitsandbytes quantization is not supported yet",
    "lightning.pytorch.plugins.TransformerEnginePrecision": "Transformer Engine precision is not supported",
    "lightning.pytorch.plugins.precision.transformer_engine": "Transformer Engine precision is not supported",
    "lightning.pytorch.profilers.xla": "TPUs (XLA) are not supported",
    "lightning.pytorch.profilers.XLAProfiler": "TPUs (XLA) are not supported",
    "lightning.pytorch.profilers.pytorch.RegisterRecordFunction": (
        "lightcycle's PyTorchProfiler labels actions, not submodules (see docs/profiler.md)"
    ),
    "lightning.pytorch.profilers.pytorch.ScheduleWrapper": (
        "lightcycle's PyTorchProfiler records the whole run without a schedule (see docs/profiler.md)"
    ),
    "lightning.pytorch.tuner": "the tuner (batch-size and learning-rate finders) is not supported yet",
    "lightning.pytorch.serve": "model serving is not supported",
    "lightning.pytorch.loops": (
        "lightcycle's loops are declared in lightcycle.states.declaration; Lightning's loop classes have no "
        "counterpart (write a custom loop with lightcycle.custom_loop.loop_driver.LoopDriver)"
    ),
    "lightning.pytorch.trainer.connectors": "Lightning's Trainer internals have no counterpart",
    "lightning.pytorch.trainer.call": "Lightning's Trainer internals have no counterpart",
    "lightning.pytorch.trainer.setup": "Lightning's Trainer internals have no counterpart",
    "lightning.pytorch.core.mixins": "lightcycle.core.hparams.HyperparametersMixin is lightcycle's",
    "lightning.pytorch.utilities.model_summary.model_summary_deepspeed": _NO_DEEPSPEED,
    "lightning.pytorch.utilities.model_summary.DeepSpeedSummary": _NO_DEEPSPEED,
    "lightning.pytorch.utilities.deepspeed": _ONE_DEVICE,
    "lightning.pytorch.utilities.compile": "torch.compile helpers are not supported yet",
    "lightning.pytorch.utilities.migration": "Lightning checkpoint migration is not supported",
    "lightning.pytorch.utilities.upgrade_checkpoint": "Lightning checkpoint migration is not supported",
    "lightning.pytorch.utilities.consolidate_checkpoint": _ONE_DEVICE,
    "lightning.pytorch.utilities.model_registry": "Trainer(model_registry=...) is not supported yet",
    "lightning.pytorch.utilities.testing": "Lightning's test helpers have no counterpart",
    "lightning.pytorch.utilities.argparse": "Lightning's argparse helpers have no counterpart (LightningCLI instead)",
    "lightning.pytorch.utilities.GradClipAlgorithmType": _ENUMS,
    "lightning.pytorch.utilities.LightningEnum": _ENUMS,
    "lightning.pytorch.utilities.enums": _ENUMS,
    "lightning.pytorch.core.optimizer.do_nothing_closure": _HELPER,
    "lightning.pytorch.utilities.find_shared_parameters": _HELPER,
    "lightning.pytorch.utilities.set_shared_parameters": _HELPER,
    "lightning.pytorch.utilities.parameter_tying": _HELPER,
    "lightning.pytorch.utilities.is_picklable": _HELPER,
    "lightning.pytorch.utilities.is_shared_filesystem": _HELPER,
    "lightning.pytorch.utilities.measure_flops": _HELPER,
    "lightning.pytorch.utilities.suggested_max_num_workers": _HELPER,
    "lightning.pytorch.utilities.signature_utils": _HELPER,
    "lightning.pytorch.utilities.parsing.clean_namespace": _HELPER,
    "lightning.pytorch.utilities.parsing.collect_init_args": _HELPER,
    "lightning.pytorch.utilities.parsing.get_init_args": _HELPER,
    "lightning.pytorch.utilities.parsing.is_picklable": _HELPER,
    "lightning.pytorch.utilities.parsing.lightning_getattr": _HELPER,
    "lightning.pytorch.utilities.parsing.lightning_hasattr": _HELPER,
    "lightning.pytorch.utilities.parsing.lightning_setattr": _HELPER,
    "lightning.pytorch.utilities.parsing.parse_class_init_keys": _HELPER,
    "lightning.pytorch.utilities.parsing.save_hyperparameters": _HELPER,
    "lightning.pytorch.utilities.types.DistributedDataParallel": _HELPER,
    "lightning.pytorch.callbacks.BatchSizeFinder": "the tuner is not supported yet",
    "lightning.pytorch.callbacks.batch_size_finder": "the tuner is not supported yet",
    "lightning.pytorch.callbacks.LearningRateFinder": "the tuner is not supported yet",
    "lightning.pytorch.callbacks.lr_finder": "the tuner is not supported yet",
    "lightning.pytorch.callbacks.timer.Interval": "Timer takes the interval as a string ('step' or 'epoch')",
    "lightning.pytorch.callbacks.ModelPruning": _NOT_YET_CALLBACK,
    "lightning.pytorch.callbacks.pruning": _NOT_YET_CALLBACK,
    "lightning.pytorch.callbacks.SpikeDetection": _NOT_YET_CALLBACK,
    "lightning.pytorch.callbacks.spike": _NOT_YET_CALLBACK,
    "lightning.pytorch.callbacks.ThroughputMonitor": _NOT_YET_CALLBACK,
    "lightning.pytorch.callbacks.throughput_monitor": _NOT_YET_CALLBACK,
    "lightning.pytorch.callbacks.EMAWeightAveraging": _NOT_YET_CALLBACK,
    "lightning.pytorch.callbacks.WeightAveraging": _NOT_YET_CALLBACK,
    "lightning.pytorch.callbacks.weight_averaging": _NOT_YET_CALLBACK,
    "lightning.pytorch.loggers.utilities": _NOT_YET_LOGGER,
    "lightning.pytorch.loggers.logger.FabricLogger": "Fabric has no counterpart in lightcycle",
    "lightning.pytorch.loggers.logger.merge_dicts": _HELPER,
    "lightning.pytorch.loggers.csv_logs.FabricCSVLogger": "Fabric has no counterpart in lightcycle",
    "lightning.pytorch.loggers.tensorboard.FabricTensorBoardLogger": "Fabric has no counterpart in lightcycle",
    "lightning.pytorch.loggers.CometLogger": _NOT_YET_LOGGER,
    "lightning.pytorch.loggers.comet": _NOT_YET_LOGGER,
    "lightning.pytorch.loggers.LitLogger": _NOT_YET_LOGGER,
    "lightning.pytorch.loggers.litlogger": _NOT_YET_LOGGER,
    "lightning.pytorch.loggers.MLFlowLogger": _NOT_YET_LOGGER,
    "lightning.pytorch.loggers.mlflow": _NOT_YET_LOGGER,
    "lightning.pytorch.loggers.NeptuneLogger": _NOT_YET_LOGGER,
    "lightning.pytorch.loggers.neptune": _NOT_YET_LOGGER,
    "lightning.pytorch.loggers.WandbLogger": _NOT_YET_LOGGER,
    "lightning.pytorch.loggers.wandb": _NOT_YET_LOGGER,
}
"""Lightning paths lightcycle does not offer, with the reason (an entry covers its subtree)."""

DOCS = "docs/existing-project.md"


class NotOfferedError(ModuleNotFoundError):
    """A Lightning import that lightcycle does not offer (yet).

    A ``ModuleNotFoundError`` (so an ``ImportError``): code that probes for an optional
    module with ``except ModuleNotFoundError`` treats it as absent.
    """


def canonical(path: str) -> str:
    """``pytorch_lightning.X`` spelled ``lightning.pytorch.X`` (the table's spelling)."""
    if path == "pytorch_lightning" or path.startswith("pytorch_lightning."):
        return "lightning.pytorch" + path[len("pytorch_lightning") :]
    if path == "lightning_fabric" or path.startswith("lightning_fabric."):
        return "lightning.fabric" + path[len("lightning_fabric") :]
    return path


def reason_for(path: str) -> str | None:
    """The reason recorded for ``path`` or the nearest listed path above it, if any."""
    key = canonical(path)
    while key:
        if key in NOT_OFFERED:
            return NOT_OFFERED[key]
        key = key.rpartition(".")[0]
    return None


def _importer() -> str:
    """``file:line: source`` of the user code whose import is being refused (else '')."""
    here = os.path.dirname(os.path.abspath(__file__))
    frame = sys._getframe(1)
    while frame is not None:
        filename = frame.f_code.co_filename
        if not filename.startswith("<frozen") and not os.path.abspath(filename).startswith(here):
            line = linecache.getline(filename, frame.f_lineno).strip()
            return f"{filename}:{frame.f_lineno}: {line}" if line else f"{filename}:{frame.f_lineno}"
        frame = frame.f_back  # type: ignore[assignment]
    return ""


def not_offered(path: str) -> NotOfferedError:
    """The error for importing ``path`` (a module, or ``module.name``), naming the import to change.

    Args:
        path: the dotted path as the program spelled it, e.g. ``lightning.pytorch.strategies.DDPStrategy``.

    Returns:
        The exception to raise (its ``name`` is ``path``).
    """
    reason = reason_for(path)
    where = _importer()
    message = (
        f"lightcycle does not offer `{path}` yet" + (f" ({reason})" if reason else "") + ". "
        "Change that import"
        + (f" ({where})" if where else "")
        + ": drop the name or replace it with a lightcycle one, or run the program with Lightning itself. "
        f"What lightcycle offers of Lightning's paths: {DOCS}."
    )
    return NotOfferedError(message, name=path)
