"""GradientAccumulationScheduler: change ``accumulate_grad_batches`` by epoch, as Lightning 2.6's."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

from lightcycle._hooks import is_overridden
from lightcycle.callbacks.callback import Callback
from lightcycle.core.module import LightningModule as Base
from lightcycle.errors import MisconfigurationException

if TYPE_CHECKING:
    from lightcycle.core.module import LightningModule
    from lightcycle.runtime.host import RunHost


class GradientAccumulationScheduler(Callback):
    """Set ``trainer.accumulate_grad_batches`` at each training epoch start from a schedule.

    Args:
        scheduling: ``{epoch: factor}``, epochs counted from 0; before the first key the factor is 1.
            E.g. ``{4: 2}`` accumulates 2 batches from the fifth epoch on.

    Raises:
        TypeError: ``scheduling`` is empty.
        MisconfigurationException: a key is not an int >= 0 or a value not an int >= 1.
    """

    def __init__(self, scheduling: dict[int, int]) -> None:
        super().__init__()
        if not scheduling:
            raise TypeError("Empty dict cannot be interpreted correct")
        if any(not isinstance(key, int) or key < 0 for key in scheduling):
            raise MisconfigurationException(
                f"Epoch should be an int greater than or equal to 0. Got {list(scheduling.keys())}."
            )
        if any(not isinstance(value, int) or value < 1 for value in scheduling.values()):
            raise MisconfigurationException(
                f"Accumulation factor should be an int greater than 0. Got {list(scheduling.values())}."
            )
        if min(scheduling) != 0:
            scheduling.update({0: 1})  # Lightning updates the caller's dict too
        self.scheduling = scheduling
        self.epochs = sorted(scheduling.keys())

    def going_to_accumulate_grad_batches(self) -> bool:
        """Whether any epoch accumulates more than one batch."""
        return any(v > 1 for v in self.scheduling.values())

    def get_accumulate_grad_batches(self, epoch: int) -> int:
        """The factor for ``epoch``: that of the last scheduled epoch at or before it."""
        for iter_epoch in reversed(self.epochs):
            if epoch >= iter_epoch:
                return self.scheduling[iter_epoch]
        return 1

    def on_train_start(self, trainer: RunHost, pl_module: LightningModule) -> None:
        if not pl_module.automatic_optimization:
            raise RuntimeError(
                "Automatic gradient accumulation and the `GradientAccumulationScheduler` is not supported for "
                "manual optimization. Please remove the callback or switch to automatic optimization."
            )
        overridden = is_overridden("optimizer_step", pl_module, Base) or is_overridden(
            "optimizer_zero_grad", pl_module, Base
        )
        if overridden and self.going_to_accumulate_grad_batches():
            warnings.warn(
                "When using `Trainer(accumulate_grad_batches != 1)` and overriding "
                "`LightningModule.optimizer_{step,zero_grad}`, the hooks will not be called on every batch "
                "(rather, they are called on every optimization step).",
                stacklevel=2,
            )
        if trainer.accumulate_grad_batches != 1:
            raise ValueError(
                "You have set `accumulate_grad_batches` and are using the `GradientAccumulationScheduler` "
                "callback. Either remove `accumulate_grad_batches` from the Trainer or remove the callback."
            )

    def on_train_epoch_start(self, trainer: RunHost, pl_module: LightningModule) -> None:
        trainer.accumulate_grad_batches = self.get_accumulate_grad_batches(trainer.current_epoch)
