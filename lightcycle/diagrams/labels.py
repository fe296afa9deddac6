"""How hooks, transitions and states are named in every diagram format.

One notation for all formats, so a reader who learnt it on the SVG can read the Mermaid
text: ``cb.on_fit_start`` is every callback's hook, ``lm.on_fit_start`` the
LightningModule's, ``dm.setup`` the datamodule's, ``dm|lm.on_before_batch_transfer``
the datamodule's when it has one (or overrides the hook), else the module's. A trailing
``?`` means "only when overridden", a trailing ``!`` means "isolated: every receiver runs,
failures are collected". Runtime actions a transition asks for are shown in brackets,
e.g. ``[capture_train_mode]``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from lightcycle.states.model import Action, Hook, Stage, Transition

PREFIX: Final[dict[str, str]] = {
    "callbacks": "cb",
    "plain_callbacks": "cb(plain)",
    "monitoring_callbacks": "cb(monitor)",
    "module": "lm",
    "datamodule": "dm",
    "batch_hook": "dm|lm",
    "data_source": "dm|lm",
}
"""The prefix of a hook in a label, by :class:`~lightcycle.states.model.Target` value."""

KIND: Final[dict[str, str]] = {
    "callbacks": "callback",
    "plain_callbacks": "callback",
    "monitoring_callbacks": "callback",
    "module": "module",
    "datamodule": "datamodule",
    "batch_hook": "either",
    "data_source": "either",
}
"""Which colour family a hook belongs to, by target value."""

LEGEND: Final[tuple[tuple[str, str, str], ...]] = (
    ("callback", "cb.hook", "every callback, in trainer.callbacks order"),
    ("callback", "cb(plain).hook", "callbacks but EarlyStopping / ModelCheckpoint"),
    ("callback", "cb(monitor).hook", "EarlyStopping / ModelCheckpoint callbacks"),
    ("module", "lm.hook", "the LightningModule"),
    ("datamodule", "dm.hook", "the LightningDataModule, when attached"),
    ("either", "dm|lm.hook", "the datamodule's when it has one, else the module's"),
    ("plain", "hook?", "called only when overridden"),
    ("plain", "hook!", "isolated: all receivers run, failures collected"),
    ("action", "[action]", "runtime action, not a user hook"),
)
"""``(kind, notation, meaning)`` rows of the legend every state diagram carries."""


def legend_rows(transitions: Iterable[Transition]) -> list[tuple[str, str, str]]:
    """The rows of :data:`LEGEND` that ``transitions`` use, in legend order.

    Args:
        transitions: the transitions a diagram draws.

    Returns:
        ``(kind, notation, meaning)`` rows.
    """
    used: set[str] = set()
    for t in transitions:
        if t.before or t.after:
            used.add("[action]")
        for h in t.hooks:
            used.add(f"{PREFIX[h.target.value]}.hook")
            if h.only_if_overridden:
                used.add("hook?")
            if h.isolated:
                used.add("hook!")
            if h.otherwise is not None:
                used.add("[action]")
    return [row for row in LEGEND if row[1] in used]


def hook_text(hook: Hook) -> str:
    """The text of one hook call, e.g. ``cb.on_fit_start`` or ``lm.configure_model?``.

    Args:
        hook: the hook.

    Returns:
        Prefix, name and flag marks.
    """
    text = f"{PREFIX[hook.target.value]}.{hook.name}"
    if hook.only_if_overridden:
        text += "?"
    if hook.isolated:
        text += "!"
    if hook.otherwise is not None:
        text += f" (else [{hook.otherwise.value}])"
    return text


def hook_kind(hook: Hook) -> str:
    """The colour family of a hook: ``callback``, ``module``, ``datamodule`` or ``either``.

    Args:
        hook: the hook.

    Returns:
        A key of the colour schemes of the renderers.
    """
    return KIND[hook.target.value]


def action_text(action: Action) -> str:
    """The text of a runtime action, e.g. ``[capture_train_mode]``.

    Args:
        action: the action.

    Returns:
        The action's value in brackets.
    """
    return f"[{action.value}]"


def steps(transition: Transition) -> list[tuple[str, str]]:
    """What a transition does, in order, as ``(kind, text)`` pairs.

    ``before`` actions, then the hooks, then ``after`` actions; ``kind`` is ``action`` for
    runtime actions and :func:`hook_kind` for hooks.

    Args:
        transition: the transition.

    Returns:
        One pair per step; empty for a hookless transition.
    """
    out: list[tuple[str, str]] = [("action", action_text(a)) for a in transition.before]
    out.extend((hook_kind(h), hook_text(h)) for h in transition.hooks)
    out.extend(("action", action_text(a)) for a in transition.after)
    return out


def transition_text(transition: Transition, per_line: int = 0, line_break: str = "\n") -> str:
    """The event and the hooks of a transition on one or more lines.

    Args:
        transition: the transition.
        per_line: hooks per line after the event's line; 0 puts them all on one line.
            With more than one per line, hooks are joined by ``→`` (and continuation
            lines start with one); with one per line the lines are the order.
        line_break: what separates lines (``<br/>`` for Mermaid).

    Returns:
        E.g. ``fit_start`` + line break + ``cb.on_fit_start → lm.on_fit_start``; just the
        event name for a hookless transition.
    """
    texts = [text for _, text in steps(transition)]
    if not texts:
        return transition.trigger.name
    size = per_line or len(texts)
    lines = [" → ".join(texts[i : i + size]) for i in range(0, len(texts), size)]
    if size > 1:
        lines = [("→ " if i else "") + line for i, line in enumerate(lines)]
    return line_break.join([transition.trigger.name, *lines])


def stage_text(stage: object) -> str:
    """The name of a state's stage, for colours and tooltips.

    Args:
        stage: a leaf's stage as :meth:`Lifecycle.leaves` gives it.

    Returns:
        ``none`` for idle (no stage), ``keep`` for :attr:`Stage.KEEP`, else the stage.
    """
    if stage is None or stage is ...:
        return "none"
    if stage is Stage.KEEP:
        return "keep"
    return str(stage)


STAGE_COLOURS: Final[dict[str, str]] = {
    "none": "#f3f4f6",
    "train": "#dbeafe",
    "sanity_check": "#fef3c7",
    "validate": "#dcfce7",
    "test": "#ede9fe",
    "predict": "#cffafe",
    "keep": "#fee2e2",
}
"""Fill colour of a state by the stage that holds there (see :func:`stage_text`)."""

OTHER_STAGE_COLOUR: Final = "#f5f5f4"
"""Fill colour of a state whose stage is not in :data:`STAGE_COLOURS` (custom stages)."""

HOOK_COLOURS: Final[dict[str, str]] = {
    "callback": "#1d4ed8",
    "module": "#b45309",
    "datamodule": "#047857",
    "either": "#7c3aed",
    "action": "#6b7280",
    "plain": "#111827",
}
"""Text colour of a step by its kind (see :func:`steps`)."""


def stage_colour(stage: str) -> str:
    """The fill colour of a state whose stage is ``stage``.

    Args:
        stage: as :func:`stage_text` gives it.

    Returns:
        A ``#rrggbb`` colour.
    """
    return STAGE_COLOURS.get(stage, OTHER_STAGE_COLOUR)
