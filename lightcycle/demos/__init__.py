"""Lightning's demos (``lightning.pytorch.demos``) on lightcycle: models and data for tests and bug reports.

The same names as Lightning 2.6 exports here; :mod:`lightcycle.demos.boring_classes` has the rest
(``RandomDataset``, ``ManualOptimBoringModel``, ``Net``, ...).
"""

from lightcycle.demos.boring_classes import BoringDataModule, BoringModel, DemoModel
from lightcycle.demos.lstm import LightningLSTM, SequenceSampler, SimpleLSTM
from lightcycle.demos.transformer import LightningTransformer, Transformer, WikiText2

__all__ = [
    "BoringDataModule",
    "BoringModel",
    "DemoModel",
    "LightningLSTM",
    "LightningTransformer",
    "SequenceSampler",
    "SimpleLSTM",
    "Transformer",
    "WikiText2",
]
