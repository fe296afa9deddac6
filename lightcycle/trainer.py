"""Lightning's ``lightning.pytorch.trainer`` names: the Trainer lives in :mod:`lightcycle.orchestrator.trainer`.

``lightning.pytorch.trainer.trainer`` and ``lightning.pytorch.trainer.states`` map onto
``lightcycle.orchestrator.trainer`` and ``lightcycle.orchestrator.state`` (see
:data:`lightcycle.compat.aliases.REDIRECTS`).
"""

from lightcycle.orchestrator.trainer import Trainer
from lightcycle.seed import seed_everything

__all__ = ["Trainer", "seed_everything"]
