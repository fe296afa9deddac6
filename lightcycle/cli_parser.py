"""The argument parser of :mod:`lightcycle.cli` (``LightningArgumentParser``) and its optimizer helpers.

jsonargparse is the optional extra ``cli``; without it this module still imports and building a
parser raises ``ModuleNotFoundError`` naming ``pip install 'lightcycle[cli]'``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from importlib import import_module
from typing import TYPE_CHECKING, Any, Union

import torch
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

from lightcycle.callbacks.callback import Callback
from lightcycle.core.datamodule import LightningDataModule
from lightcycle.core.module import LightningModule
from lightcycle.errors import MisconfigurationException
from lightcycle.trainer.trainer import Trainer

__all__ = [
    "JSONARGPARSE_REQUIREMENT",
    "ActionConfigFile",
    "ArgsType",
    "ArgumentParser",
    "LRSchedulerCallable",
    "LRSchedulerType",
    "LRSchedulerTypeTuple",
    "LRSchedulerTypeUnion",
    "LightningArgumentParser",
    "Namespace",
    "OptimizerCallable",
    "ReduceLROnPlateau",
    "class_from_function",
    "instantiate_class",
]

#: The jsonargparse range Lightning 2.6 accepts (its ``RequirementCache``); pyproject's ``cli`` extra pins it.
JSONARGPARSE_REQUIREMENT = "jsonargparse[signatures]>=4.39.0"
_MISSING_JSONARGPARSE = (
    "LightningCLI needs jsonargparse with its signatures extra ({req}), which is not installed. "
    "Install it with: pip install 'lightcycle[cli]'"
)

if TYPE_CHECKING:
    from jsonargparse import ActionConfigFile, ArgumentParser, Namespace, class_from_function

    _JSONARGPARSE_AVAILABLE = True
else:
    try:
        from jsonargparse import ActionConfigFile, ArgumentParser, Namespace, class_from_function

        _JSONARGPARSE_AVAILABLE = True
    except ImportError:  # the optional extra is missing: the module still imports, building a parser fails

        class ArgumentParser:
            """Stands in for jsonargparse's parser so that this module imports without it."""

            def __init__(self, *args: Any, **kwargs: Any) -> None:
                raise ModuleNotFoundError(_MISSING_JSONARGPARSE.format(req=JSONARGPARSE_REQUIREMENT))

        Namespace = dict
        ActionConfigFile = class_from_function = None
        _JSONARGPARSE_AVAILABLE = False


class ReduceLROnPlateau(torch.optim.lr_scheduler.ReduceLROnPlateau):
    """PyTorch's ``ReduceLROnPlateau`` with the ``monitor`` (metric name) that ``configure_optimizers`` must report.

    Args:
        optimizer: the optimizer to schedule.
        monitor: the metric whose plateau lowers the learning rate.
        *args: PyTorch's ``ReduceLROnPlateau`` arguments.
        **kwargs: PyTorch's ``ReduceLROnPlateau`` arguments.
    """

    def __init__(self, optimizer: Optimizer, monitor: str, *args: Any, **kwargs: Any) -> None:
        super().__init__(optimizer, *args, **kwargs)
        self.monitor = monitor


# As in Lightning, the CLI takes this module's ReduceLROnPlateau (it knows its monitor), not PyTorch's.
LRSchedulerTypeTuple = (LRScheduler, ReduceLROnPlateau)
LRSchedulerTypeUnion = Union[LRScheduler, ReduceLROnPlateau]  # noqa: UP007 - a runtime alias, as in Lightning
LRSchedulerType = Union[type[LRScheduler], type[ReduceLROnPlateau]]  # noqa: UP007

ArgsType = Union[list[str], dict[str, Any], Namespace, None]  # noqa: UP007
OptimizerCallable = Callable[[Iterable[Any]], Optimizer]
LRSchedulerCallable = Callable[[Optimizer], Union[LRScheduler, ReduceLROnPlateau]]  # noqa: UP007

_Register = dict[str, tuple[Union[type, tuple[type, ...]], str]]  # noqa: UP007


