"""The ``Logger`` base class, Lightning's interface (``lightning.pytorch.loggers.logger``).

lightcycle's Trainer drives any object with a ``log_metrics`` method (duck typing: a
Lightning logger instance works unchanged); this base class gives a new logger
Lightning's defaults for the rest of the interface.
"""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from argparse import Namespace
from collections.abc import Callable
from typing import Any

from torch import Tensor
from torch.nn import Module


class Logger(ABC):
    """Base class for experiment loggers (Lightning's ``Logger``, with its defaults).

    A subclass implements :attr:`name`, :attr:`version`, :meth:`log_metrics` and
    :meth:`log_hyperparams`; the rest does nothing (or, for :meth:`finalize`, calls
    :meth:`save`) unless overridden.
    """

    @property
    @abstractmethod
    def name(self) -> str | None:
        """The experiment name."""

    @property
    @abstractmethod
    def version(self) -> int | str | None:
        """The experiment version."""

    @property
    def root_dir(self) -> str | None:
        """The folder holding every version of the experiment, or ``None`` (nothing saved locally)."""
        return None

    @property
    def log_dir(self) -> str | None:
        """The folder of this version of the experiment, or ``None`` (nothing saved locally)."""
        return None

    @property
    def save_dir(self) -> str | None:
        """The root folder of the logs, or ``None`` when the logger saves nothing locally."""
        return None

    @property
    def group_separator(self) -> str:
        """The separator the logger groups metric names by (``"/"``)."""
        return "/"

    @abstractmethod
    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        """Record metrics.

        Args:
            metrics: metric names and values (the Trainer passes Python numbers).
            step: the step they belong to (the Trainer passes its count of batches that
                stepped the optimizer, as Lightning does).
        """

    @abstractmethod
    def log_hyperparams(self, params: dict[str, Any] | Namespace, *args: Any, **kwargs: Any) -> None:
        """Record hyper-parameters.

        Args:
            params: a mapping or an ``argparse.Namespace``.
            args: logger-specific positional arguments.
            kwargs: logger-specific keyword arguments.
        """

    def log_graph(self, model: Module, input_array: Tensor | None = None) -> None:  # noqa: B027 (optional hook, a no-op as in Lightning)
        """Record the model's graph (default: nothing).

        Args:
            model: the module (its ``forward`` is traced).
            input_array: the input of ``forward``; ``model.example_input_array`` when ``None``.
        """

    def save(self) -> None:  # noqa: B027 (optional hook, a no-op as in Lightning)
        """Write what was logged to storage (default: nothing)."""

    def finalize(self, status: str) -> None:
        """End the experiment (default: :meth:`save`).

        Args:
            status: how the run ended: ``"success"`` or ``"failed"``.
        """
        self.save()

    def after_save_checkpoint(self, checkpoint_callback: Any) -> None:  # noqa: B027 (optional hook, a no-op as in Lightning)
        """Called by ``ModelCheckpoint`` after it saved a checkpoint (default: nothing).

        Args:
            checkpoint_callback: the ``ModelCheckpoint`` instance.
        """


class _DummyExperiment:
    """Accepts every call and does nothing (what ``experiment`` is on a rank other than 0)."""

    def nop(self, *args: Any, **kw: Any) -> None:
        """Do nothing."""

    def __getattr__(self, _: Any) -> Callable[..., None]:
        return self.nop

    def __getitem__(self, idx: int) -> _DummyExperiment:
        return self

    def __setitem__(self, *args: Any, **kwargs: Any) -> None:
        pass


DummyExperiment = _DummyExperiment
"""Lightning's public name for the do-nothing experiment (``lightning.pytorch.loggers.logger.DummyExperiment``)."""


class DummyLogger(Logger):
    """A logger that records nothing and accepts every call (Lightning's ``DummyLogger``).

    What ``fast_dev_run`` puts in place of the loggers, so that user code which logs, reads
    ``trainer.logger.experiment`` or calls a logger's own methods still runs.
    """

    def __init__(self) -> None:
        self._experiment = DummyExperiment()

    @property
    def experiment(self) -> DummyExperiment:
        """The do-nothing experiment."""
        return self._experiment

    @property
    def name(self) -> str:
        """Empty: there is no experiment."""
        return ""

    @property
    def version(self) -> str:
        """Empty: there is no experiment."""
        return ""

    def log_metrics(self, *args: Any, **kwargs: Any) -> None:
        """Drop the metrics."""

    def log_hyperparams(self, *args: Any, **kwargs: Any) -> None:
        """Drop the hyper-parameters."""

    def __getitem__(self, idx: int) -> DummyLogger:
        # ``trainer.loggers[0]``-style indexing on the logger itself, as Lightning allows
        return self

    def __getattr__(self, name: str) -> Callable[..., None]:
        """Any other method: a no-op, so logger-specific calls (``log_image``, ...) do not fail.

        Args:
            name: the attribute asked for.

        Returns:
            A function that accepts anything and returns None.

        Raises:
            AttributeError: for dunder names, so copy/pickle protocols see a plain object
                (Lightning answers those with a no-op too, which breaks ``copy.deepcopy``).
        """
        if name.startswith("__"):
            raise AttributeError(name)

        def method(*args: Any, **kwargs: Any) -> None:
            return None

        return method


def rank_zero_experiment(fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Decorate a logger's ``experiment`` property getter (Lightning's ``@rank_zero_experiment``).

    Lightning returns a do-nothing experiment on processes other than rank 0; lightcycle
    runs one process, which is rank 0, so the getter always runs.

    Args:
        fn: the getter.

    Returns:
        The wrapped getter.
    """

    @functools.wraps(fn)
    def experiment(self: Any) -> Any:
        return fn(self)

    return experiment
