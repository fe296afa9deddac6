"""``LightningCLI`` on lightcycle: a configurable command line for a model, a data module and the Trainer.

Lightning 2.6's ``lightning.pytorch.cli`` API (names, arguments, defaults, subcommands, config
files, class paths, linked arguments, automatic optimizer and scheduler arguments), built on
`jsonargparse <https://jsonargparse.readthedocs.io>`_, which reads the classes' signatures. The
parser needs the optional extra ``cli`` (``pip install lightcycle[cli]``); importing this module
does not, so that it imports everywhere and fails, clearly, only when a parser is built.

See ``docs/cli.md`` for the behaviour, every default, and the differences from Lightning.
"""

from __future__ import annotations

import inspect
import os
import sys
import warnings
from collections.abc import Callable
from functools import partial, update_wrapper
from types import MethodType
from typing import Any, TypeVar, Union

import torch
from torch.optim import Optimizer

from lightcycle._hooks import is_overridden
from lightcycle.callbacks.callback import Callback
from lightcycle.cli_parser import (
    _JSONARGPARSE_AVAILABLE,
    _MISSING_JSONARGPARSE,
    JSONARGPARSE_REQUIREMENT,
    ActionConfigFile,
    ArgsType,
    ArgumentParser,
    LightningArgumentParser,
    LRSchedulerCallable,
    LRSchedulerTypeTuple,
    LRSchedulerTypeUnion,
    Namespace,
    OptimizerCallable,
    ReduceLROnPlateau,
    _global_add_class_path,
    _Register,
    class_from_function,
    instantiate_class,
)
from lightcycle.core.datamodule import LightningDataModule
from lightcycle.core.hparams import given_hyperparameters
from lightcycle.core.module import LightningModule
from lightcycle.errors import MisconfigurationException
from lightcycle.runtime.checkpointing import _version as installed_version
from lightcycle.runtime.host import RunHost
from lightcycle.seed import seed_everything
from lightcycle.trainer.trainer import Trainer

__all__ = [
    "ArgsType",
    "LRSchedulerCallable",
    "LRSchedulerTypeTuple",
    "LRSchedulerTypeUnion",
    "LightningArgumentParser",
    "LightningCLI",
    "OptimizerCallable",
    "ReduceLROnPlateau",
    "SaveConfigCallback",
    "instantiate_class",
    "instantiate_module",
]

ModuleType = TypeVar("ModuleType")


class SaveConfigCallback(Callback):
    """Writes the CLI's parsed config to ``config.yaml`` in ``trainer.log_dir`` at the first ``setup``.

    Args:
        parser: the parser that parsed ``config``.
        config: the parsed config to save.
        config_filename: the file's name.
        overwrite: replace an existing file instead of failing.
        multifile: keep the structure of several input config files.
        save_to_log_dir: write to the log dir (False only makes sense with a :meth:`save_config` override).

    Raises:
        ValueError: ``save_to_log_dir=False`` without a :meth:`save_config` override.
        RuntimeError: at ``setup``, the file exists and ``overwrite`` is False (a previous run's results).
    """

    def __init__(
        self,
        parser: LightningArgumentParser,
        config: Namespace,
        config_filename: str = "config.yaml",
        overwrite: bool = False,
        multifile: bool = False,
        save_to_log_dir: bool = True,
    ) -> None:
        self.parser = parser
        self.config = config
        self.config_filename = config_filename
        self.overwrite = overwrite
        self.multifile = multifile
        self.save_to_log_dir = save_to_log_dir
        self.already_saved = False
        if not save_to_log_dir and not is_overridden("save_config", self, SaveConfigCallback):
            raise ValueError(
                "`save_to_log_dir=False` only makes sense when subclassing SaveConfigCallback to implement "
                "`save_config` and it is desired to disable the standard behavior of saving to log_dir."
            )

    def setup(self, trainer: RunHost, pl_module: LightningModule, stage: str) -> None:
        if self.already_saved:
            return
        # lightcycle runs one process: Lightning's broadcasts of "file exists" and "saved" are no-ops here.
        if self.save_to_log_dir:
            log_dir = trainer.log_dir
            assert log_dir is not None  # as Lightning's: a logger without a save_dir has no log_dir
            config_path = os.path.join(log_dir, self.config_filename)
            if not self.overwrite and os.path.isfile(config_path):
                raise RuntimeError(
                    f"{self.__class__.__name__} expected {config_path} to NOT exist. Aborting to avoid overwriting"
                    " results of a previous run. You can delete the previous config file,"
                    " set `LightningCLI(save_config_callback=None)` to disable config saving,"
                    ' or set `LightningCLI(save_config_kwargs={"overwrite": True})` to overwrite the config file.'
                )
            # the logger usually creates log_dir, but it has logged nothing yet
            os.makedirs(log_dir, exist_ok=True)
            self.parser.save(
                self.config, config_path, skip_none=False, overwrite=self.overwrite, multifile=self.multifile
            )
        self.save_config(trainer, pl_module, stage)
        self.already_saved = True

    def save_config(self, trainer: RunHost, pl_module: LightningModule, stage: str) -> None:
        """Override to save the config somewhere else too (e.g. ``trainer.logger.log_hyperparams``).

        Args:
            trainer: the Trainer.
            pl_module: the module.
            stage: the ``setup`` stage (``"fit"``, ``"validate"``, ...).
        """


