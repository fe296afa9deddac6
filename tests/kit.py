"""The small models, data and Trainer arguments that many tests need, written once.

Most tests need "a Linear layer that trains" and "a Trainer that prints and writes nothing"; the
model is not what they test. Those parts live here, each with parameters for what the tests
vary, instead of a hand-written copy per test file. Every builder takes the framework module
(``lightcycle`` or ``pytorch_lightning``) so that a differential test builds the very same
program under both; the kit itself imports neither, so Lightning-only programs can use it. A
test whose model *is* the point of the test (the hooks it overrides, what it logs, how it
optimizes) keeps its own class, or subclasses one of these.

Lightcycle-only tests that want a module with every stage and loader defined use
:class:`lightcycle.testing.TinyModule` (the public testing kit) directly; the demos' ``BoringModel``
is reached through :func:`boring_classes`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Collection
from types import ModuleType
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

STAGES = ("train", "val", "test", "predict")

LOSSES: dict[str, Callable[[torch.Tensor, Any], torch.Tensor]] = {
    # what the tests' hand-written modules used: a plain sum, the mean square of the output (no
    # targets needed) and the MSE against the batch's targets
    "sum": lambda out, batch: out.sum(),
    "square": lambda out, batch: out.pow(2).mean(),
    "mse": lambda out, batch: nn.functional.mse_loss(out, batch[1]),
}


def quiet(*, logger: Any = False, checkpointing: bool | None = False, **extra: Any) -> dict[str, Any]:
    """Trainer arguments for a run that draws and writes nothing a test did not ask for.

    No progress bar, no model summary; by default no logger and no checkpointing either.

    Args:
        logger: the ``logger`` argument; ``None`` leaves it out (the Trainer's default logger).
        checkpointing: the ``enable_checkpointing`` argument; ``None`` leaves it out (the
            Trainer's default ``ModelCheckpoint``).
        extra: any other Trainer arguments (``max_epochs=1``, ``accelerator="cpu"``, ...).

    Returns:
        A new dict, for ``Trainer(**quiet(...))``.
    """
    kwargs: dict[str, Any] = {"enable_progress_bar": False, "enable_model_summary": False}
    if logger is not None:
        kwargs["logger"] = logger
    if checkpointing is not None:
        kwargs["enable_checkpointing"] = checkpointing
    return {**kwargs, **extra}


def regression_loader(
    n: int = 8, width: int = 4, *, batch_size: int = 2, seed: int = 0, shuffle: bool = False
) -> DataLoader[Any]:
    """``n`` fixed random samples: inputs of shape ``(width,)``, targets of shape ``(1,)``.

    Args:
        n: the number of samples.
        width: the input features.
        batch_size: samples per batch.
        seed: the seed of the generator that draws the data (and, with ``shuffle``, the order).
        shuffle: shuffle with that same generator, so the order is also fixed.

    Returns:
        The loader; the same data on every call with the same arguments.
    """
    g = torch.Generator().manual_seed(seed)
    data = TensorDataset(torch.randn(n, width, generator=g), torch.randn(n, 1, generator=g))
    if shuffle:
        return DataLoader(data, batch_size=batch_size, shuffle=True, generator=g)
    return DataLoader(data, batch_size=batch_size)


def linear_module_class(
    fw: ModuleType,
    *,
    width: int = 4,
    loss: str = "square",
    lr: float = 0.1,
    steps: Collection[str] = ("train",),
    log: bool = False,
    seed: int | None = None,
    train_data: Callable[[], DataLoader[Any]] | None = None,
    val_data: Callable[[], DataLoader[Any]] | None = None,
) -> type[Any]:
    """A LightningModule class of framework ``fw``: ``Linear(width, 1)`` trained by SGD.

    Args:
        fw: ``lightcycle`` or ``pytorch_lightning`` (anything with a ``LightningModule``).
        width: the input features of the layer (``self.layer``).
        loss: the training loss, a key of :data:`LOSSES`; ``"mse"`` needs ``(x, y)`` batches.
        lr: the SGD learning rate of ``configure_optimizers``.
        steps: the step methods defined, a subset of :data:`STAGES`; with none, the module has
            no ``configure_optimizers`` either: a custom loop's own code is the step.
        log: ``self.log("<stage>_loss", ...)`` in the training, validation and test steps.
        seed: ``torch.manual_seed(seed)`` before the layer is built, for equal weights.
        train_data: if given, ``train_dataloader`` returns ``train_data()``.
        val_data: if given, ``val_dataloader`` returns ``val_data()``.

    Returns:
        A new class (subclass it to add the hooks a test is about).
    """
    unknown = set(steps) - set(STAGES)
    if unknown or loss not in LOSSES:
        raise ValueError(f"steps must be within {STAGES} and loss one of {sorted(LOSSES)}: got {steps!r}, {loss!r}")
    loss_fn = LOSSES[loss]

    class LinearModule(fw.LightningModule):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            super().__init__()
            if seed is not None:
                torch.manual_seed(seed)
            self.layer = nn.Linear(width, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out: torch.Tensor = self.layer(x)
            return out

    def evaluation_step(stage: str) -> Callable[..., None]:
        def step(self: Any, batch: Any, batch_idx: int) -> None:
            value = loss_fn(self(batch[0]), batch)
            if log:
                self.log(f"{stage}_loss", value)

        return step

    def training_step(self: Any, batch: Any, batch_idx: int) -> torch.Tensor:
        value = loss_fn(self(batch[0]), batch)
        if log:
            self.log("train_loss", value)
        return value

    def predict_step(self: Any, batch: Any, batch_idx: int) -> torch.Tensor:
        out: torch.Tensor = self(batch[0])
        return out

    def configure_optimizers(self: Any) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=lr)

    # the optional methods are left out, not stubbed: whether a hook is overridden changes the run
    body: dict[str, Any] = {}
    if "train" in steps:
        body["training_step"] = training_step
    if "val" in steps:
        body["validation_step"] = evaluation_step("val")
    if "test" in steps:
        body["test_step"] = evaluation_step("test")
    if "predict" in steps:
        body["predict_step"] = predict_step
    if steps:
        body["configure_optimizers"] = configure_optimizers
    if train_data is not None:
        body["train_dataloader"] = lambda self: train_data()
    if val_data is not None:
        body["val_dataloader"] = lambda self: val_data()
    return type("LinearModule", (LinearModule,), body)


def plain_module_class(fw: ModuleType, *, width: int = 4) -> type[Any]:
    """A module with only ``forward`` through ``Linear(width, 1)``: a custom loop is its step.

    Args:
        fw: ``lightcycle`` or ``pytorch_lightning``.
        width: the input features of ``self.layer``.

    Returns:
        A new class.
    """
    return linear_module_class(fw, width=width, steps=())


def boring_classes(fw: ModuleType) -> ModuleType:
    """The ``demos.boring_classes`` module of framework ``fw`` (``BoringModel``, ``RandomDataset``, ...).

    Args:
        fw: ``lightcycle``, ``pytorch_lightning`` or ``lightning.pytorch``.

    Returns:
        ``<fw>.demos.boring_classes``.
    """
    return importlib.import_module(f"{fw.__name__}.demos.boring_classes")
