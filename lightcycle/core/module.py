"""LightningModule: a ``torch.nn.Module`` with Lightning's hooks, logging and optimizer helpers.

The class is assembled from modules by job: the hook stubs (:mod:`lightcycle.core.hooks`),
the properties read from the Trainer (:mod:`lightcycle.core.module_properties`), optimization
(:mod:`lightcycle.core.module_optimization`), loading a checkpoint
(:mod:`lightcycle.core.checkpoint_loading`) and the hyper-parameters
(:mod:`lightcycle.core.hparams`). This module keeps ``self.log`` and ``self.log_dict``, the step
methods and the hooks that switch the module between train and eval mode.

Hooks whose base implementation does nothing carry ``@noop_hook`` so the runtime can skip
them when a subclass does not override them. Everything else keeps Lightning 2.6's default
behaviour and messages.
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import IO, TYPE_CHECKING, Any, cast

import torch
from torch import Tensor

from lightcycle.core.checkpoint_loading import load_module_from_checkpoint
from lightcycle.core.fx_validator import check_logging_allowed
from lightcycle.core.hooks import CheckpointHooks, DataHooks, ModelHooks
from lightcycle.core.hparams import HyperparametersMixin, restricted_classmethod
from lightcycle.core.metric_objects import (
    collection_items,
    is_metric,
    is_metric_collection,
    resolve_metric_attribute,
)
from lightcycle.core.module_optimization import ModuleOptimization
from lightcycle.errors import MisconfigurationException

if TYPE_CHECKING:
    from os import PathLike

    from typing_extensions import Self


class LightningModule(ModuleOptimization, ModelHooks, DataHooks, CheckpointHooks, HyperparametersMixin):
    """Organises a model's training, evaluation and prediction code for the Trainer.

    Drop-in compatible with ``lightning.pytorch.LightningModule``: the same hooks, hook
    signatures, defaults and properties.
    """

    CHECKPOINT_HYPER_PARAMS_KEY = "hyper_parameters"
    CHECKPOINT_HYPER_PARAMS_NAME = "hparams_name"
    CHECKPOINT_HYPER_PARAMS_TYPE = "hparams_type"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Set by the runtime to the name of the hook being run (checked by `self.log`).
        self._current_fx_name: str | None = None
        # id(metric) -> attribute name of the torchmetrics objects, built when one is first logged
        self._metric_attributes: dict[int, str] | None = None

    # ------------------------------------------------------------------ logging

    def print(self, *args: Any, **kwargs: Any) -> None:
        """``print`` from global rank 0 only, through the progress bar when it has one.

        Args:
            *args: as for the built-in ``print``.
            **kwargs: as for the built-in ``print``.
        """
        trainer = self._trainer
        if trainer is not None and not getattr(trainer, "is_global_zero", True):
            return
        progress_bar = getattr(trainer, "progress_bar_callback", None) if trainer is not None else None
        if progress_bar is not None and getattr(progress_bar, "is_enabled", False):
            progress_bar.print(*args, **kwargs)
        else:
            print(*args, **kwargs)

    def log(
        self,
        name: str,
        value: Any,
        prog_bar: bool = False,
        logger: bool | None = None,
        on_step: bool | None = None,
        on_epoch: bool | None = None,
        reduce_fx: str | Callable[..., Any] = "mean",
        enable_graph: bool = False,
        sync_dist: bool = False,
        sync_dist_group: Any | None = None,
        add_dataloader_idx: bool = True,
        batch_size: int | None = None,
        metric_attribute: str | None = None,
        rank_zero_only: bool = False,
    ) -> None:
        """Log a scalar (a number, a one-element tensor or a ``torchmetrics.Metric``) from the current hook.

        A ``torchmetrics.Metric`` is updated by the caller (``metric(preds, target)``); the step
        value is its last ``forward`` result, the epoch value ``metric.compute()``, and the
        Trainer calls its ``reset()`` when Lightning does (see ``docs/torchmetrics.md``).

        Args:
            name: the key.
            value: a number, a one-element tensor or a ``torchmetrics.Metric``.
            prog_bar: show it in the progress bar.
            logger: send it to the loggers (``None``: yes).
            on_step: log the per-step value (default depends on the hook).
            on_epoch: log the epoch aggregate (default depends on the hook).
            reduce_fx: epoch reduction (``"mean"``, ``"sum"``, ``"max"``, ``"min"`` or a callable).
            enable_graph: accepted for compatibility; logged values are always detached.
            sync_dist: reduce across processes with ``reduce_fx`` (mean for callables other than
                sum/max/min) when logged; on one device, as in Lightning, no reduction happens
                (metric objects synchronise themselves in ``compute``).
            sync_dist_group: the process group for ``sync_dist``.
            add_dataloader_idx: suffix ``/dataloader_idx_N`` with several dataloaders.
            batch_size: batch size for the epoch mean (inferred when ``None``; unused for metric objects).
            metric_attribute: the module attribute holding a logged ``torchmetrics.Metric`` (found by
                identity among the module's submodules when ``None``).
            rank_zero_only: the value is only logged on rank 0.

        Raises:
            ValueError: a dict, a ``MetricCollection``, a non-scalar tensor or another unsupported type.
            MisconfigurationException: logging where it is not allowed, or a metric object that is
                not an attribute of the module.
        """
        trainer = self._trainer
        # Steady path: the same call site again (same hook, name, stage, dataloader, arguments,
        # and a plain tensor of the same dtype and device kind). Every check below passed for it
        # before and depends on nothing else; the store remembered it only from a full call that
        # succeeded (so a Trainer with a result collection, not barebones, a hook that may log).
        # A step-only float CPU site maps to its entry: keep the number (exact; made a tensor
        # when a view reads it, results.Entry.step_tensor), no tensor op, no call into the
        # store. Other remembered sites map to None: the store records them (log_site). The
        # logger=True warning is checked on every call. Written for the bytecode count: one
        # tuple, one lookup, no call but ``item``.
        if value.__class__ is Tensor and not (logger and getattr(trainer, "logger", None) is None):
            try:
                site = (
                    self._current_fx_name,
                    name,
                    trainer.state.stage,  # type: ignore[union-attr]  # None: AttributeError, below
                    trainer._current_dataloader_idx,  # type: ignore[union-attr]
                    prog_bar,
                    logger,
                    on_step,
                    on_epoch,
                    reduce_fx,
                    add_dataloader_idx,
                    sync_dist,
                    value.dtype,
                    value.is_cpu,
                )
                entry = trainer._results._steady[site]  # type: ignore[union-attr]
                if entry is not None:
                    entry.step_value = value.item()
                    trainer._results._gen += 1  # type: ignore[union-attr]
                    return
            except KeyError:  # a new site: the full path checks it (and remembers it)
                pass
            except (AttributeError, TypeError):
                # no Trainer or no result collection (the full path warns or raises), or an
                # unhashable argument (a reduce_fx list): such a site is never remembered
                site = None
            except RuntimeError:
                pass  # ``item`` of a tensor of several elements: the full path raises the ValueError
            else:
                if trainer._results.log_site(site, value, batch_size):  # type: ignore[union-attr,arg-type]
                    return
        else:
            site = None
        # Values are always detached; sync_dist applies below (one device: Lightning's no-op).
        del enable_graph
        # `metric` is the value when it is a torchmetrics.Metric; tensors skip the (slower) type checks
        metric = None if isinstance(value, Tensor) else self._check_loggable(name, value)
        if trainer is None:
            # Not an error, so that `*_step` methods can be tested without a Trainer.
            warnings.warn(
                "You are trying to `self.log()` but the `self.trainer` reference is not registered on the model"
                " yet. This is most likely because the model hasn't been passed to the `Trainer`",
                UserWarning,
                stacklevel=2,
            )
            return
        if getattr(trainer, "barebones", False):
            warnings.warn(
                "You are trying to `self.log()` but `Trainer(barebones=True)` is configured."
                " Logging can impact raw speed so it is disabled under this setting.",
                UserWarning,
                stacklevel=2,
            )
            return
        results = trainer._results
        if results is None:
            raise MisconfigurationException(
                "You are trying to `self.log()` but the loop's result collection is not registered"
                " yet. This is most likely because you are trying to log in a `predict` hook,"
                " but it doesn't support logging"
            )
        fx_name = self._current_fx_name
        if fx_name is None:
            raise MisconfigurationException(
                "You are trying to `self.log()` but it is not managed by the `Trainer` control flow"
            )
        on_step, on_epoch = check_logging_allowed(fx_name, on_step, on_epoch)
        if add_dataloader_idx and "/dataloader_idx_" in name:
            raise MisconfigurationException(
                f"You called `self.log` with the key `{name}`"
                " but it should not contain information about `dataloader_idx` when `add_dataloader_idx=True`"
            )
        stage = trainer.state.stage
        if stage is None:
            raise MisconfigurationException(
                "You are trying to `self.log()` but it is not managed by the `Trainer` control flow"
            )
        if not isinstance(value, Tensor) and isinstance(value, numbers.Number) and not isinstance(value, (int, float)):
            value = float(value)  # type: ignore[arg-type]  # e.g. numpy scalars
        if logger and getattr(trainer, "logger", None) is None:
            warnings.warn(
                f"You called `self.log({name!r}, ..., logger=True)` but have no logger configured. You can enable"
                " one by doing `Trainer(logger=ALogger(...))`",
                UserWarning,
                stacklevel=2,
            )
        if logger is None:
            logger = True
        # The suffix applies only with several dataloaders: the Trainer keeps the index None otherwise.
        dataloader_idx = trainer._current_dataloader_idx
        if metric is not None:
            results.log_metric(
                fx_name,
                name,
                metric,
                stage=stage,
                metric_attribute=resolve_metric_attribute(self, name, metric, metric_attribute),
                prog_bar=prog_bar,
                logger=logger,
                on_step=on_step,
                on_epoch=on_epoch,
                reduce_fx=reduce_fx,
                dataloader_idx=dataloader_idx,
                add_dataloader_idx=add_dataloader_idx,
            )
            return
        if sync_dist and _distributed(trainer):
            # a synced value is never recorded from a remembered site (the key does not hold
            # rank_zero_only or the group); in one process sync_dist changes nothing
            site = None
            if not rank_zero_only:  # Lightning: rank_zero_only turns the sync off
                value = _synced(trainer, value, reduce_fx, sync_dist_group)
        results.log(
            fx_name,
            name,
            value,
            prog_bar=prog_bar,
            logger=logger,
            on_step=on_step,
            on_epoch=on_epoch,
            reduce_fx=reduce_fx,
            batch_size=batch_size,
            dataloader_idx=dataloader_idx,
            add_dataloader_idx=add_dataloader_idx,
            stage=stage,
            site=site,
        )

    def log_dict(
        self,
        dictionary: Mapping[str, Any] | Any,
        prog_bar: bool = False,
        logger: bool | None = None,
        on_step: bool | None = None,
        on_epoch: bool | None = None,
        reduce_fx: str | Callable[..., Any] = "mean",
        enable_graph: bool = False,
        sync_dist: bool = False,
        sync_dist_group: Any | None = None,
        add_dataloader_idx: bool = True,
        batch_size: int | None = None,
        rank_zero_only: bool = False,
    ) -> None:
        """Log every key/value pair of ``dictionary`` with :meth:`log` and the same options.

        Args:
            dictionary: names to values, or a ``torchmetrics.MetricCollection`` (each of its
                metrics is logged under its prefixed/postfixed name, as in Lightning).
            prog_bar: see :meth:`log`.
            logger: see :meth:`log`.
            on_step: see :meth:`log`.
            on_epoch: see :meth:`log`.
            reduce_fx: see :meth:`log`.
            enable_graph: see :meth:`log`.
            sync_dist: see :meth:`log`.
            sync_dist_group: see :meth:`log`.
            add_dataloader_idx: see :meth:`log`.
            batch_size: see :meth:`log`.
            rank_zero_only: see :meth:`log`.
        """
        items = dictionary.items() if isinstance(dictionary, dict) else self._log_dict_items(dictionary)
        for key, val in items:
            self.log(
                name=key,
                value=val,
                prog_bar=prog_bar,
                logger=logger,
                on_step=on_step,
                on_epoch=on_epoch,
                reduce_fx=reduce_fx,
                enable_graph=enable_graph,
                sync_dist=sync_dist,
                sync_dist_group=sync_dist_group,
                add_dataloader_idx=add_dataloader_idx,
                batch_size=batch_size,
                rank_zero_only=rank_zero_only,
            )

    @staticmethod
    def _check_loggable(name: str, value: Any) -> Any:
        """Refuse what ``log`` cannot take; return the value when it is a ``torchmetrics.Metric``, else None."""
        # ValueError (not TypeError) throughout, as Lightning raises, so `except` clauses keep matching.
        if isinstance(value, (Tensor, numbers.Number)):
            return None
        if isinstance(value, Mapping):
            raise ValueError(
                f"`self.log({name}, {value})` was called, but dictionaries cannot be logged with `self.log`;"
                " use `self.log_dict` instead."
            )
        if is_metric(value):
            return value
        if is_metric_collection(value):
            raise ValueError(
                f"`self.log({name}, ...)` was called with a `MetricCollection`, which `self.log` cannot take;"
                " use `self.log_dict(collection)` to log each of its metrics."
            )
        raise ValueError(
            f"`self.log({name}, {value})` was called, but `{type(value).__name__}` values cannot be logged"
        )

    @staticmethod
    def _log_dict_items(dictionary: Any) -> Iterable[tuple[str, Any]]:
        """``log_dict``'s pairs for a mapping that is not a dict, or for a ``MetricCollection``."""
        if is_metric_collection(dictionary):
            return collection_items(dictionary)
        items: Iterable[tuple[str, Any]] = dictionary.items()
        return items

    # ------------------------------------------------------------------ steps

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """Same as :meth:`torch.nn.Module.forward` (override it).

        Args:
            *args: model inputs.
            **kwargs: model inputs.

        Returns:
            The model's output.
        """
        return super().forward(*args, **kwargs)

    def training_step(self, *args: Any, **kwargs: Any) -> Any:
        """Compute and return the training loss (a tensor, a dict with ``"loss"``, or ``None`` to skip).

        Args:
            *args: ``batch``, ``batch_idx`` (and ``dataloader_idx`` with several loaders).
            **kwargs: the same, by keyword.

        Returns:
            The loss.
        """
        warnings.warn("`training_step` must be implemented to be used with the Lightning Trainer", stacklevel=2)

    def validation_step(self, *args: Any, **kwargs: Any) -> Any:
        """Run on one validation batch (log metrics here).

        Args:
            *args: ``batch``, ``batch_idx`` (and ``dataloader_idx`` with several loaders).
            **kwargs: the same, by keyword.

        Returns:
            Anything, or ``None``.
        """

    def test_step(self, *args: Any, **kwargs: Any) -> Any:
        """Run on one test batch (log metrics here).

        Args:
            *args: ``batch``, ``batch_idx`` (and ``dataloader_idx`` with several loaders).
            **kwargs: the same, by keyword.

        Returns:
            Anything, or ``None``.
        """

    def predict_step(self, *args: Any, **kwargs: Any) -> Any:
        """Run on one prediction batch; the default returns ``self(batch)``.

        Args:
            *args: ``batch``, ``batch_idx`` (and ``dataloader_idx`` with several loaders).
            **kwargs: the same, by keyword.

        Returns:
            The prediction.
        """
        batch = kwargs["batch"] if "batch" in kwargs else args[0]
        return self(batch)

    def configure_callbacks(self) -> Sequence[Any] | Any:
        """Callbacks to add to the Trainer's (replacing trainer callbacks of the same type).

        Returns:
            A callback or a list of callbacks (default ``[]``).
        """
        return []

    def configure_optimizers(self) -> Any:
        """Return the optimizer(s) and optional LR scheduler(s) to use.

        Returns:
            Any form :func:`lightcycle.core.optim.parse_optimizers` accepts.
        """
        warnings.warn("`configure_optimizers` must be implemented to be used with the Lightning Trainer", stacklevel=2)

    # ------------------------------------------------------------------ train/eval mode

    def on_validation_model_zero_grad(self) -> None:
        """Called before an in-fit validation run; the default zeroes the gradients."""
        self.zero_grad()

    def on_validation_model_eval(self) -> None:
        """Called first in a validation run; the default sets eval mode."""
        self.eval()

    def on_validation_model_train(self) -> None:
        """Called last in a validation run, only if overridden; the default sets train mode."""
        self.train()

    def on_test_model_eval(self) -> None:
        """Called first in a test run; the default sets eval mode."""
        self.eval()

    def on_test_model_train(self) -> None:
        """Called last in a test run, only if overridden; the default sets train mode."""
        self.train()

    def on_predict_model_eval(self) -> None:
        """Called first in a predict run; the default sets eval mode."""
        self.eval()

    def freeze(self) -> Self:
        """Turn off gradients for every parameter and switch to eval mode.

        Returns:
            ``self``.
        """
        for param in self.parameters():
            param.requires_grad = False
        return self.eval()

    def unfreeze(self) -> Self:
        """Turn gradients back on for every parameter and switch to train mode.

        Returns:
            ``self``.
        """
        for param in self.parameters():
            param.requires_grad = True
        return self.train()

    # ------------------------------------------------------------------ checkpoints

    @restricted_classmethod
    def load_from_checkpoint(
        cls,
        checkpoint_path: str | PathLike[str] | IO[bytes],
        map_location: Any = None,
        hparams_file: str | PathLike[str] | None = None,
        strict: bool | None = None,
        weights_only: bool | None = None,
        **kwargs: Any,
    ) -> Self:
        """Build the module from a checkpoint's hyper-parameters and load its weights.

        Order: instantiate with ``checkpoint["hyper_parameters"]`` updated by ``kwargs``,
        ``configure_model`` (if overridden), ``on_load_checkpoint(checkpoint)``, then
        ``load_state_dict(checkpoint["state_dict"], strict)``; finally the module moves to
        the device of the loaded weights.

        Args:
            checkpoint_path: path or file object of the checkpoint.
            map_location: as for :func:`torch.load` (unavailable CUDA/MPS storage goes to CPU).
            hparams_file: ``.yaml``/``.csv`` file replacing the stored hyper-parameters.
            strict: strict state-dict loading (default: :attr:`strict_loading`).
            weights_only: as for :func:`torch.load`.
            **kwargs: ``__init__`` arguments overriding stored values.

        Returns:
            The loaded module.

        Raises:
            ValueError: ``strict`` conflicts with the class's ``strict_loading``.
        """
        model = load_module_from_checkpoint(
            cls, LightningModule, checkpoint_path, map_location, hparams_file, strict, weights_only, kwargs
        )
        return cast("Self", model)


def _distributed(trainer: Any) -> bool:
    """Whether ``sync_dist=True`` reduces anything: the trainer's strategy runs several processes."""
    strategy = getattr(trainer, "strategy", None)
    return strategy is not None and bool(strategy.distributed)


def _synced(trainer: Any, value: Any, reduce_fx: Any, group: Any) -> Any:
    """``value`` reduced over the ranks with ``reduce_fx`` (``sync_dist=True``); the caller checked ``_distributed``."""
    strategy = trainer.strategy
    name = reduce_fx if isinstance(reduce_fx, str) else getattr(reduce_fx, "__name__", "mean")
    op = name.lower() if name.lower() in ("sum", "max", "min") else "mean"
    tensor = value if isinstance(value, Tensor) else torch.tensor(float(value))
    return strategy.reduce(tensor.detach().to(strategy.root_device), group=group, reduce_op=op)
