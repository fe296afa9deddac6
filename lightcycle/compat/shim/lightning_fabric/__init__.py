"""Shim: ``import lightning_fabric`` under ``lightcycle run`` is refused (Fabric has no counterpart)."""

from lightcycle.compat.not_offered import not_offered

raise not_offered(__name__)
