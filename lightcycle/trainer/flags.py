"""Lightning's debugging and speed flags: ``barebones``, ``fast_dev_run``, ``benchmark``, ``detect_anomaly``.

Each function takes the Trainer's raw arguments and returns what they become, with
Lightning 2.6's checks and messages (``Trainer.__init__``, ``trainer/setup.py``,
``_set_torch_flags``); nothing here runs per batch.
"""

from __future__ import annotations

import logging
import numbers
import os
import warnings
from typing import Any

import torch
from torch.utils.data import DataLoader, IterableDataset, SequentialSampler

from lightcycle._foreign import is_kind
from lightcycle.callbacks.timer import Timer
from lightcycle.errors import MisconfigurationException
from lightcycle.loggers.logger import DummyLogger

log = logging.getLogger(__name__)

_BAREBONES_OFF = (
    " - Checkpointing: `Trainer(enable_checkpointing=True)`",
    " - Progress bar: `Trainer(enable_progress_bar=True)`",
    " - Model summary: `Trainer(enable_model_summary=True)`",
    " - Logging: `Trainer(logger=True)`, `Trainer(log_every_n_steps>0)`,"
    " `LightningModule.log(...)`, `LightningModule.log_dict(...)`",
    " - Sanity checking: `Trainer(num_sanity_val_steps>0)`",
    " - Development run: `Trainer(fast_dev_run=True)`",
    " - Anomaly detection: `Trainer(detect_anomaly=True)`",
    " - Profiling: `Trainer(profiler=...)`",
)


def barebones(barebones: bool, args: dict[str, Any]) -> dict[str, Any]:
    """The arguments ``barebones=True`` turns off, checked as Lightning checks them.

    Args:
        barebones: the ``barebones`` argument.
        args: ``enable_checkpointing``, ``logger``, ``enable_progress_bar``,
            ``log_every_n_steps``, ``enable_model_summary``, ``num_sanity_val_steps``,
            ``fast_dev_run``, ``detect_anomaly``, ``profiler`` as passed.

    Returns:
        ``args`` unchanged without barebones; with it, every feature off.

    Raises:
        ValueError: barebones with a feature it disables turned on (Lightning's messages).
    """
    if not barebones:
        return args

    def refuse(name: str, what: str, verb: str = "can impact") -> ValueError:
        return ValueError(
            f"`Trainer(barebones=True, {name}={args[name]!r})` was passed. {what} {verb} raw speed so it is disabled"
            " in barebones mode."
        )

    if args["enable_checkpointing"]:
        raise refuse("enable_checkpointing", "Checkpointing")
    if args["logger"] is not None and args["logger"] is not False:
        raise refuse("logger", "Logging")
    if args["enable_progress_bar"]:
        raise refuse("enable_progress_bar", "The progress bar")
    if args["log_every_n_steps"] is not None and args["log_every_n_steps"] != 0:
        raise refuse("log_every_n_steps", "Logging")
    if args["enable_model_summary"]:
        raise refuse("enable_model_summary", "Model summary")
    if args["num_sanity_val_steps"] is not None and args["num_sanity_val_steps"] != 0:
        raise refuse("num_sanity_val_steps", "Sanity checking")
    if args["fast_dev_run"] is not False and args["fast_dev_run"] != 0:
        raise ValueError(
            f"`Trainer(barebones=True, fast_dev_run={args['fast_dev_run']!r})` was passed."
            " Development run is not meant for raw speed evaluation so it is disabled in barebones mode."
        )
    if args["detect_anomaly"]:
        raise refuse("detect_anomaly", "Anomaly detection")
    if args.get("profiler") is not None:
        raise refuse("profiler", "Profiling")
    log.info(
        "You are running in `Trainer(barebones=True)` mode. All features that may impact raw speed have been"
        " disabled to facilitate analyzing the Trainer overhead. Specifically, the following features are"
        f" deactivated:{os.linesep}{os.linesep.join(_BAREBONES_OFF)}"
    )
    return {
        **args,
        "enable_checkpointing": False,
        "logger": False,
        "enable_progress_bar": False,
        "log_every_n_steps": 0,
        "enable_model_summary": False,
        "num_sanity_val_steps": 0,
    }


