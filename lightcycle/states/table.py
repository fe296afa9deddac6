"""The transition table compiled from a lifecycle declaration.

Leaf states become small integers and each state's legal triggers a dict, so finding a
transition costs one list index and one dict lookup. The table knows nothing about who
receives hooks; :mod:`lightcycle.engine.dispatch` adds that per run.
"""

from __future__ import annotations

import attrs

from lightcycle.states.model import Event, Lifecycle, Stage, Transition
from lightcycle.states.stages import RunningStage
from lightcycle.states.validate import validate

KEEP = Stage.KEEP
"""A stage value meaning: leave ``trainer.state.stage`` as it is."""


@attrs.frozen
class Entry:
    """One row cell: what ``trigger`` does from one state.

    Args:
        transition: the declared transition.
        dest: index of the destination leaf, or ``None`` to stay (internal).
        stage: the stage to set: a RunningStage or ``None`` (idle) when the transition
            changes the stage, else :data:`KEEP`.
    """

    transition: Transition
    dest: int | None
    stage: RunningStage | Stage | None


class TransitionTable:
    """A validated lifecycle, indexed for fast lookup.

    Args:
        lifecycle: the declaration; it is validated here.

    Attributes:
        lifecycle: the declaration.
        states: leaf paths; a state's index is its position.
        index: leaf path → index.
        rows: per state index, trigger → :class:`Entry`.
        initial: index of the initial state.
    """

    def __init__(self, lifecycle: Lifecycle) -> None:
        validate(lifecycle)
        self.lifecycle = lifecycle
        leaves = lifecycle.leaves()
        self.states: tuple[str, ...] = tuple(leaves)
        self.index: dict[str, int] = {p: i for i, p in enumerate(self.states)}
        self.stages: tuple[RunningStage | Stage | None, ...] = tuple(_stage(s) for s in leaves.values())
        self.rows: list[dict[Event, Entry]] = [{} for _ in self.states]
        self.triggers: dict[str, Event] = lifecycle.triggers()
        for t in lifecycle.transitions:
            dest = None if t.dest is None else self.index[t.dest]
            for src in lifecycle.sources(t):
                i = self.index[src]
                # The stage is written only where it changes (as Lightning sets it when a
                # loop starts, not per hook): no store per batch event.
                stage = self.stages[i] if dest is None else self.stages[dest]
                if stage == self.stages[i]:
                    stage = KEEP
                self.rows[i][t.trigger] = Entry(t, dest, stage)
        self.initial = self.index[lifecycle.initial]

    def legal(self, state: int) -> tuple[str, ...]:
        """Names of the triggers legal in state ``state``, in declaration order."""
        return tuple(t.name for t in self.rows[state])


def _stage(value: str | Stage | None) -> RunningStage | Stage | None:
    if value is None or value is Stage.INHERIT:
        return None
    if value is Stage.KEEP:
        return Stage.KEEP
    return RunningStage(value)
