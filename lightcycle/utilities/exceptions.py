"""Lightning's exception names (``lightning.pytorch.utilities.exceptions``)."""

from lightcycle.errors import MisconfigurationException, SIGTERMException

__all__ = ["MisconfigurationException", "SIGTERMException"]
