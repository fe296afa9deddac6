"""The nouns of a lifecycle declaration.

A :class:`Lifecycle` is plain, immutable data: nested :class:`State` s, :class:`Event` s
(the events a loop may fire) and :class:`Transition` s, each binding an ordered tuple of
:class:`Hook` s. Nothing here runs hooks; :mod:`lightcycle.states.table` compiles a
lifecycle into a dispatch table and :mod:`lightcycle.states.machine` builds the
``transitions`` machine that checks it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from enum import Enum

import attrs

from lightcycle.states.stages import RunningStage

SEPARATOR = "."
"""Joins the names of nested states into a path, e.g. ``fit.train.epoch.running``."""

ANY = "*"
"""A transition source meaning every state of a run (all but idle and the destination)."""


class Target(str, Enum):
    """Who receives a hook call."""

    CALLBACKS = "callbacks"
    """Every callback, in ``trainer.callbacks`` order."""
    PLAIN_CALLBACKS = "plain_callbacks"
    """Callbacks that are not monitoring callbacks (EarlyStopping, Checkpoint)."""
    MONITORING_CALLBACKS = "monitoring_callbacks"
    """EarlyStopping and Checkpoint callbacks, in list order."""
    MODULE = "module"
    """The LightningModule."""
    DATAMODULE = "datamodule"
    """The LightningDataModule, when one is attached."""
    BATCH_HOOK = "batch_hook"
    """The datamodule's version when it overrides the hook, else the module's."""
    DATA_SOURCE = "data_source"
    """The datamodule when one is attached, else the module (dataloader hooks)."""

    @property
    def is_callbacks(self) -> bool:
        return self in (Target.CALLBACKS, Target.PLAIN_CALLBACKS, Target.MONITORING_CALLBACKS)


class Result(str, Enum):
    """What a hook's return value is used for."""

    IGNORE = "ignore"
    """Discarded (every callback hook)."""
    RETURN = "return"
    """Becomes the value the trigger returns (steps, -1 from on_train_batch_start)."""
    PIPE = "pipe"
    """Replaces the trigger's first argument for the hooks after it (batch transfer)."""
    COLLECT = "collect"
    """Gathered per callback ``state_key`` into a dict the trigger returns (state_dict)."""


class Action(str, Enum):
    """Runtime work, not a user hook, that a transition asks for at a fixed point."""

    CAPTURE_TRAIN_MODE = "capture_train_mode"
    """Remember each submodule's ``training`` flag before an evaluation run."""
    RESTORE_TRAIN_MODE = "restore_train_mode"
    """Put the remembered flags back after an evaluation run."""
    AUTOCAST = "autocast"
    """The step hook runs in the precision's step context (``torch.autocast`` for mixed precision)."""
    SCALE_LOSS = "scale_loss"
    """The precision's ``pre_backward`` (``GradScaler.scale``): the backward hooks receive the scaled loss."""
    UNSCALE_GRADIENTS = "unscale_gradients"
    """``GradScaler.unscale_``: before ``on_before_optimizer_step`` and clipping see the gradients."""
    SCALER_STEP = "scaler_step"
    """``GradScaler.step`` and ``update`` in place of ``optimizer.step()``."""
    SETUP_ENVIRONMENT = "setup_environment"
    """Join or create a distributed strategy's process group, before ``prepare_data`` (``setup_environment``)."""
    PREPARE_DATA_BARRIER = "prepare_data_barrier"
    """After ``prepare_data`` (local rank 0 only): every rank waits for it, then ``barrier("pre_setup")``."""
    STRATEGY_SETUP = "strategy_setup"
    """After the setup hooks' barrier: the module to its device and, fitting under DDP, wrapped (``strategy.setup``)."""
    STRATEGY_TEARDOWN = "strategy_teardown"
    """Unwrap DDP and release the device, before ``on_fit_end`` / ``teardown`` (``strategy.teardown``)."""


