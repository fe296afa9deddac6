"""ModelCheckpoint: Lightning 2.6's checkpoint callback, same arguments, state and file names.

Where it saves (spec 3.9): in ``on_train_epoch_end`` or ``on_validation_end`` (see
:meth:`ModelCheckpoint._should_save_on_train_epoch_end`), in ``on_train_batch_end`` for
``every_n_train_steps`` / ``train_time_interval``, in ``on_train_end`` for a pending
``save_last`` and in ``on_exception`` with ``save_on_exception=True``; never during the
sanity check, outside fit, or twice for one ``global_step``.

Every file is written atomically by the Trainer (temporary file, fsync, rename), and
``last.ckpt`` is always a whole checkpoint: ``save_last=True`` dumps it a second time as
Lightning does, and ``save_last="link"`` makes a hard link (or an atomic copy) of the
file just written instead of a symbolic link.
"""

from __future__ import annotations

import logging
import os
import re
import time
import warnings
from copy import deepcopy
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import torch
from torch import Tensor

from lightcycle.callbacks.monitoring import Checkpoint
from lightcycle.errors import MisconfigurationException
from lightcycle.plugins.io import run_after_writes
from lightcycle.runtime.atomic_io import atomic_link
from lightcycle.states.stages import TrainerFn

if TYPE_CHECKING:
    from lightcycle.core.module import LightningModule
    from lightcycle.runtime.host import RunHost

log = logging.getLogger(__name__)

_PATH = str | os.PathLike[str]


def _copied(value: Any) -> Any:
    """Lightning's ``deepcopy`` of a monitored value, as a ``clone()`` for a plain tensor without
    grad: the same values, dtype and device, for ~3 us instead of ~35 (``Tensor.__deepcopy__``)."""
    if type(value) is Tensor and not value.requires_grad:
        return value.clone()
    return deepcopy(value)


