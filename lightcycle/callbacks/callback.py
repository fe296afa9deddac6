"""The Callback base class: every hook of Lightning 2.x, same names, same signatures."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lightcycle._hooks import noop_hook

if TYPE_CHECKING:
    import torch
    from torch.optim import Optimizer

    from lightcycle.core.module import LightningModule
    from lightcycle.runtime.host import RunHost


class Callback:
    """Base class for callbacks: override the hooks you need.

    Every hook receives the trainer and the module first. Return values of hooks are
    ignored. Hooks you do not override cost nothing: the dispatch table skips them.
    """

    @property
    def state_key(self) -> str:
        """Key under which this callback's ``state_dict`` is stored in a checkpoint.

        Defaults to the class's qualified name. Callbacks of one class that keep state
        must make it unique, e.g. with :meth:`_generate_state_key`.
        """
        return self.__class__.__qualname__

    @property
    def _legacy_state_key(self) -> type[Callback]:
        return type(self)

    def _generate_state_key(self, **kwargs: Any) -> str:
        """A state key made of the class name and ``kwargs``, e.g. ``Foo{'monitor': 'x'}``."""
        return f"{self.__class__.__qualname__}{kwargs!r}"

    @noop_hook
    def setup(self, trainer: RunHost, pl_module: LightningModule, stage: str) -> None:
        """A fit, validate, test or predict run begins (after prepare_data)."""

    @noop_hook
    def teardown(self, trainer: RunHost, pl_module: LightningModule, stage: str) -> None:
        """A run ended successfully (never called after an exception)."""

    @noop_hook
    def on_fit_start(self, trainer: RunHost, pl_module: LightningModule) -> None:
        """Fit begins, after setup and configure_optimizers."""

    @noop_hook
    def on_fit_end(self, trainer: RunHost, pl_module: LightningModule) -> None:
        """Fit ends, after on_train_end."""

    @noop_hook
    def on_sanity_check_start(self, trainer: RunHost, pl_module: LightningModule) -> None:
        """The sanity-check validation run begins."""

    @noop_hook
    def on_sanity_check_end(self, trainer: RunHost, pl_module: LightningModule) -> None:
        """The sanity-check validation run ended."""

    @noop_hook
    def on_train_batch_start(self, trainer: RunHost, pl_module: LightningModule, batch: Any, batch_idx: int) -> None:
        """A training batch begins (after device transfer)."""

    @noop_hook
    def on_train_batch_end(
        self, trainer: RunHost, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        """A training batch ended; ``outputs`` is the step's dict (loss normalised)."""

    @noop_hook
    def on_train_epoch_start(self, trainer: RunHost, pl_module: LightningModule) -> None:
        """A training epoch begins."""

    @noop_hook
    def on_train_epoch_end(self, trainer: RunHost, pl_module: LightningModule) -> None:
        """A training epoch ended (after any validation at its end)."""

    @noop_hook
    def on_validation_epoch_start(self, trainer: RunHost, pl_module: LightningModule) -> None:
        """A validation epoch begins."""

    @noop_hook
    def on_validation_epoch_end(self, trainer: RunHost, pl_module: LightningModule) -> None:
        """A validation epoch ended."""

    @noop_hook
    def on_test_epoch_start(self, trainer: RunHost, pl_module: LightningModule) -> None:
        """A test epoch begins."""

    @noop_hook
    def on_test_epoch_end(self, trainer: RunHost, pl_module: LightningModule) -> None:
        """A test epoch ended."""

    @noop_hook
    def on_predict_epoch_start(self, trainer: RunHost, pl_module: LightningModule) -> None:
        """A predict epoch begins."""

    @noop_hook
    def on_predict_epoch_end(self, trainer: RunHost, pl_module: LightningModule) -> None:
        """A predict epoch ended."""

    @noop_hook
    def on_validation_batch_start(
        self, trainer: RunHost, pl_module: LightningModule, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        """A validation batch begins."""

    @noop_hook
    def on_validation_batch_end(
        self,
        trainer: RunHost,
        pl_module: LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        """A validation batch ended."""

    @noop_hook
    def on_test_batch_start(
        self, trainer: RunHost, pl_module: LightningModule, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        """A test batch begins."""

    @noop_hook
    def on_test_batch_end(
        self,
        trainer: RunHost,
        pl_module: LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        """A test batch ended."""

    @noop_hook
    def on_predict_batch_start(
        self, trainer: RunHost, pl_module: LightningModule, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        """A predict batch begins."""

    @noop_hook
    def on_predict_batch_end(
        self,
        trainer: RunHost,
        pl_module: LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        """A predict batch ended; ``outputs`` are the predictions."""

    @noop_hook
    def on_train_start(self, trainer: RunHost, pl_module: LightningModule) -> None:
        """Training begins (after the sanity check)."""

    @noop_hook
    def on_train_end(self, trainer: RunHost, pl_module: LightningModule) -> None:
        """Training ended."""

    @noop_hook
    def on_validation_start(self, trainer: RunHost, pl_module: LightningModule) -> None:
        """A validation run begins (model already in eval mode)."""

    @noop_hook
    def on_validation_end(self, trainer: RunHost, pl_module: LightningModule) -> None:
        """A validation run ended."""

    @noop_hook
    def on_test_start(self, trainer: RunHost, pl_module: LightningModule) -> None:
        """The test run begins."""

    @noop_hook
    def on_test_end(self, trainer: RunHost, pl_module: LightningModule) -> None:
        """The test run ended."""

    @noop_hook
    def on_predict_start(self, trainer: RunHost, pl_module: LightningModule) -> None:
        """The predict run begins."""

    @noop_hook
    def on_predict_end(self, trainer: RunHost, pl_module: LightningModule) -> None:
        """The predict run ended."""

    @noop_hook
    def on_exception(self, trainer: RunHost, pl_module: LightningModule, exception: BaseException) -> None:
        """A run is being aborted by ``exception`` (any BaseException)."""

    def state_dict(self) -> dict[str, Any]:
        """This callback's state for a checkpoint; empty means nothing is stored."""
        return {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the state returned by :meth:`state_dict` (a deep copy)."""

    @noop_hook
    def on_save_checkpoint(self, trainer: RunHost, pl_module: LightningModule, checkpoint: dict[str, Any]) -> None:
        """A checkpoint dict is assembled; it may be edited in place."""

    @noop_hook
    def on_load_checkpoint(self, trainer: RunHost, pl_module: LightningModule, checkpoint: dict[str, Any]) -> None:
        """A checkpoint is being restored (after the module's on_load_checkpoint)."""

    @noop_hook
    def on_before_backward(self, trainer: RunHost, pl_module: LightningModule, loss: torch.Tensor) -> None:
        """Backward is about to run on ``loss`` (already divided for accumulation)."""

    @noop_hook
    def on_after_backward(self, trainer: RunHost, pl_module: LightningModule) -> None:
        """Backward ran; gradients exist."""

    @noop_hook
    def on_before_optimizer_step(self, trainer: RunHost, pl_module: LightningModule, optimizer: Optimizer) -> None:
        """An optimizer step is about to happen (before clipping)."""

    @noop_hook
    def on_before_zero_grad(self, trainer: RunHost, pl_module: LightningModule, optimizer: Optimizer) -> None:
        """Gradients are about to be zeroed (first micro-batch of a window)."""
