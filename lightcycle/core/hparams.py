"""Hyper-parameter capture (``save_hyperparameters``) and the checkpoint side of it.

Behaviour follows Lightning's ``HyperparametersMixin``: called from ``__init__`` with no
arguments, ``save_hyperparameters`` collects every argument of every ``__init__`` in the
inheritance chain of the calling object (most specific last, so it wins), minus ``ignore``.
"""

from __future__ import annotations

import ast
import copy
import csv
import dataclasses
import functools
import importlib
import inspect
import sys
import types
import warnings
from argparse import Namespace
from collections.abc import Callable, Iterator, MutableMapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from os import PathLike
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

_PRIMITIVE_TYPES = (bool, int, float, str)

#: Checkpoint key under which checkpoints written by older Lightning versions kept hparams.
_PAST_HPARAMS_KEYS = ("hparams", "module_arguments")

#: What ``save_hyperparameters`` stores instead of the ``__init__`` arguments while LightningCLI builds a class
#: (its parsed config, with ``_instantiator``), as Lightning's ``_given_hyperparameters``.
_given_hyperparameters: ContextVar[dict[str, Any] | None] = ContextVar("_given_hyperparameters", default=None)

#: The instantiators a checkpoint's ``_instantiator`` may name (anything else could run arbitrary code). Lightning's
#: names map to lightcycle's: a checkpoint written by Lightning's CLI loads here too.
_ALLOWED_INSTANTIATORS = {
    "lightcycle.cli.instantiate_module": "lightcycle.cli.instantiate_module",
    "pytorch_lightning.cli.instantiate_module": "lightcycle.cli.instantiate_module",
    "lightning.pytorch.cli.instantiate_module": "lightcycle.cli.instantiate_module",
}


@contextmanager
def given_hyperparameters(hparams: dict[str, Any], instantiator: str) -> Iterator[None]:
    """While inside, ``save_hyperparameters`` stores ``hparams`` (plus ``_instantiator``) instead of ``__init__``'s.

    Args:
        hparams: the hyper-parameters to store (LightningCLI's parsed config of the class).
        instantiator: import path of the function that rebuilds the class from them at checkpoint load.

    Yields:
        Nothing.
    """
    token = _given_hyperparameters.set({**hparams, "_instantiator": instantiator})
    try:
        yield
    finally:
        _given_hyperparameters.reset(token)


class AttributeDict(dict[str, Any]):
    """A ``dict`` whose keys can also be read and written as attributes.

    Example:
        >>> ad = AttributeDict(lr=0.1)
        >>> ad.lr
        0.1
    """

    def __getattr__(self, key: str) -> Any:
        try:
            return self[key]
        except KeyError as err:
            raise AttributeError(f"'{type(self).__name__}' object has no attribute '{key}'") from err

    def __setattr__(self, key: str, val: Any) -> None:
        self[key] = val

    def __delattr__(self, key: str) -> None:
        if key not in self:
            raise KeyError(key)
        del self[key]

    def __repr__(self) -> str:
        if not self:
            return ""
        width = max(len(str(k)) for k in self) + 3
        rows = []
        for key in sorted(self):
            label = '"' + str(key) + '":'
            rows.append(f"{label:{width}s} {self[key]}")
        return "\n".join(rows)


# Checkpoints store ``type(hparams)``; let ``torch.load(weights_only=True)`` accept ours.
torch.serialization.add_safe_globals([AttributeDict])


def _init_keys(cls: type) -> tuple[str, str | None, str | None]:
    """Names of ``self``, ``*args`` and ``**kwargs`` in ``cls.__init__``."""
    params = list(inspect.signature(cls.__init__).parameters.values())  # type: ignore[misc]
    self_name = params[0].name
    var_args = next((p.name for p in params if p.kind is inspect.Parameter.VAR_POSITIONAL), None)
    var_kwargs = next((p.name for p in params if p.kind is inspect.Parameter.VAR_KEYWORD), None)
    return self_name, var_args, var_kwargs


