"""Run machinery shared by both front ends (:class:`~lightcycle.Trainer` and
:class:`~lightcycle.custom_loop.LoopDriver`): the run host and the fit loop's progress."""
