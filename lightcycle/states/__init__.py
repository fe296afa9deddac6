"""The lifecycle declaration and what is built from it.

- :mod:`.model`: the nouns (State, Event, Hook, Transition, Lifecycle).
- :mod:`.declaration`: :data:`LIFECYCLE`, lightcycle's lifecycle.
- :mod:`.validate`: static checks of a declaration.
- :mod:`.table`: the compiled transition table.
- :mod:`.machine`: the ``transitions`` machine, for checks and diagrams.
"""

from lightcycle.states.declaration import LIFECYCLE
from lightcycle.states.model import (
    ANY,
    Action,
    Event,
    Hook,
    Lifecycle,
    Result,
    Stage,
    State,
    Target,
    Transition,
    Trigger,
)
from lightcycle.states.validate import DeclarationError, validate

__all__ = [
    "ANY",
    "LIFECYCLE",
    "Action",
    "DeclarationError",
    "Event",
    "Hook",
    "Lifecycle",
    "Result",
    "Stage",
    "State",
    "Target",
    "Transition",
    "Trigger",
    "validate",
]
