"""Lightning's ``lightning.pytorch.plugins.precision``: lightcycle's precision plugins (:mod:`lightcycle.precision`)."""

from __future__ import annotations

from lightcycle.precision import DoublePrecision, HalfPrecision, MixedPrecision, Precision

__all__ = ["DoublePrecision", "HalfPrecision", "MixedPrecision", "Precision"]
