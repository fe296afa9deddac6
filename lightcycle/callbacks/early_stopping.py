"""EarlyStopping (being completed under the checkpoint issue)."""

from __future__ import annotations

from lightcycle.callbacks.callback import Callback


class EarlyStopping(Callback):
    """Stops fit when a monitored metric stops improving. Full behaviour lands with the checkpoint issue."""
