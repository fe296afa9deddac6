"""Lightning's ``callbacks.progress`` package under one module: its base bar and its two bars.

``from lightning.pytorch.callbacks.progress import TQDMProgressBar`` (Lightning's layout: a package
whose ``__init__`` imports the three) is answered by this module; lightcycle keeps the bars in
``lightcycle.callbacks.progress`` (the base), ``tqdm_progress`` and ``rich_progress``.
"""

from __future__ import annotations

from lightcycle.callbacks.progress import ProgressBar
from lightcycle.callbacks.rich_progress import RichProgressBar
from lightcycle.callbacks.tqdm_progress import TQDMProgressBar

__all__ = ["ProgressBar", "RichProgressBar", "TQDMProgressBar"]
