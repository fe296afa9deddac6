"""``TensorBoardLogger``: TensorBoard event files and ``hparams.yaml`` in Lightning's layout.

Written through ``torch.utils.tensorboard`` (which needs the ``tensorboard`` package:
``pip install lightcycle[tensorboard]``), else through ``tensorboardX`` when only that is
installed, as Lightning does.
"""

from __future__ import annotations

import importlib.util
import os
import warnings
from argparse import Namespace
from collections.abc import Mapping
from typing import Any

from torch import Tensor
from torch.nn import Module

from lightcycle.loggers._files import (
    HPARAMS_FILE,
    VersionedFolder,
    add_prefix,
    convert_params,
    flatten_params,
    sanitize_params,
    version_dir,
    write_hparams_yaml,
)
from lightcycle.loggers.logger import Logger, rank_zero_experiment

_GRAPH_INPUT_UNSET = (
    "Could not log computational graph to TensorBoard: The `model.example_input_array` attribute"
    " is not set or `input_array` was not given."
)


def tensorboard_available() -> bool:
    """Whether the ``tensorboard`` package is importable (without importing it)."""
    return importlib.util.find_spec("tensorboard") is not None


def tensorboardx_available() -> bool:
    """Whether the ``tensorboardX`` package is importable (without importing it)."""
    return importlib.util.find_spec("tensorboardX") is not None


class _TensorBoardAvailable:
    """Truthy when ``tensorboard`` is importable, asked at each test (not at import: no probe then).

    A module-level name, as Lightning's ``_TENSORBOARD_AVAILABLE``: LightningCLI's signature reader
    evaluates ``if NAME:`` over such a global to pick the ``SummaryWriter`` import it follows.
    """

    def __bool__(self) -> bool:
        return tensorboard_available()


_TENSORBOARD_AVAILABLE = _TensorBoardAvailable()


def _writer_module(sub: str) -> Any:
    # torch's writer needs the tensorboard package; tensorboardX stands in for it (Lightning's order).
    return importlib.import_module(("torch.utils.tensorboard" if tensorboard_available() else "tensorboardX") + sub)


