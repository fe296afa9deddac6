"""Trainer arguments: checked once, at construction, before any hook can fire.

Every Lightning argument lightcycle accepts is resolved here with Lightning's meaning and
default; every Lightning argument it does not support yet is refused by name.
"""

from __future__ import annotations

import numbers
import os
from typing import Any

import attrs
import torch

from lightcycle.errors import InvalidTypeError, InvalidValueError, MisconfigurationException
from lightcycle.plugins.io import CheckpointIO
from lightcycle.precision import Precision, plugin_list, resolve_precision
from lightcycle.strategies.environment import ClusterEnvironment

# Lightning 2.6 Trainer arguments lightcycle does not implement (yet). Passing any of them
# with a non-default value is an error that names it; nothing is silently ignored.
UNSUPPORTED: dict[str, object] = {
    "model_registry": None,
    "enable_autolog_hparams": True,
}


def _is_default(value: object, default: object) -> bool:
    if value is default:
        return True
    if isinstance(value, bool) or isinstance(default, bool):
        return type(value) is type(default) and value == default
    if isinstance(default, (int, float, str)) and isinstance(value, (int, float, str)):
        same_kind = type(value) is type(default) or (isinstance(default, float) and isinstance(value, int))
        return same_kind and value == default
    return False


def _fail(
    name: str, value: object, expected: str, kind: type[MisconfigurationException] = MisconfigurationException
) -> MisconfigurationException:
    return kind(f"Trainer({name}={value!r}) is invalid: expected {expected}.")