def _frame_init_args(frame: types.FrameType) -> tuple[Any, dict[str, Any]]:
    """The object and the arguments of the ``__init__`` running in ``frame`` (or ``(None, {})``)."""
    local_vars = frame.f_locals
    if "__class__" not in local_vars or frame.f_code.co_name != "__init__":
        return None, {}
    cls = local_vars["__class__"]
    params = inspect.signature(cls.__init__).parameters
    self_name, var_args, var_kwargs = _init_keys(cls)
    excluded = {n for n in (self_name, var_args, var_kwargs) if n} | {"__class__", "frame", "frame_args"}
    local_args = {k: local_vars[k] for k in params if k in local_vars}
    if var_kwargs:
        local_args.update(local_args.get(var_kwargs, {}))
    return local_vars.get(self_name), {k: v for k, v in local_args.items() if k not in excluded}


def _collect_init_args(frame: types.FrameType, classes: tuple[type, ...]) -> list[dict[str, Any]]:
    """Walk outward from ``frame`` through the chain of ``__init__`` frames of ``classes``.

    Returns:
        One dict of arguments per constructor, innermost (base class) first.
    """
    collected: list[dict[str, Any]] = []
    inside = False
    current: types.FrameType | None = frame
    while current is not None and isinstance(current.f_back, types.FrameType):
        obj, args = _frame_init_args(current)
        if "__class__" in current.f_locals and (not classes or isinstance(obj, classes)):
            collected.append(args)
            inside = True
        elif inside:
            break
        current = current.f_back
    return collected


class HyperparametersMixin:
    """Gives a class ``save_hyperparameters``, ``hparams`` and ``hparams_initial``."""

    _hparams: MutableMapping[str, Any] | Namespace
    _hparams_initial: MutableMapping[str, Any] | Namespace
    _hparams_name: str | None
    _log_hyperparams: bool

    def save_hyperparameters(
        self,
        *args: Any,
        ignore: Sequence[str] | str | None = None,
        frame: types.FrameType | None = None,
        logger: bool = True,
    ) -> None:
        """Store constructor arguments in :attr:`hparams` (and in checkpoints).

        Args:
            *args: nothing (take every ``__init__`` argument), argument names to keep, or a
                single ``dict`` / ``Namespace`` / mapping to store as is.
            ignore: argument name(s) to leave out.
            frame: the ``__init__`` frame to read; defaults to the caller's.
            logger: whether the Trainer should send the hyper-parameters to its loggers.
        """
        self._log_hyperparams = logger
        if len(args) == 1 and not args[0]:
            return
        if frame is None:
            current = inspect.currentframe()
            frame = current.f_back if current is not None else None
        if not isinstance(frame, types.FrameType):
            raise AttributeError("There is no `frame` available while being required.")

        init_args: dict[str, Any]
        given = _given_hyperparameters.get()
        if given is not None:
            init_args = dict(given)
        elif dataclasses.is_dataclass(self) and not isinstance(self, type):
            init_args = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.init}
        else:
            init_args = {}
            for local_args in _collect_init_args(frame, (HyperparametersMixin,)):
                init_args.update(local_args)

        if ignore is None:
            ignored: list[str] = []
        elif isinstance(ignore, str):
            ignored = [ignore]
        else:
            ignored = [name for name in ignore if isinstance(name, str)]
        init_args = {k: v for k, v in init_args.items() if k not in ignored}

        hp: Any
        if not args:
            hp = init_args
            self._hparams_name = "kwargs" if hp else None
        else:
            non_str = [arg for arg in args if not isinstance(arg, str)]
            if len(non_str) == 1:
                hp = non_str[0]
                names = [k for k, v in init_args.items() if v is hp or _safe_eq(v, hp)]
                self._hparams_name = names[0] if names else None
            else:
                hp = {arg: init_args[arg] for arg in args if isinstance(arg, str)}
                self._hparams_name = "kwargs"

        self._set_hparams(hp)
        hparams = self._hparams
        if isinstance(hparams, MutableMapping):
            for key in ignored:
                hparams.pop(key, None)
            for key, value in hparams.items():
                if isinstance(value, nn.Module):
                    warnings.warn(
                        f"Attribute {key!r} is an instance of `nn.Module` and is already saved during"
                        f" checkpointing. It is recommended to ignore them using"
                        f" `self.save_hyperparameters(ignore=[{key!r}])`.",
                        stacklevel=2,
                    )
        self._hparams_initial = copy.deepcopy(self._hparams)

    def _set_hparams(self, hp: MutableMapping[str, Any] | Namespace | str) -> None:
        converted = self._to_hparams_dict(hp)
        current = self.hparams
        if isinstance(converted, dict) and isinstance(current, dict):
            current.update(converted)
        else:
            self._hparams = converted

    def remove_ignored_hparams(self, ignore_list: list[str]) -> None:
        """Drop hyper-parameters saved earlier (for example by a base class).

        Args:
            ignore_list: names to remove.
        """
        hparams = self.hparams
        if isinstance(hparams, MutableMapping):
            for key in ignore_list:
                hparams.pop(key, None)

    @staticmethod
    def _to_hparams_dict(hp: Any) -> MutableMapping[str, Any] | Namespace:
        if isinstance(hp, Namespace):
            hp = vars(hp)
        if isinstance(hp, dict):
            return AttributeDict(hp)
        if isinstance(hp, _PRIMITIVE_TYPES):
            # ValueError (not TypeError) as in Lightning, so existing `except` clauses match.
            raise ValueError(f"Primitives {_PRIMITIVE_TYPES} are not allowed.")
        if not isinstance(hp, MutableMapping):
            raise ValueError(f"Unsupported config type of {type(hp)}.")
        return hp

    @property
    def hparams(self) -> Any:
        """The mutable hyper-parameters saved by :meth:`save_hyperparameters` (an ``AttributeDict``)."""
        try:
            return self._hparams
        except AttributeError:
            self._hparams = AttributeDict()
            return self._hparams

    @property
    def hparams_initial(self) -> Any:
        """A deep copy of the hyper-parameters as first saved; edits to it do not stick."""
        try:
            initial = self._hparams_initial
        except AttributeError:
            return AttributeDict()
        return copy.deepcopy(initial)

    def _hparams_checkpoint_entries(self, key: str, name_key: str, type_key: str) -> dict[str, Any]:
        """The entries a checkpoint stores for these hyper-parameters (empty when there are none).

        Args:
            key: checkpoint key for the values (``"hyper_parameters"`` for a module).
            name_key: key for the argument name (``"hparams_name"``).
            type_key: key for the container type (``"hparams_type"``).

        Returns:
            A dict to merge into the checkpoint.
        """
        hparams = self.hparams
        if not hparams:
            return {}
        out: dict[str, Any] = {}
        if hasattr(self, "_hparams_name"):
            out[name_key] = self._hparams_name
        out[key] = dict(vars(hparams) if isinstance(hparams, Namespace) else hparams)
        out[type_key] = type(hparams)
        return out


