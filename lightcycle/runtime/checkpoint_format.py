"""The checkpoint layout: checking a loaded file completely, and Lightning's loop progress.

:func:`validate` checks every field that a restore reads, with the type and range it needs,
before any hook fires, so a damaged or foreign file fails with the file, the field and what
was expected instead of a ``KeyError`` after ``setup`` and ``on_fit_start`` ran.
:func:`lightning_fit_loop` writes the progress counters in Lightning 2.6's layout next to
lightcycle's own, so Lightning's ``Trainer.fit(ckpt_path=...)`` resumes a lightcycle checkpoint
at the same epoch and global step. ``docs/checkpoints.md`` describes the format.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

import torch

from lightcycle.errors import MisconfigurationException
from lightcycle.runtime.rng import NUMPY_KEY_BYTES, PYTHON_STATE_BYTES

LIGHTNING_VERSION_KEY = "pytorch-lightning_version"
LIGHTNING_FORMAT_VERSION = "2.6.6"
"""The Lightning release whose checkpoint layout lightcycle writes (Lightning migrates older ones by
this key; a missing key makes ``load_from_checkpoint`` fail with a ``KeyError``)."""

# Where in a fit a checkpoint was taken (``loops["fit_loop"]["position"]``).
BOUNDARY = "boundary"
"""Between epochs, before training, or after it (all progress counters agree)."""
EPOCH_START = "epoch_start"
"""In ``on_train_epoch_start``: the epoch has begun, no batch has run."""
IN_BATCH = "in_batch"
"""Inside a training batch (e.g. an exception in ``training_step``): the batch is run again."""
BATCH_END = "batch_end"
"""In ``on_train_batch_end``: resume right after that hook."""
VALIDATION = "validation"
"""During or at the end of an in-fit validation run: resume right after it."""
EPOCH_END = "epoch_end"
"""In ``on_train_epoch_end``: the epoch's batches ran, ``current_epoch`` not yet advanced."""
POSITIONS = (BOUNDARY, EPOCH_START, IN_BATCH, BATCH_END, VALIDATION, EPOCH_END)
MID_EPOCH = (IN_BATCH, BATCH_END, VALIDATION)

_MISSING = object()
_FIX = "Pass a checkpoint written by Trainer.save_checkpoint or ModelCheckpoint; nothing was changed."


def describe_path(value: Any) -> str:
    """What a path argument is, for an error message: its type, and the value when short."""
    text = repr(value)
    name = type(value).__name__
    return f"{'an' if name[0] in 'aeiou' else 'a'} {name} ({text[:80]}{'...' if len(text) > 80 else ''})"


def checked_path(value: Any, what: str) -> str:
    """``os.fspath(value)`` for a ``str`` or ``os.PathLike`` that gives one, else a ``TypeError``.

    Args:
        value: the path argument.
        what: the argument's name, for the message (e.g. ``"ckpt_path"``).

    Returns:
        The path as a ``str``.

    Raises:
        TypeError: ``bytes``, numbers and other objects, naming what was given and what is accepted.
    """
    path = os.fspath(value) if isinstance(value, (str, os.PathLike)) else value
    if not isinstance(path, str):
        raise TypeError(
            f"`{what}` is {describe_path(value)}; expected a str or an os.PathLike path (e.g. pathlib.Path)"
            + (', or "last"/"best"' if what == "ckpt_path" else "")
            + (". Decode bytes first: path.decode()" if isinstance(path, bytes) else "")
            + "."
        )
    return path


class _Checker:
    """Raises for the first field of ``ckpt`` that a restore could not use."""

    def __init__(self, path: str) -> None:
        self.path = path

    def fail(self, field: str, value: Any, expected: str) -> None:
        got = "missing" if value is _MISSING else f"{describe_path(value)}"
        raise MisconfigurationException(
            f"checkpoint {self.path!r} cannot be restored: `{field}` is {got}; expected {expected}. {_FIX}"
        )

    def need(self, holder: Mapping[str, Any], key: str, field: str, ok: Callable[[Any], bool], expected: str) -> Any:
        value = holder.get(key, _MISSING)
        if value is _MISSING or not ok(value):
            self.fail(field, value, expected)
        return value

    def maybe(self, holder: Mapping[str, Any], key: str, field: str, ok: Callable[[Any], bool], expected: str) -> Any:
        """Like :meth:`need` for a field that may be absent (or ``None``)."""
        value = holder.get(key)
        if value is not None and not ok(value):
            self.fail(field, value, expected)
        return value


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_index(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= -1


def _is_state(value: Any) -> bool:
    """A ``torch.Generator`` state: ``bytes`` (format 3) or a uint8 tensor (formats 1 and 2)."""
    if isinstance(value, (bytes, bytearray)):
        return len(value) > 0
    return isinstance(value, torch.Tensor) and value.dtype == torch.uint8


def _is_list_of(kind: type | tuple[type, ...]) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, (list, tuple)) and all(isinstance(x, kind) for x in v)


