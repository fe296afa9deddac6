"""What lightcycle answers of Lightning Fabric's import paths: ``seed_everything`` and a few utilities.

Programs written for Lightning's Trainer import some helpers from ``lightning.fabric`` (or
``lightning_fabric``): ``seed_everything``, the rank-zero helpers, ``PossibleUserWarning``, the
path and device type aliases, ``MisconfigurationException``. lightcycle has the same helpers, so
under the import aliases (:mod:`lightcycle.compat.aliases`) ``lightning.fabric`` answers with this
module, ``lightning.fabric.utilities`` with :mod:`lightcycle.utilities`, its ``seed``,
``rank_zero``, ``warnings``, ``types`` and ``exceptions`` modules with lightcycle's modules of those
names, and its ``apply_func`` and ``data`` with :mod:`lightcycle.compat.fabric_utilities`
(:data:`~lightcycle.compat.aliases.FABRIC_REDIRECTS`). ``Fabric`` itself and the rest of the package
are refused, with the reason (:data:`~lightcycle.compat.not_offered.NOT_OFFERED`).
"""

from __future__ import annotations

from lightcycle.seed import seed_everything

__all__ = ["seed_everything"]
