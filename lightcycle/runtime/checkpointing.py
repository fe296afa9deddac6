"""Checkpoint dump and restore, firing the hooks in Lightning's order (spec 3.14, 3.16).

Files are written atomically: to a temporary file in the same folder, flushed, fsynced,
then renamed over the target, so a crash never leaves a truncated checkpoint where a good
one was.

A fit checkpoint holds Lightning's top-level keys (``epoch``, ``global_step``, the version,
``state_dict``, ``loops``, ``callbacks``, ``optimizer_states``, ``lr_schedulers``,
hyper-parameters, the datamodule's state). What exact resume needs more lives inside
``loops["fit_loop"]``: where in the fit the checkpoint was taken (its *position*), the
progress counters, the random-number-generator states at that moment and at the start of
the epoch, and the train loader's own state when it has one. ``docs/checkpoints.md``
describes the format and the guarantees.
"""

from __future__ import annotations

import functools
import os
import warnings
import zipfile
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

import attrs
import torch
from torch.utils.data import DataLoader, IterableDataset

from lightcycle.callbacks.model_checkpoint import ModelCheckpoint
from lightcycle.errors import MisconfigurationException
from lightcycle.plugins.io import AsyncCheckpointIO, reads_files_itself
from lightcycle.precision import OLD_SCALER_KEY, MixedPrecision
from lightcycle.profilers.wrapping import fetch_timer
from lightcycle.runtime.checkpoint_format import (
    BATCH_END,
    BOUNDARY,
    EPOCH_END,
    EPOCH_START,
    IN_BATCH,
    LIGHTNING_FORMAT_VERSION,
    LIGHTNING_VERSION_KEY,
    MID_EPOCH,
    VALIDATION,
    checked_path,
    lightning_fit_loop,
    validate,
)
from lightcycle.runtime.data import Lookahead
from lightcycle.runtime.rng import collect_rng_states, restore_rng_states, state_bytes, state_tensor
from lightcycle.states import declaration as ev
from lightcycle.states.stages import TrainerFn

if TYPE_CHECKING:
    from lightcycle.runtime.host import RunHost

VERSION_KEY = "lightcycle_version"
REQUIRED_KEYS = ("epoch", "global_step", "state_dict")
LOOP_FORMAT = 3
"""Version of the ``loops["fit_loop"]`` layout written by :meth:`CheckpointConnector.dump`.

3 stores the RNG states as bytes (:mod:`lightcycle.runtime.rng`), where 2 had uint8 tensors for
torch's and the generators', a tuple of ints for Python's and an int64 tensor for NumPy's words;
2 added ``generators`` (the train loader's generators at the save), which 1 lacked."""
READABLE_LOOP_FORMATS = (1, 2, 3)
"""The ``loops["fit_loop"]["lightcycle"]`` versions this release reads."""


@functools.cache
def _version() -> str:
    """lightcycle's installed version (looked up once: the metadata scan costs ~20 ms)."""
    try:
        return version("lightcycle")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0+unknown"


def load_checkpoint_file(
    path: str | os.PathLike[str],
    map_location: Any = "cpu",
    fitting: bool = True,
    reader: Callable[[str], Any] | None = None,
) -> dict[str, Any]:
    """Read and check a checkpoint file completely; the error names the file and what is wrong.

    Args:
        path: the file.
        map_location: as for ``torch.load``.
        fitting: a fit resumes from it (its loop progress is checked too).
        reader: a custom checkpoint IO plugin's reader (``path`` may then be anything it
            reads, e.g. a URL): it replaces the file checks and ``torch.load``; what it
            returns is checked the same way.

    Returns:
        The checkpoint dict.

    Raises:
        TypeError: ``path`` is not a str or ``os.PathLike``.
        FileNotFoundError: no such file.
        IsADirectoryError: ``path`` is a folder.
        MisconfigurationException: unreadable, truncated, not a lightcycle/Lightning checkpoint, a field
            that a restore reads is missing or wrong, or a format this release does not read.
    """
    path = checked_path(path, "ckpt_path")
    ckpt = reader(path) if reader is not None else _read_file(path, map_location)
    if not isinstance(ckpt, dict):
        raise MisconfigurationException(
            f"checkpoint {path!r} holds a {type(ckpt).__name__}, not a checkpoint dict. Pass a file written by "
            "Trainer.save_checkpoint or ModelCheckpoint."
        )
    missing = [k for k in REQUIRED_KEYS if k not in ckpt]
    if missing:
        raise MisconfigurationException(
            f"checkpoint {path!r} is not a lightcycle/Lightning checkpoint: it lacks {missing}"
            + (
                " (it looks like a bare model state_dict)"
                if ckpt and all(torch.is_tensor(v) for v in ckpt.values())
                else ""
            )
            + ". Pass a file written by Trainer.save_checkpoint or ModelCheckpoint."
        )
    validate(ckpt, path, fitting, READABLE_LOOP_FORMATS)
    return ckpt