def _is_words(value: Any, size: int) -> bool:
    """Mersenne Twister words: ``size`` bytes (format 3), or a sequence or tensor (formats 1 and 2)."""
    if isinstance(value, (bytes, bytearray)):
        return len(value) == size
    return isinstance(value, (list, tuple, torch.Tensor)) and len(value) == size // 4


def _is_rng(value: Any) -> bool:
    if not isinstance(value, dict):
        return False
    python, numpy = value.get("python"), value.get("numpy")
    return (
        _is_state(value.get("torch"))
        and isinstance(python, (list, tuple))
        and len(python) == 3
        and _is_words(python[1], PYTHON_STATE_BYTES)
        and (
            "numpy" not in value
            or (isinstance(numpy, (list, tuple)) and len(numpy) == 5 and _is_words(numpy[1], NUMPY_KEY_BYTES))
        )
    )


def _is_generators(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and all(_is_state(g) for g in value)


def _is_epoch_rng(value: Any) -> bool:
    return isinstance(value, dict) and _is_rng(value.get("global")) and _is_generators(value.get("generators", []))


def validate(ckpt: dict[str, Any], path: str, fitting: bool, readable_formats: tuple[int, ...]) -> None:
    """Check every field a restore reads, before anything runs.

    Args:
        ckpt: the loaded checkpoint dict.
        path: its file, for the messages.
        fitting: a ``fit`` resumes from it (the loop progress is read too), else only the
            module, datamodule and callback states are.
        readable_formats: the ``loops["fit_loop"]["lightcycle"]`` versions this release reads.

    Raises:
        MisconfigurationException: naming the file, the field and what was expected.
    """
    c = _Checker(path)
    c.need(ckpt, "epoch", "epoch", _is_count, "an int >= 0 (the epoch when it was saved)")
    c.need(ckpt, "global_step", "global_step", _is_count, "an int >= 0 (optimizer steps taken)")
    c.need(ckpt, "state_dict", "state_dict", lambda v: isinstance(v, Mapping), "a dict of the module's weights")
    for key in ("lightcycle_version", LIGHTNING_VERSION_KEY):
        c.maybe(ckpt, key, key, lambda v: isinstance(v, str), "a version string")
    c.maybe(ckpt, "callbacks", "callbacks", lambda v: isinstance(v, Mapping), "a dict {state_key: state}")
    if not fitting:
        return
    # optimizer_states / lr_schedulers may be absent (weights-only): Lightning's KeyError for that comes later
    c.maybe(ckpt, "optimizer_states", "optimizer_states", _is_list_of(Mapping), "a list of optimizer state dicts")
    c.maybe(ckpt, "lr_schedulers", "lr_schedulers", _is_list_of(Mapping), "a list of scheduler state dicts")
    loops = c.maybe(ckpt, "loops", "loops", lambda v: isinstance(v, Mapping), "a dict of loop states")
    fit = c.maybe(loops or {}, "fit_loop", "loops.fit_loop", lambda v: isinstance(v, Mapping), "a dict")
    if not fit:
        return
    if "lightcycle" in fit:
        _validate_lightcycle(c, fit, readable_formats)
    elif "epoch_progress" in fit:
        _validate_lightning(c, fit)


def _validate_lightcycle(c: _Checker, fit: Mapping[str, Any], readable_formats: tuple[int, ...]) -> None:
    f = "loops.fit_loop."
    fmt = fit["lightcycle"]
    if fmt not in readable_formats or isinstance(fmt, bool):
        c.fail(
            f"{f}lightcycle",
            fmt,
            f"a format version this release reads ({', '.join(map(str, readable_formats))}); a newer lightcycle "
            "wrote it: upgrade lightcycle to resume from it",
        )
    c.need(fit, "position", f"{f}position", lambda v: v in POSITIONS, f"one of {list(POSITIONS)}")
    for key in ("epochs_processed", "epochs_completed", "global_step", "batches_ready"):
        c.need(fit, key, f + key, _is_count, "an int >= 0")
    for key in ("batch_idx", "total_batch_idx"):
        c.need(fit, key, f + key, _is_index, "an int >= -1")
    c.need(fit, "is_last_batch", f"{f}is_last_batch", lambda v: isinstance(v, bool), "a bool")
    if fit["epochs_completed"] > fit["epochs_processed"]:
        c.fail(f"{f}epochs_completed", fit["epochs_completed"], f"at most epochs_processed ({fit['epochs_processed']})")
    c.maybe(fit, "num_training_batches", f"{f}num_training_batches", _is_count, "an int >= 0 or None")
    c.need(
        fit,
        "rng",
        f"{f}rng",
        _is_rng,
        "the RNG states: {'torch': uint8 tensor, 'python': (version, 2500 bytes, gauss), ...}",
    )
    c.maybe(fit, "epoch_rng", f"{f}epoch_rng", _is_epoch_rng, "{'global': RNG states, 'generators': [bytes]}")
    if fmt >= 2:
        c.need(fit, "generators", f"{f}generators", _is_generators, "a list of torch.Generator states (bytes)")


def _validate_lightning(c: _Checker, fit: Mapping[str, Any]) -> None:
    """The progress fields that lightcycle reads from a checkpoint written by Lightning."""
    ep = c.need(fit, "epoch_progress", "loops.fit_loop.epoch_progress", lambda v: isinstance(v, Mapping), "a dict")
    total = c.maybe(ep, "total", "loops.fit_loop.epoch_progress.total", lambda v: isinstance(v, Mapping), "a dict")
    for key in ("ready", "started", "processed", "completed"):
        c.maybe(total or {}, key, f"loops.fit_loop.epoch_progress.total.{key}", _is_count, "an int >= 0")
    bp = c.maybe(fit, "epoch_loop.batch_progress", "loops.fit_loop.epoch_loop.batch_progress", _is_dict, "a dict")
    for part in ("current", "total"):
        counts = c.maybe(bp or {}, part, f"loops.fit_loop.epoch_loop.batch_progress.{part}", _is_dict, "a dict")
        for key in ("ready", "processed", "completed"):
            c.maybe(counts or {}, key, f"loops.fit_loop.epoch_loop.batch_progress.{part}.{key}", _is_count, "an int")


def _is_dict(value: Any) -> bool:
    return isinstance(value, Mapping)


# --------------------------------------------------------------------------- Lightning's loop layout


def lightning_fit_loop(fit: Mapping[str, Any]) -> dict[str, Any]:
    """Lightning 2.6's ``loops["fit_loop"]`` progress for lightcycle's ``fit`` state.

    The counters are those Lightning's own loop holds at the same point (the inverse of
    reading a Lightning checkpoint), so that Lightning restores ``current_epoch`` and
    ``global_step`` and applies its restart rules. ``_batches_that_stepped`` (Lightning's
    logging step) is ``global_step`` less the saving batch at ``batch_end``, exact for one
    optimizer without accumulation.

    Args:
        fit: lightcycle's fit-loop state (``position`` and the counters).

    Returns:
        The Lightning keys, to be merged into ``loops["fit_loop"]``.
    """
    position = fit["position"]
    processed, completed, step = fit["epochs_processed"], fit["epochs_completed"], fit["global_step"]
    started = processed + 1 if position in (*MID_EPOCH, EPOCH_START) else processed
    epochs = {
        "ready": started,
        "started": started - 1 if position == EPOCH_START else started,
        "processed": processed,
        "completed": completed,
    }

    def batches(ready: int) -> dict[str, int]:
        done = ready - 1 if position in (BATCH_END, IN_BATCH) else ready
        return {
            "ready": ready,
            "started": ready,
            "processed": ready - 1 if position == IN_BATCH else ready,
            "completed": max(done, 0),
        }

    steps = {"ready": step, "completed": step}
    return {
        "state_dict": {},
        "epoch_loop.state_dict": {"_batches_that_stepped": max(step - (position == BATCH_END), 0)},
        "epoch_loop.batch_progress": {
            "total": batches(fit["total_batch_idx"] + 1),
            "current": batches(fit["batches_ready"]),
            "is_last_batch": fit["is_last_batch"],
        },
        "epoch_loop.automatic_optimization.optim_progress": {
            "optimizer": {
                "step": {"total": dict(steps), "current": dict(steps)},
                "zero_grad": {"total": {**steps, "started": step}, "current": {**steps, "started": step}},
            }
        },
        "epoch_loop.manual_optimization.optim_step_progress": {"total": dict(steps), "current": dict(steps)},
        "epoch_progress": {"total": dict(epochs), "current": dict(epochs)},
    }
