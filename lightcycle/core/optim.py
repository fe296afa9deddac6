"""Optimizer wrapper and parsing of what ``configure_optimizers`` returns.

The accepted return forms, the checks and the meaning of every message follow Lightning
2.6 (``pytorch_lightning/core/optimizer.py``).
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable, Generator, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import attrs
import torch
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler, OneCycleLR, ReduceLROnPlateau

from lightcycle._hooks import is_overridden
from lightcycle.errors import MisconfigurationException

if TYPE_CHECKING:
    from lightcycle.core.module import LightningModule

_VALID_INTERVALS = ("step", "epoch")
_OPTIM_CONF_KEYS = frozenset({"optimizer", "lr_scheduler", "monitor"})
_MANUAL_IGNORED_KEYS = ("reduce_on_plateau", "monitor", "strict")

_UNKNOWN_CONFIG = (
    "Unknown configuration for model optimizers."
    " Output from `model.configure_optimizers()` should be one of:\n"
    " * `Optimizer`\n"
    " * [`Optimizer`]\n"
    " * ([`Optimizer`], [`LRScheduler`])\n"
    ' * {"optimizer": `Optimizer`, (optional) "lr_scheduler": `LRScheduler`}\n'
    ' * [{"optimizer": `Optimizer`, ...}, ...]\n'
)


def _do_nothing() -> None:
    return None


class LightningOptimizer:
    """Wraps a torch optimizer so the Trainer can run its hooks around ``step``.

    Everything except ``step`` is forwarded to the wrapped optimizer, and the wrapper's
    class derives from the optimizer's, so ``isinstance(opt, torch.optim.SGD)`` still holds.

    The Trainer injects two zero-argument callables: ``_on_before_step`` runs after the
    closure (if any) has produced the gradients and before the real step — inside the
    real optimizer's ``step``, right after each closure evaluation, when a closure is
    given — and ``_on_after_step`` runs after the real step.

    Args:
        optimizer: the optimizer to wrap.
    """

    _optimizer: Optimizer

    def __init__(self, optimizer: Optimizer) -> None:
        self._optimizer = optimizer
        self._on_before_step: Callable[[], None] = _do_nothing
        self._on_after_step: Callable[[], None] = _do_nothing
        self._module: LightningModule | None = None
        # Imitate the wrapped optimizer's class so isinstance checks keep working.
        self.__class__ = type("Lightning" + optimizer.__class__.__name__, (self.__class__, optimizer.__class__), {})

    @property
    def optimizer(self) -> Optimizer:
        """The wrapped torch optimizer."""
        return self._optimizer

    @property
    def param_groups(self) -> list[dict[str, Any]]:
        """The wrapped optimizer's ``param_groups``."""
        return self._optimizer.param_groups

    @param_groups.setter
    def param_groups(self, value: list[dict[str, Any]]) -> None:
        self._optimizer.param_groups = value

    @property
    def state(self) -> Any:
        """The wrapped optimizer's ``state``."""
        return self._optimizer.state

    @state.setter
    def state(self, value: Any) -> None:
        self._optimizer.state = value

    @property
    def defaults(self) -> dict[str, Any]:
        """The wrapped optimizer's ``defaults``."""
        return self._optimizer.defaults

    @defaults.setter
    def defaults(self, value: dict[str, Any]) -> None:
        self._optimizer.defaults = value

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forward to the wrapped optimizer's ``zero_grad`` (no hook runs).

        Args:
            set_to_none: as in :meth:`torch.optim.Optimizer.zero_grad`.
        """
        self._optimizer.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict[str, Any]:
        """Returns:
        The wrapped optimizer's state dict.
        """
        return self._optimizer.state_dict()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load state into the wrapped optimizer.

        Args:
            state_dict: as returned by :meth:`state_dict`.
        """
        self._optimizer.load_state_dict(state_dict)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Forward to the wrapped optimizer's ``add_param_group``.

        Args:
            param_group: the new group.
        """
        self._optimizer.add_param_group(param_group)

    def step(self, closure: Callable[[], Any] | None = None, **kwargs: Any) -> Any:
        """Run ``_on_before_step``, the wrapped optimizer's ``step`` and ``_on_after_step``.

        With a closure, ``_on_before_step`` runs right after each evaluation of the closure
        (inside the real ``step``); without one it runs just before the real ``step``.

        Args:
            closure: re-evaluates the model and returns the loss (needed by e.g. LBFGS).
            **kwargs: passed to the wrapped optimizer's ``step``.

        Returns:
            What the wrapped optimizer's ``step`` returns (usually the closure's result).
        """
        if closure is None:
            self._on_before_step()
            output = self._optimizer.step(**kwargs) if kwargs else self._optimizer.step()
        elif not callable(closure):
            raise MisconfigurationException("When `optimizer.step(closure)` is called, the closure should be callable")
        else:
            user_closure = closure
            on_before_step = self._on_before_step

            def wrapped_closure() -> Any:
                result = user_closure()
                on_before_step()
                return result

            # (no ``**{}``: unpacking an empty dict still builds a new one per step)
            if kwargs:
                output = self._optimizer.step(closure=wrapped_closure, **kwargs)
            else:
                output = self._optimizer.step(closure=wrapped_closure)
        if self._on_after_step is not _do_nothing:  # (manual optimization counts its steps here)
            self._on_after_step()
        return output

    @contextmanager
    def toggle_model(self, sync_grad: bool = True) -> Generator[None, None, None]:
        """Toggle the module to this optimizer for the duration of the block.

        Parameters owned only by other optimizers get ``requires_grad=False`` and are
        restored on exit. ``sync_grad`` is accepted for compatibility (single process).

        Args:
            sync_grad: ignored; there is no gradient synchronisation to block.

        Yields:
            Nothing.
        """
        del sync_grad
        module = self._module
        if module is None:
            raise RuntimeError(
                "This `LightningOptimizer` is not attached to a LightningModule; get it through"
                " `self.optimizers()` to use `toggle_model`."
            )
        module.toggle_optimizer(self)
        try:
            yield
        finally:
            module.untoggle_optimizer(self)

    @classmethod
    def _to_lightning_optimizer(cls, optimizer: Optimizer | LightningOptimizer) -> LightningOptimizer:
        """Wrap ``optimizer`` unless it already is a :class:`LightningOptimizer`."""
        return optimizer if isinstance(optimizer, LightningOptimizer) else cls(optimizer)

    def __getattr__(self, item: str) -> Any:
        if item == "_optimizer":
            raise AttributeError(item)
        return getattr(self._optimizer, item)

    # The wrapper's own attributes are its state: the optimizer class it imitates would pickle
    # (and deepcopy) only ``defaults``/``state``/``param_groups``, leaving a copy without
    # ``_optimizer`` whose every attribute lookup fails (Lightning's wrapper copies fine).
    def __getstate__(self) -> dict[str, Any]:
        return self.__dict__.copy()

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def __repr__(self) -> str:
        return f"LightningOptimizer({self._optimizer!r})"


@attrs.define
class LRSchedulerConfig:
    """A scheduler with the settings that say when the Trainer steps it.

    Attributes:
        scheduler: the torch LR scheduler (or a custom one, see ``lr_scheduler_step``).
        name: name for ``LearningRateMonitor``; ``None`` for the default.
        interval: ``"epoch"`` or ``"step"``.
        frequency: step it every ``frequency`` intervals.
        reduce_on_plateau: step it with the value of ``monitor``.
        monitor: metric name for ``ReduceLROnPlateau``.
        strict: raise if ``monitor`` is missing when stepping (else warn and skip).
    """

    scheduler: Any
    name: str | None = None
    interval: str = "epoch"
    frequency: int = 1
    reduce_on_plateau: bool = False
    monitor: str | None = None
    strict: bool = True


_SCHEDULER_KEYS = frozenset(f.name for f in attrs.fields(LRSchedulerConfig))


class MockOptimizer(Optimizer):
    """Stands in when ``configure_optimizers`` returns ``None``: ``step`` only runs the closure."""

    def __init__(self) -> None:
        super().__init__([torch.zeros(1)], {})

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Ignore new groups.

        Args:
            param_group: ignored.
        """

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Ignore saved state.

        Args:
            state_dict: ignored.
        """

    def state_dict(self) -> dict[str, Any]:
        """Returns:
        An empty dict.
        """
        return {}

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Run the closure, if any, and update nothing.

        Args:
            closure: the training closure.

        Returns:
            The closure's result, or ``None``.
        """
        if closure is not None:
            return closure()
        return None

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Do nothing.

        Args:
            set_to_none: ignored.
        """

    def __repr__(self) -> str:
        return "No Optimizer"


def _is_optimizer(obj: Any) -> bool:
    """Duck-typed check (Lightning's ``Optimizable`` protocol)."""
    if isinstance(obj, (Optimizer, LightningOptimizer)):
        return True
    return all(callable(getattr(obj, m, None)) for m in ("step", "zero_grad", "state_dict", "load_state_dict")) and all(
        hasattr(obj, a) for a in ("param_groups", "defaults", "state")
    )


def _warn_extra_optim_keys(conf: Mapping[str, Any]) -> None:
    extra = set(conf.keys()) - _OPTIM_CONF_KEYS
    if extra:
        warnings.warn(
            f"Found unsupported keys in the optimizer configuration: {extra}."
            " HINT: `configure_optimizers` dicts take only 'optimizer', 'lr_scheduler' and 'monitor'.",
            RuntimeWarning,
            stacklevel=3,
        )


def _split_config(returned: Any) -> tuple[list[Any], list[Any], str | None]:
    """Split a ``configure_optimizers`` result into optimizers, raw schedulers and a monitor."""
    if _is_optimizer(returned):
        return [returned], [], None
    if (
        isinstance(returned, (list, tuple))
        and len(returned) == 2
        and isinstance(returned[0], list)
        and all(_is_optimizer(opt) for opt in returned[0])
    ):
        optimizers, schedulers = returned
        return list(optimizers), list(schedulers) if isinstance(schedulers, list) else [schedulers], None
    if isinstance(returned, Mapping):
        _warn_extra_optim_keys(returned)
        if "optimizer" not in returned:
            raise MisconfigurationException(
                'The optimizer configuration dict must have the key "optimizer".'
                ' Return {"optimizer": optimizer, "lr_scheduler": scheduler} from `configure_optimizers`.'
            )
        schedulers = [returned["lr_scheduler"]] if "lr_scheduler" in returned else []
        return [returned["optimizer"]], schedulers, returned.get("monitor")
    if isinstance(returned, (list, tuple)) and returned and all(isinstance(d, Mapping) for d in returned):
        for conf in returned:
            _warn_extra_optim_keys(conf)
            if "optimizer" not in conf:
                raise MisconfigurationException('Every optimizer configuration dict must have the key "optimizer".')
        optimizers = [conf["optimizer"] for conf in returned]
        schedulers = [
            dict(conf["lr_scheduler"])
            if isinstance(conf["lr_scheduler"], Mapping)
            else {"scheduler": conf["lr_scheduler"]}
            for conf in returned
            if "lr_scheduler" in conf
        ]
        return optimizers, schedulers, None
    if isinstance(returned, (list, tuple)) and all(_is_optimizer(opt) for opt in returned):
        return list(returned), [], None
    raise MisconfigurationException(_UNKNOWN_CONFIG)


def _scheduler_configs_automatic(schedulers: list[Any], monitor: str | None) -> list[LRSchedulerConfig]:
    configs: list[LRSchedulerConfig] = []
    for scheduler in schedulers:
        if isinstance(scheduler, Mapping):
            conf = dict(scheduler)
            extra = set(conf) - _SCHEDULER_KEYS
            if extra:
                warnings.warn(
                    f"Found unsupported keys in the lr scheduler dict: {extra}."
                    " HINT: remove them from the output of `configure_optimizers`.",
                    RuntimeWarning,
                    stacklevel=3,
                )
                conf = {k: v for k, v in conf.items() if k in _SCHEDULER_KEYS}
            if "scheduler" not in conf:
                raise MisconfigurationException(
                    'The lr scheduler dict must have the key "scheduler" with its item being an lr scheduler'
                )
            if "interval" in conf and conf["interval"] not in _VALID_INTERVALS:
                raise MisconfigurationException(
                    f'The "interval" key in lr scheduler dict must be "step" or "epoch" but is "{conf["interval"]}"'
                )
            conf["reduce_on_plateau"] = conf.get("reduce_on_plateau", isinstance(conf["scheduler"], ReduceLROnPlateau))
            if conf["reduce_on_plateau"] and conf.get("monitor") is None:
                raise MisconfigurationException(
                    "The lr scheduler dict must include a monitor when a `ReduceLROnPlateau` scheduler is used."
                    ' For example: {"optimizer": optimizer, "lr_scheduler":'
                    ' {"scheduler": scheduler, "monitor": "your_loss"}}'
                )
            if isinstance(conf["scheduler"], OneCycleLR) and conf.get("interval", "epoch") == "epoch":
                warnings.warn(
                    "A `OneCycleLR` scheduler is using 'interval': 'epoch'."
                    " Are you sure you didn't mean 'interval': 'step'?",
                    RuntimeWarning,
                    stacklevel=3,
                )
            configs.append(LRSchedulerConfig(**conf))
        elif isinstance(scheduler, ReduceLROnPlateau):
            if monitor is None:
                raise MisconfigurationException(
                    "`configure_optimizers` must include a monitor when a `ReduceLROnPlateau`"
                    " scheduler is used. For example:"
                    ' {"optimizer": optimizer, "lr_scheduler": scheduler, "monitor": "metric_to_track"}'
                )
            configs.append(LRSchedulerConfig(scheduler, reduce_on_plateau=True, monitor=monitor))
        else:
            configs.append(LRSchedulerConfig(scheduler))
    return configs


def _scheduler_configs_manual(schedulers: list[Any]) -> list[LRSchedulerConfig]:
    configs: list[LRSchedulerConfig] = []
    for scheduler in schedulers:
        if isinstance(scheduler, Mapping):
            ignored = [k for k in scheduler if k in _MANUAL_IGNORED_KEYS]
            if ignored:
                warnings.warn(
                    f"The lr scheduler dict contains the key(s) {ignored}, but the keys will be ignored."
                    " You need to call `lr_scheduler.step()` manually in manual optimization.",
                    RuntimeWarning,
                    stacklevel=3,
                )
            conf = {k: v for k, v in scheduler.items() if k not in _MANUAL_IGNORED_KEYS}
            extra = set(conf) - _SCHEDULER_KEYS
            if extra:
                raise MisconfigurationException(
                    f"Found unsupported keys in the lr scheduler dict: {extra}."
                    " HINT: remove them from the output of `configure_optimizers`."
                )
            if "scheduler" not in conf:
                raise MisconfigurationException(
                    'The lr scheduler dict must have the key "scheduler" with its item being an lr scheduler'
                )
            configs.append(LRSchedulerConfig(**conf))
        else:
            configs.append(LRSchedulerConfig(scheduler))
    return configs


def parse_optimizers(
    returned: Any, *, automatic_optimization: bool = True
) -> tuple[list[Optimizer], list[LRSchedulerConfig]]:
    """Turn what ``configure_optimizers`` returned into optimizers and scheduler configs.

    Accepted forms (as Lightning): ``None`` (warns; a :class:`MockOptimizer` that only runs
    the closure is used), an optimizer, a list/tuple of optimizers, a pair
    ``([optimizers], [schedulers or scheduler dicts])`` (the second item may be a single
    scheduler), a dict ``{"optimizer": ..., "lr_scheduler": scheduler or dict, "monitor": ...}``
    and a list/tuple of such dicts.

    Args:
        returned: the return value of ``configure_optimizers``.
        automatic_optimization: the module's setting; manual optimization ignores (with a
            warning) the ``reduce_on_plateau``, ``monitor`` and ``strict`` keys.

    Returns:
        ``(optimizers, lr_scheduler_configs)``.

    Raises:
        MisconfigurationException: unknown form, bad ``interval``, ``ReduceLROnPlateau``
            without a monitor, or a scheduler whose optimizer was not returned.
    """
    if returned is None:
        warnings.warn(
            "`LightningModule.configure_optimizers` returned `None`, this fit will run with no optimizer",
            UserWarning,
            stacklevel=2,
        )
        returned = MockOptimizer()
    optimizers, schedulers, monitor = _split_config(returned)
    configs = (
        _scheduler_configs_automatic(schedulers, monitor)
        if automatic_optimization
        else _scheduler_configs_manual(schedulers)
    )
    for config in configs:
        owner = getattr(config.scheduler, "optimizer", None)
        if owner is not None and not any(owner is _unwrap(opt) or owner is opt for opt in optimizers):
            raise MisconfigurationException(
                "Some schedulers are attached with an optimizer that wasn't returned from `configure_optimizers`."
            )
    return [_unwrap(opt) for opt in optimizers], configs


def _unwrap(optimizer: Any) -> Any:
    return optimizer.optimizer if isinstance(optimizer, LightningOptimizer) else optimizer


def validate_optimizers(
    module: LightningModule, optimizers: list[Optimizer], lr_scheduler_configs: list[LRSchedulerConfig]
) -> None:
    """Check the parsed optimizers against the module (Lightning's post-parse checks).

    Args:
        module: the LightningModule.
        optimizers: from :func:`parse_optimizers`.
        lr_scheduler_configs: from :func:`parse_optimizers`.

    Raises:
        RuntimeError: several optimizers with automatic optimization, or a ``training_step``
            that takes ``optimizer_idx``.
        TypeError: a scheduler without ``state_dict``/``load_state_dict``.
        MisconfigurationException: a custom (non-torch) scheduler in automatic optimization
            while ``lr_scheduler_step`` is not overridden.
    """
    # deferred: breaks the cycle with lightcycle.core.module (its optimization base wraps LightningOptimizer)
    from lightcycle.core.module import LightningModule

    try:
        takes_optimizer_idx = "optimizer_idx" in inspect.signature(module.training_step).parameters
    except (TypeError, ValueError):
        takes_optimizer_idx = False
    if takes_optimizer_idx:
        raise RuntimeError(
            "Training with multiple optimizers is only supported with manual optimization. Remove the"
            " `optimizer_idx` argument from `training_step`, set `self.automatic_optimization = False` and"
            " access your optimizers in `training_step` with `opt1, opt2, ... = self.optimizers()`."
        )
    if module.automatic_optimization and len(optimizers) > 1:
        raise RuntimeError(
            "Training with multiple optimizers is only supported with manual optimization. Set"
            " `self.automatic_optimization = False`, then access your optimizers in `training_step` with"
            " `opt1, opt2, ... = self.optimizers()`."
        )
    for config in lr_scheduler_configs:
        scheduler = config.scheduler
        if not (
            callable(getattr(scheduler, "state_dict", None)) and callable(getattr(scheduler, "load_state_dict", None))
        ):
            raise TypeError(
                f"The provided lr scheduler `{scheduler.__class__.__name__}` is invalid."
                " It should have `state_dict` and `load_state_dict` methods defined."
            )
        if (
            not isinstance(scheduler, (LRScheduler, ReduceLROnPlateau))
            and not is_overridden("lr_scheduler_step", module, LightningModule)
            and module.automatic_optimization
        ):
            raise MisconfigurationException(
                f"The provided lr scheduler `{scheduler.__class__.__name__}` doesn't follow PyTorch's LRScheduler"
                " API. You should override the `LightningModule.lr_scheduler_step` hook with your own logic if"
                " you are using a custom LR scheduler."
            )


def resolve_optimizers(module: LightningModule, returned: Any) -> tuple[list[Optimizer], list[LRSchedulerConfig]]:
    """Parse and validate ``configure_optimizers``' result for ``module`` in one call.

    Args:
        module: the LightningModule (its ``automatic_optimization`` picks the scheduler rules).
        returned: what its ``configure_optimizers`` returned.

    Returns:
        ``(optimizers, lr_scheduler_configs)``.
    """
    optimizers, configs = parse_optimizers(returned, automatic_optimization=module.automatic_optimization)
    validate_optimizers(module, optimizers, configs)
    return optimizers, configs


def _iter_params(optimizer: Optimizer | LightningOptimizer) -> Iterator[torch.Tensor]:
    """Every parameter of every group of ``optimizer``."""
    for group in optimizer.param_groups:
        yield from group["params"]
