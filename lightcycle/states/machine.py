"""The ``transitions`` machine built from a lifecycle declaration.

The machine is the reference interpretation of the declaration: it is used to check the
declaration, to draw diagrams, and in checked mode, where every step of the compiled
table is proven against it before it first runs (:mod:`lightcycle.engine.checked`). It is
never on the per-batch path, checked or not: a nested ``transitions`` trigger costs tens of
microseconds.
"""

from __future__ import annotations

from typing import Any

from transitions.extensions.nesting import HierarchicalMachine, NestedState

from lightcycle.states.model import SEPARATOR, Lifecycle, State


class LifecycleState(NestedState):
    """A nested state whose path separator is ``.`` (set on this subclass only)."""

    separator = SEPARATOR


class LifecycleMachine(HierarchicalMachine):
    """A hierarchical machine that uses :class:`LifecycleState`."""

    state_cls = LifecycleState


class MachineModel:
    """The object whose ``state`` a :class:`LifecycleMachine` moves.

    Triggers are attached to it by ``transitions`` (e.g. ``model.fit()``); use
    ``model.trigger(name)`` to fire by name.
    """

    state: str
    trigger: Any  # attached by transitions: trigger(name, *args) -> bool


def _state_dict(state: State) -> dict[str, Any] | str:
    if not state.children:
        return state.name
    return {"name": state.name, "children": [_state_dict(c) for c in state.children]}


def machine_spec(lifecycle: Lifecycle) -> dict[str, Any]:
    """The keyword arguments that build a ``transitions`` machine for ``lifecycle``.

    Args:
        lifecycle: the declaration.

    Returns:
        ``states``, ``transitions`` (one entry per declared transition, sources
        expanded), ``initial`` and ``auto_transitions=False``.
    """
    transitions = [
        {"trigger": t.trigger.name, "source": list(lifecycle.sources(t)), "dest": t.dest} for t in lifecycle.transitions
    ]
    return {
        "states": [_state_dict(s) for s in lifecycle.states],
        "transitions": transitions,
        "initial": lifecycle.initial,
        "auto_transitions": False,
        "ignore_invalid_triggers": False,
    }


def build_machine(lifecycle: Lifecycle, model: MachineModel | None = None) -> tuple[LifecycleMachine, MachineModel]:
    """Build the ``transitions`` machine of a lifecycle.

    Args:
        lifecycle: the declaration (validate it first).
        model: the object to move; a fresh :class:`MachineModel` when omitted.

    Returns:
        The machine and its model, in the initial state.
    """
    model = model if model is not None else MachineModel()
    machine = LifecycleMachine(model=model, **machine_spec(lifecycle))
    return machine, model