class ModelCheckpoint(Checkpoint):
    r"""Save the model periodically by monitoring a quantity (Lightning's ``ModelCheckpoint``).

    Args:
        dirpath: folder for the files. Default: ``<trainer.log_dir>/checkpoints`` when the
            Trainer has a logger (Lightning: ``<save_dir>/<name>/<version>/checkpoints``), else
            ``<default_root_dir>/checkpoints``; resolved in ``setup``.
        filename: name template, e.g. ``"{epoch}-{val_loss:.2f}"``; default ``"{epoch}-{step}"``.
        monitor: metric to rank checkpoints by; ``None`` keeps the latest.
        verbose: log every decision.
        save_last: also write ``last.ckpt`` at every save (``True``), or link it to the file
            just written (``"link"``; a hard link or copy here, never a symbolic link).
        save_top_k: keep the best ``k`` files (``-1``: all, ``0``: none).
        save_on_exception: save when the run is interrupted by an exception.
        save_weights_only: write weights-only checkpoints.
        mode: ``"min"`` or ``"max"`` for ``monitor``.
        auto_insert_metric_name: ``"{epoch}"`` becomes ``"epoch=0"``.
        every_n_train_steps: save every ``n`` optimizer steps (in ``on_train_batch_end``).
        train_time_interval: save after at least this much training time.
        every_n_epochs: save every ``n`` epochs (default 1 when no other trigger is set).
        save_on_train_epoch_end: save in ``on_train_epoch_end`` (``True``) or ``on_validation_end``
            (``False``); ``None`` decides from the Trainer's validation settings.
        enable_version_counter: append ``-v1``, ``-v2`` ... when a file name is taken.

    Attributes:
        best_model_path: the best checkpoint so far (``""`` if none).
        best_model_score: its monitored value.
        best_k_models: path → score of the kept top-k files.
        kth_best_model_path: the worst of the kept top-k files.
        last_model_path: the last ``last.ckpt`` written.
    """

    CHECKPOINT_JOIN_CHAR = "-"
    CHECKPOINT_EQUALS_CHAR = "="
    CHECKPOINT_NAME_LAST = "last"
    FILE_EXTENSION = ".ckpt"
    STARTING_VERSION = 1

    def __init__(
        self,
        dirpath: _PATH | None = None,
        filename: str | None = None,
        monitor: str | None = None,
        verbose: bool = False,
        save_last: bool | Literal["link"] | None = None,
        save_top_k: int = 1,
        save_on_exception: bool = False,
        save_weights_only: bool = False,
        mode: str = "min",
        auto_insert_metric_name: bool = True,
        every_n_train_steps: int | None = None,
        train_time_interval: timedelta | None = None,
        every_n_epochs: int | None = None,
        save_on_train_epoch_end: bool | None = None,
        enable_version_counter: bool = True,
    ) -> None:
        super().__init__()
        self.monitor = monitor
        self.verbose = verbose
        self.save_last = save_last
        self.save_top_k = save_top_k
        self.save_on_exception = save_on_exception
        self.save_weights_only = save_weights_only
        self.auto_insert_metric_name = auto_insert_metric_name
        self._save_on_train_epoch_end = save_on_train_epoch_end
        self._enable_version_counter = enable_version_counter
        self._last_global_step_saved = 0  # no need to save when no steps were taken
        self._last_time_checked: float | None = None
        self.current_score: Tensor | None = None
        self.best_k_models: dict[str, Tensor] = {}
        self.kth_best_model_path = ""
        self.best_model_score: Tensor | None = None
        self.best_model_path = ""
        self.last_model_path = ""
        self._last_checkpoint_saved = ""
        self._defer_save_until_validation = False
        self._monitor_warned: set[str] = set()

        inf = torch.tensor(torch.inf)
        modes = {"min": (inf, "min"), "max": (-inf, "max")}
        if mode not in modes:
            raise MisconfigurationException(f"`mode` can be {', '.join(modes)} but got {mode}")
        self.kth_value: Tensor = modes[mode][0]
        self.mode: str = modes[mode][1]

        if dirpath:
            dirpath = os.path.realpath(os.path.expanduser(os.fspath(dirpath)))
        self.dirpath: str | None = os.fspath(dirpath) if dirpath else None
        self.filename = filename

        if every_n_train_steps is None and every_n_epochs is None and train_time_interval is None:
            every_n_epochs, every_n_train_steps = 1, 0
        else:
            every_n_epochs = every_n_epochs or 0
            every_n_train_steps = every_n_train_steps or 0
        self._train_time_interval: timedelta | None = train_time_interval
        self._every_n_epochs: int = every_n_epochs
        self._every_n_train_steps: int = every_n_train_steps
        self._validate_init_configuration()

    # ------------------------------------------------------------------ identity and state

    @property
    def state_key(self) -> str:
        """Unique per monitor, mode and trigger, so several instances can be checkpointed together."""
        return self._generate_state_key(
            monitor=self.monitor,
            mode=self.mode,
            every_n_train_steps=self._every_n_train_steps,
            every_n_epochs=self._every_n_epochs,
            train_time_interval=self._train_time_interval,
        )

    @property
    def every_n_epochs(self) -> int | None:
        return self._every_n_epochs

    def state_dict(self) -> dict[str, Any]:
        return {
            "monitor": self.monitor,
            "best_model_score": self.best_model_score,
            "best_model_path": self.best_model_path,
            "current_score": self.current_score,
            "dirpath": self.dirpath,
            "best_k_models": self.best_k_models,
            "kth_best_model_path": self.kth_best_model_path,
            "kth_value": self.kth_value,
            "last_model_path": self.last_model_path,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        dirpath_from_ckpt = state_dict.get("dirpath", self.dirpath)
        if self.dirpath == dirpath_from_ckpt:
            self.best_model_score = state_dict["best_model_score"]
            self.kth_best_model_path = state_dict.get("kth_best_model_path", self.kth_best_model_path)
            self.kth_value = state_dict.get("kth_value", self.kth_value)
            self.best_k_models = state_dict.get("best_k_models", self.best_k_models)
            self.last_model_path = state_dict.get("last_model_path", self.last_model_path)
        else:
            warnings.warn(
                f"The dirpath has changed from {dirpath_from_ckpt!r} to {self.dirpath!r},"
                " therefore `best_model_score`, `kth_best_model_path`, `kth_value`, `last_model_path` and"
                " `best_k_models` won't be reloaded. Only `best_model_path` will be reloaded.",
                stacklevel=2,
            )
        self.best_model_path = state_dict["best_model_path"]

    # ------------------------------------------------------------------ hooks

    def setup(self, trainer: RunHost, pl_module: LightningModule, stage: str) -> None:
        # rank 0's folder on every rank (Lightning broadcasts it: a folder may be named by time or version)
        self.dirpath = trainer.strategy.broadcast(self._resolve_ckpt_dir(trainer))
        if trainer.is_global_zero and stage == "fit":
            self._warn_if_dir_not_empty(self.dirpath)

    def on_train_start(self, trainer: RunHost, pl_module: LightningModule) -> None:
        self._last_time_checked = time.monotonic()

    def on_train_batch_end(
        self, trainer: RunHost, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        """Save for ``every_n_train_steps`` / ``train_time_interval``."""
        if self._every_n_train_steps < 1 and self._train_time_interval is None:
            return  # the default (every_n_epochs=1), every batch: no trigger here under either optimization
        if not pl_module.automatic_optimization:
            if self._every_n_train_steps < 1 or trainer.global_step % self._every_n_train_steps != 0:
                return
            if self._should_skip_saving_checkpoint(trainer):
                return
            candidates = self._monitor_candidates(trainer)
            if self.monitor is not None and self.monitor not in candidates:
                self._defer_save_until_validation = True
                return
            self._save_topk_checkpoint(trainer, candidates)
            self._save_last_checkpoint(trainer, candidates)
            self._last_time_checked = time.monotonic()
            return

        skip_batch = self._every_n_train_steps < 1 or (trainer.global_step % self._every_n_train_steps != 0)
        if skip_batch and self._train_time_interval is None:
            return  # the common case, every batch: nothing to do
        skip_time = True
        now = time.monotonic()
        if self._train_time_interval is not None:
            prev = self._last_time_checked
            skip_time = prev is None or (now - prev) < self._train_time_interval.total_seconds()
        if skip_batch and skip_time:
            return
        skip_due_to_state = self._should_skip_saving_checkpoint(trainer)
        if not skip_time:
            self._last_time_checked = now

        candidates = self._monitor_candidates(trainer)
        if self.monitor is not None and self.monitor not in candidates:
            self._defer_save_until_validation = True
            return
        if self.monitor is not None and not self._should_save_on_train_epoch_end(trainer) and trainer.is_last_batch:
            will_run_val = False
            if trainer.enable_validation:
                num_val = sum(trainer.num_val_batches)
                if num_val and num_val > 0:
                    every = trainer.check_val_every_n_epoch
                    will_run_val = every is None or (trainer.current_epoch + 1) % every == 0
            if will_run_val:
                self._defer_save_until_validation = True
                return
        if skip_due_to_state:
            return
        self._save_topk_checkpoint(trainer, candidates)
        self._save_last_checkpoint(trainer, candidates)

    def on_train_epoch_end(self, trainer: RunHost, pl_module: LightningModule) -> None:
        """Save at the end of the training epoch (when that is where this callback saves)."""
        if not self._should_skip_saving_checkpoint(trainer) and self._should_save_on_train_epoch_end(trainer):
            candidates = self._monitor_candidates(trainer)
            if self._every_n_epochs >= 1 and (trainer.current_epoch + 1) % self._every_n_epochs == 0:
                self._save_topk_checkpoint(trainer, candidates)
            if self._last_global_step_saved == trainer.global_step or (
                self.save_last == "link" and self._last_checkpoint_saved
            ):
                self._save_last_checkpoint(trainer, candidates)

    def on_validation_end(self, trainer: RunHost, pl_module: LightningModule) -> None:
        """Save at the end of validation (when that is where this callback saves)."""
        if not self._should_skip_saving_checkpoint(trainer) and not self._should_save_on_train_epoch_end(trainer):
            candidates = self._monitor_candidates(trainer)
            if self._defer_save_until_validation:
                self._save_topk_checkpoint(trainer, candidates)
                self._save_last_checkpoint(trainer, candidates)
                self._defer_save_until_validation = False
                return
            if self._every_n_epochs >= 1 and (trainer.current_epoch + 1) % self._every_n_epochs == 0:
                self._save_topk_checkpoint(trainer, candidates)
            if self._last_global_step_saved == trainer.global_step or (
                self.save_last == "link" and self._last_checkpoint_saved
            ):
                self._save_last_checkpoint(trainer, candidates)

    def on_exception(self, trainer: RunHost, pl_module: LightningModule, exception: BaseException) -> None:
        """Save when the run is interrupted (``save_on_exception=True``)."""
        if not self._should_save_on_exception(trainer):
            return
        candidates = self._monitor_candidates(trainer)
        filepath = self.format_checkpoint_name(metrics=candidates)
        self._save_checkpoint(trainer, filepath)
        self._save_last_checkpoint(trainer, candidates)
        log.info(f"An {type(exception).__name__} was raised with message: {exception}, saved checkpoint to {filepath}")

    def on_train_end(self, trainer: RunHost, pl_module: LightningModule) -> None:
        """Apply a pending ``save_last`` when training ends."""
        if self.save_last and not self._last_checkpoint_saved:
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    # ------------------------------------------------------------------ decisions

    def _should_skip_saving_checkpoint(self, trainer: RunHost) -> bool:
        return (
            bool(trainer.fast_dev_run)
            or trainer.state.fn != TrainerFn.FITTING
            or trainer.sanity_checking
            or self._last_global_step_saved == trainer.global_step
        )

    def _should_save_on_exception(self, trainer: RunHost) -> bool:
        return (
            self.save_on_exception
            and not bool(trainer.fast_dev_run)
            and not trainer.sanity_checking
            and self._last_global_step_saved != trainer.global_step
        )

    def _should_save_on_train_epoch_end(self, trainer: RunHost) -> bool:
        if self._save_on_train_epoch_end is not None:
            return self._save_on_train_epoch_end
        if getattr(trainer, "_val_check_time_interval", None) is not None:
            return False
        if trainer.check_val_every_n_epoch != 1:
            return False
        num_val_batches = sum(trainer.num_val_batches)
        if num_val_batches == 0:
            return True
        return trainer.val_check_interval == 1.0

    def _validate_init_configuration(self) -> None:
        if self.save_top_k < -1:
            raise MisconfigurationException(f"Invalid value for save_top_k={self.save_top_k}. Must be >= -1")
        if self._every_n_train_steps < 0:
            raise MisconfigurationException(
                f"Invalid value for every_n_train_steps={self._every_n_train_steps}. Must be >= 0"
            )
        if self._every_n_epochs < 0:
            raise MisconfigurationException(f"Invalid value for every_n_epochs={self._every_n_epochs}. Must be >= 0")
        triggered = (
            (self._every_n_train_steps >= 1) + (self._every_n_epochs >= 1) + (self._train_time_interval is not None)
        )
        if triggered > 1:
            raise MisconfigurationException(
                f"Combination of parameters every_n_train_steps={self._every_n_train_steps}, "
                f"every_n_epochs={self._every_n_epochs} and train_time_interval={self._train_time_interval} "
                "should be mutually exclusive."
            )
        if self.monitor is None and self.save_top_k not in (-1, 0, 1):
            raise MisconfigurationException(
                f"ModelCheckpoint(save_top_k={self.save_top_k}, monitor=None) is not a valid"
                " configuration. No quantity for top_k to track."
            )

    def check_monitor_top_k(self, trainer: RunHost, current: Tensor | None = None) -> bool:
        """Whether ``current`` enters the top-k."""
        if current is None:
            return False
        if self.save_top_k == -1:
            return True
        if len(self.best_k_models) < self.save_top_k:
            return True
        monitor_op = {"min": torch.lt, "max": torch.gt}[self.mode]
        better = bool(monitor_op(current, self.best_k_models[self.kth_best_model_path]))
        # several ranks: save only if every rank agrees (Lightning's reduce_boolean_decision)
        return trainer.strategy.reduce_boolean_decision(better)

    # ------------------------------------------------------------------ file names

    def _format_checkpoint_name(
        self,
        filename: str | None,
        metrics: dict[str, Tensor],
        prefix: str | None = None,
        auto_insert_metric_name: bool = True,
    ) -> str:
        if not filename:
            filename = "{epoch}" + self.CHECKPOINT_JOIN_CHAR + "{step}"
        groups = re.findall(r"(\{.*?)[:\}]", filename)
        groups = sorted(groups, key=len, reverse=True)  # "epoch_test" before "epoch"
        for group in groups:
            name = group[1:]
            if auto_insert_metric_name:
                filename = filename.replace(group, name + self.CHECKPOINT_EQUALS_CHAR + "{" + name)
            filename = filename.replace(group, f"{{0[{name}]")  # names may contain dots
            if name not in metrics:
                metrics[name] = torch.tensor(0)
        filename = filename.format(metrics)
        if prefix is not None:
            filename = self.CHECKPOINT_JOIN_CHAR.join([prefix, filename])
        return filename

    def format_checkpoint_name(
        self,
        metrics: dict[str, Tensor],
        filename: str | None = None,
        ver: int | None = None,
        prefix: str | None = None,
    ) -> str:
        """The file path for ``metrics`` under the template (Lightning's rules).

        Example: ``ModelCheckpoint(dirpath=d, filename="{epoch}-{val_loss:.2f}")`` with
        ``epoch=2, val_loss=0.1234`` gives ``d/epoch=2-val_loss=0.12.ckpt``.
        """
        name = self._format_checkpoint_name(
            filename or self.filename, metrics, prefix=prefix, auto_insert_metric_name=self.auto_insert_metric_name
        )
        if ver is not None:
            name = self.CHECKPOINT_JOIN_CHAR.join((name, f"v{ver}"))
        ckpt_name = f"{name}{self.FILE_EXTENSION}"
        return os.path.join(self.dirpath, ckpt_name) if self.dirpath else ckpt_name

    def _resolve_ckpt_dir(self, trainer: RunHost) -> str:
        """``dirpath``, else ``<logger dir>/checkpoints``, else ``<default_root_dir>/checkpoints``."""
        if self.dirpath is not None:
            return self.dirpath
        if trainer.loggers:
            logger = trainer.loggers[0]
            save_dir = getattr(logger, "save_dir", None)
            name = getattr(logger, "name", None)
            if name is not None and hasattr(logger, "version"):
                version = logger.version
                version = version if isinstance(version, str) else f"version_{version}"
                root = save_dir if save_dir is not None else trainer.default_root_dir
                return os.path.join(root, str(name), version, "checkpoints")
            log_dir = getattr(logger, "log_dir", None)
            if log_dir is not None:
                return os.path.join(str(log_dir), "checkpoints")
        return os.path.join(trainer.default_root_dir, "checkpoints")

    def _find_last_checkpoints(self, trainer: RunHost) -> set[str]:
        """Files named ``last*.ckpt`` in this callback's folder (for ``ckpt_path="last"``)."""
        folder = self._resolve_ckpt_dir(trainer)
        pattern = rf"^{self.CHECKPOINT_NAME_LAST}(-(\d+))?"
        if not os.path.isdir(folder):
            return set()
        found = set()
        for entry in os.listdir(folder):
            p = Path(entry)
            if p.suffix == self.FILE_EXTENSION and re.match(pattern, p.stem):
                found.add(os.path.normpath(os.path.join(folder, entry)))
        return found

    def _warn_if_dir_not_empty(self, dirpath: str) -> None:
        if self.save_top_k != 0 and os.path.isdir(dirpath) and os.listdir(dirpath):
            warnings.warn(f"Checkpoint directory {dirpath} exists and is not empty.", UserWarning, stacklevel=2)

    def _get_metric_interpolated_filepath_name(
        self, candidates: dict[str, Tensor], trainer: RunHost, del_filepath: str | None = None
    ) -> str:
        filepath = self.format_checkpoint_name(candidates)
        if self._enable_version_counter:
            version = self.STARTING_VERSION
            while self.file_exists(filepath, trainer) and filepath != del_filepath:
                filepath = self.format_checkpoint_name(candidates, ver=version)
                version += 1
        return filepath

    def _monitor_candidates(self, trainer: RunHost) -> dict[str, Tensor]:
        candidates = {k: _copied(v) for k, v in trainer.callback_metrics.items()}
        epoch = candidates.get("epoch")
        candidates["epoch"] = epoch.int() if isinstance(epoch, Tensor) else torch.tensor(trainer.current_epoch)
        step = candidates.get("step")
        candidates["step"] = step.int() if isinstance(step, Tensor) else torch.tensor(trainer.global_step)
        return candidates

    # ------------------------------------------------------------------ saving

    def _save_topk_checkpoint(self, trainer: RunHost, candidates: dict[str, Tensor]) -> None:
        if self.save_top_k == 0:
            return
        if self.monitor is not None:
            if self.monitor not in candidates:
                m = (
                    f"`ModelCheckpoint(monitor={self.monitor!r})` could not find the monitored key in the returned"
                    f" metrics: {list(candidates)}."
                    f" HINT: Did you call `log({self.monitor!r}, value)` in the `LightningModule`?"
                )
                val_loop = getattr(trainer.fit_loop.epoch_loop, "val_loop", None)  # (LoopDriver: none)
                if val_loop is not None and val_loop._has_run:
                    raise MisconfigurationException(m)
                if m not in self._monitor_warned:
                    self._monitor_warned.add(m)
                    warnings.warn(m, UserWarning, stacklevel=2)
            self._save_monitor_checkpoint(trainer, candidates)
        else:
            self._save_none_monitor_checkpoint(trainer, candidates)

    def _save_checkpoint(self, trainer: RunHost, filepath: str) -> None:
        trainer.save_checkpoint(filepath, self.save_weights_only)
        self._last_global_step_saved = trainer.global_step
        self._last_checkpoint_saved = filepath
        if trainer.is_global_zero:
            for logger in trainer.loggers:
                after = getattr(logger, "after_save_checkpoint", None)
                if callable(after):
                    after(self)

    @staticmethod
    def _link_checkpoint(trainer: RunHost, filepath: str, linkpath: str) -> None:
        """Make ``linkpath`` a whole copy of ``filepath``: a hard link, else a copy, renamed into place."""
        if not trainer.is_global_zero or os.path.abspath(filepath) == os.path.abspath(linkpath):
            return
        run_after_writes(trainer.strategy.checkpoint_io, atomic_link, filepath, linkpath)  # (after its save)

    def _save_last_checkpoint(self, trainer: RunHost, candidates: dict[str, Tensor]) -> None:
        if not self.save_last:
            return
        filepath = self.format_checkpoint_name(candidates, self.CHECKPOINT_NAME_LAST)
        if self._enable_version_counter:
            version = self.STARTING_VERSION
            while self.file_exists(filepath, trainer) and filepath != self.last_model_path:
                filepath = self.format_checkpoint_name(candidates, self.CHECKPOINT_NAME_LAST, ver=version)
                version += 1
        # set before saving: it is part of the saved state
        previous, self.last_model_path = self.last_model_path, filepath
        if self.save_last == "link" and self._last_checkpoint_saved and self.save_top_k != 0:
            self._link_checkpoint(trainer, self._last_checkpoint_saved, filepath)
        else:
            self._save_checkpoint(trainer, filepath)
        if previous and self._should_remove_checkpoint(trainer, previous, filepath):
            self._remove_checkpoint(trainer, previous)

    def _save_monitor_checkpoint(self, trainer: RunHost, candidates: dict[str, Tensor]) -> None:
        assert self.monitor
        current = candidates.get(self.monitor)
        if self.check_monitor_top_k(trainer, current):
            assert current is not None
            self._update_best_and_save(current, trainer, candidates)
        elif self.verbose:
            epoch = int(candidates["epoch"])
            step = int(candidates["step"])
            log.info(f"Epoch {epoch:d}, global step {step:d}: {self.monitor!r} was not in top {self.save_top_k}")

    def _save_none_monitor_checkpoint(self, trainer: RunHost, candidates: dict[str, Tensor]) -> None:
        filepath = self._get_metric_interpolated_filepath_name(candidates, trainer, self.best_model_path)
        previous, self.best_model_path = self.best_model_path, filepath
        self._save_checkpoint(trainer, filepath)
        if self.save_top_k == 1 and previous and self._should_remove_checkpoint(trainer, previous, filepath):
            self._remove_checkpoint(trainer, previous)

    def _update_best_and_save(self, current: Tensor, trainer: RunHost, candidates: dict[str, Tensor]) -> None:
        k = len(self.best_k_models) + 1 if self.save_top_k == -1 else self.save_top_k
        del_filepath = None
        if len(self.best_k_models) == k and k > 0:
            del_filepath = self.kth_best_model_path
            self.best_k_models.pop(del_filepath)
        if isinstance(current, Tensor) and torch.isnan(current):  # rank NaN last
            current = torch.tensor(float("inf" if self.mode == "min" else "-inf"), device=current.device)
        filepath = self._get_metric_interpolated_filepath_name(candidates, trainer, del_filepath)
        self.current_score = current
        self.best_k_models[filepath] = current
        if len(self.best_k_models) == k:
            worst = max if self.mode == "min" else min
            self.kth_best_model_path = worst(self.best_k_models, key=self.best_k_models.__getitem__)
            self.kth_value = self.best_k_models[self.kth_best_model_path]
        best = min if self.mode == "min" else max
        self.best_model_path = best(self.best_k_models, key=self.best_k_models.__getitem__)
        self.best_model_score = self.best_k_models[self.best_model_path]
        if self.verbose:
            epoch = int(candidates["epoch"])
            step = int(candidates["step"])
            log.info(
                f"Epoch {epoch:d}, global step {step:d}: {self.monitor!r} reached {float(current):0.5f}"
                f" (best {float(self.best_model_score):0.5f}), saving model to {filepath!r} as top {k}"
            )
        self._save_checkpoint(trainer, filepath)
        if del_filepath and self._should_remove_checkpoint(trainer, del_filepath, filepath):
            self._remove_checkpoint(trainer, del_filepath)

    def to_yaml(self, filepath: _PATH | None = None) -> None:
        """Write ``best_k_models`` (path → score) as YAML."""
        if filepath is None:
            assert self.dirpath
            filepath = os.path.join(self.dirpath, "best_k_models.yaml")
        with open(filepath, "w") as fh:
            for path, score in self.best_k_models.items():
                fh.write(f"{path!r}: {float(score)!r}\n")

    def file_exists(self, filepath: _PATH, trainer: RunHost) -> bool:
        """Whether ``filepath`` exists, as rank 0 sees it (Lightning broadcasts the answer: a rank
        that looked after rank 0 wrote the file would otherwise pick another name)."""
        return bool(trainer.strategy.broadcast(os.path.exists(filepath)))

    def _should_remove_checkpoint(self, trainer: RunHost, previous: str, current: str) -> bool:
        """Never the file just written, one outside ``dirpath``, or the one this run resumed from."""
        if previous == current:
            return False
        prev = Path(previous).absolute()
        resume = Path(trainer.ckpt_path).absolute() if trainer.ckpt_path is not None else None
        if resume is not None and prev == resume:
            return False
        assert self.dirpath is not None
        return Path(self.dirpath).absolute() in prev.parents

    def _remove_checkpoint(self, trainer: RunHost, filepath: str) -> None:
        trainer.strategy.remove_checkpoint(filepath)  # rank 0, through the checkpoint IO plugin (Lightning's)