def _read_file(path: str, map_location: Any) -> Any:
    """``torch.load`` of a checkpoint file, after checking it is a whole file (its records' CRCs)."""
    if os.path.isdir(path):
        found = sorted(f for f in os.listdir(path) if f.endswith(".ckpt"))
        raise IsADirectoryError(
            f"checkpoint path {path!r} is a folder, not a checkpoint file. Pass the path of a .ckpt file"
            + (f" (it holds {found[:5]})" if found else "")
            + ', or ckpt_path="last" for the newest last.ckpt of the Trainer\'s ModelCheckpoint.'
        )
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint {path!r} does not exist. Pass the path of a saved .ckpt file.")
    if os.path.getsize(path) == 0:
        raise MisconfigurationException(
            f"checkpoint {path!r} is empty (0 bytes): it was truncated. Pass another checkpoint; nothing was changed."
        )
    _check_archive(path)
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as err:
        raise MisconfigurationException(
            f"checkpoint {path!r} cannot be read ({type(err).__name__}: {err}); the file is truncated, corrupt "
            "or not a torch checkpoint. Pass another checkpoint; nothing was changed."
        ) from err
    return ckpt


def _check_archive(path: str) -> None:
    """Verify the CRC of every record of a zip-format torch file (``torch.load`` does not, so a
    damaged tensor would load as garbage). Other files are left to ``torch.load``."""
    if not zipfile.is_zipfile(path):
        return
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as err:
        raise MisconfigurationException(
            f"checkpoint {path!r} cannot be read ({type(err).__name__}: {err}); the file is truncated or corrupt. "
            "Pass another checkpoint; nothing was changed."
        ) from err
    if bad is not None:
        raise MisconfigurationException(
            f"checkpoint {path!r} is corrupt: the checksum of its record {bad!r} does not match (the file was "
            "damaged after it was written). Pass another checkpoint; nothing was changed."
        )


# --------------------------------------------------------------------------- random number generators


def _loader_generators(loader: Any) -> list[torch.Generator]:
    """Generators a DataLoader draws its order from besides the global one (``generator=``)."""
    found: list[torch.Generator] = []
    batch_sampler = getattr(loader, "batch_sampler", None)
    for owner in (loader, getattr(loader, "sampler", None), getattr(batch_sampler, "sampler", None)):
        gen = getattr(owner, "generator", None)
        if isinstance(gen, torch.Generator) and all(gen is not g for g in found):
            found.append(gen)
    return found


def _epoch_rng(loader: Any) -> dict[str, Any]:
    return {
        "global": collect_rng_states(),
        "generators": [state_bytes(g.get_state()) for g in _loader_generators(loader)],
    }


def _restore_generators(loader: Any, states: list[Any] | None) -> None:
    for gen, gen_state in zip(_loader_generators(loader), states or (), strict=False):
        gen.set_state(state_tensor(gen_state))


def _restore_epoch_rng(loader: Any, state: dict[str, Any]) -> None:
    restore_rng_states(state["global"])
    _restore_generators(loader, state.get("generators"))


# --------------------------------------------------------------------------- train data on resume


def stateful_loader_part(loader: Any) -> Any:
    """The object that saves the loader's position: the loader or its dataset, if either has
    ``state_dict`` and ``load_state_dict``; else ``None``."""
    for obj in (loader, getattr(loader, "dataset", None)):
        if (
            obj is not None
            and callable(getattr(obj, "state_dict", None))
            and callable(getattr(obj, "load_state_dict", None))
        ):
            return obj
    return None