class TensorBoardLogger(VersionedFolder, Logger):
    """Logs to ``<save_dir>/<name>/version_<n>[/<sub_dir>]`` in TensorBoard's event format.

    Lightning's logger: scalars with ``add_scalar`` (a dict value with ``add_scalars``),
    hyper-parameters in TensorBoard's hparams plugin (with an ``hp_metric`` of -1 unless
    ``default_hp_metric=False``) and in ``hparams.yaml`` (written on :meth:`save` when the
    folder exists and the file does not), the graph when ``log_graph=True``.

    Args:
        save_dir: the root folder.
        name: the experiment folder (default ``"lightning_logs"``); ``None`` or ``""``:
            versions directly under ``save_dir``.
        version: an int (folder ``version_<n>``), a string (the folder name), or ``None``
            (default): the next free ``version_<n>``.
        log_graph: add the module's graph (needs ``example_input_array``; default ``False``).
        default_hp_metric: log ``hp_metric = -1`` with the hyper-parameters when no metric
            is given (default ``True``).
        prefix: put before every metric key, joined with ``"-"`` (default ``""``).
        sub_dir: a folder inside the version folder for the event files (default ``None``).
        kwargs: passed to ``SummaryWriter`` (e.g. ``max_queue``, ``flush_secs``).

    Raises:
        ModuleNotFoundError: neither ``tensorboard`` nor ``tensorboardX`` is installed.
    """

    LOGGER_JOIN_CHAR = "-"
    NAME_HPARAMS_FILE = HPARAMS_FILE

    def __init__(
        self,
        save_dir: str | os.PathLike[str],
        name: str | None = "lightning_logs",
        version: int | str | None = None,
        log_graph: bool = False,
        default_hp_metric: bool = True,
        prefix: str = "",
        sub_dir: str | os.PathLike[str] | None = None,
        **kwargs: Any,
    ) -> None:
        has_tb = tensorboard_available()
        if not has_tb and not tensorboardx_available():
            raise ModuleNotFoundError(
                "TensorBoardLogger needs the `tensorboard` package (or `tensorboardX`), which is not installed. "
                "Install it with `pip install lightcycle[tensorboard]`, or use `lightcycle.loggers.CSVLogger`."
            )
        super().__init__()
        self._save_dir = os.fspath(save_dir)
        self._name = name or ""
        self._version = version
        self._sub_dir = None if sub_dir is None else os.fspath(sub_dir)
        self._default_hp_metric = default_hp_metric
        self._prefix = prefix
        self._kwargs = kwargs
        self._experiment: Any = None
        if log_graph and not has_tb:
            warnings.warn(
                "You set `TensorBoardLogger(log_graph=True)` but `tensorboard` is not available.",
                UserWarning,
                stacklevel=2,
            )
        self._log_graph = log_graph and has_tb
        self.hparams: dict[str, Any] = {}

    @property
    def sub_dir(self) -> str | None:
        """The folder inside the version folder that holds the event files, if any."""
        return self._sub_dir

    @property
    def log_dir(self) -> str:
        """``<save_dir>/<name>/version_<n>[/<sub_dir>]`` (``~`` and ``$VARS`` expanded)."""
        path = version_dir(self.root_dir, self.version)
        if self._sub_dir is not None:
            path = os.path.join(path, self._sub_dir)
        return os.path.expanduser(os.path.expandvars(path))

    @property
    @rank_zero_experiment
    def experiment(self) -> Any:
        """The ``SummaryWriter`` (created, with the folder, on first use): ``add_image``, ``add_histogram``..."""
        if self._experiment is None:
            if self.root_dir:
                os.makedirs(self.root_dir, exist_ok=True)
            # Spelled as imports under a module-level flag (not _writer_module), so that LightningCLI's
            # signature reader follows **kwargs into SummaryWriter's parameters (comment, purge_step,
            # max_queue, flush_secs, filename_suffix) as it does for Lightning's logger.
            if _TENSORBOARD_AVAILABLE:
                # deferred: heavy optional dependency tensorboard
                from torch.utils.tensorboard import SummaryWriter
            else:
                # deferred: heavy optional dependency tensorboardX
                from tensorboardX import SummaryWriter  # type: ignore[import-not-found,no-redef,unused-ignore]
            self._experiment = SummaryWriter(log_dir=self.log_dir, **self._kwargs)
        return self._experiment

    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        """``add_scalar`` per metric (``add_scalars`` for a dict value), keys with the prefix.

        Args:
            metrics: metric names and values (numbers, one-element tensors, or dicts of them).
            step: the global step TensorBoard records.

        Raises:
            ValueError: a value TensorBoard cannot write as a scalar (Lightning's message).
        """
        for k, v in add_prefix(metrics, self._prefix, self.LOGGER_JOIN_CHAR).items():
            if isinstance(v, Tensor):
                v = v.item()
            if isinstance(v, dict):
                self.experiment.add_scalars(k, v, step)
                continue
            try:
                self.experiment.add_scalar(k, v, step)
            except Exception as ex:
                raise ValueError(
                    f"\n you tried to log {v} which is currently not supported. Try a dict or a scalar/tensor."
                ) from ex

    def log_hyperparams(
        self,
        params: dict[str, Any] | Namespace,
        metrics: dict[str, Any] | float | None = None,
        step: int | None = None,
    ) -> None:
        """Record hyper-parameters (``hparams.yaml`` and TensorBoard's hparams plugin).

        Args:
            params: a mapping or an ``argparse.Namespace`` (nested mappings are flattened
                to ``a/b`` keys for TensorBoard).
            metrics: metrics to show with them; ``None``: ``{"hp_metric": -1}`` when
                ``default_hp_metric``, else nothing is sent to TensorBoard; a number:
                ``{"hp_metric": number}``.
            step: the step of those metrics.
        """
        params = convert_params(params)
        self.hparams.update(params)
        flat = sanitize_params(flatten_params(params))
        if metrics is None:
            metrics = {"hp_metric": -1} if self._default_hp_metric else None
        elif not isinstance(metrics, dict):
            metrics = {"hp_metric": metrics}
        if not metrics:
            return
        self.log_metrics(metrics, step)
        hparams = _writer_module(".summary").hparams
        exp, ssi, sei = hparams(flat, metrics)
        writer = self.experiment._get_file_writer()
        writer.add_summary(exp, step)
        writer.add_summary(ssi, step)
        writer.add_summary(sei, step)

    def log_graph(self, model: Module, input_array: Any = None) -> None:
        """Add the module's graph when ``log_graph=True`` (traced on ``example_input_array``).

        The input goes through the module's batch-transfer hooks first, as a batch does.

        Args:
            model: the module.
            input_array: the input of ``forward``; ``model.example_input_array`` when ``None``.
        """
        if not self._log_graph:
            return
        if input_array is None:
            input_array = getattr(model, "example_input_array", None)
        if input_array is None:
            warnings.warn(_GRAPH_INPUT_UNSET, UserWarning, stacklevel=2)
            return
        if not isinstance(input_array, (Tensor, tuple)):
            warnings.warn(
                "Could not log computational graph to TensorBoard: The `input_array` or `model.example_input_array`"
                f" has type {type(input_array)} which can't be traced by TensorBoard. Make the input array a tuple"
                " representing the positional arguments to the model's `forward()` implementation.",
                UserWarning,
                stacklevel=2,
            )
            return
        before = getattr(model, "on_before_batch_transfer", None)
        transfer = getattr(model, "transfer_batch_to_device", None)
        after = getattr(model, "on_after_batch_transfer", None)
        if callable(before) and callable(transfer) and callable(after):
            device = getattr(model, "device", None)
            input_array = after(transfer(before(input_array, 0), device, 0), 0)
        self.experiment.add_graph(model, input_array)

    def save(self) -> None:
        """Flush the event file; write ``hparams.yaml`` when the folder exists and the file does not."""
        self.experiment.flush()
        path = os.path.join(self.log_dir, self.NAME_HPARAMS_FILE)
        if os.path.isdir(self.log_dir) and not os.path.isfile(path):
            write_hparams_yaml(path, self.hparams)

    def finalize(self, status: str) -> None:
        """Flush and close the writer; on ``"success"`` also :meth:`save`.

        Args:
            status: how the run ended.
        """
        if self._experiment is not None:
            self._experiment.flush()
            self._experiment.close()
        if status == "success":
            self.save()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_experiment"] = None  # a SummaryWriter does not pickle
        return state