PRECISION_ACTIONS = frozenset({Action.AUTOCAST, Action.SCALE_LOSS, Action.UNSCALE_GRADIENTS, Action.SCALER_STEP})
"""Actions the precision plugin performs at the call site that fires the event, not the event
function: they change the event's arguments (the scaled loss) or wrap the call (autocast), and
a 32-bit run does none of them. Declared so that diagrams show them; the dispatch skips them
(:func:`lightcycle.precision.Precision.wrap_step` and its siblings do the work)."""


class Stage(str, Enum):
    """Special stage markers for states; real stages are plain strings."""

    KEEP = "<keep>"
    """Entering this state leaves ``trainer.state.stage`` as it was (interruption)."""
    INHERIT = "<inherit>"
    """The state has its parent's stage (the default)."""


@attrs.frozen
class Hook:
    """One hook call bound to a transition.

    Args:
        name: the method name on the target(s).
        target: who receives the call.
        args: names of the trigger's parameters passed positionally, in order.
        kwargs: names of the trigger's parameters passed by keyword.
        result: what the return value is used for.
        only_if_overridden: call it only when the target overrides the base method.
        isolated: every receiver runs even when an earlier one raises; failures are
            collected (used for ``on_exception``).
        otherwise: runtime action to run instead when the hook is not overridden.
        per_state_key: the single positional argument is a dict keyed by
            ``state_key``; each callback receives its own entry, and only when
            that entry is present and non-empty (``load_state_dict``).
        trim_args: pass only as many leading positional arguments as the method
            accepts (Lightning lets ``training_step(self, batch)`` omit batch_idx).
    """

    name: str
    target: Target
    args: tuple[str, ...] = ()
    kwargs: tuple[str, ...] = ()
    result: Result = Result.IGNORE
    only_if_overridden: bool = False
    isolated: bool = False
    otherwise: Action | None = None
    per_state_key: bool = False
    trim_args: bool = False

    @property
    def src(self) -> str:
        """``callback``, ``module`` or ``datamodule``: the trace's ``src`` field."""
        if self.target.is_callbacks:
            return "callback"
        if self.target is Target.DATAMODULE:
            return "datamodule"
        return "module"


def cb(name: str, *args: str, **kw: object) -> Hook:
    """Every callback's ``name`` hook (called as ``hook(trainer, pl_module, *args)``)."""
    return Hook(name, Target.CALLBACKS, args=args, **kw)  # type: ignore[arg-type]


def lm(name: str, *args: str, **kw: object) -> Hook:
    """The LightningModule's ``name`` hook."""
    return Hook(name, Target.MODULE, args=args, **kw)  # type: ignore[arg-type]


def dm(name: str, *args: str, **kw: object) -> Hook:
    """The datamodule's ``name`` hook (skipped when no datamodule is attached)."""
    return Hook(name, Target.DATAMODULE, args=args, **kw)  # type: ignore[arg-type]


def cb_lm(name: str, *args: str) -> tuple[Hook, Hook]:
    """Lightning's default pairing: all callbacks, then the module."""
    return cb(name, *args), lm(name, *args)


@attrs.frozen
class Event:
    """An event a loop fires; its parameters are what the bound hooks may receive.

    Args:
        name: the event's name, unique in a lifecycle.
        params: names of the values passed when the event is fired, in order.
        doc: one line saying when the event happens.
        optional_tail: the last parameter may be left out when firing (evaluation
            batches pass ``dataloader_idx`` only when there are several dataloaders,
            as Lightning does); hooks then receive the parameters as given.
    """

    name: str
    params: tuple[str, ...] = ()
    doc: str = ""
    optional_tail: bool = False


Trigger = Event
"""The earlier name of :class:`Event` (one word now: an event); kept so declarations written against it import."""