class LightningArgumentParser(ArgumentParser):
    """jsonargparse's ``ArgumentParser`` that knows lightcycle's classes, optimizers and schedulers.

    Args:
        *args: jsonargparse ``ArgumentParser`` arguments.
        description: the ``--help`` description.
        env_prefix: prefix of environment variables (read only with ``default_env=True``).
        default_env: whether to read arguments from environment variables (``PL_TRAINER__MAX_EPOCHS``, ...).
        **kwargs: jsonargparse ``ArgumentParser`` arguments.

    Raises:
        ModuleNotFoundError: jsonargparse is not installed (``pip install 'lightcycle[cli]'``).
    """

    def __init__(
        self,
        *args: Any,
        description: str = "Lightning Trainer command line tool",
        env_prefix: str = "PL",
        default_env: bool = False,
        **kwargs: Any,
    ) -> None:
        if not _JSONARGPARSE_AVAILABLE:
            raise ModuleNotFoundError(_MISSING_JSONARGPARSE.format(req=JSONARGPARSE_REQUIREMENT))
        super().__init__(*args, description=description, env_prefix=env_prefix, default_env=default_env, **kwargs)
        self.callback_keys: list[str] = []
        # kept apart so that the CLI knows which optimizer and scheduler groups were added, and how linked
        self._optimizers: _Register = {}
        self._lr_schedulers: _Register = {}

    def add_lightning_class_args(
        self,
        lightning_class: Callable[..., Any] | type[Any],
        nested_key: str,
        subclass_mode: bool = False,
        required: bool = True,
    ) -> list[str]:
        """Add the arguments of a Trainer, LightningModule, LightningDataModule or Callback class under ``nested_key``.

        Args:
            lightning_class: one of those classes (or a subclass), or a function returning an instance of one.
            nested_key: the key the arguments go under (``--nested_key.arg``).
            subclass_mode: accept any subclass, chosen with ``class_path``.
            required: whether the group must be given (subclass mode only).

        Returns:
            The names of the arguments added.

        Raises:
            MisconfigurationException: ``lightning_class`` is none of those classes.
        """
        if callable(lightning_class) and not isinstance(lightning_class, type):
            lightning_class = class_from_function(lightning_class)
        if isinstance(lightning_class, type) and issubclass(
            lightning_class, (Trainer, LightningModule, LightningDataModule, Callback)
        ):
            if issubclass(lightning_class, Callback):
                self.callback_keys.append(nested_key)
            if subclass_mode:
                added: list[str] = self.add_subclass_arguments(
                    lightning_class, nested_key, fail_untyped=False, required=required
                )
                return added
            added = self.add_class_arguments(
                lightning_class,
                nested_key,
                fail_untyped=False,
                instantiate=not issubclass(lightning_class, Trainer),
                sub_configs=True,
            )
            return added
        raise MisconfigurationException(
            f"Cannot add arguments from: {lightning_class}. You should provide either a callable or a subclass of: "
            "Trainer, LightningModule, LightningDataModule, or Callback."
        )

    def add_optimizer_args(
        self,
        optimizer_class: type[Optimizer] | tuple[type[Optimizer], ...] = (Optimizer,),
        nested_key: str = "optimizer",
        link_to: str = "AUTOMATIC",
    ) -> None:
        """Add an optimizer's arguments (all but ``params``) under ``nested_key``.

        Args:
            optimizer_class: an ``Optimizer`` subclass, or a tuple of base classes to choose from with ``class_path``.
            nested_key: the key the arguments go under.
            link_to: the parser key the optimizer's config is linked to, or ``"AUTOMATIC"`` (the CLI then
                builds it and replaces the model's ``configure_optimizers``).
        """
        classes = optimizer_class if isinstance(optimizer_class, tuple) else (optimizer_class,)
        if not all(isinstance(c, type) and issubclass(c, Optimizer) for c in classes):
            raise MisconfigurationException(f"add_optimizer_args: {optimizer_class} is not a torch Optimizer class.")
        kwargs: dict[str, Any] = {"instantiate": False, "fail_untyped": False, "skip": {"params"}}
        if isinstance(optimizer_class, tuple):
            self.add_subclass_arguments(optimizer_class, nested_key, **kwargs)
        else:
            self.add_class_arguments(optimizer_class, nested_key, sub_configs=True, **kwargs)
        self._optimizers[nested_key] = (optimizer_class, link_to)

    def add_lr_scheduler_args(
        self,
        lr_scheduler_class: LRSchedulerType | tuple[LRSchedulerType, ...] = LRSchedulerTypeTuple,
        nested_key: str = "lr_scheduler",
        link_to: str = "AUTOMATIC",
    ) -> None:
        """Add a learning-rate scheduler's arguments (all but ``optimizer``) under ``nested_key``.

        Args:
            lr_scheduler_class: an ``LRScheduler`` subclass or this module's :class:`ReduceLROnPlateau`, or a
                tuple of base classes to choose from with ``class_path``.
            nested_key: the key the arguments go under.
            link_to: the parser key the scheduler's config is linked to, or ``"AUTOMATIC"``.
        """
        classes = lr_scheduler_class if isinstance(lr_scheduler_class, tuple) else (lr_scheduler_class,)
        if not all(isinstance(c, type) and issubclass(c, LRSchedulerTypeTuple) for c in classes):
            raise MisconfigurationException(
                f"add_lr_scheduler_args: {lr_scheduler_class} is not an LRScheduler class "
                "(for ReduceLROnPlateau, use lightcycle.cli.ReduceLROnPlateau, which takes `monitor`)."
            )
        kwargs: dict[str, Any] = {"instantiate": False, "fail_untyped": False, "skip": {"optimizer"}}
        if isinstance(lr_scheduler_class, tuple):
            self.add_subclass_arguments(lr_scheduler_class, nested_key, **kwargs)
        else:
            self.add_class_arguments(lr_scheduler_class, nested_key, sub_configs=True, **kwargs)
        self._lr_schedulers[nested_key] = (lr_scheduler_class, link_to)


def _class_path_from_class(class_type: type) -> str:
    return class_type.__module__ + "." + class_type.__name__


def _global_add_class_path(class_type: type, init_args: Any = None) -> dict[str, Any]:
    if isinstance(init_args, Namespace):
        init_args = init_args.as_dict()
    return {"class_path": _class_path_from_class(class_type), "init_args": init_args or {}}


def instantiate_class(args: Any, init: dict[str, Any]) -> Any:
    """Build ``init["class_path"]`` with positional ``args`` and keyword ``init["init_args"]``.

    Args:
        args: the positional argument(s): one value, or a tuple of them.
        init: ``{"class_path": "module.Class", "init_args": {...}}``.

    Returns:
        The instance.
    """
    kwargs = init.get("init_args", {})
    positional = args if isinstance(args, tuple) else (args,)
    module_name, class_name = init["class_path"].rsplit(".", 1)
    return getattr(import_module(module_name), class_name)(*positional, **kwargs)