def _safe_eq(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except (RuntimeError, TypeError, ValueError):
        return False


def load_hparams_from_yaml(path: str | PathLike[str]) -> dict[str, Any]:
    """Read hyper-parameters from a YAML file (needs PyYAML).

    Args:
        path: the file.

    Returns:
        The mapping stored there (``{}`` for an empty file).
    """
    yaml = importlib.import_module("yaml")  # PyYAML is optional; only this path needs it.
    with open(path, encoding="utf-8") as fh:
        loaded = yaml.safe_load(fh)
    return dict(loaded or {})


def load_hparams_from_tags_csv(path: str | PathLike[str]) -> dict[str, Any]:
    """Read ``key,value`` rows (with a header row) written by Lightning's ``save_hparams_to_tags_csv``.

    Args:
        path: the file.

    Returns:
        The keys with their values parsed as Python literals when possible.
    """
    out: dict[str, Any] = {}
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh, delimiter=","))
    for row in rows[1:]:
        if len(row) >= 2:
            out[row[0]] = convert(row[1])
    return out


def convert(val: str) -> Any:
    """A tags-CSV value as the Python literal it spells, else the string itself (Lightning's ``convert``).

    Args:
        val: the text.

    Returns:
        The literal (a number, a bool, a list...) or ``val``.
    """
    try:
        return ast.literal_eval(val)
    except (ValueError, SyntaxError):
        return val


def _convert_loaded_hparams(args: dict[str, Any], hparams_type: Any) -> Any:
    if not hparams_type:
        return args
    if isinstance(hparams_type, str):
        return AttributeDict(args)
    if isinstance(hparams_type, type) or callable(hparams_type):
        return hparams_type(args)
    return args