def _int_or_none(name: str, value: Any, minimum: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise _fail(name, value, f"an int >= {minimum} or None")
    return int(value)


def _limit(name: str, value: Any) -> int | float:
    if value is None:
        return 1.0
    if isinstance(value, bool):
        raise _fail(name, value, "an int >= 0 (batches) or a float in [0.0, 1.0] (fraction)")
    if isinstance(value, numbers.Integral):
        if value < 0:
            raise _fail(name, value, "an int >= 0 (batches) or a float in [0.0, 1.0] (fraction)")
        return int(value)
    if isinstance(value, numbers.Real) and 0.0 <= float(value) <= 1.0:
        return float(value)
    if isinstance(value, numbers.Real) and float(value) > 1.0 and float(value) % 1.0 == 0:
        return int(float(value))  # Lightning's _determine_batch_limits: 3.0 is 3 batches (LightningCLI passes floats)
    kind = MisconfigurationException if isinstance(value, numbers.Real) else InvalidTypeError
    raise _fail(name, value, "an int >= 0 (batches) or a float in [0.0, 1.0] (fraction)", kind)


@attrs.define
class TrainerConfig:
    """The resolved Trainer arguments (Lightning's names, meanings and defaults)."""

    max_epochs: int
    min_epochs: int | None
    max_steps: int
    min_steps: int | None
    limit_train_batches: int | float
    limit_val_batches: int | float
    limit_test_batches: int | float
    limit_predict_batches: int | float
    num_sanity_val_steps: int | float
    val_check_interval: int | float
    check_val_every_n_epoch: int | None
    accumulate_grad_batches: int
    gradient_clip_val: float | None
    gradient_clip_algorithm: str | None
    device: torch.device
    default_root_dir: str
    enable_progress_bar: bool
    enable_checkpointing: bool
    enable_model_summary: bool
    inference_mode: bool
    deterministic: bool | str | None
    log_every_n_steps: int
    precision_plugin: Precision
    checkpoint_io: CheckpointIO | None
    """The ``plugins`` checkpoint IO plugin; ``None``: the strategy's own."""
    cluster_environment: ClusterEnvironment | None = None
    """The ``plugins`` cluster environment; ``None``: the strategy's own, or detected."""


def resolve(
    *,
    accelerator: str,
    devices: Any,
    max_epochs: int | None,
    min_epochs: int | None,
    max_steps: int,
    min_steps: int | None,
    limit_train_batches: Any,
    limit_val_batches: Any,
    limit_test_batches: Any,
    limit_predict_batches: Any,
    num_sanity_val_steps: int | None,
    val_check_interval: Any,
    check_val_every_n_epoch: int | None,
    accumulate_grad_batches: int,
    gradient_clip_val: Any,
    gradient_clip_algorithm: str | None,
    default_root_dir: str | os.PathLike[str] | None,
    enable_progress_bar: bool | None,
    enable_checkpointing: bool | None,
    enable_model_summary: bool | None,
    inference_mode: bool,
    deterministic: bool | str | None,
    log_every_n_steps: int | None,
    precision: Any,
    plugins: Any,
    unsupported: dict[str, Any],
) -> TrainerConfig:
    """Check and resolve Trainer arguments.

    Raises:
        MisconfigurationException: naming the argument, the value and what is allowed,
            or naming a Lightning argument lightcycle does not support.
    """
    for name, value in unsupported.items():
        if name not in UNSUPPORTED:
            raise TypeError(
                f"Trainer() got an unexpected keyword argument {name!r}: it is not a Lightning 2.6 Trainer "
                "argument. Check the spelling."
            )
        if _is_default(value, UNSUPPORTED[name]):
            continue  # Lightning's default, spelled out: it changes nothing
        raise MisconfigurationException(
            f"Trainer({name}=...) is a Lightning argument that lightcycle does not support yet; remove it "
            f"(Lightning's default is {UNSUPPORTED[name]!r}). See 'Differences from Lightning' in the README."
        )
    device = _device(accelerator, devices)
    checkpoint_io, cluster_environment = _other_plugins(plugins)
    precision_plugin = resolve_precision(precision, plugins, device)
    if max_epochs is not None and (
        isinstance(max_epochs, bool) or not isinstance(max_epochs, numbers.Integral) or max_epochs < -1
    ):
        raise _fail("max_epochs", max_epochs, "an int >= -1 (-1 means unlimited) or None")
    if isinstance(max_steps, bool) or not isinstance(max_steps, numbers.Integral) or max_steps < -1:
        raise _fail("max_steps", max_steps, "an int >= -1 (-1 means unlimited)")
    if max_epochs is None:
        # Lightning: with neither limit set, train for 1000 epochs; with max_steps set, no epoch limit.
        max_epochs = 1000 if max_steps == -1 else -1
    if num_sanity_val_steps is None:
        sanity: int | float = 2
    elif num_sanity_val_steps == -1:
        sanity = float("inf")
    else:
        n_sanity = num_sanity_val_steps
        if isinstance(n_sanity, bool) or not isinstance(n_sanity, numbers.Integral) or n_sanity < 0:
            raise _fail("num_sanity_val_steps", n_sanity, "an int >= 0, -1 (all validation batches) or None")
        sanity = int(n_sanity)
    if check_val_every_n_epoch is None and isinstance(val_check_interval, float):
        raise MisconfigurationException(
            f"Trainer(val_check_interval={val_check_interval!r}) is a fraction of an epoch, but "
            "check_val_every_n_epoch=None validates by counting training batches across epochs: pass an int "
            "val_check_interval (validate every k training batches) or set check_val_every_n_epoch to an int."
        )
    if val_check_interval is None:
        val_check_interval = 1.0
    if isinstance(val_check_interval, bool) or not isinstance(val_check_interval, numbers.Real):
        raise _fail("val_check_interval", val_check_interval, "an int >= 1 (batches) or a float in (0.0, 1.0]")
    if isinstance(val_check_interval, numbers.Integral):
        if val_check_interval < 1:
            raise _fail("val_check_interval", val_check_interval, "an int >= 1 (batches) or a float in (0.0, 1.0]")
        val_check_interval = int(val_check_interval)
    elif not 0.0 < float(val_check_interval) <= 1.0:
        raise _fail("val_check_interval", val_check_interval, "an int >= 1 (batches) or a float in (0.0, 1.0]")
    if (
        isinstance(accumulate_grad_batches, bool)
        or not isinstance(accumulate_grad_batches, numbers.Integral)
        or accumulate_grad_batches < 1
    ):
        raise _fail("accumulate_grad_batches", accumulate_grad_batches, "an int >= 1")
    if gradient_clip_val is not None:
        if isinstance(gradient_clip_val, bool) or not isinstance(gradient_clip_val, numbers.Real):
            raise _fail("gradient_clip_val", gradient_clip_val, "a number >= 0 or None", InvalidTypeError)
        if gradient_clip_val < 0:
            raise _fail("gradient_clip_val", gradient_clip_val, "a number >= 0 or None")
        gradient_clip_val = float(gradient_clip_val)
    if isinstance(gradient_clip_algorithm, str):
        gradient_clip_algorithm = gradient_clip_algorithm.lower()  # Lightning: case-insensitive
    if gradient_clip_algorithm is not None and gradient_clip_algorithm not in ("norm", "value"):
        raise _fail("gradient_clip_algorithm", gradient_clip_algorithm, "'norm', 'value' or None")
    if deterministic not in (None, True, False, "warn"):
        raise _fail("deterministic", deterministic, "True, False, 'warn' or None")
    log_every = 50 if log_every_n_steps is None else _int_or_none("log_every_n_steps", log_every_n_steps, 0)
    return TrainerConfig(
        max_epochs=int(max_epochs),
        min_epochs=_int_or_none("min_epochs", min_epochs, 0),
        max_steps=int(max_steps),
        min_steps=_int_or_none("min_steps", min_steps, 0),
        limit_train_batches=_limit("limit_train_batches", limit_train_batches),
        limit_val_batches=_limit("limit_val_batches", limit_val_batches),
        limit_test_batches=_limit("limit_test_batches", limit_test_batches),
        limit_predict_batches=_limit("limit_predict_batches", limit_predict_batches),
        num_sanity_val_steps=sanity,
        val_check_interval=val_check_interval,
        check_val_every_n_epoch=_int_or_none("check_val_every_n_epoch", check_val_every_n_epoch, 1),
        accumulate_grad_batches=int(accumulate_grad_batches),
        gradient_clip_val=gradient_clip_val,
        gradient_clip_algorithm=gradient_clip_algorithm,
        device=device,
        default_root_dir=os.fspath(default_root_dir) if default_root_dir is not None else os.getcwd(),
        enable_progress_bar=True if enable_progress_bar is None else bool(enable_progress_bar),
        enable_checkpointing=True if enable_checkpointing is None else bool(enable_checkpointing),
        enable_model_summary=True if enable_model_summary is None else bool(enable_model_summary),
        inference_mode=bool(inference_mode),
        deterministic=deterministic,
        log_every_n_steps=log_every or 0,
        precision_plugin=precision_plugin,
        checkpoint_io=checkpoint_io,
        cluster_environment=cluster_environment,
    )


def _other_plugins(plugins: Any) -> tuple[CheckpointIO | None, ClusterEnvironment | None]:
    """The checkpoint IO plugin and the cluster environment of ``Trainer(plugins=...)``.

    Every plugin's kind is checked (precision plugins are ``resolve_precision``'s); at most one
    of each kind, as in Lightning.
    """
    found: dict[str, list[Any]] = {"CheckpointIO": [], "ClusterEnvironment": []}
    for plugin in plugin_list(plugins):
        if isinstance(plugin, CheckpointIO):
            found["CheckpointIO"].append(plugin)
        elif isinstance(plugin, ClusterEnvironment):
            found["ClusterEnvironment"].append(plugin)
        elif not isinstance(plugin, Precision):
            raise MisconfigurationException(
                f"Found invalid type for plugin {plugin!r}. lightcycle accepts precision plugins "
                "(lightcycle.plugins.Precision and its subclasses), checkpoint IO plugins "
                "(lightcycle.plugins.CheckpointIO: TorchCheckpointIO, AsyncCheckpointIO or your own subclass) and "
                "cluster environments (lightcycle.strategies.environment: SLURMEnvironment, TorchElasticEnvironment, "
                "LightningEnvironment or a ClusterEnvironment subclass); remove it."
            )
    duplicated = [kind for kind, given in found.items() if len(given) > 1]
    if duplicated:
        raise MisconfigurationException(  # Lightning's message
            f"Received multiple values for {', '.join(duplicated)} flags in `plugins`."
            " Expected one value for each type at most."
        )
    io, env = found["CheckpointIO"], found["ClusterEnvironment"]
    return (io[0] if io else None), (env[0] if env else None)


def _device(accelerator: str, devices: Any) -> torch.device:
    if accelerator not in ("auto", "cpu", "cuda", "gpu"):
        raise _fail("accelerator", accelerator, "'cpu', 'cuda', 'gpu' or 'auto'", InvalidValueError)
    on_cuda = accelerator in ("cuda", "gpu") or (accelerator == "auto" and torch.cuda.is_available())
    if devices in ([], 0, "0"):  # Lightning's accelerator connector, before anything is built
        raise MisconfigurationException(
            f"`Trainer(devices={devices!r})` value is not a valid input using {'cuda' if on_cuda else 'cpu'} "
            "accelerator. Use devices=1 or 'auto'."
        )
    if not on_cuda:
        _cpu_cores(devices)  # Lightning's type check; the count is the strategy's (strategies.select)
    if accelerator in ("cuda", "gpu"):
        if not torch.cuda.is_available():
            raise MisconfigurationException(
                f"Trainer(accelerator={accelerator!r}) needs CUDA, but torch.cuda.is_available() is False. "
                "Use accelerator='cpu' or 'auto'."
            )
        index = devices[0] if isinstance(devices, (list, tuple)) else 0
        return torch.device("cuda", int(index))
    if accelerator == "auto" and torch.cuda.is_available():
        return torch.device("cuda", 0)
    return torch.device("cpu")


def _cpu_cores(devices: Any) -> int:
    """Lightning's CPU ``devices`` rule (lightning_fabric's ``_parse_cpu_cores``): an int > 0 or its digits.

    Raises:
        TypeError: Lightning's own type and message, e.g. for ``-1``, ``1.0``, ``[0]`` or ``None``.
    """
    if devices == "auto":
        return 1
    if isinstance(devices, str) and devices.strip().isdigit():
        devices = int(devices)
    if not isinstance(devices, int) or devices <= 0:
        raise TypeError(
            f"`devices` selected with `CPUAccelerator` should be an int > 0. Got devices={devices!r}; use "
            "devices=1 or 'auto'."
        )
    return devices
