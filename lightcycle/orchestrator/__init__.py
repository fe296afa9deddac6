"""The runtime: Trainer, its loops, and the lifecycle driver they (and custom loops) share.

:class:`LoopDriver` (from :mod:`lightcycle.orchestrator.loop`) runs the lifecycle inside
your own training loop.
"""

from lightcycle.orchestrator.loop import LoopDriver

__all__ = ["LoopDriver"]