@attrs.frozen
class State:
    """A state; nested states make a tree whose leaves the lifecycle moves between.

    Args:
        name: the state's own name (without its parents').
        stage: ``trainer.state.stage`` while here: a RunningStage string, ``None``
            for idle, :attr:`Stage.KEEP`, or :attr:`Stage.INHERIT` (the default) for
            the parent's.
        children: nested states; a state with children is never current itself.
        doc: one line saying what holds here.
    """

    name: str
    stage: str | Stage | None = Stage.INHERIT
    children: tuple[State, ...] = ()
    doc: str = ""


@attrs.frozen
class Transition:
    """A legal move: from any of ``source`` on ``trigger`` to ``dest``, firing ``hooks``.

    Semantics, used by every consumer: the lifecycle moves to ``dest``, the trainer's
    stage becomes ``dest``'s stage, ``before`` actions run, the hooks fire in order,
    then ``after`` actions run.

    Args:
        trigger: the event.
        source: full paths of the leaf states it may start from, or ``(ANY,)``.
        dest: the full path of the leaf state it ends in; ``None`` for an internal
            transition that stays where it is.
        hooks: the hook calls, in order.
        before: runtime actions before the hooks.
        after: runtime actions after the hooks.
    """

    trigger: Event
    source: tuple[str, ...]
    dest: str | None
    hooks: tuple[Hook, ...] = ()
    before: tuple[Action, ...] = ()
    after: tuple[Action, ...] = ()

    @property
    def internal(self) -> bool:
        return self.dest is None


@attrs.frozen
class EvalHooks:
    """The hooks one evaluation loop fires, written out so that grep finds each name here.

    Args:
        model_eval: the module's hook that puts it in eval mode.
        model_train: the module's hook that restores train mode (``None``: Lightning has none).
        start: callbacks' and module's hook as the run starts; likewise ``epoch_start``,
            ``batch_start``, ``batch_end``, ``epoch_end`` and ``end``.
        epoch_start: see ``start``.
        batch_start: see ``start``.
        step: the module's step.
        batch_end: see ``start``.
        epoch_end: see ``start``.
        end: see ``start``.
        model_zero_grad: the module's hook before an in-fit run (``None``: never in fit).
    """

    model_eval: str
    model_train: str | None
    start: str
    epoch_start: str
    batch_start: str
    step: str
    batch_end: str
    epoch_end: str
    end: str
    model_zero_grad: str | None = None


@attrs.frozen
class EvalEvents:
    """The events and the vocabulary of one evaluation loop (validation, test or predict).

    The one table of the words each loop goes by, read by this declaration, the Trainer, its
    loops and :class:`~lightcycle.custom_loop.LoopDriver`. Every event and hook name is
    written out (none is built from the noun), so that grep finds each in this file.

    Args:
        noun: the loop's name in event and hook names (``validation``: ``on_validation_start``).
        entry: the entry point that runs it alone (``validate``; a :class:`TrainerFn` value).
        kind: its name in loader hooks and Trainer arguments (``val``: ``val_dataloader``,
            ``limit_val_batches``).
        stage: the running stage while it runs as its own entry point.
        loader: the event that requests its dataloaders (named as the dataloader hook it fires).
        hooks: the hooks it fires.
        start: the event of its run's start; likewise the other events, in firing order.
        epoch_start: see ``start``.
        batch_transfer: see ``start``.
        batch_start: see ``start``.
        step: see ``start``.
        batch_end: see ``start``.
        epoch_end: see ``start``.
        end: see ``start``.
        model_zero_grad: the event before an in-fit run (``None``: the loop never runs in fit).
    """

    noun: str
    entry: str
    kind: str
    stage: RunningStage
    loader: Event
    hooks: EvalHooks
    start: Event
    epoch_start: Event
    batch_transfer: Event
    batch_start: Event
    step: Event
    batch_end: Event
    epoch_end: Event
    end: Event
    model_zero_grad: Event | None = None

    @property
    def step_hook(self) -> str:
        """The module's step (``validation_step``)."""
        return self.hooks.step

    @property
    def epoch_end_hook(self) -> str:
        """Where ``self.log`` between batches logs from (``on_validation_epoch_end``)."""
        return self.hooks.epoch_end


