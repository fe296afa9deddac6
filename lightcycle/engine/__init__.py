"""The event engine: the declared table bound to one run's receivers, and the executor that runs it.

:mod:`~lightcycle.engine.dispatch` turns a hook name into the callables that receive it,
:mod:`~lightcycle.engine.driver` binds the compiled lifecycle table to them
(:class:`~lightcycle.engine.driver.LifecycleDriver`), and :mod:`~lightcycle.engine.codegen`
writes one function per event and source state. Both front ends
(:class:`~lightcycle.Trainer`, :class:`~lightcycle.LoopDriver`) fire events only through it.
"""