def is_replayable(loader: Any) -> bool:
    """Whether iterating ``loader`` again from the same RNG state gives the same batches:
    a torch DataLoader over a map-style dataset, or a list/tuple of batches."""
    if isinstance(loader, (list, tuple)):
        return True
    return isinstance(loader, DataLoader) and not isinstance(loader.dataset, IterableDataset)


@attrs.define
class ResumePlan:
    """How the first epoch of a resumed fit begins (built from the checkpoint's position).

    Args:
        position: where the checkpoint was taken (see the module constants).
        fire_epoch_start: begin with ``on_train_epoch_start`` (else the epoch continues).
        skip: index of the first batch to run.
        pending: work of the saved batch still to do: ``"batch"`` (the validation check and
            plateau schedulers that follow ``on_train_batch_end``), ``"validation"`` (what
            follows an in-fit validation run) or ``None``.
        is_last_batch: ``trainer.is_last_batch`` of the saved batch.
        rng: the RNG states at the save, restored where the uninterrupted run went on.
        generators: the states of the train loader's generators at the save (restored with
            ``rng``: the next epoch's shuffle draws from them); ``None`` in format-1 files.
        epoch_rng: the RNG states (and loader generators) at the start of the saved epoch.
        loader_state: the train loader's own state (``state_dict``), if it has one.
    """

    position: str
    fire_epoch_start: bool
    skip: int
    pending: str | None = None
    is_last_batch: bool = False
    rng: dict[str, Any] | None = None
    generators: list[Any] | None = None
    epoch_rng: dict[str, Any] | None = None
    loader_state: Any = None


def _from_lightning(fit: dict[str, Any], ckpt: dict[str, Any]) -> dict[str, Any]:
    """Read the progress of a checkpoint written by Lightning into lightcycle's layout."""
    ep = fit.get("epoch_progress", {}).get("total", {})
    bp = fit.get("epoch_loop.batch_progress", {})
    cur = bp.get("current", {})
    tot = bp.get("total", {})
    ready, started, processed, completed = (int(ep.get(k, 0)) for k in ("ready", "started", "processed", "completed"))
    b_ready, b_processed, b_completed = (int(cur.get(k, 0)) for k in ("ready", "processed", "completed"))
    position = BOUNDARY
    if started == ready and processed == started - 1 and completed == processed:
        if b_ready == b_processed and b_completed == b_processed - 1:
            position = BATCH_END
        elif b_ready == b_processed == b_completed and b_ready > 0:
            position = VALIDATION
        else:
            position = IN_BATCH
    elif started == ready and processed == started and completed == processed - 1:
        position = EPOCH_END
    elif started == ready - 1:
        position = EPOCH_START
    return {
        "position": position,
        "epochs_processed": processed,
        "epochs_completed": completed,
        "global_step": int(ckpt["global_step"]),
        "batch_idx": b_ready - 1,
        "total_batch_idx": int(tot.get("ready", 0)) - 1,
        "batches_ready": b_ready,
        "is_last_batch": bool(bp.get("is_last_batch", False)),
    }


def _restore_precision(plugin: Any, ckpt: dict[str, Any]) -> None:
    """The precision plugin's state (the scaler's), as Lightning restores it: first of the training state."""
    key = type(plugin).__qualname__
    if key in ckpt:
        plugin.load_state_dict(ckpt[key])
    if OLD_SCALER_KEY in ckpt and isinstance(plugin, MixedPrecision):  # checkpoints of older Lightning versions
        plugin.load_state_dict(ckpt[OLD_SCALER_KEY])


def _fit_state(ckpt: dict[str, Any]) -> dict[str, Any]:
    fit = (ckpt.get("loops") or {}).get("fit_loop") or {}
    if "lightcycle" in fit:
        return dict(fit)
    if "epoch_progress" in fit:
        return {**fit, **_from_lightning(fit, ckpt)}  # Lightning's own keys too: the loops read their progress
    epoch = int(ckpt["epoch"])  # no progress stored: treat as taken between epochs
    return {
        "position": BOUNDARY,
        "epochs_processed": epoch,
        "epochs_completed": epoch,
        "global_step": int(ckpt["global_step"]),
    }


