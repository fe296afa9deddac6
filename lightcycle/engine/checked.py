"""Checked mode: every event the table runs is checked against the ``transitions`` machine.

The machine (:mod:`lightcycle.states.machine`) is built from the same declaration as the
table, by a different library, so an error in either compilation shows up as a
disagreement. Its transitions have no conditions and no callbacks: what it answers for an
event from a state (refused, or the state it moves to) never changes. So the machine is
asked once per (state, event) pair and process, and the answer kept (:func:`machine_answer`).

Because the answer never changes, a step of the bound table can be proven once, before it
first runs, and then cost nothing: the driver proves every step of an event's function
(each state it is legal from: the machine must allow it there and go where the table goes)
when it makes that function, at the event's first fire or when a loop fetches it
(:meth:`Checker.prove`); a run then fires the very functions of an unchecked run. An event
the table refuses takes the driver's general path every time, where the machine must refuse
it too (:meth:`Checker.refused`). Every fire starts from a proven state (the initial one,
or where a proven step went), so the machine is always where the table is, without being
moved along.
"""

from __future__ import annotations

from transitions import MachineError

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
        try:
            # the machine refuses an invalid trigger with MachineError (ignore_invalid_triggers
            # is off): asking it is a third of the cost of testing get_triggers(path) first
            model.trigger(event)
        except MachineError:
            answer = None
        else:
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
    """Compares one driver's bound table with the machine's answers and raises on any disagreement.

    Args:
        table: the driver's compiled table.

    Attributes:
        proven: the ``(state path, event name)`` pairs whose step this driver has proven.
    """

    def __init__(self, table: TransitionTable) -> None:
        self.table = table
        self.proven: set[tuple[str, str]] = set()

    def prove(self, trigger: Event, state: int, dest: int | None) -> None:
        """Check one step of the table: ``trigger`` from ``state`` moves to ``dest``.

        Args:
            trigger: the event.
            state: the table's source state index.
            dest: the table's destination state index (``None``: an internal transition,
                it stays in ``state``).

        Raises:
            LifecycleCheckError: the machine refuses the event there, or goes elsewhere.
        """
        path = self.table.states[state]
        went = machine_answer(self.table, path, trigger.name)
        if went is None:
            raise LifecycleCheckError(f"{trigger.name!r} from {path!r}: table says legal, transitions says illegal")
        target = path if dest is None else self.table.states[dest]
        if went != target:
            raise LifecycleCheckError(f"after {trigger.name!r} from {path!r}: machine in {went!r}, table in {target!r}")
        self.proven.add((path, trigger.name))

    def refused(self, trigger: Event, state: int) -> None:
        """Check that the machine refuses ``trigger`` from ``state``, as the table does.

        Args:
            trigger: the event the table has no step for there.
            state: the table's current state index.

        Raises:
            LifecycleCheckError: the machine allows it.
        """
        path = self.table.states[state]
        if machine_answer(self.table, path, trigger.name) is not None:
            raise LifecycleCheckError(f"{trigger.name!r} from {path!r}: table says illegal, transitions says legal")