def instantiate_from_checkpoint(
    cls: type[Any],
    checkpoint: dict[str, Any],
    key: str,
    name_key: str,
    type_key: str,
    past_keys: Sequence[str] = (),
    **overrides: Any,
) -> Any:
    """Build ``cls`` from the hyper-parameters a checkpoint stores, with ``overrides`` on top.

    Args:
        cls: the class to build.
        checkpoint: the loaded checkpoint dict.
        key: hyper-parameter key (``"hyper_parameters"`` or ``"datamodule_hyper_parameters"``).
        name_key: key of the stored argument name.
        type_key: key of the stored container type.
        past_keys: older keys to read first (lower priority).
        **overrides: keyword arguments that win over stored values.

    Returns:
        The new instance.
    """
    self_name, var_args, var_kwargs = _init_keys(cls)
    init_names = [n for n in inspect.signature(cls.__init__).parameters if n not in (self_name, var_args, var_kwargs)]
    loaded: Any = {}
    if key in checkpoint:
        for old in past_keys:
            loaded.update(checkpoint.get(old, {}))
        loaded.update(checkpoint.get(key, {}))
        loaded = _convert_loaded_hparams(loaded, checkpoint.get(type_key))
        args_name = checkpoint.get(name_key)
        if args_name and args_name in init_names:
            loaded = {args_name: loaded}
    kwargs: dict[str, Any] = dict(loaded)
    kwargs.update(overrides)
    instantiator = _checkpoint_instantiator(cls, kwargs)
    if var_kwargs is None:
        kwargs = {k: v for k, v in kwargs.items() if k in init_names}
    return instantiator(cls, kwargs) if instantiator is not None else cls(**kwargs)


def _checkpoint_instantiator(
    cls: type[Any], kwargs: dict[str, Any]
) -> Callable[[type[Any], dict[str, Any]], Any] | None:
    """Pop ``_instantiator`` (written by LightningCLI) from ``kwargs``; the allowed function it names, if any."""
    path = kwargs.pop("_instantiator", None)
    if path is None:
        return None
    if not isinstance(path, str) or path not in _ALLOWED_INSTANTIATORS:
        raise ValueError(
            f"The instantiator {path!r} from the checkpoint is not in the allowlist of trusted instantiators and was "
            "blocked to prevent arbitrary code execution. If you trust this checkpoint, add the path to "
            "`lightcycle.core.hparams._ALLOWED_INSTANTIATORS` before loading."
        )
    class_path = kwargs.get("_class_path")
    if class_path is not None and not _is_imported_subclass(class_path, cls):
        raise ValueError(
            f"The class {class_path!r} requested by the checkpoint does not resolve to an already imported subclass "
            f"of {cls.__name__} and was blocked to prevent arbitrary code execution. If you trust this checkpoint, "
            "import the module that defines the class before loading."
        )
    module_name, name = _ALLOWED_INSTANTIATORS[path].rsplit(".", 1)
    found: Callable[[type[Any], dict[str, Any]], Any] = getattr(importlib.import_module(module_name), name)
    return found


def _is_imported_subclass(class_path: Any, cls: type[Any]) -> bool:
    if not isinstance(class_path, str) or "." not in class_path:
        return False
    module_name, name = class_path.rsplit(".", 1)
    found = getattr(sys.modules.get(module_name), name, None)
    return isinstance(found, type) and issubclass(found, cls)


if TYPE_CHECKING:
    _ClassmethodBase = classmethod[Any, Any, Any]
else:
    _ClassmethodBase = classmethod


class _RestrictedClassmethod(_ClassmethodBase):
    """A ``classmethod`` that refuses to be called through an instance (as Lightning's)."""

    def __get__(self, instance: Any, owner: type | None = None) -> Callable[..., Any]:
        method = self.__func__
        cls = owner if owner is not None else type(instance)

        @functools.wraps(method)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if instance is not None:
                raise TypeError(
                    f"The classmethod `{cls.__name__}.{method.__name__}` cannot be called on an instance."
                    " Please call it on the class type and make sure the return value is used."
                )
            return method(cls, *args, **kwargs)

        return wrapper


if TYPE_CHECKING:
    # Type checkers see a plain classmethod.
    restricted_classmethod = classmethod
else:
    restricted_classmethod = _RestrictedClassmethod
