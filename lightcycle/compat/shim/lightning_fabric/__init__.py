"""Shim: ``import lightning_fabric`` in a process started by ``lightcycle run`` gives lightcycle's part of it.

As the ``lightning`` shim: the first import installs lightcycle's aliases and replaces this package
in ``sys.modules`` with the alias module (:mod:`lightcycle.compat.fabric`: ``seed_everything``, and
the utility modules below it that ``FABRIC_REDIRECTS`` lists).
``Fabric`` and the rest of the package are refused when used, naming the import to change.
"""

import sys

from lightcycle.compat.aliases import alias_module

__lightcycle_shim__ = True
sys.modules[__name__] = alias_module(__name__)
