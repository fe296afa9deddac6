"""Lightning's warning category and its switch (``lightning.pytorch.utilities.warnings``,
and Fabric's module of that name, which also holds ``LightningDeprecationWarning``).

Programs silence the warnings about valid-but-suspicious settings (few dataloader workers,
a logging interval longer than the epoch) by their category, ``PossibleUserWarning``, or with
:func:`disable_possible_user_warnings`; lightcycle raises those warnings with the same category.
"""

from __future__ import annotations

import warnings

from lightcycle.errors import PossibleUserWarning
from lightcycle.utilities.rank_zero import LightningDeprecationWarning


def disable_possible_user_warnings(module: str = "") -> None:
    """Ignore every :class:`PossibleUserWarning` from now on (as Lightning's function does).

    Args:
        module: a regular expression for the warning's module; ``""`` matches every module.
    """
    warnings.filterwarnings("ignore", category=PossibleUserWarning, module=module)


__all__ = ["LightningDeprecationWarning", "PossibleUserWarning", "disable_possible_user_warnings"]
