"""Lightning's ``lightning.pytorch.trainer`` names: the Trainer lives in :mod:`lightcycle.trainer.trainer`.

``lightning.pytorch.trainer.trainer`` and ``lightning.pytorch.trainer.states`` map onto
``lightcycle.trainer.trainer`` and ``lightcycle.trainer.states`` (see
:data:`lightcycle.compat.aliases.REDIRECTS`).
"""

from lightcycle.seed import seed_everything
from lightcycle.trainer.trainer import Trainer

__all__ = ["Trainer", "seed_everything"]
