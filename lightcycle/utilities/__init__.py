"""Lightning's ``lightning.pytorch.utilities`` names, answered by lightcycle.

Thin re-exports: the code lives where lightcycle keeps it (``lightcycle.core.hparams``,
``lightcycle.core.datamodule``, ``lightcycle.seed``); the rank-zero helpers and
``grad_norm`` live in this package's modules of the same names as Lightning's.
"""

from lightcycle.core.batch_transfer import move_data_to_device
from lightcycle.core.hparams import AttributeDict
from lightcycle.utilities.combined_loader import CombinedLoader
from lightcycle.utilities.grads import grad_norm
from lightcycle.utilities.rank_zero import rank_zero_deprecation, rank_zero_info, rank_zero_only, rank_zero_warn
from lightcycle.utilities.warnings import disable_possible_user_warnings

__all__ = [
    "AttributeDict",
    "CombinedLoader",
    "disable_possible_user_warnings",
    "grad_norm",
    "move_data_to_device",
    "rank_zero_deprecation",
    "rank_zero_info",
    "rank_zero_only",
    "rank_zero_warn",
]
