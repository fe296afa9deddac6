"""What the Trainer checks when an entry point is called, before any hook fires (Lightning's
``configuration_validator``)."""

from __future__ import annotations

from typing import Any

from lightcycle._foreign import hook_base, is_kind, refuse_lightning_module
from lightcycle._hooks import is_overridden
from lightcycle.core.datamodule import LightningDataModule
from lightcycle.core.module import LightningModule
from lightcycle.errors import MisconfigurationException
from lightcycle.states.stages import TrainerFn


def check_entry(
    fn: TrainerFn,
    model: Any,
    datamodule: Any,
    loaders: dict[str, Any],
    *,
    running: bool,
    accumulate_grad_batches: int,
    gradient_clip_val: float | None,
) -> dict[str, Any]:
    """Refuse a call of ``fit``/``validate``/``test``/``predict`` that cannot run, naming the fix.

    Args:
        fn: the entry point.
        model: the ``model`` argument.
        datamodule: the ``datamodule`` argument.
        loaders: the loader arguments by kind (``None``: not passed).
        running: the Trainer is inside another entry point.
        accumulate_grad_batches: the Trainer's setting (refused under manual optimization).
        gradient_clip_val: the Trainer's setting (refused under manual optimization).

    Returns:
        The loaders that were passed, by kind.

    Raises:
        TypeError: the model or datamodule is not lightcycle's (or Lightning's datamodule).
        MisconfigurationException: loaders and a datamodule together, a nested call, or a
            fit the module cannot run (no ``training_step``, optimizers or train loader;
            accumulation or clipping under manual optimization).
    """
    base = LightningModule
    refuse_lightning_module(model)
    if not isinstance(model, base):
        raise TypeError(
            f"`model` must be a lightcycle.LightningModule, got {type(model).__name__}. Subclass "
            "lightcycle.LightningModule (import lightcycle as L; class M(L.LightningModule))."
        )
    if datamodule is not None and not is_kind(datamodule, LightningDataModule, "LightningDataModule"):
        raise TypeError(
            f"`datamodule` must be a lightcycle.LightningDataModule (or one built on Lightning's), got "
            f"{type(datamodule).__name__}."
        )
    given = {k: v for k, v in loaders.items() if v is not None}
    if datamodule is not None and given:
        raise MisconfigurationException(
            f"You cannot pass `{'`, `'.join(k + '_dataloaders' for k in given)}` and `datamodule` together; "
            "pass one or the other."
        )
    if running:
        raise MisconfigurationException(
            "this Trainer is already running; fit/validate/test/predict cannot be nested. Use a second Trainer."
        )
    if fn is TrainerFn.FITTING:
        if not is_overridden("training_step", model, base):
            raise MisconfigurationException(
                f"No `training_step()` method defined. Implement `training_step` in {type(model).__name__} to fit."
            )
        if not is_overridden("configure_optimizers", model, base):
            raise MisconfigurationException(
                f"No `configure_optimizers()` method defined. Implement `configure_optimizers` in "
                f"{type(model).__name__} to fit: return an optimizer (and optionally LR schedulers)."
            )
        source = datamodule if datamodule is not None else model
        source_base = hook_base(datamodule, LightningDataModule) if datamodule is not None else base
        if loaders.get("train") is None and not is_overridden("train_dataloader", source, source_base):
            raise MisconfigurationException(
                f"No `train_dataloader()` method defined and no `train_dataloaders` passed. Implement "
                f"`train_dataloader` in {type(source).__name__} or pass `train_dataloaders` to `fit`."
            )
        if not model.automatic_optimization:
            if accumulate_grad_batches != 1:
                raise MisconfigurationException(
                    "Automatic gradient accumulation is not supported for manual optimization. Remove "
                    "`Trainer(accumulate_grad_batches=...)` or switch to automatic optimization."
                )
            if gradient_clip_val:
                raise MisconfigurationException(
                    "Automatic gradient clipping is not supported for manual optimization. Remove "
                    "`Trainer(gradient_clip_val=...)` and call `self.clip_gradients(...)` in training_step."
                )
    return given
