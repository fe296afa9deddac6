"""``lightning.pytorch.demos.mnist_datamodule``'s names, refused: Lightning's MNIST demo downloads its data.

Lightning's ``MNISTDataModule.prepare_data`` always downloads MNIST (through torchvision, or
Lightning's own copy). lightcycle fetches nothing, so these names exist only to say so clearly,
when the dataset or data module is built and before any hook fires.
"""

from __future__ import annotations

from typing import Any, NoReturn

__all__ = ["MNIST", "MNISTDataModule"]

_REFUSAL = (
    "lightcycle.demos.mnist_datamodule.{name}: Lightning's MNIST demo downloads the MNIST dataset, and lightcycle "
    "fetches nothing. Use lightcycle.demos.BoringDataModule (random data), or torchvision.datasets.MNIST("
    "root, download=True) in a LightningDataModule of your own."
)


def _refuse(name: str) -> NoReturn:
    raise RuntimeError(_REFUSAL.format(name=name))


def MNIST(*args: Any, **kwargs: Any) -> NoReturn:
    """Refused: Lightning's ``MNIST`` downloads the dataset.

    Raises:
        RuntimeError: always, naming the alternatives.
    """
    _refuse("MNIST")


class MNISTDataModule:
    """Refused: Lightning's ``MNISTDataModule`` downloads the dataset.

    Raises:
        RuntimeError: always, on construction, naming the alternatives.
    """

    name = "mnist"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        _refuse("MNISTDataModule")
