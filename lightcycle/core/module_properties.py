"""The LightningModule properties read from its Trainer, and those describing the module itself.

The Trainer link (``trainer``, set by the runtime and cleared when pickled), the counters and
ranks read through it, the loggers, and the module's device, dtype and optimization mode.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import nn

if TYPE_CHECKING:
    from lightcycle.runtime.host import RunHost


class ModuleProperties(nn.Module):
    """The properties of :class:`~lightcycle.core.module.LightningModule` (a base of it)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._trainer: RunHost | None = None
        self._example_input_array: Any = None
        self._automatic_optimization: bool = True
        self._strict_loading: bool | None = None

    @property
    def trainer(self) -> RunHost:
        """The attached Trainer.

        Raises:
            RuntimeError: when the module is not attached to a Trainer.
        """
        trainer = self._trainer
        if trainer is None:
            raise RuntimeError(f"{self.__class__.__qualname__} is not attached to a `Trainer`.")
        return trainer

    @trainer.setter
    def trainer(self, trainer: RunHost | None) -> None:
        for child in self.children():
            if isinstance(child, ModuleProperties):
                child.trainer = trainer
        self._trainer = trainer

    @property
    def example_input_array(self) -> Any:
        """Example input for ``forward`` (tensor: one argument; tuple: positional; dict: keyword)."""
        return self._example_input_array

    @example_input_array.setter
    def example_input_array(self, example: Any) -> None:
        self._example_input_array = example

    @property
    def current_epoch(self) -> int:
        """The Trainer's current epoch, or 0 when not attached."""
        return self._trainer.current_epoch if self._trainer is not None else 0

    @property
    def global_step(self) -> int:
        """Optimizer steps taken so far, or 0 when not attached."""
        return self._trainer.global_step if self._trainer is not None else 0

    @property
    def global_rank(self) -> int:
        """Index of this process across all nodes (0 when not attached)."""
        return int(getattr(self._trainer, "global_rank", 0)) if self._trainer is not None else 0

    @property
    def local_rank(self) -> int:
        """Index of this process within its node (0 when not attached)."""
        return int(getattr(self._trainer, "local_rank", 0)) if self._trainer is not None else 0

    @property
    def on_gpu(self) -> bool:
        """Whether the module's parameters live on a CUDA device."""
        return self.device.type == "cuda"

    @property
    def automatic_optimization(self) -> bool:
        """``False`` makes you call ``manual_backward``, ``step`` and ``zero_grad`` yourself."""
        return self._automatic_optimization

    @automatic_optimization.setter
    def automatic_optimization(self, automatic_optimization: bool) -> None:
        self._automatic_optimization = automatic_optimization

    @property
    def strict_loading(self) -> bool:
        """The ``strict`` used when loading this module's state dict (default ``True``)."""
        return self._strict_loading in (None, True)

    @strict_loading.setter
    def strict_loading(self, strict_loading: bool) -> None:
        self._strict_loading = strict_loading

    @property
    def logger(self) -> Any:
        """The Trainer's first logger, or ``None``."""
        return getattr(self._trainer, "logger", None) if self._trainer is not None else None

    @property
    def loggers(self) -> list[Any]:
        """The Trainer's loggers (``[]`` when not attached)."""
        return list(getattr(self._trainer, "loggers", [])) if self._trainer is not None else []

    @property
    def device(self) -> torch.device:
        """Device of the first parameter (else first buffer), or CPU when there are none."""
        for param in self.parameters():
            return param.device
        for buffer in self.buffers():
            return buffer.device
        return torch.device("cpu")

    @property
    def dtype(self) -> torch.dtype:
        """dtype of the first floating-point parameter or buffer, else the default dtype."""
        for param in self.parameters():
            if param.is_floating_point():
                return param.dtype
        for buffer in self.buffers():
            if buffer.is_floating_point():
                return buffer.dtype
        return torch.get_default_dtype()

    def __getstate__(self) -> dict[str, Any]:
        """The module's state for pickling and ``copy``, without the Trainer it is attached to.

        Returns:
            A copy of ``__dict__`` with the Trainer link cleared.
        """
        state = dict(self.__dict__)
        state["_trainer"] = None
        return state