class LightningCLI:
    """A command line (and config files) for a model, a data module and the Trainer; then it runs a subcommand.

    ``python main.py fit --trainer.max_epochs=3 --model.lr=0.1``, ``... fit --config config.yaml``,
    ``... fit --print_config``; subcommands ``fit``, ``validate``, ``test`` and ``predict``.

    Args:
        model_class: a LightningModule class or a function returning one; ``None``: any module, by ``class_path``.
        datamodule_class: a LightningDataModule class or a function returning one; ``None``: optional, any.
        save_config_callback: the callback class that saves the config (``None``: save nothing).
        save_config_kwargs: its extra arguments (``config_filename``, ``overwrite``, ``multifile``).
        trainer_class: the Trainer class, or a function returning a Trainer.
        trainer_defaults: Trainer argument defaults; ``callbacks`` here are always added, not configurable.
        seed_everything_default: the seed (``True``: a random one, ``False``: no seeding).
        parser_kwargs: parser arguments, or per subcommand ``{"fit": {...}}``.
        parser_class: the parser class.
        subclass_mode_model: accept any subclass of ``model_class`` by ``class_path``.
        subclass_mode_data: accept any subclass of ``datamodule_class`` by ``class_path``.
        args: the arguments to parse instead of ``sys.argv[1:]``: a list, or a dict / Namespace config.
        run: run a subcommand; ``False``: parse and instantiate only (no subcommands).
        auto_configure_optimizers: add ``--optimizer``/``--lr_scheduler`` and, when given, build them for the model.
        load_from_checkpoint_support: make ``save_hyperparameters`` store the parsed config (with ``_class_path``
            and ``_instantiator``), so that ``load_from_checkpoint`` rebuilds nested and injected classes.
    """

    def __init__(
        self,
        model_class: type[LightningModule] | Callable[..., LightningModule] | None = None,
        datamodule_class: type[LightningDataModule] | Callable[..., LightningDataModule] | None = None,
        save_config_callback: type[SaveConfigCallback] | None = SaveConfigCallback,
        save_config_kwargs: dict[str, Any] | None = None,
        trainer_class: type[Trainer] | Callable[..., Trainer] = Trainer,
        trainer_defaults: dict[str, Any] | None = None,
        seed_everything_default: bool | int = True,
        parser_kwargs: dict[str, Any] | dict[str, dict[str, Any]] | None = None,
        parser_class: type[LightningArgumentParser] = LightningArgumentParser,
        subclass_mode_model: bool = False,
        subclass_mode_data: bool = False,
        args: ArgsType = None,
        run: bool = True,
        auto_configure_optimizers: bool = True,
        load_from_checkpoint_support: bool = True,
    ) -> None:
        if not _JSONARGPARSE_AVAILABLE:
            raise ModuleNotFoundError(_MISSING_JSONARGPARSE.format(req=JSONARGPARSE_REQUIREMENT))
        self.save_config_callback = save_config_callback
        self.save_config_kwargs = save_config_kwargs or {}
        self.trainer_class = trainer_class
        self.trainer_defaults = trainer_defaults or {}
        self.seed_everything_default = seed_everything_default
        self.parser_kwargs = parser_kwargs or {}
        self.parser_class = parser_class
        self.auto_configure_optimizers = auto_configure_optimizers

        self.model_class = model_class
        self._model_class: Any = model_class or LightningModule  # the class the parser reads
        self.subclass_mode_model = (model_class is None) or subclass_mode_model
        self.datamodule_class = datamodule_class
        self._datamodule_class: Any = datamodule_class or LightningDataModule
        self.subclass_mode_data = (datamodule_class is None) or subclass_mode_data

        main_kwargs, subparser_kwargs = self._setup_parser_kwargs(self.parser_kwargs)
        self.setup_parser(run, main_kwargs, subparser_kwargs)
        self.parse_arguments(self.parser, args)
        self._parse_ckpt_path()
        self.subcommand: str | None = self.config["subcommand"] if run else None
        self._set_seed()
        if load_from_checkpoint_support:
            self._add_instantiators()
        self.before_instantiate_classes()
        self.instantiate_classes()
        self.after_instantiate_classes()
        if self.subcommand is not None:
            self._run_subcommand(self.subcommand)

    # ------------------------------------------------------------------ parser

    def _setup_parser_kwargs(self, parser_kwargs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        names = self.subcommands().keys()
        main_kwargs = {k: v for k, v in parser_kwargs.items() if k not in names}
        subparser_kwargs = {k: v for k, v in parser_kwargs.items() if k in names}
        return main_kwargs, subparser_kwargs

    def init_parser(self, **kwargs: Any) -> LightningArgumentParser:
        """Build a parser with ``-c/--config``; dumped configs start with ``# lightcycle==<version>``.

        Args:
            **kwargs: the parser's arguments.

        Returns:
            The parser.
        """
        kwargs.setdefault("dump_header", [f"lightcycle=={_version()}"])
        parser = self.parser_class(**kwargs)
        parser.add_argument(
            "-c", "--config", action=ActionConfigFile, help="Path to a configuration file in json or yaml format."
        )
        return parser

    def setup_parser(
        self, add_subcommands: bool, main_kwargs: dict[str, Any], subparser_kwargs: dict[str, Any]
    ) -> None:
        """Build the parser, with one sub-parser per subcommand when ``add_subcommands``.

        Args:
            add_subcommands: whether to add the subcommands (``run=True``).
            main_kwargs: the main parser's arguments.
            subparser_kwargs: per-subcommand parser arguments.
        """
        self.parser = self.init_parser(**main_kwargs)
        if add_subcommands:
            self._subcommand_method_arguments: dict[str, list[str]] = {}
            self._add_subcommands(self.parser, **subparser_kwargs)
        else:
            self._add_arguments(self.parser)

    def add_default_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        """Add ``--seed_everything``.

        Args:
            parser: the parser.
        """
        parser.add_argument(
            "--seed_everything",
            type=Union[bool, int],  # noqa: UP007 - jsonargparse reads the runtime type
            default=self.seed_everything_default,
            help=(
                "Set to an int to run seed_everything with this value before classes instantiation."
                "Set to True to use a random seed."
            ),
        )

    def add_core_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        """Add the ``trainer``, ``model`` and ``data`` groups, with ``trainer_defaults``.

        Args:
            parser: the parser.
        """
        parser.add_lightning_class_args(self.trainer_class, "trainer")
        parser.set_defaults({"trainer." + k: v for k, v in self.trainer_defaults.items() if k != "callbacks"})
        parser.add_lightning_class_args(self._model_class, "model", subclass_mode=self.subclass_mode_model)
        # without a datamodule class the group is optional: the module may have its own dataloaders
        parser.add_lightning_class_args(
            self._datamodule_class,
            "data",
            subclass_mode=self.subclass_mode_data,
            required=self.datamodule_class is not None,
        )

    def _add_arguments(self, parser: LightningArgumentParser) -> None:
        self.add_default_arguments_to_parser(parser)
        self.add_core_arguments_to_parser(parser)
        self.add_arguments_to_parser(parser)
        if self.auto_configure_optimizers:
            if not parser._optimizers:  # not added by the user in add_arguments_to_parser
                parser.add_optimizer_args((Optimizer,))
            if not parser._lr_schedulers:
                parser.add_lr_scheduler_args(LRSchedulerTypeTuple)
        self.link_optimizers_and_lr_schedulers(parser)

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        """Override to add arguments or ``parser.link_arguments(source, target)``.

        Args:
            parser: the parser.
        """

    @staticmethod
    def subcommands() -> dict[str, set[str]]:
        """The subcommands and, for each, the Trainer-method arguments the CLI fills itself (not parsed).

        Returns:
            ``{subcommand: skipped argument names}``.
        """
        return {
            "fit": {"model", "train_dataloaders", "val_dataloaders", "datamodule"},
            "validate": {"model", "dataloaders", "datamodule"},
            "test": {"model", "dataloaders", "datamodule"},
            "predict": {"model", "dataloaders", "datamodule"},
        }

    def _add_subcommands(self, parser: LightningArgumentParser, **kwargs: Any) -> None:
        self._subcommand_parsers: dict[str, LightningArgumentParser] = {}
        parser_subcommands = parser.add_subcommands()
        trainer_class = (
            self.trainer_class if isinstance(self.trainer_class, type) else class_from_function(self.trainer_class)
        )
        for subcommand in self.subcommands():
            description = _short_description(getattr(trainer_class, subcommand))
            subparser_kwargs = kwargs.get(subcommand, {})
            subparser_kwargs.setdefault("description", description)
            subcommand_parser = self._prepare_subcommand_parser(trainer_class, subcommand, **subparser_kwargs)
            self._subcommand_parsers[subcommand] = subcommand_parser
            parser_subcommands.add_subcommand(subcommand, subcommand_parser, help=description)

    def _prepare_subcommand_parser(self, klass: type, subcommand: str, **kwargs: Any) -> LightningArgumentParser:
        parser = self.init_parser(**kwargs)
        self._add_arguments(parser)
        skip: set[str | int] = set(self.subcommands()[subcommand])
        # kept to pass exactly these (ckpt_path, verbose, ...) to the Trainer method
        self._subcommand_method_arguments[subcommand] = parser.add_method_arguments(klass, subcommand, skip=skip)
        return parser

    @staticmethod
    def link_optimizers_and_lr_schedulers(parser: LightningArgumentParser) -> None:
        """Link the optimizer and scheduler groups that name a ``link_to`` target.

        Args:
            parser: the parser.
        """
        for key, (class_type, link_to) in {**parser._optimizers, **parser._lr_schedulers}.items():
            if link_to == "AUTOMATIC":
                continue
            if isinstance(class_type, tuple):
                parser.link_arguments(key, link_to)
            else:
                parser.link_arguments(key, link_to, compute_fn=partial(_global_add_class_path, class_type))

    def parse_arguments(self, parser: LightningArgumentParser, args: ArgsType) -> None:
        """Parse ``args`` (or ``sys.argv[1:]``) into :attr:`config`.

        Args:
            parser: the parser.
            args: a list of command-line arguments, a dict or Namespace config, or ``None``.
        """
        if args is not None and len(sys.argv) > 1:
            _warn(
                "LightningCLI's args parameter is intended to run from within Python like if it were from the command "
                "line. To prevent mistakes it is not recommended to provide both args and command line arguments, got: "
                f"sys.argv[1:]={sys.argv[1:]}, args={args}."
            )
        if isinstance(args, (dict, Namespace)):
            self.config = parser.parse_object(args)
        else:
            self.config = parser.parse_args(args)

    def _parse_ckpt_path(self) -> None:
        """With ``--ckpt_path`` of an existing file, take the model's config from the checkpoint's hyper-parameters."""
        if not self.config.get("subcommand"):
            return
        ckpt_path = self.config[self.config.subcommand].get("ckpt_path")
        if not ckpt_path or not os.path.isfile(ckpt_path):
            return
        hparams = torch.load(ckpt_path, weights_only=True, map_location="cpu").get("hyper_parameters", {})
        hparams.pop("_instantiator", None)
        if not hparams:
            return
        if "_class_path" in hparams:
            hparams = {"class_path": hparams.pop("_class_path"), "dict_kwargs": hparams}
        try:
            self.config = self.parser.parse_object({self.config.subcommand: {"model": hparams}}, self.config)
        except SystemExit:
            sys.stderr.write("Parsing of ckpt_path hyperparameters failed!\n")
            raise

    def _dump_config(self) -> None:
        if hasattr(self, "config_dump"):
            return
        # deferred: heavy optional dependency yaml (jsonargparse's, present whenever a parser exists)
        import yaml

        dumped = self.parser.dump(self.config, skip_link_targets=False, skip_none=False, format="yaml")
        self.config_dump: dict[str, Any] = yaml.safe_load(dumped)
        if "subcommand" in self.config:
            self.config_dump = self.config_dump[self.config.subcommand]

    def _add_instantiators(self) -> None:
        self.parser.add_instantiator(
            _InstantiatorFn(cli=self, key="model"),
            _get_module_type(self._model_class),
            subclasses=self.subclass_mode_model,
        )
        self.parser.add_instantiator(
            _InstantiatorFn(cli=self, key="data"),
            _get_module_type(self._datamodule_class),
            subclasses=self.subclass_mode_data,
        )

    # ------------------------------------------------------------------ instantiation

    def before_instantiate_classes(self) -> None:
        """Override to run code before the classes are instantiated."""

    def instantiate_classes(self) -> None:
        """Instantiate the model, the data module and the Trainer from :attr:`config`."""
        self.config_init = self.parser.instantiate_classes(self.config)
        self.datamodule = self._get(self.config_init, "data")
        self.model = self._get(self.config_init, "model")
        self._add_configure_optimizers_method_to_model(self.subcommand)
        self.trainer = self.instantiate_trainer()

    def after_instantiate_classes(self) -> None:
        """Override to run code after the classes are instantiated."""

    def instantiate_trainer(self, **kwargs: Any) -> Trainer:
        """Build the Trainer from the ``trainer`` group, with the configured and default callbacks.

        Args:
            **kwargs: Trainer arguments overriding the config.

        Returns:
            The Trainer.
        """
        extra_callbacks = [self._get(self.config_init, c) for c in self._parser(self.subcommand).callback_keys]
        trainer_config = {**self._get(self.config_init, "trainer", default={}), **kwargs}
        return self._instantiate_trainer(trainer_config, extra_callbacks)

    def _instantiate_trainer(self, config: dict[str, Any], callbacks: list[Callback]) -> Trainer:
        key = "callbacks"
        if key in config:
            if config[key] is None:
                config[key] = []
            elif not isinstance(config[key], list):
                config[key] = [config[key]]
            config[key].extend(callbacks)
            if key in self.trainer_defaults:
                value = self.trainer_defaults[key]
                config[key] += value if isinstance(value, list) else [value]
            if self.save_config_callback and not config.get("fast_dev_run", False):
                config[key].append(
                    self.save_config_callback(
                        self._parser(self.subcommand),
                        self.config.get(str(self.subcommand), self.config),
                        **self.save_config_kwargs,
                    )
                )
        else:
            _warn(
                f"The `{getattr(self.trainer_class, '__qualname__', self.trainer_class)}` class does not expose the "
                f"`{key}` argument so they will not be included."
            )
        trainer: Trainer = self.trainer_class(**config)
        return trainer

    def _parser(self, subcommand: str | None) -> LightningArgumentParser:
        return self.parser if subcommand is None else self._subcommand_parsers[subcommand]

    @staticmethod
    def configure_optimizers(
        lightning_module: LightningModule, optimizer: Optimizer, lr_scheduler: LRSchedulerTypeUnion | None = None
    ) -> Any:
        """What the model's ``configure_optimizers`` returns when the CLI builds the optimizer (override to change).

        Args:
            lightning_module: the model.
            optimizer: the optimizer.
            lr_scheduler: the scheduler, if any.

        Returns:
            The optimizer; ``[optimizer], [scheduler]``; or, for :class:`ReduceLROnPlateau`, a dict with its monitor.
        """
        if lr_scheduler is None:
            return optimizer
        if isinstance(lr_scheduler, ReduceLROnPlateau):
            return {
                "optimizer": optimizer,
                "lr_scheduler": {"scheduler": lr_scheduler, "monitor": lr_scheduler.monitor},
            }
        return [optimizer], [lr_scheduler]

    def _add_configure_optimizers_method_to_model(self, subcommand: str | None) -> None:
        """Replace the model's ``configure_optimizers`` when one AUTOMATIC optimizer (and scheduler) group is given."""
        if not self.auto_configure_optimizers:
            return
        parser = self._parser(subcommand)
        optimizers = _automatic(Optimizer, parser._optimizers)
        lr_schedulers = _automatic(LRSchedulerTypeTuple, parser._lr_schedulers)
        if not optimizers:
            return
        if len(optimizers) > 1 or len(lr_schedulers) > 1:
            raise MisconfigurationException(
                f"`{self.__class__.__name__}.add_configure_optimizers_method_to_model` expects at most one optimizer "
                f"and one lr_scheduler to be 'AUTOMATIC', but found {optimizers + lr_schedulers}. In this case the "
                "user is expected to link the argument groups and implement `configure_optimizers`, see "
                "docs/cli.md#optimizers-and-schedulers"
            )
        optimizer_class = parser._optimizers[optimizers[0]][0]
        optimizer_init = self._get(self.config_init, optimizers[0])
        if not isinstance(optimizer_class, tuple):
            optimizer_init = _global_add_class_path(optimizer_class, optimizer_init)
        if not optimizer_init:
            return  # the groups were added automatically but the user gave no optimizer
        lr_scheduler_init = None
        if lr_schedulers:
            lr_scheduler_class = parser._lr_schedulers[lr_schedulers[0]][0]
            lr_scheduler_init = self._get(self.config_init, lr_schedulers[0])
            if not isinstance(lr_scheduler_class, tuple):
                lr_scheduler_init = _global_add_class_path(lr_scheduler_class, lr_scheduler_init)
        if is_overridden("configure_optimizers", self.model, LightningModule):
            _warn(
                f"`{self.model.__class__.__name__}.configure_optimizers` will be overridden by "
                f"`{self.__class__.__name__}.configure_optimizers`."
            )
        optimizer = instantiate_class(self.model.parameters(), optimizer_init)
        lr_scheduler = instantiate_class(optimizer, lr_scheduler_init) if lr_scheduler_init else None
        fn = partial(self.configure_optimizers, optimizer=optimizer, lr_scheduler=lr_scheduler)
        update_wrapper(fn, self.configure_optimizers)  # a named function, so that is_overridden sees an override
        self.model.configure_optimizers = MethodType(fn, self.model)

    def _get(self, config: Any, key: str, default: Any = None) -> Any:
        """``config[key]``, inside the subcommand's section when there is one."""
        return config.get(str(self.subcommand), config).get(key, default)

    # ------------------------------------------------------------------ running

    def _run_subcommand(self, subcommand: str) -> None:
        before_fn = getattr(self, f"before_{subcommand}", None)
        if callable(before_fn):
            before_fn()
        fn = getattr(self, subcommand, getattr(self.trainer, subcommand))
        fn(**self._prepare_subcommand_kwargs(subcommand))
        after_fn = getattr(self, f"after_{subcommand}", None)
        if callable(after_fn):
            after_fn()

    def _prepare_subcommand_kwargs(self, subcommand: str) -> dict[str, Any]:
        fn_kwargs = {
            k: v for k, v in self.config_init[subcommand].items() if k in self._subcommand_method_arguments[subcommand]
        }
        fn_kwargs["model"] = self.model
        if self.datamodule is not None:
            fn_kwargs["datamodule"] = self.datamodule
        return fn_kwargs

    def _set_seed(self) -> None:
        config_seed = self._get(self.config, "seed_everything")
        if config_seed is False:
            return
        # True: a random seed, recorded in the config (and so in config.yaml) as Lightning does
        config_seed = (
            seed_everything(workers=True) if config_seed is True else seed_everything(config_seed, workers=True)
        )
        if self.subcommand:
            self.config[self.subcommand]["seed_everything"] = config_seed
        else:
            self.config["seed_everything"] = config_seed


def _automatic(class_type: type | tuple[type, ...], register: _Register) -> list[str]:
    """The keys of ``register`` linked AUTOMATIC whose classes derive from ``class_type``."""
    keys = []
    for key, (base_class, link_to) in register.items():
        bases = base_class if isinstance(base_class, tuple) else (base_class,)
        if link_to == "AUTOMATIC" and any(issubclass(c, class_type) for c in bases):
            keys.append(key)
    return keys


def _get_module_type(value: Callable[..., Any] | type) -> Any:
    """The class a model or data factory builds: itself, or a function's return annotation."""
    if callable(value) and not isinstance(value, type):
        return inspect.signature(value).return_annotation
    return value


def _set_dict_nested(data: dict[str, Any], key: str, value: Any) -> None:
    keys = key.split(".")
    for k in keys[:-1]:
        if k not in data:
            raise KeyError(f"Expected key {key} to be in data")
        data = data[k]
    data[keys[-1]] = value


class _InstantiatorFn:
    """Builds the model or data module inside :func:`given_hyperparameters`, so that ``save_hyperparameters``
    stores the parsed config (Lightning's ``_InstantiatorFn``)."""

    def __init__(self, cli: LightningCLI, key: str) -> None:
        self.cli = cli
        self.key = key

    def __call__(
        self, class_type: type[ModuleType], *args: Any, applied_instantiation_links: dict[str, Any], **kwargs: Any
    ) -> ModuleType:
        self.cli._dump_config()
        hparams = self.cli.config_dump.get(self.key, {})
        if "class_path" in hparams:
            # stored flat, with the class in `_class_path`: the same hparams whether or not subclass mode is on
            hparams = {
                "_class_path": hparams["class_path"],
                **hparams.get("init_args", {}),
                **hparams.get("dict_kwargs", {}),
            }
        for key, value in applied_instantiation_links.items():
            if not key.startswith(f"{self.key}."):
                continue
            key = key[len(f"{self.key}.") :]
            if key.startswith("init_args."):
                key = key[len("init_args.") :]
            _set_dict_nested(hparams, key, value)
        with given_hyperparameters(hparams, instantiator="lightcycle.cli.instantiate_module"):
            return class_type(*args, **kwargs)


def instantiate_module(class_type: type[ModuleType], config: dict[str, Any]) -> ModuleType:
    """Rebuild a class from the hyper-parameters LightningCLI stored (``load_from_checkpoint``'s instantiator).

    Args:
        class_type: the class (or base class, with ``_class_path`` in ``config``).
        config: the stored hyper-parameters.

    Returns:
        The instance.
    """
    parser = ArgumentParser(exit_on_error=False)
    if "_class_path" in config:
        parser.add_subclass_arguments(class_type, "module", fail_untyped=False)
        config = {
            "class_path": config["_class_path"],
            "dict_kwargs": {k: v for k, v in config.items() if k != "_class_path"},
        }
    else:
        parser.add_class_arguments(class_type, "module", fail_untyped=False)
    cfg = parser.parse_object({"module": config})
    built: ModuleType = parser.instantiate_classes(cfg).module
    return built


def _short_description(component: object) -> str | None:
    """The first line of ``component``'s docstring (the subcommand's help)."""
    doc = inspect.getdoc(component)
    if not doc:
        return None
    return doc.strip().splitlines()[0]


def _warn(message: str) -> None:
    warnings.warn(message, UserWarning, stacklevel=3)


def _version() -> str:
    return installed_version()
