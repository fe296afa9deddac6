"""LightningModule: a ``torch.nn.Module`` with Lightning's hooks, logging and optimizer helpers.

Hooks whose base implementation does nothing carry ``@noop_hook`` so the runtime can skip
them when a subclass does not override them. Everything else keeps Lightning 2.6's default
behaviour and messages.
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal, cast, overload

import torch
from torch import Tensor, nn
from torch.optim import Optimizer

from lightcycle._hooks import is_overridden, noop_hook
from lightcycle.core.datamodule import DataHooks
from lightcycle.core.fx_validator import check_logging_allowed
from lightcycle.core.hparams import (
    HyperparametersMixin,
    instantiate_from_checkpoint,
    load_hparams_from_tags_csv,
    load_hparams_from_yaml,
    restricted_classmethod,
)
from lightcycle.core.metric_objects import (
    collection_items,
    is_metric,
    is_metric_collection,
    resolve_metric_attribute,
)
from lightcycle.core.optim import LightningOptimizer, _iter_params
from lightcycle.errors import MisconfigurationException

if TYPE_CHECKING:
    from os import PathLike

    from typing_extensions import Self

    from lightcycle.runtime.host import RunHost

_CLIP_ALGORITHMS = ("value", "norm")
_PAST_HPARAMS_KEYS = ("hparams", "module_arguments")


def _default_dtype() -> torch.dtype:
    """Default dtype for logged numbers: the global default, but no lower than float32."""
    dtype = torch.get_default_dtype()
    return dtype if dtype in (torch.float32, torch.float64) else torch.float32


class LightningModule(DataHooks, HyperparametersMixin, nn.Module):
    """Organises a model's training, evaluation and prediction code for the Trainer.

    Drop-in compatible with ``lightning.pytorch.LightningModule``: the same hooks, hook
    signatures, defaults and properties.
    """

    CHECKPOINT_HYPER_PARAMS_KEY = "hyper_parameters"
    CHECKPOINT_HYPER_PARAMS_NAME = "hparams_name"
    CHECKPOINT_HYPER_PARAMS_TYPE = "hparams_type"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._trainer: RunHost | None = None
        self._example_input_array: Any = None
        self._automatic_optimization: bool = True
        self._strict_loading: bool | None = None
        # Set by the runtime to the name of the hook being run (checked by `self.log`).
        self._current_fx_name: str | None = None
        self._param_requires_grad_state: dict[Tensor, bool] = {}
        self._lightning_optimizer_cache: dict[int, tuple[Optimizer, LightningOptimizer]] = {}
        # id(metric) -> attribute name of the torchmetrics objects, built when one is first logged
        self._metric_attributes: dict[int, str] | None = None

    # ------------------------------------------------------------------ properties

    @property
    def trainer(self) -> RunHost:
        """The attached Trainer.

        Raises:
            RuntimeError: when the module is not attached to a Trainer.
        """
        trainer = self._trainer
        if trainer is None:
            raise RuntimeError(f"{self.__class__.__qualname__} is not attached to a `Trainer`.")
        return trainer

    @trainer.setter
    def trainer(self, trainer: RunHost | None) -> None:
        for child in self.children():
            if isinstance(child, LightningModule):
                child.trainer = trainer
        self._trainer = trainer

    @property
    def example_input_array(self) -> Any:
        """Example input for ``forward`` (tensor: one argument; tuple: positional; dict: keyword)."""
        return self._example_input_array

    @example_input_array.setter
    def example_input_array(self, example: Any) -> None:
        self._example_input_array = example

    @property
    def current_epoch(self) -> int:
        """The Trainer's current epoch, or 0 when not attached."""
        return self._trainer.current_epoch if self._trainer is not None else 0

    @property
    def global_step(self) -> int:
        """Optimizer steps taken so far, or 0 when not attached."""
        return self._trainer.global_step if self._trainer is not None else 0

    @property
    def global_rank(self) -> int:
        """Index of this process across all nodes (0 when not attached)."""
        return int(getattr(self._trainer, "global_rank", 0)) if self._trainer is not None else 0

    @property
    def local_rank(self) -> int:
        """Index of this process within its node (0 when not attached)."""
        return int(getattr(self._trainer, "local_rank", 0)) if self._trainer is not None else 0

    @property
    def on_gpu(self) -> bool:
        """Whether the module's parameters live on a CUDA device."""
        return self.device.type == "cuda"

    @property
    def automatic_optimization(self) -> bool:
        """``False`` makes you call ``manual_backward``, ``step`` and ``zero_grad`` yourself."""
        return self._automatic_optimization

    @automatic_optimization.setter
    def automatic_optimization(self, automatic_optimization: bool) -> None:
        self._automatic_optimization = automatic_optimization

    @property
    def strict_loading(self) -> bool:
        """The ``strict`` used when loading this module's state dict (default ``True``)."""
        return self._strict_loading in (None, True)

    @strict_loading.setter
    def strict_loading(self, strict_loading: bool) -> None:
        self._strict_loading = strict_loading

    @property
    def logger(self) -> Any:
        """The Trainer's first logger, or ``None``."""
        return getattr(self._trainer, "logger", None) if self._trainer is not None else None

    @property
    def loggers(self) -> list[Any]:
        """The Trainer's loggers (``[]`` when not attached)."""
        return list(getattr(self._trainer, "loggers", [])) if self._trainer is not None else []

    @property
    def device(self) -> torch.device:
        """Device of the first parameter (else first buffer), or CPU when there are none."""
        for param in self.parameters():
            return param.device
        for buffer in self.buffers():
            return buffer.device
        return torch.device("cpu")

    @property
    def dtype(self) -> torch.dtype:
        """dtype of the first floating-point parameter or buffer, else the default dtype."""
        for param in self.parameters():
            if param.is_floating_point():
                return param.dtype
        for buffer in self.buffers():
            if buffer.is_floating_point():
                return buffer.dtype
        return torch.get_default_dtype()

    # ------------------------------------------------------------------ optimizers

    @overload
    def optimizers(self, use_pl_optimizer: Literal[True] = True) -> LightningOptimizer | list[LightningOptimizer]: ...

    @overload
    def optimizers(self, use_pl_optimizer: Literal[False]) -> Optimizer | list[Optimizer]: ...

    @overload
    def optimizers(self, use_pl_optimizer: bool) -> Any: ...

    def optimizers(self, use_pl_optimizer: bool = True) -> Any:
        """The optimizer(s) of the running fit (for manual optimization).

        Args:
            use_pl_optimizer: wrap them in :class:`LightningOptimizer`, whose ``step`` runs
                the Trainer's hooks and counts steps.

        Returns:
            The single optimizer, or a list when there are several (or none).
        """
        trainer = self.trainer
        opts: list[Any]
        if use_pl_optimizer:
            provided = getattr(trainer, "_lightning_optimizers", None)
            if provided is not None:
                opts = list(provided)
                for opt in opts:
                    if isinstance(opt, LightningOptimizer) and opt._module is None:
                        opt._module = self
            else:
                opts = [self._wrap_optimizer(opt) for opt in trainer.optimizers]
        else:
            opts = list(trainer.optimizers)
        if len(opts) == 1 and isinstance(opts[0], (Optimizer, LightningOptimizer)):
            return opts[0]
        return opts

    def _wrap_optimizer(self, optimizer: Optimizer) -> LightningOptimizer:
        if isinstance(optimizer, LightningOptimizer):
            return optimizer
        cached = self._lightning_optimizer_cache.get(id(optimizer))
        if cached is not None and cached[0] is optimizer:
            return cached[1]
        wrapper = LightningOptimizer(optimizer)
        wrapper._module = self
        self._lightning_optimizer_cache[id(optimizer)] = (optimizer, wrapper)
        return wrapper

    def lr_schedulers(self) -> Any:
        """The LR scheduler(s) of the running fit (for manual optimization).

        Returns:
            ``None`` when there are none, the scheduler when there is one, else a list.
        """
        configs = self.trainer.lr_scheduler_configs
        if not configs:
            return None
        schedulers = [config.scheduler for config in configs]
        return schedulers[0] if len(schedulers) == 1 else schedulers

    def toggle_optimizer(self, optimizer: Optimizer | LightningOptimizer) -> None:
        """Freeze (``requires_grad=False``) parameters that only other optimizers own.

        Args:
            optimizer: the optimizer whose parameters stay trainable.
        """
        state: dict[Tensor, bool] = {}
        for opt in self.trainer.optimizers:
            for param in _iter_params(opt):
                if param in state:
                    continue
                state[param] = param.requires_grad
                param.requires_grad = False
        for param in _iter_params(optimizer):
            param.requires_grad = state[param]
        self._param_requires_grad_state = state

    def untoggle_optimizer(self, optimizer: Optimizer | LightningOptimizer) -> None:
        """Undo :meth:`toggle_optimizer`.

        Args:
            optimizer: the optimizer that was toggled.
        """
        raw = optimizer.optimizer if isinstance(optimizer, LightningOptimizer) else optimizer
        for opt in self.trainer.optimizers:
            if opt is optimizer or opt is raw:
                continue
            for param in _iter_params(opt):
                if param in self._param_requires_grad_state:
                    param.requires_grad = self._param_requires_grad_state[param]
        self._param_requires_grad_state = {}

    @contextmanager
    def toggled_optimizer(self, optimizer: Optimizer | LightningOptimizer) -> Generator[None, None, None]:
        """Context manager form of :meth:`toggle_optimizer` / :meth:`untoggle_optimizer`.

        Args:
            optimizer: the optimizer to toggle.

        Yields:
            Nothing.
        """
        self.toggle_optimizer(optimizer)
        try:
            yield
        finally:
            self.untoggle_optimizer(optimizer)

    def _verify_is_manual_optimization(self, fn_name: str) -> None:
        if self.automatic_optimization:
            raise MisconfigurationException(
                f"to use {fn_name}, please disable automatic optimization:"
                " set model property `automatic_optimization` as False"
            )

    def manual_backward(self, loss: Tensor, *args: Any, **kwargs: Any) -> None:
        """Backward pass in manual optimization; fires the before/after-backward hooks.

        Args:
            loss: the loss to differentiate.
            *args: passed on to :meth:`backward`.
            **kwargs: passed on to :meth:`backward`.

        Raises:
            MisconfigurationException: when automatic optimization is on.
        """
        self._verify_is_manual_optimization("manual_backward")
        self.trainer._manual_backward(loss, *args, **kwargs)

    def backward(self, loss: Tensor, *args: Any, **kwargs: Any) -> None:
        """Compute gradients; override for custom backward logic.

        Args:
            loss: the loss (already divided for gradient accumulation).
            *args: passed to ``loss.backward``.
            **kwargs: passed to ``loss.backward``.
        """
        loss.backward(*args, **kwargs)  # type: ignore[no-untyped-call]

    def clip_gradients(
        self,
        optimizer: Optimizer | LightningOptimizer,
        gradient_clip_val: float | None = None,
        gradient_clip_algorithm: str | None = None,
    ) -> None:
        """Clip the gradients of ``optimizer``'s parameters.

        Unset arguments fall back to the Trainer's ``gradient_clip_val`` /
        ``gradient_clip_algorithm``; a value of ``None`` or ``<= 0`` clips nothing.

        Args:
            optimizer: whose parameters to clip.
            gradient_clip_val: the max norm (``"norm"``) or max absolute value (``"value"``).
            gradient_clip_algorithm: ``"norm"`` (default) or ``"value"``.

        Raises:
            MisconfigurationException: an unknown algorithm, or a value conflicting with the Trainer's.
            TypeError: a non-numeric clip value.
        """
        trainer = self._trainer
        trainer_val = getattr(trainer, "gradient_clip_val", None) if trainer is not None else None
        trainer_algo = getattr(trainer, "gradient_clip_algorithm", None) if trainer is not None else None
        trainer_algo = getattr(trainer_algo, "value", trainer_algo)

        if gradient_clip_val is None:
            gradient_clip_val = trainer_val or 0.0
        elif trainer_val is not None and trainer_val != gradient_clip_val:
            raise MisconfigurationException(
                f"You have set `Trainer(gradient_clip_val={trainer_val!r})`"
                f" and have passed `clip_gradients(gradient_clip_val={gradient_clip_val!r})`."
                " Please use only one of them."
            )
        if gradient_clip_algorithm is None:
            algorithm = str(trainer_algo) if trainer_algo is not None else "norm"
        else:
            algorithm = gradient_clip_algorithm.lower()
            if trainer_algo is not None and trainer_algo != algorithm:
                raise MisconfigurationException(
                    f"You have set `Trainer(gradient_clip_algorithm={trainer_algo!r})`"
                    f" and have passed `clip_gradients(gradient_clip_algorithm={algorithm!r})`."
                    " Please use only one of them."
                )
        if not isinstance(gradient_clip_val, (int, float)):
            raise TypeError(f"`gradient_clip_val` should be an int or a float. Got {gradient_clip_val}.")
        if algorithm not in _CLIP_ALGORITHMS:
            raise MisconfigurationException(
                f"`gradient_clip_algorithm` {algorithm} is invalid. Allowed algorithms: {list(_CLIP_ALGORITHMS)}."
            )
        plugin = getattr(trainer, "precision_plugin", None)
        if plugin is not None:  # Lightning: the precision plugin clips (16-mixed refuses fused optimizers)
            plugin.clip_gradients(getattr(optimizer, "_optimizer", optimizer), gradient_clip_val, algorithm)
            return
        if gradient_clip_val <= 0:
            return
        params = list(_iter_params(optimizer))
        if algorithm == "value":
            torch.nn.utils.clip_grad_value_(params, clip_value=gradient_clip_val)
        else:
            torch.nn.utils.clip_grad_norm_(params, gradient_clip_val)

    def configure_gradient_clipping(
        self,
        optimizer: Optimizer | LightningOptimizer,
        gradient_clip_val: float | None = None,
        gradient_clip_algorithm: str | None = None,
    ) -> None:
        """Hook: clip gradients before each optimizer step (default: :meth:`clip_gradients`).

        Args:
            optimizer: the optimizer about to step.
            gradient_clip_val: the Trainer's ``gradient_clip_val``.
            gradient_clip_algorithm: the Trainer's ``gradient_clip_algorithm``.
        """
        self.clip_gradients(
            optimizer, gradient_clip_val=gradient_clip_val, gradient_clip_algorithm=gradient_clip_algorithm
        )

    def lr_scheduler_step(self, scheduler: Any, metric: Any | None) -> None:
        """Hook: step a scheduler (``step()``, or ``step(metric)`` when a metric is monitored).

        Args:
            scheduler: the scheduler.
            metric: the monitored value, or ``None``.
        """
        if metric is None:
            scheduler.step()
        else:
            scheduler.step(metric)

    def optimizer_step(
        self,
        epoch: int,
        batch_idx: int,
        optimizer: Optimizer | LightningOptimizer,
        optimizer_closure: Callable[[], Any] | None = None,
    ) -> None:
        """Hook: step the optimizer (default ``optimizer.step(closure=optimizer_closure)``).

        Args:
            epoch: the current epoch.
            batch_idx: index of the batch.
            optimizer: the (Lightning-wrapped) optimizer.
            optimizer_closure: runs ``training_step``, zero-grad and backward; must be called.
        """
        optimizer.step(closure=optimizer_closure)

    def optimizer_zero_grad(self, epoch: int, batch_idx: int, optimizer: Optimizer) -> None:
        """Hook: reset gradients (default ``optimizer.zero_grad()``).

        Args:
            epoch: the current epoch.
            batch_idx: index of the batch.
            optimizer: the optimizer.
        """
        optimizer.zero_grad()

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
        # Values are always detached; sync_dist applies below (one device: Lightning's no-op).
        del enable_graph
        # `metric` is the value when it is a torchmetrics.Metric; tensors skip the (slower) type checks
        metric = None if isinstance(value, Tensor) else self._check_loggable(name, value)
        trainer = self._trainer
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
        # The suffix applies only with several dataloaders; the Trainer also keeps the index None otherwise.
        several = getattr(trainer, "_multiple_dataloaders", True)
        dataloader_idx = trainer._current_dataloader_idx if several else None
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
        if sync_dist and not rank_zero_only:  # Lightning: rank_zero_only turns the sync off
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

    # ------------------------------------------------------------------ model hooks

    @noop_hook
    def on_fit_start(self) -> None:
        """Called at the very beginning of fit (after setup and ``configure_optimizers``)."""

    @noop_hook
    def on_fit_end(self) -> None:
        """Called at the very end of fit."""

    @noop_hook
    def on_train_start(self) -> None:
        """Called at the beginning of training, after the sanity check."""

    @noop_hook
    def on_train_end(self) -> None:
        """Called at the end of training, before ``on_fit_end``."""

    @noop_hook
    def on_validation_start(self) -> None:
        """Called at the beginning of every validation run."""

    @noop_hook
    def on_validation_end(self) -> None:
        """Called at the end of every validation run."""

    @noop_hook
    def on_test_start(self) -> None:
        """Called at the beginning of testing."""

    @noop_hook
    def on_test_end(self) -> None:
        """Called at the end of testing."""

    @noop_hook
    def on_predict_start(self) -> None:
        """Called at the beginning of prediction."""

    @noop_hook
    def on_predict_end(self) -> None:
        """Called at the end of prediction."""

    @noop_hook
    def on_train_batch_start(self, batch: Any, batch_idx: int) -> int | None:
        """Called before ``training_step``; return ``-1`` to end the epoch early.

        Args:
            batch: the batch (already on the device).
            batch_idx: its index.

        Returns:
            ``-1`` to skip the rest of the epoch, else ``None``.
        """
        return None

    @noop_hook
    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        """Called after the training batch (and its optimizer step).

        Args:
            outputs: ``training_step``'s output as a dict (``{}`` for ``None``).
            batch: the batch.
            batch_idx: its index.
        """

    @noop_hook
    def on_validation_batch_start(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        """Called before ``validation_step``.

        Args:
            batch: the batch.
            batch_idx: its index.
            dataloader_idx: index of its dataloader.
        """

    @noop_hook
    def on_validation_batch_end(self, outputs: Any, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        """Called after ``validation_step``.

        Args:
            outputs: what ``validation_step`` returned.
            batch: the batch.
            batch_idx: its index.
            dataloader_idx: index of its dataloader.
        """

    @noop_hook
    def on_test_batch_start(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        """Called before ``test_step``.

        Args:
            batch: the batch.
            batch_idx: its index.
            dataloader_idx: index of its dataloader.
        """

    @noop_hook
    def on_test_batch_end(self, outputs: Any, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        """Called after ``test_step``.

        Args:
            outputs: what ``test_step`` returned.
            batch: the batch.
            batch_idx: its index.
            dataloader_idx: index of its dataloader.
        """

    @noop_hook
    def on_predict_batch_start(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        """Called before ``predict_step``.

        Args:
            batch: the batch.
            batch_idx: its index.
            dataloader_idx: index of its dataloader.
        """

    @noop_hook
    def on_predict_batch_end(self, outputs: Any | None, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        """Called after ``predict_step``.

        Args:
            outputs: the predictions.
            batch: the batch.
            batch_idx: its index.
            dataloader_idx: index of its dataloader.
        """

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

    @noop_hook
    def on_train_epoch_start(self) -> None:
        """Called at the beginning of every training epoch."""

    @noop_hook
    def on_train_epoch_end(self) -> None:
        """Called at the end of every training epoch (after its end-of-epoch validation)."""

    @noop_hook
    def on_validation_epoch_start(self) -> None:
        """Called at the beginning of the validation epoch."""

    @noop_hook
    def on_validation_epoch_end(self) -> None:
        """Called at the end of the validation epoch."""

    @noop_hook
    def on_test_epoch_start(self) -> None:
        """Called at the beginning of the test epoch."""

    @noop_hook
    def on_test_epoch_end(self) -> None:
        """Called at the end of the test epoch."""

    @noop_hook
    def on_predict_epoch_start(self) -> None:
        """Called at the beginning of the predict epoch."""

    @noop_hook
    def on_predict_epoch_end(self) -> None:
        """Called at the end of the predict epoch."""

    @noop_hook
    def on_before_zero_grad(self, optimizer: Optimizer) -> None:
        """Called before ``optimizer_zero_grad`` (automatic optimization).

        Args:
            optimizer: the optimizer whose gradients are about to be reset.
        """

    @noop_hook
    def on_before_backward(self, loss: Tensor) -> None:
        """Called before ``backward``.

        Args:
            loss: the loss about to be differentiated.
        """

    @noop_hook
    def on_after_backward(self) -> None:
        """Called after ``backward``, before the optimizer step."""

    @noop_hook
    def on_before_optimizer_step(self, optimizer: Optimizer) -> None:
        """Called after the gradients are computed and before clipping and the step.

        Args:
            optimizer: the optimizer about to step.
        """

    @noop_hook
    def configure_sharded_model(self) -> None:
        """Deprecated in Lightning; use :meth:`configure_model`."""

    @noop_hook
    def configure_model(self) -> None:
        """Create layers lazily, after ``setup``; runs every run, so make it idempotent."""

    @noop_hook
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Last hook of a checkpoint dump; may add to ``checkpoint``.

        Args:
            checkpoint: the checkpoint dict being saved.
        """

    @noop_hook
    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """First hook of a restore; may read extra entries from ``checkpoint``.

        Args:
            checkpoint: the loaded checkpoint dict.
        """

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
        checkpoint = _read_checkpoint(cls, checkpoint_path, map_location, hparams_file, weights_only, kwargs)
        model = instantiate_from_checkpoint(
            cls,
            checkpoint,
            cls.CHECKPOINT_HYPER_PARAMS_KEY,
            cls.CHECKPOINT_HYPER_PARAMS_NAME,
            cls.CHECKPOINT_HYPER_PARAMS_TYPE,
            past_keys=_PAST_HPARAMS_KEYS,
            **kwargs,
        )
        if not isinstance(model, LightningModule):
            raise TypeError(f"{cls.__name__}(...) did not build a LightningModule")
        if model._strict_loading is not None and strict is not None and strict != model.strict_loading:
            raise ValueError(
                f"You set `.load_from_checkpoint(..., strict={strict!r})` which is in conflict with"
                f" `{cls.__name__}.strict_loading={model.strict_loading!r}. Please set the same value for both of them."
            )
        strict = model.strict_loading if strict is None else strict
        if is_overridden("configure_model", model, LightningModule):
            model.configure_model()
        model.on_load_checkpoint(checkpoint)
        state_dict = checkpoint["state_dict"]
        keys = model.load_state_dict(state_dict, strict=strict)
        if not strict:
            if keys.missing_keys:
                warnings.warn(
                    f"Found keys that are in the model state dict but not in the checkpoint: {keys.missing_keys}",
                    stacklevel=2,
                )
            if keys.unexpected_keys:
                warnings.warn(
                    f"Found keys that are not in the model state dict but in the checkpoint: {keys.unexpected_keys}",
                    stacklevel=2,
                )
        if not state_dict:
            warnings.warn(f"The state dict in {checkpoint_path!r} contains no parameters.", stacklevel=2)
            return cast("Self", model)
        device = next((t.device for t in state_dict.values() if isinstance(t, Tensor)), torch.device("cpu"))
        return cast("Self", model.to(device))

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_trainer"] = None
        return state


def _default_map_location(storage: Any, location: str) -> Any:
    """Send storage saved on an unavailable CUDA/MPS device to the CPU; else keep ``torch.load``'s default."""
    if (location.startswith("cuda") and not torch.cuda.is_available()) or (
        location.startswith("mps") and not torch.backends.mps.is_available()
    ):
        return storage.cpu()
    return None


def _read_checkpoint(
    cls: type[Any],
    checkpoint_path: str | PathLike[str] | IO[bytes],
    map_location: Any,
    hparams_file: str | PathLike[str] | None,
    weights_only: bool | None,
    overrides: dict[str, Any],
) -> dict[str, Any]:
    """Load a checkpoint dict, apply ``hparams_file`` and merge ``overrides`` into its hyper-parameters."""
    loaded = torch.load(checkpoint_path, map_location=map_location or _default_map_location, weights_only=weights_only)
    if not isinstance(loaded, dict):
        raise TypeError(f"Expected the checkpoint at {checkpoint_path!r} to hold a dict, got {type(loaded).__name__}")
    checkpoint: dict[str, Any] = loaded
    key: str = cls.CHECKPOINT_HYPER_PARAMS_KEY
    if hparams_file is not None:
        suffix = Path(hparams_file).suffix.lower()
        if suffix == ".csv":
            checkpoint[key] = load_hparams_from_tags_csv(hparams_file)
        elif suffix in (".yml", ".yaml"):
            checkpoint[key] = load_hparams_from_yaml(hparams_file)
        else:
            raise ValueError(".csv, .yml or .yaml is required for `hparams_file`")
    checkpoint.setdefault(key, {})
    checkpoint[key].update(overrides)
    return checkpoint


def _synced(trainer: Any, value: Any, reduce_fx: Any, group: Any) -> Any:
    """``value`` reduced over the ranks with ``reduce_fx`` (``sync_dist=True``); unchanged in one process."""
    strategy = getattr(trainer, "strategy", None)
    if strategy is None or not strategy.distributed:
        return value
    name = reduce_fx if isinstance(reduce_fx, str) else getattr(reduce_fx, "__name__", "mean")
    op = name.lower() if name.lower() in ("sum", "max", "min") else "mean"
    tensor = value if isinstance(value, Tensor) else torch.tensor(float(value))
    return strategy.reduce(tensor.detach().to(strategy.root_device), group=group, reduce_op=op)