def fast_dev_run(value: Any, args: dict[str, Any], overfit: bool = False) -> tuple[int | bool, dict[str, Any]]:
    """What ``fast_dev_run`` makes of the loop arguments (Lightning's ``_init_debugging_flags``).

    ``True`` is 1 batch, an int ``n`` is ``n`` batches: every limit becomes ``n``
    (``limit_train/val_batches`` only without ``overfit_batches``), ``max_steps=n``,
    ``max_epochs=1``, no sanity check, validation after the epoch, every epoch. Loggers
    and checkpoint writes are suppressed elsewhere (:func:`dummy_loggers`, ModelCheckpoint).

    Args:
        value: the ``fast_dev_run`` argument.
        args: the loop arguments as passed (``limit_*``, ``max_steps``, ``max_epochs``, ...).
        overfit: ``overfit_batches`` is on (it sets the train and val limits instead).

    Returns:
        ``(fast_dev_run as Lightning stores it: True for 1, else the int or False, args)``.

    Raises:
        MisconfigurationException: a negative int or not a bool/int.
    """
    if isinstance(value, bool):
        n = int(value)
    elif isinstance(value, numbers.Integral):
        if value < 0:
            raise MisconfigurationException(f"fast_dev_run={value!r} is not a valid configuration. It should be >= 0.")
        n = int(value)
    else:
        raise MisconfigurationException(
            f"fast_dev_run={value!r} is not a valid configuration: expected True/False or an int >= 0 (batches)."
        )
    if n == 0:
        return False, args
    out = dict(args)
    if not overfit:
        out["limit_train_batches"] = n
        out["limit_val_batches"] = n
    out.update(limit_test_batches=n, limit_predict_batches=n, max_steps=n, num_sanity_val_steps=0, max_epochs=1)
    if not (args["check_val_every_n_epoch"] is None and isinstance(args["val_check_interval"], float)):
        # (Lightning checks that pair before fast_dev_run overrides it: left as passed, it is refused)
        out.update(val_check_interval=1.0, check_val_every_n_epoch=1)
    log.info(
        f"Running in `fast_dev_run` mode: will run the requested loop using {n} batch(es). "
        "Logging and checkpointing is suppressed."
    )
    return (True if n == 1 else n), out


def dummy_loggers(loggers: list[Any]) -> list[Any]:
    """Lightning under ``fast_dev_run``: one :class:`DummyLogger` if there were loggers, else none."""
    return [DummyLogger()] if loggers else []


def set_torch_flags(benchmark: bool | None, deterministic: bool | str | None) -> bool | None:
    """``torch.backends.cudnn.benchmark`` as Lightning sets it (``_set_torch_flags``).

    ``None`` leaves the global setting as it is, except with ``deterministic``, where it
    becomes ``False``; ``True`` with ``deterministic`` warns (PyTorch then ignores
    determinism in cuDNN).

    Args:
        benchmark: the ``benchmark`` argument.
        deterministic: the ``deterministic`` argument.

    Returns:
        The value set, or ``None`` when the setting was left alone.

    Raises:
        MisconfigurationException: not a bool or None.
    """
    if benchmark is not None and not isinstance(benchmark, bool):
        raise MisconfigurationException(f"Trainer(benchmark={benchmark!r}) is invalid: expected True, False or None.")
    if deterministic:
        if benchmark is None:
            benchmark = False  # determinism needs cuDNN's autotuner off
        elif benchmark:
            warnings.warn(
                "You passed `deterministic=True` and `benchmark=True`. Note that PyTorch ignores"
                " torch.backends.cudnn.deterministic=True when torch.backends.cudnn.benchmark=True.",
                UserWarning,
                stacklevel=3,
            )
    if benchmark is not None:
        torch.backends.cudnn.benchmark = benchmark
    return benchmark


def check_detect_anomaly(detect_anomaly: Any) -> bool:
    """Returns:
    ``detect_anomaly`` as a bool, with Lightning's notice when it is on.

    Raises:
        MisconfigurationException: not a bool.
    """
    if not isinstance(detect_anomaly, bool):
        raise MisconfigurationException(
            f"Trainer(detect_anomaly={detect_anomaly!r}) is invalid: expected True or False."
        )
    if detect_anomaly:
        log.info(
            "You have turned on `Trainer(detect_anomaly=True)`. This will significantly slow down compute speed and"
            " is recommended only for model debugging."
        )
    return detect_anomaly