def _walk(
    states: Iterable[State], prefix: str, inherited: str | Stage | None
) -> Iterator[tuple[str, State, str | Stage | None]]:
    for state in states:
        path = f"{prefix}{SEPARATOR}{state.name}" if prefix else state.name
        stage = inherited if state.stage is Stage.INHERIT else state.stage
        yield path, state, stage
        yield from _walk(state.children, path, stage)


@attrs.frozen
class Lifecycle:
    """A whole lifecycle: states, triggers and transitions, and where it starts.

    Args:
        states: the top-level states.
        transitions: every legal move, in declaration order.
        initial: the leaf state a new lifecycle is in (``idle``).
    """

    states: tuple[State, ...]
    transitions: tuple[Transition, ...]
    initial: str

    def paths(self) -> dict[str, State]:
        """Every state by full path, parents before children."""
        return {path: state for path, state, _ in _walk(self.states, "", None)}

    def leaves(self) -> dict[str, str | Stage | None]:
        """Every leaf state's full path and the stage that holds there."""
        return {path: stage for path, state, stage in _walk(self.states, "", None) if not state.children}

    def triggers(self) -> dict[str, Event]:
        """Every trigger by name, in order of first use."""
        found: dict[str, Event] = {}
        for t in self.transitions:
            found.setdefault(t.trigger.name, t.trigger)
        return found

    def sources(self, transition: Transition) -> tuple[str, ...]:
        """The leaf states ``transition`` may start from, with ``ANY`` expanded.

        ``ANY`` stands for every leaf except the initial state and the transition's
        own destination, so ``interrupt`` cannot fire from ``interrupted``.
        """
        out: list[str] = []
        for src in transition.source:
            if src == ANY:
                out.extend(p for p in self.leaves() if p not in (self.initial, transition.dest) and p not in out)
            elif src not in out:
                out.append(src)
        return tuple(out)

    def hook_names(self) -> dict[str, set[str]]:
        """Hook names by ``src`` (callback, module, datamodule) used anywhere."""
        names: dict[str, set[str]] = {"callback": set(), "module": set(), "datamodule": set()}
        for t in self.transitions:
            for h in t.hooks:
                names[h.src].add(h.name)
                if h.target in (Target.BATCH_HOOK, Target.DATA_SOURCE):
                    names["datamodule"].add(h.name)
        return names

    def extend(
        self,
        transitions: Iterable[Transition] = (),
        states: Iterable[tuple[str, State]] = (),
    ) -> Lifecycle:
        """Return a copy with more transitions (and states) declared.

        This is how users add their own events, e.g. an ``ema_update`` after the
        optimizer step (see ``examples/custom_loop.py``). The copy is checked by
        :func:`lightcycle.states.validate`.

        Args:
            transitions: transitions to add after the existing ones.
            states: ``(parent_path, state)`` pairs; ``""`` as parent adds a top-level
                state.

        Returns:
            A new lifecycle; this one is unchanged.
        """
        new_states = self.states
        for parent, state in states:
            new_states = _add_child(new_states, parent.split(SEPARATOR) if parent else [], state)
        return attrs.evolve(self, states=new_states, transitions=self.transitions + tuple(transitions))


def _add_child(states: tuple[State, ...], path: list[str], child: State) -> tuple[State, ...]:
    if not path:
        return states + (child,)
    head, rest = path[0], path[1:]
    if head not in {s.name for s in states}:
        raise ValueError(f"no state {head!r} to add {child.name!r} under; known: {[s.name for s in states]}")
    return tuple(attrs.evolve(s, children=_add_child(s.children, rest, child)) if s.name == head else s for s in states)