def _position(state: str, processed: int, completed: int, batches_ready: int) -> str:
    if state.startswith("fit.train.epoch.validation"):
        return VALIDATION
    if state.startswith("fit.train.epoch.batch"):
        return IN_BATCH
    if state in ("fit.train.epoch.running", "fit.train.epoch.cut"):
        return BATCH_END if batches_ready > 0 else EPOCH_START
    if state == "fit.train.epoch_done" and completed < processed:
        return EPOCH_END
    return BOUNDARY


class CheckpointConnector:
    """Builds checkpoint dicts and restores them for one run host (a Trainer or a LoopDriver)."""

    def __init__(self, trainer: RunHost) -> None:
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
            LIGHTNING_VERSION_KEY: LIGHTNING_FORMAT_VERSION,  # Lightning's loaders require it
            VERSION_KEY: _version(),
            "state_dict": module.state_dict(),
            "loops": self._loops_state(),
        }
        if not weights_only:
            ckpt["callbacks"] = fire(ev.COLLECT_STATE) or {}
            ckpt["optimizer_states"] = [opt.state_dict() for opt in t.optimizers]
            ckpt["lr_schedulers"] = [cfg.scheduler.state_dict() for cfg in t.lr_scheduler_configs]
            precision_state = t.precision_plugin.state_dict()
            if precision_state:  # Lightning: under the plugin's class name ("MixedPrecision": the scaler)
                ckpt[type(t.precision_plugin).__qualname__] = precision_state
        for obj, prefix in ((module, ""), (t.datamodule, "datamodule_")):
            if obj is not None and getattr(obj, "hparams", None):
                entries = obj._hparams_checkpoint_entries(
                    f"{prefix}hyper_parameters", f"{prefix}hparams_name", f"{prefix}hparams_type"
                )
                if not type(obj.hparams).__module__.startswith("omegaconf"):
                    entries.pop(f"{prefix}hparams_type", None)  # Lightning stores the type for OmegaConf only
                ckpt.update(entries)
        dm = t.datamodule
        if dm is not None:
            dm_state = fire(ev.COLLECT_DATAMODULE_STATE)
            if dm_state:
                ckpt[type(dm).__qualname__] = dm_state
        fire(ev.SAVE_WEIGHTS if weights_only else ev.SAVE_CHECKPOINT, ckpt)
        return ckpt

    def save(self, path: str | os.PathLike[str], weights_only: bool = False, storage_options: Any = None) -> None:
        """Dump on every rank (every rank runs the save hooks), write on rank 0 through the
        strategy's checkpoint IO plugin (atomically by default), then all wait."""
        checkpoint = self.dump(weights_only)
        strategy = self.trainer.strategy
        strategy.save_checkpoint(checkpoint, path, storage_options=storage_options)
        strategy.barrier("Trainer.save_checkpoint")

    def _reader(self) -> Callable[[str], Any] | None:
        """A custom checkpoint IO plugin's ``load_checkpoint`` (storages to CPU), else ``None``."""
        plugin = self.trainer.strategy.checkpoint_io
        if isinstance(plugin, AsyncCheckpointIO):
            plugin.wait()  # a resume from a file still being written reads the whole file
        if not reads_files_itself(plugin):
            return None
        return lambda path: plugin.load_checkpoint(path, map_location="cpu")

    def _loops_state(self) -> dict[str, Any]:
        t = self.trainer
        loop = t.fit_loop
        state = t._saved_state()
        position = _position(state, loop.epochs_processed, loop.epochs_completed, loop.batches_ready)
        batches = loop.batches
        loader_state = None
        if batches is not None and position in MID_EPOCH:
            loader_state = batches.state if position == IN_BATCH else batches.next_state
        n = t.num_training_batches
        own = loop.state_dict()  # the loop's counters (and the Trainer's loops: Lightning's progress keys)
        fit: dict[str, Any] = {
            "lightcycle": LOOP_FORMAT,
            "position": position,
            **own,
            "num_training_batches": None if n == float("inf") else int(n),
            "rng": collect_rng_states(),
            # the loader's own generators go on from here into the next epoch's shuffle
            "generators": [state_bytes(g.get_state()) for g in _loader_generators(t.train_dataloader)],
            "epoch_rng": loop.epoch_rng if position in MID_EPOCH or position == EPOCH_END else None,
            "loader_state": loader_state,
        }
        if t.strategy.distributed:
            # each rank draws from its own RNGs (dropout, its own seeds): the file keeps every rank's,
            # and each rank resumes from its own (rank 0's "rng" stays for a single-process resume)
            fit["rank_rng"] = t.strategy.all_gather_object({"rng": fit["rng"], "epoch_rng": fit["epoch_rng"]})
        # Lightning's progress counters beside lightcycle's, so that Lightning resumes from this file too
        # (those the loop wrote itself, more exact, win over the ones derived from the counters)
        fit = {**fit, **lightning_fit_loop(fit), **own}
        if loader_state is not None and stateful_loader_part(t.train_dataloader) is t.train_dataloader:
            fit["state_dict"] = {"combined_loader": [loader_state]}  # Lightning loads it into the loader
        return {"fit_loop": fit, **t._eval_loop_states()}

    # ------------------------------------------------------------------ restore

    def resolve_path(self, ckpt_path: Any, fn: TrainerFn, model_provided: bool = True) -> str | None:
        """Turn ``ckpt_path`` (a path, ``"last"`` or ``"best"``) into a file and read it now.

        Reading happens before the run starts, so a bad file raises before any hook. As in
        Lightning, ``validate``/``test``/``predict`` without a model after a fit use
        ``"best"``, and ``"last"`` with no last checkpoint warns and starts from scratch.
        """
        t = self.trainer
        self._pending = None
        t.ckpt_path = None
        if ckpt_path is None and not model_provided and t.lightning_module is not None:
            ckpt_path = "best"
            warnings.warn(
                f"`.{fn.value}(ckpt_path=None)` was called without a model. The best model of the previous `fit` "
                f"call will be used. You can pass `.{fn.value}(ckpt_path='best')` to use the best model or "
                f"`.{fn.value}(ckpt_path='last')` to use the last model. If you pass a value, this warning will be "
                "silenced.",
                UserWarning,
                stacklevel=3,
            )
        if ckpt_path is None:
            return None
        path: str | None = checked_path(ckpt_path, "ckpt_path")
        if path == "best":
            path = self._best_path(fn)
        elif path == "last":
            path = self._last_path(fn)
            if path is None:
                return None
        assert path is not None
        self._pending = load_checkpoint_file(path, fitting=fn == TrainerFn.FITTING, reader=self._reader())
        t.ckpt_path = path
        return path

    def _best_path(self, fn: TrainerFn) -> str:
        t = self.trainer
        if len(t.checkpoint_callbacks) > 1:
            warnings.warn(
                f'`.{fn.value}(ckpt_path="best")` is called with Trainer configured with multiple `ModelCheckpoint`'
                " callbacks. It will use the best checkpoint path from first checkpoint callback.",
                UserWarning,
                stacklevel=4,
            )
        cb = t.checkpoint_callback
        if cb is None:
            raise ValueError(f'`.{fn.value}(ckpt_path="best")` is set but `ModelCheckpoint` is not configured.')
        best = getattr(cb, "best_model_path", None)
        if not best:
            raise ValueError(
                f'`.{fn.value}(ckpt_path="best")` is set but `ModelCheckpoint` is not configured to save the best '
                "model."
            )
        return str(best)

    def _last_path(self, fn: TrainerFn) -> str | None:
        t = self.trainer
        candidates: set[str] = set()
        for cb in t.checkpoint_callbacks:
            if isinstance(cb, ModelCheckpoint):
                candidates |= cb._find_last_checkpoints(t)
        existing = {p: os.path.getmtime(p) for p in candidates if os.path.exists(p)}
        if not existing:
            warnings.warn(
                f'.{fn.value}(ckpt_path="last") is set, but there is no last checkpoint available. No checkpoint '
                "will be loaded. HINT: Set `ModelCheckpoint(..., save_last=True)`.",
                UserWarning,
                stacklevel=4,
            )
            return None
        return max(existing, key=existing.__getitem__)

    def restore_start(self, path: str) -> dict[str, Any]:
        """Restore the module, datamodule and callbacks (spec 3.14 steps 2-7)."""
        t = self.trainer
        fire = t._driver.fire
        ckpt = self._pending if self._pending is not None else load_checkpoint_file(path, reader=self._reader())
        self._pending = None
        module = t.lightning_module
        assert module is not None
        fire(ev.LOAD_CHECKPOINT, ckpt)
        module.load_state_dict(ckpt["state_dict"], strict=getattr(module, "strict_loading", True))
        dm = t.datamodule
        if dm is not None and type(dm).__qualname__ in ckpt:
            fire(ev.LOAD_DATAMODULE_STATE, ckpt[type(dm).__qualname__])
        if ckpt.get("callbacks") is not None:
            states = ckpt["callbacks"]
            known = {cb.state_key for cb in t.callbacks}
            unmatched = [k for k in states if k not in known]
            if unmatched:
                warnings.warn(
                    f"checkpoint {path!r} holds states of callbacks that this Trainer does not have: {unmatched}. "
                    "They were not restored: add those callbacks to the Trainer (with the same arguments, so that "
                    "their state_key matches) to restore them.",
                    UserWarning,
                    stacklevel=2,
                )
            fire(ev.LOAD_CALLBACK_STATES, ckpt, states)
        return ckpt

    def restore_training_state(self, ckpt: dict[str, Any]) -> None:
        """Restore loop progress, optimizers and schedulers (after on_fit_start), and plan the resume."""
        t = self.trainer
        _restore_precision(t.precision_plugin, ckpt)
        state = _fit_state(ckpt)
        loop = t.fit_loop
        loop.load_state_dict({"global_step": ckpt["global_step"], **state})
        if t.max_epochs != -1 and t.current_epoch > t.max_epochs:
            raise MisconfigurationException(
                f"You restored a checkpoint with current_epoch={t.current_epoch}, but you have set "
                f"Trainer(max_epochs={t.max_epochs})."
            )
        plan = self._plan(state)
        loop.resume = plan
        loop.restarting = t.max_steps != -1 or plan.position not in (BOUNDARY, EPOCH_END)
        if "optimizer_states" not in ckpt:
            raise KeyError(
                "Trying to restore optimizer state but checkpoint contains only the model. This is probably due to "
                "`ModelCheckpoint.save_weights_only` being set to `True`."
            )
        if "lr_schedulers" not in ckpt:
            raise KeyError(
                "Trying to restore learning rate scheduler state but checkpoint contains only the model. This is "
                "probably due to `ModelCheckpoint.save_weights_only` being set to `True`."
            )
        for opt, opt_state in zip(t.optimizers, ckpt["optimizer_states"], strict=False):
            opt.load_state_dict(opt_state)
        for cfg, sched_state in zip(t.lr_scheduler_configs, ckpt["lr_schedulers"], strict=False):
            cfg.scheduler.load_state_dict(sched_state)

    def _plan(self, state: dict[str, Any]) -> ResumePlan:
        """Lightning's restart rules (fit loop ``reset``) for each position, in lightcycle's terms.

        Mid-epoch (in a batch, after a batch, after an in-fit validation): no sanity check,
        no ``on_train_epoch_start``; the epoch continues with the next batch after any work
        the saved batch still had to do. End of an epoch or between epochs: the next epoch
        begins normally, after a sanity check, except under ``max_steps`` (iteration-based
        training), where Lightning continues the saved epoch's batch count instead.
        """
        t = self.trainer
        iteration_based = t.max_steps != -1
        position = state.get("position", BOUNDARY)
        ready = int(state.get("batches_ready", 0))
        rng: dict[str, Any] | None = state.get("rng")
        epoch_rng: dict[str, Any] | None = state.get("epoch_rng")
        per_rank = state.get("rank_rng")
        if isinstance(per_rank, list) and len(per_rank) == t.strategy.world_size:  # saved by as many ranks
            rng, epoch_rng = per_rank[t.strategy.global_rank]["rng"], per_rank[t.strategy.global_rank]["epoch_rng"]
        generators: list[Any] | None = state.get("generators")

        def mid(skip: int, pending: str | None = None) -> ResumePlan:
            return ResumePlan(
                position,
                fire_epoch_start=False,
                skip=skip,
                pending=pending,
                is_last_batch=bool(state.get("is_last_batch", False)),
                rng=rng,
                generators=generators,
                epoch_rng=epoch_rng,
                loader_state=state.get("loader_state"),
            )

        if position == BATCH_END:
            return mid(ready, "batch")
        if position == VALIDATION:
            return mid(ready, "validation")
        if position == IN_BATCH:
            return mid(max(ready - 1, 0))
        if position == EPOCH_START:
            return ResumePlan(position, fire_epoch_start=True, skip=0, rng=rng, generators=generators)
        if iteration_based:
            # Lightning's loops restart under max_steps: the saved epoch's batch count goes on
            if position == EPOCH_END:
                return mid(ready)
            return ResumePlan(position, fire_epoch_start=True, skip=ready, rng=rng, generators=generators)
        return ResumePlan(position, fire_epoch_start=True, skip=0, rng=rng, generators=generators)

    def restore_eval_state(self, ckpt: dict[str, Any]) -> None:
        """validate/test/predict with ckpt_path: only the module, datamodule and callbacks."""

    # ------------------------------------------------------------------ the first epoch of a resumed fit

    def begin_epoch(self, loader: Any, plan: ResumePlan | None) -> None:
        """Before an epoch's ``on_train_epoch_start``: a resume at an epoch boundary puts the
        RNG states of the save back (the global ones and the train loader's generators), where
        the uninterrupted run went on."""
        if plan is not None and plan.fire_epoch_start and plan.rng is not None:
            restore_rng_states(plan.rng)
            _restore_generators(loader, plan.generators)

    def open_epoch(self, loader: Any, plan: ResumePlan | None) -> Lookahead:
        """The batches of an epoch, positioned for a resumed fit when ``plan`` is given.

        A fresh epoch records the RNG states first (for mid-epoch checkpoints). A resumed
        epoch puts the saved epoch's RNG states back, re-creates the iterator and skips the
        batches already trained (a replayable loader), or loads the loader's own state (a
        loader with ``state_dict``/``load_state_dict``), then restores the RNG states of the
        save. Any other loader restarts its data from the beginning, with a warning.
        """
        t = self.trainer
        loop = t.fit_loop
        n = t.num_training_batches
        part = stateful_loader_part(loader)
        state_fn = part.state_dict if part is not None else None
        wrap = fetch_timer(t.profiler, "train")  # None without a profiler
        if plan is None or (plan.fire_epoch_start and plan.skip == 0):
            loop.epoch_rng = _epoch_rng(loader)
            batches = Lookahead(loader, n, state_fn=state_fn, wrap=wrap)
        elif plan.fire_epoch_start:  # max_steps resume between epochs: Lightning keeps counting on fresh data
            loop.epoch_rng = _epoch_rng(loader)
            batches = Lookahead(loader, n, skip=plan.skip, consume=False, state_fn=state_fn, wrap=wrap)
        else:
            loop.epoch_rng = plan.epoch_rng
            if plan.skip >= n:
                batches = Lookahead((), n, skip=plan.skip, consume=False)
            elif part is not None and plan.loader_state is not None:
                if plan.epoch_rng is not None:
                    _restore_epoch_rng(loader, plan.epoch_rng)
                part.load_state_dict(plan.loader_state)
                batches = Lookahead(loader, n, skip=plan.skip, consume=False, state_fn=state_fn, wrap=wrap)
            elif is_replayable(loader) and plan.epoch_rng is not None:
                _restore_epoch_rng(loader, plan.epoch_rng)
                batches = Lookahead(loader, n, skip=plan.skip, state_fn=state_fn, wrap=wrap)
            else:
                if plan.skip > 0:
                    warnings.warn(
                        f"Resuming in the middle of an epoch, but the train loader ({type(loader).__name__}) can "
                        "neither be replayed (a DataLoader over a map-style dataset) nor restore its position (no "
                        "`state_dict`/`load_state_dict` on the loader or its dataset): its data restarts from the "
                        "beginning while batch_idx continues, as in Lightning, so the resumed run is not exact. "
                        "See docs/checkpoints.md.",
                        UserWarning,
                        stacklevel=2,
                    )
                batches = Lookahead(loader, n, skip=plan.skip, consume=False, state_fn=state_fn, wrap=wrap)
            if plan.rng is not None:
                restore_rng_states(plan.rng)
                # after the epoch's last batch no replay re-drew them: the next epoch shuffles from these
                _restore_generators(loader, plan.generators)
        loop.batches = batches
        return batches