def overfit_batches(value: Any) -> int | float:
    """``overfit_batches`` checked as Lightning checks it (``_determine_batch_limits``).

    Args:
        value: an int (batches) or a float in ``[0.0, 1.0]`` (a fraction); ``0`` is off.

    Returns:
        The value; when positive it becomes ``limit_train_batches`` and ``limit_val_batches``.

    Raises:
        MisconfigurationException: anything else (Lightning's message).
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise MisconfigurationException(
            f"You have passed invalid value {value} for overfit_batches, it has to be in [0.0, 1.0] or an int."
        )
    number = int(value) if isinstance(value, numbers.Integral) else float(value)
    if 0 <= number <= 1:
        return number
    if number > 1 and number % 1.0 == 0:
        return int(number)
    raise MisconfigurationException(
        f"You have passed invalid value {value} for overfit_batches, it has to be in [0.0, 1.0] or an int."
    )


def sequential_loaders(loaders: list[Any], prefix: str) -> list[Any]:
    """The loaders with shuffling off, as Lightning's ``_resolve_overfit_batches`` makes them.

    Args:
        loaders: the train (or, in fit, the val) loaders.
        prefix: ``"train"`` or ``"val"`` (in the warning).

    Returns:
        ``loaders`` when every sampler is sequential; else each torch ``DataLoader`` rebuilt with
        a ``SequentialSampler``, after Lightning's warning.

    Raises:
        MisconfigurationException: a loader that cannot be rebuilt (a DataLoader subclass or a
            custom batch sampler).
    """
    if all(isinstance(dl.sampler, SequentialSampler) for dl in loaders if hasattr(dl, "sampler")):
        return loaders
    warnings.warn(
        f"You requested to overfit but enabled {prefix} dataloader shuffling."
        f" We are turning off the {prefix} dataloader shuffling for you.",
        UserWarning,
        stacklevel=4,
    )
    out = []
    for dl in loaders:
        if not hasattr(dl, "dataset") or isinstance(dl.dataset, IterableDataset):
            out.append(dl)  # (an iterable dataset has no sampler to replace: Lightning drops it too)
            continue
        if type(dl) is not DataLoader or dl.batch_size is None:
            raise MisconfigurationException(
                f"Trainer(overfit_batches=...) turns shuffling off by rebuilding the {prefix} DataLoader, but "
                f"{type(dl).__name__} with a custom batch sampler cannot be rebuilt: pass a torch DataLoader with "
                "shuffle=False."
            )
        out.append(
            DataLoader(
                dl.dataset,
                batch_size=dl.batch_size,
                sampler=SequentialSampler(dl.dataset),
                num_workers=dl.num_workers,
                collate_fn=dl.collate_fn,
                pin_memory=dl.pin_memory,
                drop_last=dl.drop_last,
                timeout=dl.timeout,
                worker_init_fn=dl.worker_init_fn,
                multiprocessing_context=dl.multiprocessing_context,
                generator=dl.generator,
                prefetch_factor=dl.prefetch_factor,
                persistent_workers=dl.persistent_workers,
                pin_memory_device=dl.pin_memory_device,
            )
        )
    return out


def reload_every(value: Any) -> int:
    """Returns:
    ``reload_dataloaders_every_n_epochs`` checked as Lightning checks it (an int >= 0; 0 is off).

    Raises:
        MisconfigurationException: anything else (Lightning's message).
    """
    if not isinstance(value, int) or value < 0:
        raise MisconfigurationException(f"`reload_dataloaders_every_n_epochs` should be an int >= 0, got {value}.")
    return int(value)


def reload_due(every: int, current_epoch: int, last: float) -> bool:
    """Whether a dataloader loaded at epoch ``last`` is due again (Lightning's ``_should_reload_*_dl``).

    Args:
        every: ``reload_dataloaders_every_n_epochs`` (0: never).
        current_epoch: the trainer's ``current_epoch``.
        last: the epoch of the last load.

    Returns:
        ``True`` when ``every`` epochs or more have passed.
    """
    return bool(every and current_epoch - last >= every)


def timer_callbacks(max_time: Any, callbacks: list[Any]) -> list[Any]:
    """The Timer ``Trainer(max_time=...)`` adds (Lightning's callback connector).

    Args:
        max_time: ``"DD:HH:MM:SS"``, a ``timedelta``, a dict of ``timedelta`` arguments, or ``None``.
        callbacks: the callbacks so far (the user's and the default checkpoint).

    Returns:
        ``[Timer(duration=max_time, interval="step")]``; none without ``max_time`` or when the
        callbacks already hold a Timer (then Lightning's message says it is ignored).

    Raises:
        MisconfigurationException: ``max_time`` is malformed (the Timer's message).
    """
    if max_time is None:
        return []
    if any(is_kind(cb, Timer, "Timer") for cb in callbacks):
        log.info("Ignoring `Trainer(max_time=...)`, callbacks list already contains a Timer.")
        return []  # (max_time is then not even parsed, as in Lightning)
    return [Timer(duration=max_time, interval="step")]


def default_max_epochs(max_epochs: int | None, max_steps: int, max_time: Any, callbacks: Any) -> int | None:
    """``max_epochs`` with Lightning's rule for a timed run: no 1000-epoch default under a Timer.

    Lightning (``_parse_loop_limits``) trains for 1000 epochs when neither ``max_epochs`` nor
    ``max_steps`` is set, unless a Timer is among the callbacks: then without an epoch limit.

    Args:
        max_epochs: the argument as passed.
        max_steps: the argument as passed.
        max_time: the argument as passed (it adds a Timer).
        callbacks: the ``callbacks`` argument as passed (one callback, a list, or ``None``).

    Returns:
        ``-1`` for an unset ``max_epochs`` in a timed run without ``max_steps``; else ``max_epochs``.
    """
    if max_epochs is not None or max_steps != -1:
        return max_epochs
    given = callbacks if isinstance(callbacks, (list, tuple)) else [callbacks]
    if max_time is not None or any(is_kind(cb, Timer, "Timer") for cb in given if cb is not None):
        return -1
    return None
