"""Trainer arguments → strategy (Lightning's accelerator connector, the distributed part)."""

from __future__ import annotations

from typing import Any

import torch

from lightcycle.errors import MisconfigurationException
from lightcycle.strategies.ddp import DDPStrategy
from lightcycle.strategies.environment import ClusterEnvironment
from lightcycle.strategies.strategy import SingleDeviceStrategy, Strategy

_REFUSED = {
    "ddp_spawn": "strategy='ddp' (it re-runs your script for the other ranks) or torchrun",
    "ddp_fork": "strategy='ddp' (it re-runs your script for the other ranks) or torchrun",
    "ddp_notebook": "strategy='ddp' from a script (`python train.py`) or torchrun",
    "fsdp": "strategy='ddp' (FSDP is not supported yet)",
    "deepspeed": "strategy='ddp' (DeepSpeed is not supported)",
}


def device_ids(accelerator_type: str, devices: Any, cpu_cores: int) -> list[int]:
    """The device indices of this node for ``devices`` (Lightning's parsing).

    Args:
        accelerator_type: ``"cpu"`` or ``"cuda"``.
        devices: the Trainer's ``devices``.
        cpu_cores: the CPU count already parsed from ``devices``.

    Returns:
        The indices (CPU: ``0..N-1``).

    Raises:
        MisconfigurationException: more CUDA devices asked for than there are.
    """
    if accelerator_type == "cpu":
        return list(range(cpu_cores))
    available = torch.cuda.device_count()
    if devices in ("auto", -1, "-1"):
        ids = list(range(available)) if devices != "auto" else [0]
    elif isinstance(devices, (list, tuple)):
        ids = [int(d) for d in devices]
    elif isinstance(devices, str) and "," in devices:
        ids = [int(d) for d in devices.split(",") if d.strip()]
    else:
        ids = list(range(int(devices)))
    if any(i >= available for i in ids):
        raise MisconfigurationException(
            f"Trainer(devices={devices!r}) asks for CUDA devices {ids}, but only {available} are visible. "
            "Use fewer devices or check CUDA_VISIBLE_DEVICES."
        )
    return ids


def select(
    strategy: Any,
    device: torch.device,
    ids: list[int],
    num_nodes: int,
    sync_batchnorm: bool,
    use_distributed_sampler: bool,
    cluster_environment: ClusterEnvironment | None = None,
) -> Strategy:
    """The strategy for the Trainer's arguments.

    ``"auto"`` is DDP with several devices or nodes and one device otherwise (Lightning's
    ``_choose_strategy``); ``"ddp"`` and ``DDPStrategy(...)`` are DDP; ``"single_device"`` is
    one device. ``"ddp_spawn"``/fork, FSDP and DeepSpeed are refused with what to use.

    Args:
        strategy: the Trainer's ``strategy``.
        device: the first device (from ``accelerator``/``devices``).
        ids: this node's device indices.
        num_nodes: the Trainer's ``num_nodes``.
        sync_batchnorm: the Trainer's ``sync_batchnorm``.
        use_distributed_sampler: the Trainer's ``use_distributed_sampler``.
        cluster_environment: a ``Trainer(plugins=...)`` cluster environment: DDP's ranks come from it
            (one process on one device has no use for it).

    Returns:
        A configured strategy.

    Raises:
        MisconfigurationException: an unknown or unsupported strategy, or arguments that
            contradict it; the message names what to use instead.
    """
    if isinstance(num_nodes, bool) or not isinstance(num_nodes, int) or num_nodes < 1:
        raise MisconfigurationException(f"Trainer(num_nodes={num_nodes!r}) is invalid: expected an int >= 1.")
    name = strategy.lower() if isinstance(strategy, str) else None
    if name is not None and name in _REFUSED:
        raise MisconfigurationException(f"Trainer(strategy={strategy!r}) is not supported; use {_REFUSED[name]}.")
    chosen: Strategy
    if isinstance(strategy, Strategy):
        chosen = strategy
    elif name == "auto":
        chosen = DDPStrategy() if len(ids) * num_nodes > 1 else SingleDeviceStrategy(device)
    elif name == "ddp":
        chosen = DDPStrategy()
    elif name == "ddp_find_unused_parameters_true":
        chosen = DDPStrategy(find_unused_parameters=True)
    elif name == "single_device":
        chosen = SingleDeviceStrategy(device)
    else:
        kind = f"a {type(strategy).__name__} object" if name is None else repr(strategy)
        raise MisconfigurationException(
            f"Trainer(strategy=...) got {kind}: lightcycle supports 'auto', 'ddp', 'ddp_find_unused_parameters_true', "
            "'single_device' and lightcycle.strategies.DDPStrategy(...). Use strategy='ddp' for several devices."
        )
    if isinstance(chosen, DDPStrategy):
        if cluster_environment is not None:
            if chosen.cluster_environment is not None and chosen.cluster_environment is not cluster_environment:
                raise MisconfigurationException(
                    f"Trainer(plugins=[{type(cluster_environment).__name__}(...)]) and "
                    f"DDPStrategy(cluster_environment={type(chosen.cluster_environment).__name__}(...)) both give "
                    "a cluster environment; pass one of them."
                )
            chosen.cluster_environment = cluster_environment
        chosen.configure(device.type, ids, num_nodes, sync_batchnorm, use_distributed_sampler)
    else:
        if len(ids) * num_nodes > 1:
            raise MisconfigurationException(
                f"Trainer(strategy={strategy!r}) runs one process on one device, but devices={len(ids)} and "
                f"num_nodes={num_nodes} were given. Use strategy='ddp' (or 'auto')."
            )
        chosen.root_device = device
    return chosen
