"""Lightning's test and bug-report models and data (``lightning.pytorch.demos.boring_classes``), on lightcycle.

Same names, arguments, defaults and behaviour as Lightning 2.6's module, so that a program (or a
test suite) built on ``BoringModel`` runs unchanged; the code is lightcycle's own. Random data
is drawn from torch's global generator when a dataset is built (``RandomDataset``) or iterated
(``RandomIterableDataset``), as in Lightning, so ``seed_everything`` makes runs repeatable.

.. warning:: These are meant for testing and debugging.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler
from torch.utils.data import DataLoader, Dataset, IterableDataset, Subset

from lightcycle.core.datamodule import LightningDataModule
from lightcycle.core.module import LightningModule
from lightcycle.core.optim import LightningOptimizer

__all__ = [
    "BoringDataModule",
    "BoringDataModuleNoLen",
    "BoringModel",
    "DemoModel",
    "IterableBoringDataModule",
    "ManualOptimBoringModel",
    "Net",
    "RandomDataset",
    "RandomDictDataset",
    "RandomIterableDataset",
    "RandomIterableDatasetWithLen",
]


class RandomDictDataset(Dataset[dict[str, Tensor]]):
    """``length`` random vectors of ``size``, each item ``{"a": x, "b": x + 2}``.

    Args:
        size: the length of each vector.
        length: the number of items.
    """

    def __init__(self, size: int, length: int) -> None:
        self.len = length
        self.data = torch.randn(length, size)

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        a = self.data[index]
        return {"a": a, "b": a + 2}

    def __len__(self) -> int:
        return self.len


class RandomDataset(Dataset[Tensor]):
    """``length`` random vectors of ``size``, drawn once, when the dataset is built.

    Args:
        size: the length of each vector.
        length: the number of items.
    """

    def __init__(self, size: int, length: int) -> None:
        self.len = length
        self.data = torch.randn(length, size)

    def __getitem__(self, index: int) -> Tensor:
        return self.data[index]

    def __len__(self) -> int:
        return self.len


class _RandomStream(IterableDataset[Tensor]):
    def __init__(self, size: int, count: int) -> None:
        self.count = count
        self.size = size

    def __iter__(self) -> Iterator[Tensor]:
        for _ in range(self.count):
            yield torch.randn(self.size)


class RandomIterableDataset(_RandomStream):
    """A stream of ``count`` random vectors of ``size``, drawn anew on every pass; it has no length.

    Args:
        size: the length of each vector.
        count: the number of items per pass.
    """


class RandomIterableDatasetWithLen(_RandomStream):
    """A stream of ``count`` random vectors of ``size`` that also reports its length (``count``).

    Args:
        size: the length of each vector.
        count: the number of items per pass.
    """

    def __len__(self) -> int:
        return self.count


class BoringModel(LightningModule):
    """The smallest complete module: ``Linear(32, 2)``, an MSE loss towards ones, SGD(lr=0.1) with StepLR.

    Subclass it and override what a test or bug report is about. Every stage has a dataloader of
    64 random vectors of 32 (batch size 1); the step methods return ``{"loss": ...}``,
    ``{"x": ...}`` and ``{"y": ...}`` as Lightning's do.
    """

    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.Linear(32, 2)

    def forward(self, x: Tensor) -> Tensor:
        return self.layer(x)  # type: ignore[no-any-return]

    def loss(self, preds: Tensor, labels: Tensor | None = None) -> Tensor:
        """MSE between ``preds`` and ``labels`` (ones when not given): any loss that moves the weights.

        Args:
            preds: the model's output.
            labels: the targets; ``torch.ones_like(preds)`` by default.

        Returns:
            The scalar loss.
        """
        if labels is None:
            labels = torch.ones_like(preds)
        return F.mse_loss(preds, labels)

    def step(self, batch: Any) -> Tensor:
        """Forward ``batch`` and return its loss."""
        return self.loss(self(batch))

    def training_step(self, batch: Any, batch_idx: int) -> Any:
        return {"loss": self.step(batch)}

    def validation_step(self, batch: Any, batch_idx: int) -> Any:
        return {"x": self.step(batch)}

    def test_step(self, batch: Any, batch_idx: int) -> Any:
        return {"y": self.step(batch)}

    def configure_optimizers(self) -> tuple[list[Optimizer], list[LRScheduler]]:
        optimizer = torch.optim.SGD(self.parameters(), lr=0.1)
        lr_scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1)
        return [optimizer], [lr_scheduler]

    def train_dataloader(self) -> DataLoader[Tensor]:
        return DataLoader(RandomDataset(32, 64))

    def val_dataloader(self) -> DataLoader[Tensor]:
        return DataLoader(RandomDataset(32, 64))

    def test_dataloader(self) -> DataLoader[Tensor]:
        return DataLoader(RandomDataset(32, 64))

    def predict_dataloader(self) -> DataLoader[Tensor]:
        return DataLoader(RandomDataset(32, 64))


class BoringDataModule(LightningDataModule):
    """256 random vectors of 32, split into four 64-item subsets: train, val, test, predict."""

    def __init__(self) -> None:
        super().__init__()
        self.random_full = RandomDataset(32, 64 * 4)

    def setup(self, stage: str) -> None:
        if stage == "fit":
            self.random_train = Subset(self.random_full, indices=range(64))
        if stage in ("fit", "validate"):
            self.random_val = Subset(self.random_full, indices=range(64, 64 * 2))
        if stage == "test":
            self.random_test = Subset(self.random_full, indices=range(64 * 2, 64 * 3))
        if stage == "predict":
            self.random_predict = Subset(self.random_full, indices=range(64 * 3, 64 * 4))

    def train_dataloader(self) -> DataLoader[Tensor]:
        return DataLoader(self.random_train)

    def val_dataloader(self) -> DataLoader[Tensor]:
        return DataLoader(self.random_val)

    def test_dataloader(self) -> DataLoader[Tensor]:
        return DataLoader(self.random_test)

    def predict_dataloader(self) -> DataLoader[Tensor]:
        return DataLoader(self.random_predict)


class BoringDataModuleNoLen(LightningDataModule):
    """Streams without a length: 512 train, 128 val, 256 test, 64 predict random vectors of 32."""

    def __init__(self) -> None:
        super().__init__()

    def setup(self, stage: str) -> None:
        if stage == "fit":
            self.random_train = RandomIterableDataset(32, 512)
        if stage in ("fit", "validate"):
            self.random_val = RandomIterableDataset(32, 128)
        if stage == "test":
            self.random_test = RandomIterableDataset(32, 256)
        if stage == "predict":
            self.random_predict = RandomIterableDataset(32, 64)

    def train_dataloader(self) -> DataLoader[Tensor]:
        return DataLoader(self.random_train)

    def val_dataloader(self) -> DataLoader[Tensor]:
        return DataLoader(self.random_val)

    def test_dataloader(self) -> DataLoader[Tensor]:
        return DataLoader(self.random_test)

    def predict_dataloader(self) -> DataLoader[Tensor]:
        return DataLoader(self.random_predict)


def _loaders(datasets: Sequence[Dataset[Tensor]]) -> list[DataLoader[Tensor]]:
    return [DataLoader(d) for d in datasets]


class IterableBoringDataModule(LightningDataModule):
    """Two loaders per stage (vectors of 4): one over a sized dataset, one over a stream of the same count."""

    def __init__(self) -> None:
        super().__init__()

    def setup(self, stage: str) -> None:
        if stage == "fit":
            self.train_datasets: list[Dataset[Tensor]] = [RandomDataset(4, 16), RandomIterableDataset(4, 16)]
        if stage in ("fit", "validate"):
            self.val_datasets: list[Dataset[Tensor]] = [RandomDataset(4, 32), RandomIterableDataset(4, 32)]
        if stage == "test":
            self.test_datasets: list[Dataset[Tensor]] = [RandomDataset(4, 64), RandomIterableDataset(4, 64)]
        if stage == "predict":
            self.predict_datasets: list[Dataset[Tensor]] = [RandomDataset(4, 128), RandomIterableDataset(4, 128)]

    def train_dataloader(self) -> list[DataLoader[Tensor]]:
        return _loaders(self.train_datasets)

    def val_dataloader(self) -> list[DataLoader[Tensor]]:
        return _loaders(self.val_datasets)

    def test_dataloader(self) -> list[DataLoader[Tensor]]:
        return _loaders(self.test_datasets)

    def predict_dataloader(self) -> list[DataLoader[Tensor]]:
        return _loaders(self.predict_datasets)


class ManualOptimBoringModel(BoringModel):
    """:class:`BoringModel` with manual optimization: zero_grad, ``manual_backward``, step in ``training_step``."""

    def __init__(self) -> None:
        super().__init__()
        self.automatic_optimization = False

    def training_step(self, batch: Any, batch_idx: int) -> Any:
        opt = self.optimizers()
        assert isinstance(opt, (Optimizer, LightningOptimizer))
        loss = self.step(batch)
        opt.zero_grad()
        self.manual_backward(loss)
        opt.step()
        return loss


class DemoModel(LightningModule):
    """``relu(Linear(32, out_dim))`` trained to minimise the sum of its output, with Adam.

    Args:
        out_dim: the output width.
        learning_rate: Adam's learning rate.
    """

    def __init__(self, out_dim: int = 10, learning_rate: float = 0.02) -> None:
        super().__init__()
        self.l1 = nn.Linear(32, out_dim)
        self.learning_rate = learning_rate

    def forward(self, x: Tensor) -> Tensor:
        return torch.relu(self.l1(x.view(x.size(0), -1)))

    def training_step(self, batch: Any, batch_nb: int) -> Any:
        return self(batch).sum()

    def configure_optimizers(self) -> Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.learning_rate)


class Net(nn.Module):
    """The PyTorch MNIST example's convolutional network (1×28×28 images in, 10 log-probabilities out)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, 1)
        self.conv2 = nn.Conv2d(32, 64, 3, 1)
        self.dropout1 = nn.Dropout(0.25)
        self.dropout2 = nn.Dropout(0.5)
        self.fc1 = nn.Linear(9216, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x: Tensor) -> Tensor:
        x = F.relu(self.conv1(x))
        x = F.relu(self.conv2(x))
        x = F.max_pool2d(x, 2)
        x = self.dropout1(x)
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = self.dropout2(x)
        return F.log_softmax(self.fc2(x), dim=1)
