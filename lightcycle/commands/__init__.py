"""The ``lightcycle`` command-line tool (``demo``, ``diagram``, ``verify``).

It lives here, not in ``lightcycle.cli``, because Lightning's layout uses ``cli`` for
``LightningCLI``; the console command ``lightcycle`` and ``python -m lightcycle`` both run
:func:`lightcycle.commands.main.main`.
"""
