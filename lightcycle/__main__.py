"""``python -m lightcycle ...``: the same tool as the ``lightcycle`` command."""

import sys

from lightcycle.commands.main import main

if __name__ == "__main__":
    sys.exit(main())
