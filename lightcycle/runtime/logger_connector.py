"""The hand-off from the Trainer to its loggers: which logger, which calls, which step.

Lightning's ``_LoggerConnector`` rules, kept in one place for the Trainer and the
:class:`~lightcycle.custom_loop.loop_driver.LoopDriver`:

- Values reach ``log_metrics`` as Python numbers, with ``step`` = the fit loop's count of
  batches that stepped the optimizer (``fit_loop.batches_that_stepped``, Lightning's
  ``_batches_that_stepped``), not ``global_step``; an ``epoch`` key (``current_epoch``) is
  added unless the metrics carry their own ``step`` (which then is the step); each
  ``log_metrics`` is followed by the logger's ``save()``, so every row is on disk at once.
- Training step metrics: after ``on_train_batch_end``, only on batches that step the
  optimizer (automatic optimization), when ``batches_that_stepped + 1`` is a multiple of
  ``log_every_n_steps`` or ``should_stop`` is set. Training epoch metrics: at the step of
  the epoch's last batch.
- Evaluation step metrics: after every ``on_*_batch_end`` outside the sanity check, at the
  step "evaluation batches of this dataloader seen so far in this entry point", without
  an ``epoch`` key. Evaluation epoch metrics: at ``batches_that_stepped``.
"""

from __future__ import annotations

import importlib.util
import os
import warnings
from collections.abc import Iterable, Mapping
from typing import Any

from torch import Tensor

from lightcycle.errors import MisconfigurationException
from lightcycle.loggers import CSVLogger, TensorBoardLogger

_CSV_DEFAULT_WARNING = (
    "Starting from v1.9.0, `tensorboardX` has been removed as a dependency of the `pytorch_lightning`"
    " package, due to potential conflicts with other packages in the ML ecosystem. For this reason,"
    " `logger=True` will use `CSVLogger` as the default logger, unless the `tensorboard`"
    " or `tensorboardX` packages are found."
    " Please `pip install lightcycle[tensorboard]` or one of them to enable TensorBoard support by default"
)


def _slurm_job_id() -> int | None:
    # Lightning's SLURMEnvironment.job_id(): the default logger's version inside a batch job
    # (None in an interactive one, whose name is "bash" or "interactive").
    if os.environ.get("SLURM_JOB_NAME") in ("bash", "interactive"):
        return None
    job_id = os.environ.get("SLURM_JOB_ID")
    try:
        return int(job_id) if job_id is not None else None
    except ValueError:
        return None


def default_logger(root_dir: str) -> Any:
    """The logger of ``logger=True``, chosen as Lightning 2.6 chooses it.

    A :class:`~lightcycle.loggers.TensorBoardLogger` when ``tensorboard`` or ``tensorboardX``
    is importable (version: the SLURM job id inside a SLURM batch job), else a
    :class:`~lightcycle.loggers.CSVLogger`, with Lightning's warning.

    Args:
        root_dir: the Trainer's ``default_root_dir``.

    Returns:
        The logger.
    """
    if importlib.util.find_spec("tensorboard") is not None or importlib.util.find_spec("tensorboardX") is not None:
        return TensorBoardLogger(save_dir=root_dir, version=_slurm_job_id())
    warnings.warn(_CSV_DEFAULT_WARNING, UserWarning, stacklevel=4)
    return CSVLogger(save_dir=root_dir)


def make_loggers(logger: Any, root_dir: str, owner: str = "Trainer") -> list[Any]:
    """``trainer.loggers`` from the ``logger`` argument (Lightning's ``configure_logger``).

    Args:
        logger: ``True`` (:func:`default_logger`), ``False``/``None`` (none), a logger, or
            an iterable of loggers: any object with a ``log_metrics`` method.
        root_dir: the folder of the default logger.
        owner: who was given the argument (for the message).

    Returns:
        The loggers.

    Raises:
        MisconfigurationException: an item has no ``log_metrics`` method.
    """
    if logger is True:
        return [default_logger(root_dir)]
    if not logger:
        return []
    items = list(logger) if isinstance(logger, Iterable) and not hasattr(logger, "log_metrics") else [logger]
    for item in items:
        if not callable(getattr(item, "log_metrics", None)):
            raise MisconfigurationException(
                f"{owner}(logger=...) got {type(item).__name__}, which has no log_metrics(metrics, step) method. "
                "Pass True, False, a lightcycle.loggers logger (CSVLogger, TensorBoardLogger), a Lightning "
                "logger, or an object with log_metrics."
            )
    return items


_FILE_LOGGERS = frozenset(("CSVLogger", "TensorBoardLogger"))
_FILE_LOGGER_MODULES = ("lightcycle.loggers.", "pytorch_lightning.loggers.", "lightning.pytorch.loggers.")


