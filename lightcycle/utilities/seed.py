"""Seeding (``lightning.pytorch.utilities.seed``): lightcycle's code is in :mod:`lightcycle.seed`."""

from lightcycle.seed import isolate_rng, pl_worker_init_function, reset_seed, seed_everything

__all__ = ["isolate_rng", "pl_worker_init_function", "reset_seed", "seed_everything"]
