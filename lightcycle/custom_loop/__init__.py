"""The custom-loop front end: :class:`LoopDriver` runs the declared lifecycle inside your own loop."""

from lightcycle.custom_loop.loop_driver import LoopDriver

__all__ = ["LoopDriver"]
