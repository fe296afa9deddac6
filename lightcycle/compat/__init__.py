"""Running unmodified Lightning programs on lightcycle.

:mod:`lightcycle.compat.aliases` makes ``lightning.pytorch``, ``lightning`` and
``pytorch_lightning`` (and their submodules) resolve to lightcycle's modules;
:mod:`lightcycle.compat.not_offered` lists what lightcycle does not offer and builds the
error a program gets when it imports one of those names. Nothing here runs at import
time: :func:`lightcycle.compat.aliases.install` does the work, called by ``lightcycle run``
and by the shim packages in ``lightcycle/compat/shim`` (for the processes a program starts).
"""