def _is_file_logger(logger: Any) -> bool:
    # Lightning's isinstance(logger, (TensorBoardLogger, CSVLogger)), for its classes and
    # ours (and their subclasses), without importing Lightning.
    return any(
        c.__name__ in _FILE_LOGGERS and c.__module__.startswith(_FILE_LOGGER_MODULES) for c in type(logger).__mro__
    )


def log_dir(loggers: list[Any], default_root_dir: str) -> str | None:
    """``trainer.log_dir`` (Lightning's rule).

    Args:
        loggers: the trainer's loggers.
        default_root_dir: the Trainer's ``default_root_dir``.

    Returns:
        The first logger's ``log_dir`` for a CSV or TensorBoard logger, its ``save_dir``
        for another (``None`` when it has none); ``default_root_dir`` without loggers.
    """
    if not loggers:
        return default_root_dir
    first = loggers[0]
    return str(first.log_dir) if _is_file_logger(first) else getattr(first, "save_dir", None)


def _scalar(value: Any) -> Any:
    # Lightning's convert_tensors_to_scalars: one-element tensors become Python numbers.
    if isinstance(value, Tensor):
        if value.numel() != 1:
            raise ValueError(
                f"The metric `{value}` does not contain a single element, thus it cannot be converted to a scalar."
            )
        return value.item()
    if isinstance(value, Mapping):
        return {k: _scalar(v) for k, v in value.items()}
    return value


def send(t: Any, metrics: Mapping[str, Any], step: int | None = None) -> None:
    """One ``log_metrics`` + ``save`` on every logger (Lightning's ``_LoggerConnector.log_metrics``).

    Args:
        t: the trainer (``loggers``, ``fit_loop``, ``current_epoch``).
        metrics: the metrics (tensors or numbers); nothing is sent when empty.
        step: the step; ``None``: the metrics' own ``step`` value if they have one, else
            ``batches_that_stepped`` with an ``epoch`` key added.
    """
    loggers = t.loggers
    if not loggers or not metrics or not t.is_global_zero:  # Lightning's loggers write on rank 0 only
        return
    scalars = {k: _scalar(v) for k, v in metrics.items()}
    if step is None:
        own = scalars.pop("step", None)
        if own is not None:
            step = int(own)
        else:
            scalars.setdefault("epoch", t.current_epoch)
            step = t.fit_loop.batches_that_stepped
    for lg in loggers:
        lg.log_metrics(metrics=scalars, step=step)
        lg.save()


def log_train_step(t: Any, metrics: Mapping[str, Any]) -> None:
    """Training step metrics of a batch that stepped the optimizer, every ``log_every_n_steps``.

    Args:
        t: the trainer.
        metrics: the batch's step metrics.
    """
    if train_step_due(t):
        send(t, metrics)


def train_step_due(t: Any) -> bool:
    """Whether a batch that stepped now sends its step metrics (Lightning's ``log_every_n_steps`` rule).

    Args:
        t: the trainer (or custom-loop driver).

    Returns:
        True every ``log_every_n_steps`` batches that stepped, and when the run stops.
    """
    every = t.log_every_n_steps
    return bool(every and ((t.fit_loop.batches_that_stepped + 1) % every == 0 or t.should_stop))


def log_train_epoch(t: Any, metrics: Mapping[str, Any]) -> None:
    """Training epoch metrics, at the step of the epoch's last batch (Lightning: ``_batches_that_stepped - 1``)."""
    if not metrics or not t.loggers:
        return
    loop = t.fit_loop
    loop.batches_that_stepped -= 1
    try:
        send(t, metrics)
    finally:
        loop.batches_that_stepped += 1


def save_on_stop(t: Any) -> None:
    """After a training batch that set ``should_stop``: every logger's ``save()`` (Lightning's rule)."""
    if not t.is_global_zero:
        return
    for lg in t.loggers:
        save = getattr(lg, "save", None)
        if callable(save):
            save()


class EvalSteps:
    """The step of evaluation step metrics: batches logged so far per dataloader in one entry point.

    Lightning's evaluation loops count them in ``_seen_batches_per_dataloader``, reset when
    an entry point starts (a fit's validation runs continue one count across epochs).
    """

    __slots__ = ("seen",)

    def __init__(self) -> None:
        self.seen: dict[int, int] = {}
        """Batches counted per dataloader index (one dict for the host's life: a run may hold it)."""

    def reset(self) -> None:
        """Start counting again (at the start of an entry point)."""
        self.seen.clear()

    def log(self, t: Any, metrics: Mapping[str, Any], dataloader_idx: int) -> None:
        """Send one evaluation batch's step metrics and count the batch.

        Args:
            t: the trainer.
            metrics: the batch's step metrics (nothing is sent when empty).
            dataloader_idx: the index of the batch's dataloader (0 for a single one).
        """
        seen = self.seen.get(dataloader_idx, 0)
        send(t, metrics, step=seen)
        self.seen[dataloader_idx] = seen + 1
