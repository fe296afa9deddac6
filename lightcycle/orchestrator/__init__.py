"""Former home of the runtime, now split by job: :mod:`lightcycle.engine` (the event engine),
:mod:`lightcycle.runtime` (run machinery both front ends share), :mod:`lightcycle.trainer` (the
Trainer and its loops) and :mod:`lightcycle.custom_loop` (:class:`LoopDriver`).

Kept so that ``from lightcycle.orchestrator import LoopDriver``, written against earlier
releases, goes on importing.
"""

from lightcycle.custom_loop.loop_driver import LoopDriver

__all__ = ["LoopDriver"]
