"""Checkpoint dump and restore, firing the hooks in Lightning's order (spec 3.14, 3.16).

Files are written atomically: to a temporary file in the same folder, flushed, fsynced,
then renamed over the target, so a crash never leaves a truncated checkpoint where a good
one was.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from typing import TYPE_CHECKING, Any

import torch

from lightcycle.errors import MisconfigurationException
from lightcycle.orchestrator.state import TrainerFn
from lightcycle.states import declaration as ev

if TYPE_CHECKING:
    from lightcycle.orchestrator.trainer import Trainer

VERSION_KEY = "lightcycle_version"
REQUIRED_KEYS = ("epoch", "global_step", "state_dict")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("lightcycle")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0+unknown"


def atomic_save(obj: Any, path: str | os.PathLike[str]) -> None:
    """``torch.save`` to ``path`` via a temporary file in the same folder and a rename.

    Args:
        obj: what to save.
        path: the destination; its folder is created if missing.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".ckpt", dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(obj, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def load_checkpoint_file(path: str | os.PathLike[str], map_location: Any = "cpu") -> dict[str, Any]:
    """Read and check a checkpoint file; the error names the file and what is wrong.

    Raises:
        FileNotFoundError: no such file.
        MisconfigurationException: unreadable, truncated, or not a lightcycle/Lightning checkpoint.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint {path!r} does not exist. Pass the path of a saved .ckpt file.")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as err:
        raise MisconfigurationException(
            f"checkpoint {path!r} cannot be read ({type(err).__name__}: {err}); the file is truncated, corrupt "
            "or not a torch checkpoint. Pass another checkpoint; nothing was changed."
        ) from err
    if not isinstance(ckpt, dict):
        raise MisconfigurationException(
            f"checkpoint {path!r} holds a {type(ckpt).__name__}, not a checkpoint dict. Pass a file written by "
            "Trainer.save_checkpoint or ModelCheckpoint."
        )
    missing = [k for k in REQUIRED_KEYS if k not in ckpt]
    if missing:
        raise MisconfigurationException(
            f"checkpoint {path!r} is not a lightcycle/Lightning checkpoint: it lacks {missing}. Pass a file written "
            "by Trainer.save_checkpoint or ModelCheckpoint."
        )
    return ckpt


class CheckpointConnector:
    """Builds checkpoint dicts and restores them for one trainer."""

    def __init__(self, trainer: Trainer) -> None:
        self.trainer = trainer
        self._pending: dict[str, Any] | None = None

    # ------------------------------------------------------------------ save

    def dump(self, weights_only: bool = False) -> dict[str, Any]:
        """Assemble the checkpoint dict, firing state_dict and on_save_checkpoint hooks.

        Args:
            weights_only: leave out callbacks, optimizer and scheduler states.

        Returns:
            The checkpoint (spec 3.16 keys).
        """
        t = self.trainer
        fire = t._driver.fire
        module = t.lightning_module
        assert module is not None
        ckpt: dict[str, Any] = {
            "epoch": t.current_epoch,
            "global_step": t.global_step,
            VERSION_KEY: _version(),
            "state_dict": module.state_dict(),
            "loops": self._loops_state(),
        }
        if not weights_only:
            ckpt["callbacks"] = fire(ev.COLLECT_STATE) or {}
            ckpt["optimizer_states"] = [opt.state_dict() for opt in t.optimizers]
            ckpt["lr_schedulers"] = [cfg.scheduler.state_dict() for cfg in t.lr_scheduler_configs]
        hparams = getattr(module, "_hparams", None)
        if hparams:
            ckpt["hyper_parameters"] = dict(hparams)
            ckpt["hparams_name"] = getattr(module, "_hparams_name", "kwargs")
        dm = t.datamodule
        if dm is not None:
            dm_hparams = getattr(dm, "_hparams", None)
            if dm_hparams:
                ckpt["datamodule_hyper_parameters"] = dict(dm_hparams)
            dm_state = fire(ev.COLLECT_DATAMODULE_STATE)
            if dm_state:
                ckpt[type(dm).__qualname__] = dm_state
        fire(ev.SAVE_WEIGHTS if weights_only else ev.SAVE_CHECKPOINT, ckpt)
        return ckpt

    def save(self, path: str | os.PathLike[str], weights_only: bool = False) -> None:
        """Dump and write atomically to ``path``."""
        atomic_save(self.dump(weights_only), path)

    def _loops_state(self) -> dict[str, Any]:
        loop = self.trainer.fit_loop
        return {
            "fit_loop": {
                "epochs_processed": loop.epochs_processed,
                "epochs_completed": loop.epochs_completed,
                "global_step": loop.global_step,
                "batch_idx": loop.batch_idx,
                "total_batch_idx": loop.total_batch_idx,
                "batches_ready": loop.batches_ready,
                "is_last_batch": loop.is_last_batch,
            }
        }

    # ------------------------------------------------------------------ restore

    def resolve_path(self, ckpt_path: Any, fn: TrainerFn) -> str | None:
        """Turn ``ckpt_path`` ("last", "best" or a path) into a file and read it now.

        Reading happens before the run starts, so a bad file raises before any hook.
        """
        self._pending = None
        if ckpt_path is None:
            return None
        path = os.fspath(ckpt_path)
        if path in ("last", "best"):
            path = self._special_path(path)
        self._pending = load_checkpoint_file(path)
        self.trainer.ckpt_path = path
        return path

    def _special_path(self, which: str) -> str:
        t = self.trainer
        for cb in t.checkpoint_callbacks:
            candidate = getattr(cb, "last_model_path" if which == "last" else "best_model_path", "")
            if candidate:
                return str(candidate)
        raise MisconfigurationException(
            f'ckpt_path="{which}" but no checkpoint callback has a {which} checkpoint yet. Pass a file path, or '
            "fit with a ModelCheckpoint first."
        )

    def restore_start(self, path: str) -> dict[str, Any]:
        """Restore the module, datamodule and callbacks (spec 3.14 steps 2-7)."""
        t = self.trainer
        fire = t._driver.fire
        ckpt = self._pending if self._pending is not None else load_checkpoint_file(path)
        self._pending = None
        module = t.lightning_module
        assert module is not None
        fire(ev.LOAD_CHECKPOINT, ckpt)
        module.load_state_dict(ckpt["state_dict"], strict=getattr(module, "strict_loading", True))
        dm = t.datamodule
        if dm is not None and type(dm).__qualname__ in ckpt:
            fire(ev.LOAD_DATAMODULE_STATE, ckpt[type(dm).__qualname__])
        if "callbacks" in ckpt:
            states = ckpt["callbacks"]
            known = {cb.state_key for cb in t.callbacks}
            unmatched = [k for k in states if k not in known]
            if unmatched:
                warnings.warn(
                    f"checkpoint {path!r} holds states for callbacks that are not in this Trainer: {unmatched}. "
                    "They were not restored; add those callbacks to restore them.",
                    UserWarning,
                    stacklevel=2,
                )
            fire(ev.LOAD_CALLBACK_STATES, ckpt, states)
        return ckpt

    def restore_training_state(self, ckpt: dict[str, Any]) -> None:
        """Restore loop progress, optimizers and schedulers (after on_fit_start)."""
        t = self.trainer
        if "optimizer_states" not in ckpt:
            raise KeyError(
                "Trying to restore optimizer state but checkpoint contains only the model. This is probably due to "
                "`ModelCheckpoint.save_weights_only` being set to `True`."
            )
        loop = ckpt.get("loops", {}).get("fit_loop", {})
        progress = t.fit_loop
        progress.global_step = int(ckpt["global_step"])
        progress.epochs_completed = int(loop.get("epochs_completed", ckpt["epoch"]))
        progress.epochs_processed = int(loop.get("epochs_processed", progress.epochs_completed))
        for opt, state in zip(t.optimizers, ckpt["optimizer_states"]):
            opt.load_state_dict(state)
        for cfg, state in zip(t.lr_scheduler_configs, ckpt.get("lr_schedulers", [])):
            cfg.scheduler.load_state_dict(state)

    def restore_eval_state(self, ckpt: dict[str, Any]) -> None:
        """validate/test/predict with ckpt_path: only the module, datamodule and callbacks."""
