"""LearningRateMonitor: log each optimizer's learning rate (and momentum, weight decay), as Lightning 2.6.

Names follow Lightning's rules: ``lr-<OptimizerClass>`` (``-1``, ``-2`` for further optimizers of one
class), ``/pg1``, ``/pg2`` per parameter group when there are several (or ``/<name>`` when a group
has a ``name``), the scheduler config's ``name`` when given; ``-momentum`` and ``-weight_decay``
suffixes. Values go to every logger with ``log_metrics`` and into ``trainer.callback_metrics``.
"""

from __future__ import annotations

import itertools
import warnings
from collections import defaultdict
from typing import TYPE_CHECKING, Any, Literal

import torch

from lightcycle.callbacks.callback import Callback
from lightcycle.errors import MisconfigurationException
from lightcycle.runtime.surface import should_update_logs

if TYPE_CHECKING:
    from torch.optim import Optimizer

    from lightcycle.core.module import LightningModule
    from lightcycle.core.optim import LRSchedulerConfig
    from lightcycle.runtime.host import RunHost


class LearningRateMonitor(Callback):
    """Log the learning rates of the run's optimizers to the trainer's loggers.

    Args:
        logging_interval: ``"step"`` or ``"epoch"`` logs every optimizer at that interval; ``None``
            (default) logs each scheduled optimizer at its scheduler's ``interval`` and unscheduled
            optimizers at every logging step.
        log_momentum: also log ``momentum`` (or ``betas[0]``; 0 when the optimizer has neither).
            Default ``False``.
        log_weight_decay: also log each group's ``weight_decay``. Default ``False``.

    Raises:
        MisconfigurationException: ``logging_interval`` is not ``"step"``, ``"epoch"`` or ``None``;
            at train start, when the trainer has no logger.
    """

    def __init__(
        self,
        logging_interval: Literal["step", "epoch"] | None = None,
        log_momentum: bool = False,
        log_weight_decay: bool = False,
    ) -> None:
        if logging_interval not in (None, "step", "epoch"):
            raise MisconfigurationException("logging_interval should be `step` or `epoch` or `None`.")
        self.logging_interval = logging_interval
        self.log_momentum = log_momentum
        self.log_weight_decay = log_weight_decay
        self.lrs: dict[str, list[float]] = {}
        self.last_momentum_values: dict[str, float | None] = {}
        self.last_weight_decay_values: dict[str, float | None] = {}

    def on_train_start(self, trainer: RunHost, pl_module: LightningModule) -> None:
        if not trainer.loggers:
            raise MisconfigurationException(
                "Cannot use `LearningRateMonitor` callback with `Trainer` that has no logger."
            )
        if self.log_momentum:

            def _check_no_key(key: str) -> bool:
                if trainer.lr_scheduler_configs:
                    return any(key not in c.scheduler.optimizer.defaults for c in trainer.lr_scheduler_configs)
                return any(key not in opt.defaults for opt in trainer.optimizers)

            if _check_no_key("momentum") and _check_no_key("betas"):
                warnings.warn(
                    "You have set log_momentum=True, but some optimizers do not have momentum. This will log a "
                    "value 0 for the momentum.",
                    RuntimeWarning,
                    stacklevel=2,
                )
        names: list[list[str]] = []
        sched_keys, with_scheduler, with_scheduler_types = self._find_names_from_schedulers(
            trainer.lr_scheduler_configs
        )
        names.extend(sched_keys)
        optimizer_keys, _ = self._find_names_from_optimizers(trainer.optimizers, with_scheduler, with_scheduler_types)
        names.extend(optimizer_keys)
        flat = list(itertools.chain.from_iterable(names))
        self.lrs = {name: [] for name in flat}
        self.last_momentum_values = {name + "-momentum": None for name in flat}
        self.last_weight_decay_values = {name + "-weight_decay": None for name in flat}

    def on_train_batch_start(self, trainer: RunHost, pl_module: LightningModule, batch: Any, batch_idx: int) -> None:
        if self.logging_interval == "epoch" or not should_update_logs(trainer):
            return
        self._log(trainer, "step" if self.logging_interval is None else "any")

    def on_train_epoch_start(self, trainer: RunHost, pl_module: LightningModule) -> None:
        if self.logging_interval != "step":
            self._log(trainer, "epoch" if self.logging_interval is None else "any")

    def _log(self, trainer: RunHost, interval: str) -> None:
        latest = self._extract_stats(trainer, interval)
        if latest:
            for logger in trainer.loggers:
                logger.log_metrics(latest, step=trainer.global_step)

    def _extract_stats(self, trainer: RunHost, interval: str) -> dict[str, float]:
        latest: dict[str, float] = {}
        sched_keys, with_scheduler, with_scheduler_types = self._find_names_from_schedulers(
            trainer.lr_scheduler_configs
        )
        self._remap_keys(sched_keys)
        for names, config in zip(sched_keys, trainer.lr_scheduler_configs, strict=False):
            if interval in (config.interval, "any"):
                latest.update(self._get_optimizer_stats(config.scheduler.optimizer, names))
        optimizer_keys, without_scheduler = self._find_names_from_optimizers(
            trainer.optimizers, with_scheduler, with_scheduler_types
        )
        self._remap_keys(optimizer_keys)
        for opt, names in zip(without_scheduler, optimizer_keys, strict=False):
            latest.update(self._get_optimizer_stats(opt, names))
        device = trainer.strategy.root_device
        trainer.callback_metrics.update({k: torch.tensor(v, device=device) for k, v in latest.items()})
        return latest

    def _get_optimizer_stats(self, optimizer: Optimizer, names: list[str]) -> dict[str, float]:
        stats: dict[str, float] = {}
        use_betas = "betas" in optimizer.defaults
        for pg, name in zip(optimizer.param_groups, names, strict=False):
            stats[name] = pg["lr"]
            self.lrs[name].append(pg["lr"])
            if self.log_momentum:
                momentum = pg["betas"][0] if use_betas else pg.get("momentum", 0)
                self.last_momentum_values[f"{name}-momentum"] = momentum
                stats[f"{name}-momentum"] = momentum
            if self.log_weight_decay:
                self.last_weight_decay_values[f"{name}-weight_decay"] = pg["weight_decay"]
                stats[f"{name}-weight_decay"] = pg["weight_decay"]
        return stats

    def _remap_keys(self, names: list[list[str]], token: str = "/pg1") -> None:
        """Move a group's history to its ``/pg1`` name when its optimizer gained parameter groups."""
        for group_names in names:
            for new_name in group_names:
                old_name = new_name.replace(token, "")
                if token in new_name and old_name in self.lrs:
                    self.lrs[new_name] = self.lrs.pop(old_name)
                elif new_name not in self.lrs:
                    self.lrs[new_name] = []

    @staticmethod
    def _add_prefix(name: str, optimizer_cls: type, seen_types: defaultdict[type, int]) -> str:
        if optimizer_cls not in seen_types:
            return name
        count = seen_types[optimizer_cls]
        return name + f"-{count - 1}" if count > 1 else name

    @staticmethod
    def _add_suffix(name: str, param_groups: list[dict[str, Any]], index: int) -> str:
        if len(param_groups) > 1:
            return f"{name}/{param_groups[index].get('name', f'pg{index + 1}')}"
        pg_name = param_groups[index].get("name")
        return f"{name}/{pg_name}" if pg_name else name

    @staticmethod
    def _duplicate_param_group_names(param_groups: list[dict[str, Any]]) -> set[str]:
        names = [pg.get("name", f"pg{i}") for i, pg in enumerate(param_groups, start=1)]
        return {n for n in names if names.count(n) > 1}

    def _find_names_from_schedulers(
        self, configs: list[LRSchedulerConfig]
    ) -> tuple[list[list[str]], list[Optimizer], defaultdict[type, int]]:
        names = []
        seen: list[Optimizer] = []
        seen_types: defaultdict[type, int] = defaultdict(int)
        for config in configs:
            opt = config.scheduler.optimizer
            name = config.name if config.name is not None else "lr-" + opt.__class__.__name__
            names.append(self._check_duplicates_and_update_name(opt, name, seen, seen_types, config))
        return names, seen, seen_types

    def _find_names_from_optimizers(
        self, optimizers: list[Any], seen: list[Optimizer], seen_types: defaultdict[type, int]
    ) -> tuple[list[list[str]], list[Optimizer]]:
        names = []
        without_scheduler = []
        for optimizer in optimizers:
            # A wrapper (DeepSpeed's, Lightning's) holds the real optimizer in `.optimizer`.
            optimizer = optimizer.optimizer if hasattr(optimizer, "optimizer") else optimizer
            if optimizer in seen:
                continue
            name = "lr-" + optimizer.__class__.__name__
            names.append(self._check_duplicates_and_update_name(optimizer, name, seen, seen_types, None))
            without_scheduler.append(optimizer)
        return names, without_scheduler

    def _check_duplicates_and_update_name(
        self,
        optimizer: Optimizer,
        name: str,
        seen: list[Optimizer],
        seen_types: defaultdict[type, int],
        config: LRSchedulerConfig | None,
    ) -> list[str]:
        seen.append(optimizer)
        optimizer_cls = type(optimizer)
        if config is None or config.name is None:
            seen_types[optimizer_cls] += 1
        param_groups = optimizer.param_groups
        duplicates = self._duplicate_param_group_names(param_groups)
        if duplicates:
            raise MisconfigurationException(
                "A single `Optimizer` cannot have multiple parameter groups with identical "
                f"`name` values. {name} has duplicated parameter group names {duplicates}"
            )
        name = self._add_prefix(name, optimizer_cls, seen_types)
        return [self._add_suffix(name, param_groups, i) for i in range(len(param_groups))]
