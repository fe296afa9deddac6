"""Checked mode: every event the table runs is checked against the ``transitions`` machine.

The machine (:mod:`lightcycle.states.machine`) is built from the same declaration as the
table, by a different library, so an error in either compilation shows up as a
disagreement. Its transitions have no conditions and no callbacks: what it answers for an
event from a state (refused, or the state it moves to) never changes. So the machine is
asked once per (state, event) pair and process, and the answer kept
(:func:`machine_answer`); a fit meets about twenty pairs. Every event is still compared
with the machine's answer for its pair, and the machine's state is followed from answer
to answer, so coverage is the same as running it in lockstep, at the cost of a dict
lookup per event instead of a ``transitions`` trigger (tens of µs).
"""

from __future__ import annotations

from lightcycle.states.machine import LifecycleMachine, MachineModel, build_machine
from lightcycle.states.model import Event
from lightcycle.states.table import TransitionTable


class LifecycleCheckError(AssertionError):
    """Checked mode: the compiled table and the ``transitions`` machine disagree."""


class _Oracle:
    """One lifecycle's ``transitions`` machine, built at its first question, and its answers."""

    def __init__(self, table: TransitionTable) -> None:
        self.table = table
        self.answers: dict[tuple[str, str], str | None] = {}
        self._machine: tuple[LifecycleMachine, MachineModel] | None = None

    def ask(self, path: str, event: str) -> str | None:
        """Put the machine in ``path``, fire ``event``: where it went, ``None`` if it refused."""
        if self._machine is None:  # built at the first question: an unchecked run never builds it
            self._machine = build_machine(self.table.lifecycle)
        machine, model = self._machine
        machine.set_state(path, model=model)
        if event not in machine.get_triggers(path):
            answer = None
        else:
            model.trigger(event)
            answer = model.state
        self.answers[path, event] = answer
        return answer


_ORACLES: dict[int, tuple[TransitionTable, _Oracle]] = {}


def machine_answer(table: TransitionTable, path: str, event: str) -> str | None:
    """The machine's answer for ``event`` from leaf ``path``, asked once per process.

    Args:
        table: the compiled lifecycle (its declaration builds the machine).
        path: a leaf state's path.
        event: the event's name.

    Returns:
        The path of the state the machine moves to (``path`` itself for an internal
        transition), or ``None`` when the machine refuses the event there.
    """
    hit = _ORACLES.get(id(table))
    if hit is None or hit[0] is not table:
        hit = _ORACLES[id(table)] = (table, _Oracle(table))
    oracle = hit[1]
    answers = oracle.answers
    key = (path, event)
    return answers[key] if key in answers else oracle.ask(path, event)


class Checker:
    """Compares one driver's table with the machine's answers and raises on any disagreement.

    The driver follows the machine's state (starting at the table's initial state) and
    asks, per event, :meth:`legal` before it moves and :meth:`moved` after.

    Args:
        table: the driver's compiled table.
    """

    def __init__(self, table: TransitionTable) -> None:
        self.table = table

    def legal(self, trigger: Event, machine: str, state: int, legal: bool) -> str | None:
        """Check that the machine is where the table is, and agrees whether ``trigger`` is legal.

        Args:
            trigger: the event about to fire.
            machine: the path of the state the machine is in.
            state: the table's current state index.
            legal: whether the table has a step for it there.

        Returns:
            Where the machine moves on ``trigger`` (``None``: it refuses it, as the table does).

        Raises:
            LifecycleCheckError: the machine is elsewhere, or disagrees.
        """
        path = self.table.states[state]
        if machine != path:
            raise LifecycleCheckError(f"machine is in {machine!r}, table in {path!r}")
        dest = machine_answer(self.table, path, trigger.name)
        if (dest is not None) != legal:
            raise LifecycleCheckError(
                f"{trigger.name!r} from {path!r}: table says {'legal' if legal else 'illegal'}, "
                f"transitions says {'legal' if dest is not None else 'illegal'}"
            )
        return dest

    def moved(self, trigger: Event, went: str, dest: int) -> None:
        """Compare the machine's move on ``trigger`` (to ``went``) with the table's (to ``dest``).

        Args:
            trigger: the event (checked by :meth:`legal` just before).
            went: the path the machine moved to.
            dest: the table's destination state index (the source for an internal transition).

        Raises:
            LifecycleCheckError: the machine went elsewhere.
        """
        if went != self.table.states[dest]:
            raise LifecycleCheckError(
                f"after {trigger.name!r}: machine in {went!r}, table in {self.table.states[dest]!r}"
            )
