"""Shim: ``import lightning`` in a process started by ``lightcycle run`` gives lightcycle.

``lightcycle run`` puts the folder holding this package first on ``PYTHONPATH`` for the
processes the program starts (a distributed launcher, multiprocessing workers). The first
Lightning import there finds this package before the installed one; it installs lightcycle's
aliases (:mod:`lightcycle.compat.aliases`) and replaces itself in ``sys.modules`` with the
alias module, which the import statement then returns.
"""

import sys

from lightcycle.compat.aliases import alias_module

__lightcycle_shim__ = True
sys.modules[__name__] = alias_module(__name__)
