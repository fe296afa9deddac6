"""Global seeding, compatible with Lightning's ``seed_everything``.

The seed is also written to the ``PL_GLOBAL_SEED`` environment variable (and the
``workers`` flag to ``PL_SEED_WORKERS``) so that child processes and dataloader workers
can pick it up, exactly as Lightning does.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import warnings
from collections.abc import Generator

import numpy as np
import torch

from lightcycle.runtime.rng import collect_rng_states, restore_rng_states

log = logging.getLogger(__name__)

MAX_SEED_VALUE = 4294967295  # 2**32 - 1, numpy's upper bound
MIN_SEED_VALUE = 0


def seed_everything(seed: int | None = None, workers: bool = False, verbose: bool = True) -> int:
    """Seed Python's ``random``, NumPy and torch (CPU and every CUDA device).

    Args:
        seed: the seed. ``None`` reads ``PL_GLOBAL_SEED`` from the environment, else uses 0
            (with a warning when ``verbose``). Values that are not ints are cast with ``int``.
        workers: record (in ``PL_SEED_WORKERS``) that dataloader workers should be seeded
            with :func:`pl_worker_init_function`.
        verbose: log the seed (and warn when falling back to 0).

    Returns:
        The seed used.

    Raises:
        ValueError: the seed is outside ``[0, 2**32 - 1]``, or ``PL_GLOBAL_SEED`` is not an int.
    """
    if seed is None:
        env_seed = os.environ.get("PL_GLOBAL_SEED")
        if env_seed is None:
            seed = 0
            if verbose:
                warnings.warn(f"No seed found, seed set to {seed}", UserWarning, stacklevel=2)
        else:
            try:
                seed = int(env_seed)
            except ValueError:
                raise ValueError(f"Invalid seed specified via PL_GLOBAL_SEED: {env_seed!r}") from None
    elif not isinstance(seed, int):
        seed = int(seed)

    if not MIN_SEED_VALUE <= seed <= MAX_SEED_VALUE:
        raise ValueError(f"{seed} is not in bounds, numpy accepts from {MIN_SEED_VALUE} to {MAX_SEED_VALUE}")

    if verbose:
        log.info("Seed set to %d", seed)

    os.environ["PL_GLOBAL_SEED"] = str(seed)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device
    os.environ["PL_SEED_WORKERS"] = f"{int(workers)}"
    return seed


def reset_seed() -> None:
    """Re-apply the seed last set by :func:`seed_everything` (no-op when none was set)."""
    seed = os.environ.get("PL_GLOBAL_SEED")
    if seed is None:
        return
    workers = os.environ.get("PL_SEED_WORKERS", "0")
    seed_everything(int(seed), workers=bool(int(workers)), verbose=False)


def pl_worker_init_function(worker_id: int, rank: int | None = None) -> None:
    """``worker_init_fn`` giving each dataloader worker distinct, reproducible seeds.

    Derives per-worker seeds for torch, ``random`` and NumPy from the worker's torch seed,
    its id and the process rank.

    Args:
        worker_id: the DataLoader worker id.
        rank: the global rank (default: ``RANK`` from the environment, else 0).
    """
    global_rank = rank if rank is not None else int(os.environ.get("RANK", "0"))
    base_seed = torch.initial_seed() - worker_id
    seeds = _seed_sequence(base_seed, worker_id, global_rank, count=4)
    torch.manual_seed(seeds[0])
    random.seed((seeds[1] << 32) | seeds[2])
    ss = np.random.SeedSequence([base_seed, worker_id, global_rank])
    np.random.seed(ss.generate_state(4))


def _seed_sequence(base_seed: int, worker_id: int, global_rank: int, count: int) -> list[int]:
    """``count`` well-mixed 64-bit seeds from (base seed, worker id, rank)."""
    mask = (1 << 64) - 1
    state = ((base_seed << 32) | (worker_id << 16) | global_rank) & mask
    # splitmix64: a fast, well-distributed 64-bit mixer
    seeds: list[int] = []
    for _ in range(count):
        state = (state + 0x9E3779B97F4A7C15) & mask
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
        seeds.append(z ^ (z >> 31))
    return seeds


@contextlib.contextmanager
def isolate_rng(include_cuda: bool = True) -> Generator[None, None, None]:
    """Run the block with the global RNG states (torch, Python, NumPy, CUDA) put back afterwards.

    Lightning's ``isolate_rng``: random numbers drawn inside do not change what is drawn after.

    Args:
        include_cuda: also restore the CUDA generators (only those already initialised are
            captured, so an uninitialised CUDA is not initialised by this).
    """
    states = collect_rng_states()
    if not include_cuda:
        states.pop("cuda", None)
    try:
        yield
    finally:
        restore_rng_states(states)
