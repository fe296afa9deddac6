"""The lifecycle as plain pseudocode: every hook at its place, generated from the declaration.

A Composer-style outline of ``fit``, ``validate``, ``test`` and ``predict``: ``for epoch in
...:``, ``for batch in ...:``, the sanity check, validation inside the epoch, the closure
around backward and the optimizer step, teardown, and the ``on_exception`` path, with each
event's hooks in the order the declaration fires them. The committed copy is
``docs/lifecycle.md`` (:data:`OUTLINE_FILE`, rewritten by :data:`REGENERATE_OUTLINE`).

Nothing here knows an entry point, a loop or a hook by name: the structure is read from
the declaration's nested states and transitions, one composite state at a time.

* Each composite state's children and the transitions between them form a small graph;
  a transition that returns to a child already on the current path (found by a depth-first
  walk in declaration order) closes a **loop** (``for <composite> in ...:``, or ``while
  ...:`` when the loop holds no composite state).
* A child every path goes through is written in sequence; a child some path goes around
  is **optional** (``if ...:``); children that no path visits together are
  **alternatives** (``if ...:`` / ``elif ...:``). A loop that comes back to a leaf between
  iterations (``running``, "between batches") writes its first alternative as the body and
  the others as ``if ...:`` after it (validation between training batches).
* An event is written where its destination is reached; an event that leaves its state's
  parent early (``skip_rest_of_epoch``) is written where it leaves, and an internal event
  (one that stays in its state) where that state is, under ``if ...:``.
* Events allowed from every state of a run become the ``except BaseException`` path
  (``interrupt``) or the closing list of events allowed anywhere (checkpoint saving).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import attrs

from lightcycle.diagrams.labels import PREFIX
from lightcycle.states.model import ANY, PRECISION_ACTIONS, SEPARATOR, Action, Hook, Lifecycle, Result, Transition

OUTLINE_FILE = "docs/lifecycle.md"
"""Where the repository keeps the outline of :data:`~lightcycle.states.LIFECYCLE`."""

OUTLINE_NAME = "lifecycle.md"
"""The outline's file name when written into a folder (``--format all -o FOLDER``)."""

REGENERATE_OUTLINE = f"lightcycle diagram --format outline -o {OUTLINE_FILE}"
"""The command that rewrites :data:`OUTLINE_FILE` (from the repository root)."""

_START = "^"
"""The graph node standing for "entered from outside this composite state"."""
_OUT = "$"
"""The graph node standing for "left this part of the graph" (the composite's exit, a loop's next turn)."""
_INDENT = "    "

_Limit = tuple[frozenset[str], frozenset[str]] | None
"""Inside one alternative: the units written before it, and the units it holds (see ``_Writer._escapes``)."""

_RESULT_TARGET = {Result.PIPE: None, Result.RETURN: "result", Result.COLLECT: "states"}
"""What a hook's return value is assigned to in the outline (``None``: its first argument)."""


@attrs.frozen
class _Edge:
    """One declared move from one leaf: a transition with a destination, from one of its sources."""

    transition: Transition
    index: int
    source: str
    dest: str


def _inside(path: str, level: str) -> bool:
    return level == "" or path == level or path.startswith(level + SEPARATOR)


def _child_of(level: str, leaf: str) -> str:
    rest = leaf[len(level) + 1 :] if level else leaf
    head = rest.split(SEPARATOR, 1)[0]
    return f"{level}{SEPARATOR}{head}" if level else head


def _parent(path: str) -> str:
    return path.rpartition(SEPARATOR)[0]


@attrs.define
class _Level:
    """The children of one composite state and the declared moves between them.

    Attributes:
        path: the composite's path.
        nodes: its children's paths, in declaration order.
        fwd: per child (and :data:`_START`), the children (or :data:`_OUT`) it moves on to,
            loops' returning moves and early exits left out.
        first: per ``(from, to)`` pair, the lowest declaration index of a transition making it.
        back: per loop head, the moves that return to it.
    """

    path: str
    nodes: list[str]
    fwd: dict[str, list[str]] = attrs.field(factory=dict)
    first: dict[tuple[str, str], int] = attrs.field(factory=dict)
    back: dict[str, list[_Edge]] = attrs.field(factory=dict)

    def pos(self, node: str) -> int:
        return self.nodes.index(node)


@attrs.define
class _View:
    """A part of a level being written: its members, and the loop whose body it is (if any).

    Inside a loop body, moves back to the head lead to :data:`_OUT` (the next turn) and moves
    leaving the loop are dropped (they are written after the loop).
    """

    level: _Level
    members: frozenset[str]
    head: str | None = None
    reentry: bool = False
    unit_of: dict[str, str] = attrs.field(factory=dict)
    loops: dict[str, frozenset[str]] = attrs.field(factory=dict)


class _Writer:
    """Writes one lifecycle's outline."""

    def __init__(self, lifecycle: Lifecycle) -> None:
        self.lc = lifecycle
        self.paths = lifecycle.paths()
        self.edges: list[_Edge] = []
        self.internal: dict[str, list[Transition]] = {}
        self.anywhere: list[Transition] = []
        self.escapes: list[Transition] = []
        for i, t in enumerate(lifecycle.transitions):
            if ANY in t.source:
                (self.anywhere if t.dest is None else self.escapes).append(t)
                continue
            for src in lifecycle.sources(t):
                if t.dest is None:
                    self.internal.setdefault(src, []).append(t)
                else:
                    self.edges.append(_Edge(t, i, src, t.dest))
        self.side: set[_Edge] = set()
        self.returning: set[_Edge] = set()
        self.levels = {p: self._level(p) for p, s in self.paths.items() if s.children}
        self.lines: list[str] = []
        self.depth = 0

    # ------------------------------------------------------------------ graph

    def _level(self, path: str) -> _Level:
        """Build one composite's graph; record its returning moves and early exits."""
        level = _Level(path, [f"{path}{SEPARATOR}{c.name}" for c in self.paths[path].children])
        pairs: list[tuple[str, str, _Edge]] = []
        for e in self.edges:
            a = _child_of(path, e.source) if _inside(e.source, path) else _START
            b = _child_of(path, e.dest) if _inside(e.dest, path) else _OUT
            if a != b and not (a == _START and b == _OUT):
                pairs.append((a, b, e))
        succ: dict[str, list[str]] = {}
        for a, b, _ in pairs:
            succ.setdefault(a, [])
            if b not in succ[a]:
                succ[a].append(b)
        order = {n: i for i, n in enumerate(level.nodes)}
        returning: set[tuple[str, str]] = set()
        seen: dict[str, bool] = {}  # node -> finished (False while on the walk's path)

        def walk(node: str) -> None:
            seen[node] = False
            for nxt in sorted(succ.get(node, ()), key=lambda n: order.get(n, len(order))):
                if nxt == _OUT:
                    continue
                if seen.get(nxt) is False:
                    returning.add((node, nxt))
                elif nxt not in seen:
                    walk(nxt)
            seen[node] = True

        walk(_START)
        for node in level.nodes:  # (validate() makes every child reachable; this keeps the walk total)
            if node not in seen:
                walk(node)
        leaves = self.lc.leaves()
        exits = [e.dest for a, b, e in pairs if b == _OUT]
        main = max(dict.fromkeys(exits), key=exits.count, default=None)  # where the composite normally goes
        for a, b, e in pairs:
            if (a, b) in returning:
                level.back.setdefault(b, []).append(e)
                self.returning.add(e)
                continue
            if (
                b == _OUT
                and e.dest != main
                and a in leaves
                and any(n != _OUT and (a, n) not in returning for n in succ[a])
            ):
                self.side.add(e)  # leaves for elsewhere from a state that normally goes on inside the composite
                continue
            level.fwd.setdefault(a, [])
            if b not in level.fwd[a]:
                level.fwd[a].append(b)
            level.first[(a, b)] = min(level.first.get((a, b), e.index), e.index)
        return level

    def _view(self, level: _Level, members: Iterable[str], head: str | None = None, reentry: bool = False) -> _View:
        """A view of ``members``, with the loops inside it collapsed into one unit each."""
        view = _View(level, frozenset(members), head, reentry)
        for h, moves in level.back.items():
            if h == head or h not in view.members:
                continue
            tails = {_child_of(level.path, e.source) for e in moves}
            body = {h} | {
                n for n in view.members if self._reaches(view, h, n) and any(self._reaches(view, n, t) for t in tails)
            }
            view.loops[h] = frozenset(body)
        for h, nodes in sorted(view.loops.items(), key=lambda kv: -len(kv[1])):  # outermost loops first
            for n in nodes:
                view.unit_of.setdefault(n, h)
        view.loops = {h: b for h, b in view.loops.items() if view.unit_of.get(h) == h}
        for n in view.members:
            view.unit_of.setdefault(n, n)
        return view

    def _reaches(self, view: _View, a: str, b: str) -> bool:
        todo, seen = [a], {a}
        while todo:
            n = todo.pop()
            if n == b:
                return True
            for m in view.level.fwd.get(n, ()):
                if m in view.members and m not in seen:
                    seen.add(m)
                    todo.append(m)
        return False

    def _succ(self, view: _View, unit: str) -> list[str]:
        """The units (or :data:`_OUT`) a unit of ``view`` moves on to, in declaration order."""
        nodes = view.loops.get(unit, frozenset({unit})) if unit != _START else frozenset({_START})
        out: list[tuple[int, str]] = []
        for n in nodes:
            for m in view.level.fwd.get(n, ()):
                if m in view.members:
                    target = view.unit_of[m]
                    if target != unit:
                        out.append((view.level.first[(n, m)], target))
                elif view.head is None and m == _OUT:
                    out.append((view.level.first[(n, m)], _OUT))
            if view.head is not None:
                out.extend(
                    (e.index, _OUT)
                    for e in view.level.back.get(view.head, ())
                    if _child_of(view.level.path, e.source) == n
                )
        ordered: list[str] = []
        for _, target in sorted(out):
            if target not in ordered:
                ordered.append(target)
        return ordered

    def _first_into(self, view: _View, sources: set[str], comp: set[str]) -> int:
        """The lowest declaration index of a move from ``sources`` into ``comp``."""
        found = [
            view.level.first[(s, n)]
            for u in sources
            for s in view.loops.get(u, frozenset({u}))
            for c in comp
            for n in view.loops.get(c, frozenset({c}))
            if (s, n) in view.level.first
        ]
        return min(found, default=len(self.lc.transitions))

    def _escapes(self, view: _View, sources: set[str], inner: set[str], avoid: str | None, limit: _Limit) -> bool:
        """Whether some path from ``sources`` leaves ``inner`` without passing ``avoid``.

        ``limit`` is ``(from, to)`` inside one alternative: a first move from a state of ``from``
        only counts when it goes to ``to`` (the other alternatives are not taken).
        """
        todo, seen = list(sources), set(sources)
        while todo:
            n = todo.pop()
            for m in self._succ(view, n):
                if m == avoid or m in seen:
                    continue
                if limit is not None and n in limit[0] and m not in limit[1]:
                    continue
                if m not in inner:
                    return True
                seen.add(m)
                todo.append(m)
        return False

    def _reachable(self, view: _View, sources: set[str], inner: set[str], avoid: str | None = None) -> set[str]:
        todo, seen = list(sources), set(sources)
        found: set[str] = set()
        while todo:
            for m in self._succ(view, todo.pop()):
                if m in inner and m != avoid and m not in seen:
                    seen.add(m)
                    found.add(m)
                    todo.append(m)
        return found

    # ------------------------------------------------------------------ writing

    def say(self, text: str) -> None:
        self.lines.append(_INDENT * self.depth + text if text else "")

    def event(self, t: Transition, where: str, alternative: bool = False) -> None:
        """One event: a comment naming it, its actions and its hooks in order."""
        doc = f": {t.trigger.doc}" if t.trigger.doc else ""
        self.say(f"# {'or ' if alternative else ''}event {t.trigger.name} {where}{doc}")
        for a in t.before:
            self.say(_action(a))
        for h in t.hooks:
            self.say(_hook(h))
        for a in t.after:
            self.say(_action(a))

    def events_into(self, moves: Sequence[_Edge], dest: str | None) -> None:
        """The distinct events of ``moves`` (one block each, in declaration order; later ones are alternatives)."""
        seen: dict[str, Transition] = {}
        for e in sorted(moves, key=lambda e: e.index):
            seen.setdefault(e.transition.trigger.name, e.transition)
        for k, t in enumerate(seen.values()):
            self.event(t, f"→ {dest}" if dest else "(stays)", alternative=k > 0)

    def block(self, header: str, comment: str = "") -> None:
        self.say(f"{header}  # {comment}" if comment else header)
        self.depth += 1

    def end(self) -> None:
        self.depth -= 1

    def leaf(self, view: _View, node: str, internals: bool = True) -> None:
        """A leaf: the events that reach it, the early exits from it, the events that stay in it."""
        into = [e for e in self.edges if e.dest == node and e not in self.side and e not in self.returning]
        self.events_into(into, node)
        side = [e for e in self.edges if e.source == node and e in self.side]
        for name in dict.fromkeys(e.transition.trigger.name for e in side):
            moves = [e for e in side if e.transition.trigger.name == name]
            self.block("if ...:", f"leaves {_parent(node)} early")
            self.events_into(moves, moves[0].dest)
            self.say(f"goto {moves[0].dest}")
            self.end()
        if internals:
            self.stays(node)

    def stays(self, node: str) -> None:
        """The internal events of a leaf, each under ``if ...:`` (they may fire there, or not)."""
        for t in self.internal.get(node, ()):
            self.block("if ...:")
            self.event(t, f"(stays in {node})")
            self.end()

    def unit(self, view: _View, unit: str) -> None:
        """One unit of a view: a loop, a composite state or a leaf; in a loop body, then its move back."""
        if unit in view.loops:
            self.loop(view, unit)
        elif unit in self.levels:
            self.composite(unit)
        else:
            self.leaf(view, unit)
        if view.head is not None and not view.reentry:  # the move back to the loop's head, after what it leaves
            nodes = view.loops.get(unit, frozenset({unit}))
            moves = [
                e
                for e in view.level.back.get(view.head, ())
                if _child_of(view.level.path, e.source) in nodes and e not in self.side
            ]
            if moves:
                self.events_into(moves, moves[0].dest)

    def composite(self, path: str) -> None:
        """A composite state's children, entered from outside it."""
        level = self.levels[path]
        view = self._view(level, level.nodes)
        self.seq(view, {_START}, {view.unit_of[n] for n in level.nodes})

    def loop(self, view: _View, head: str) -> None:
        """A loop of ``view``: ``for``/``while`` around its body.

        When the move back fires the same event as the way in (``train_epoch_start``, the
        closure's ``training_step``), the head is written inside the loop. Otherwise the loop
        comes back to a state between turns (``running``): the head's way in is written before
        the loop, the moves back at the end of each alternative.
        """
        level = view.level
        body = view.loops[head]
        moves = level.back[head]
        again = {e.transition.trigger.name for e in moves}
        dests = {e.dest for e in moves}
        first = {
            e.transition.trigger.name
            for e in self.edges
            if e.dest in dests and e not in self.returning and e not in self.side and not _inside(e.source, head)
        }
        reentry = again <= first
        composites = [n for n in level.nodes if n in body and n in self.levels]
        if composites:
            state = self.paths[composites[0]]
            header, comment = (
                f"for {state.name} in ...:",
                f"{composites[0]}: {state.doc}" if state.doc else composites[0],
            )
        else:
            header, comment = "while ...:", f"{', '.join(sorted(again))} again"
        inner = self._view(level, body, head, reentry)
        rest = {inner.unit_of[n] for n in body if n != head}
        if reentry:
            self.block(header, comment)
            self.unit(inner, head)
            self.seq(inner, {head}, rest)
            self.end()
            return
        if head in self.levels:
            self.composite(head)
        else:
            self.leaf(view, head, internals=False)
        self.block(header, comment)
        self.seq(inner, {head}, rest, hub=True)
        if head not in self.levels and self.internal.get(head):
            self.say(f"# back in {head}")
            self.stays(head)
        self.end()

    def seq(self, view: _View, sources: set[str], nodes: set[str], hub: bool = False, limit: _Limit = None) -> None:
        """Write the units ``nodes``, entered from ``sources``, as sequence, options and alternatives.

        Args:
            view: the part of a composite being written.
            sources: the units already written that lead into ``nodes``.
            nodes: the units to write.
            hub: the body of a loop that comes back to a state between turns: its first
                alternative is the body, the others are written after it as options.
            limit: inside one alternative, see :meth:`_escapes`.
        """
        inner = self._reachable(view, sources, nodes)
        if not inner:
            return
        pos = {n: view.level.pos(n) for n in inner}
        doms = [n for n in inner if not self._escapes(view, sources, inner, n, limit)]
        if doms:
            d = next(n for n in doms if not any(m != n and n in self._reachable(view, {m}, inner) for m in doms))
            before = self._reachable(view, sources, inner, avoid=d)
            self.seq(view, sources, before, limit=limit)
            self.unit(view, d)
            self.seq(view, {d}, inner - before - {d})
            return
        comps = _components(inner, lambda n: [m for m in self._succ(view, n) if m in inner])
        if len(comps) > 1:
            # alternatives in the order their first events are declared (optimizer_step before training_step)
            ordered = sorted(comps, key=lambda c: (self._first_into(view, sources, c), min(pos[n] for n in c)))
            for k, comp in enumerate(ordered):
                first = min(comp, key=lambda n: pos[n])
                taken = (frozenset(sources), frozenset(comp))
                if hub and k == 0:
                    self.seq(view, sources, comp, limit=taken)
                    continue
                self.block("if ...:" if hub or k == 0 else "elif ...:", _about(self, first))
                self.seq(view, sources, comp, limit=taken)
                self.end()
            return
        preds = {m for n in inner for m in self._succ(view, n) if m in inner}
        n1 = min((n for n in inner if n not in preds), key=lambda n: pos[n])
        only = inner - {n1} - self._reachable(view, sources, inner, avoid=n1)
        wrap = n1 not in view.loops or bool(only)  # a loop may already run no turn at all
        if wrap:
            self.block("if ...:", _about(self, n1))
        self.unit(view, n1)
        self.seq(view, {n1}, only)
        if wrap:
            self.end()
        self.seq(view, sources | {n1} | only, inner - {n1} - only, limit=limit)

    # ------------------------------------------------------------------ entry points

    def entry(self, path: str) -> list[str]:
        """The outline of one top-level composite state (an entry point)."""
        self.lines, self.depth = [], 0
        state = self.paths[path]
        self.say(f"# {path}: {state.doc}" if state.doc else f"# {path}")
        self.block("try:")
        self.composite(path)
        leaving = [
            e for e in self.edges if _inside(e.source, path) and not _inside(e.dest, path) and e not in self.side
        ]
        for dest in dict.fromkeys(e.dest for e in leaving):
            self.events_into([e for e in leaving if e.dest == dest], dest)
        self.end()
        mine = set(self._leaves(path))
        for t in self.escapes:
            if not mine & set(self.lc.sources(t)):
                continue
            self.block("except BaseException as exception:", f"{t.trigger.name}: from any state of {path}")
            assert t.dest is not None
            self.event(t, f"→ {t.dest}")
            after = [e for e in self.edges if e.source == t.dest]
            for dest in dict.fromkeys(e.dest for e in after):
                self.events_into([e for e in after if e.dest == dest], dest)
            self.end()
        return self.lines

    def _leaves(self, path: str) -> list[str]:
        return [p for p in self.lc.leaves() if _inside(p, path)]

    def anywhere_lines(self) -> list[str]:
        """The events allowed in every state of a run (and where else they are declared)."""
        self.lines, self.depth = [], 0
        for t in self.anywhere:
            extra = [s for s in t.source if s != ANY]
            where = "(stays; anywhere in a run" + (f", and in {', '.join(extra)})" if extra else ")")
            self.event(t, where)
            self.say("")
        if self.lines and not self.lines[-1]:
            self.lines.pop()
        return self.lines


def _about(writer: _Writer, unit: str) -> str:
    state = writer.paths[unit]
    return f"{unit}: {state.doc}" if state.doc else unit


def _components(nodes: set[str], succ: Callable[[str], Iterable[str]]) -> list[set[str]]:
    """The weakly connected components of ``nodes``.

    Args:
        nodes: the graph's nodes.
        succ: a node's successors among ``nodes``.

    Returns:
        The components (sets of nodes).
    """
    links: dict[str, set[str]] = {n: set() for n in nodes}
    for n in nodes:
        for m in succ(n):
            links[n].add(m)
            links[m].add(n)
    comps: list[set[str]] = []
    left = set(nodes)
    while left:
        todo = [left.pop()]
        comp = set(todo)
        while todo:
            for m in links[todo.pop()]:
                if m in left:
                    left.discard(m)
                    comp.add(m)
                    todo.append(m)
        comps.append(comp)
    return comps


def _action(action: Action) -> str:
    why = " (precision)" if action in PRECISION_ACTIONS else ""
    return f"# action: {action.value}{why}"


def _hook(hook: Hook) -> str:
    """One hook call, e.g. ``batch = dm|lm.on_before_batch_transfer(batch, dataloader_idx)``."""
    args = [*hook.args, *(f"{k}={k}" for k in hook.kwargs)]
    call = f"{PREFIX[hook.target.value]}.{hook.name}({', '.join(args)})"
    if hook.result in _RESULT_TARGET:
        call = f"{_RESULT_TARGET[hook.result] or hook.args[0]} = {call}"
    notes = []
    if hook.only_if_overridden:
        notes.append("only if overridden")
    if hook.otherwise is not None:
        notes.append(f"else action: {hook.otherwise.value}")
    if hook.isolated:
        notes.append("every receiver runs; failures are collected")
    if hook.per_state_key:
        notes.append("each callback gets its own state, when it has one")
    if hook.trim_args:
        notes.append("as many arguments as it accepts")
    return f"{call}  # {'; '.join(notes)}" if notes else call


HEADER = """# The lifecycle, as pseudocode

<!-- Generated from lightcycle/states/declaration.py: do not edit; regenerate with `{command}`. -->

Every hook lightcycle fires, at its place and in the order the declaration
([`lightcycle/states/declaration.py`](../lightcycle/states/declaration.py)) fires it, written
as plain pseudocode. This page is generated from the declaration (`{command}`),
and a test fails when it is stale; the state diagrams in [`diagrams/`](../diagrams/) draw the
same declaration ([docs/diagrams.md](../docs/diagrams.md)).

How to read it:

- `# event NAME → STATE: ...` is one lifecycle event: the lifecycle moves to `STATE`, then the
  lines under it run in order. `(stays)` marks an event that leaves the state as it is.
- `cb.hook(...)`: every callback's hook, in `trainer.callbacks` order (called as
  `hook(trainer, pl_module, ...)`); `cb(plain)` / `cb(monitor)`: callbacks other than, and
  only, `EarlyStopping` / `ModelCheckpoint`. `lm.hook(...)`: the LightningModule's;
  `dm.hook(...)`: the datamodule's, when one is attached; `dm|lm.hook(...)`: the datamodule's
  when it has the hook, else the module's.
- `result = hook(...)`: the event returns what the hook returned (a step's output, `-1` from
  `on_train_batch_start`); `batch = hook(batch, ...)`: the next hook gets the returned batch;
  `states = cb.state_dict()`: gathered per callback.
- `# action: ...` is runtime work, not a user hook (precision, the strategy's setup and
  teardown, train/eval modes).
- `goto STATE`: an event that leaves early for elsewhere; the run goes on in `STATE`.
- `if ...:` / `elif ...:` / `for ... in ...:` / `while ...:` come from the declaration's
  shape: a state some path goes around, states no path visits together, a move back to a
  state already passed. The conditions themselves live in the loops (`lightcycle/trainer/`)
  and are not part of the declaration; the comment names the state entered.
"""


def outline(lifecycle: Lifecycle, entries: Sequence[str] | None = None) -> str:
    """The lifecycle as a Markdown page of pseudocode, one section per entry point.

    Args:
        lifecycle: the declaration (:data:`~lightcycle.states.LIFECYCLE` or an extended copy).
        entries: the top-level composite states to write (``fit``, ...); every one when omitted.

    Returns:
        The Markdown text, ending in a newline.

    Raises:
        ValueError: an entry that is not a top-level composite state; the message lists them.
    """
    writer = _Writer(lifecycle)
    known = [s.name for s in lifecycle.states if s.children]
    chosen = known if entries is None else list(entries)
    unknown = [e for e in chosen if e not in known]
    if unknown:
        raise ValueError(f"no entry point {', '.join(map(repr, unknown))} to outline; known: {', '.join(known)}")
    parts = [HEADER.format(command=REGENERATE_OUTLINE)]
    for name in chosen:
        parts.append(f"## `trainer.{name}()`\n\n```python\n" + "\n".join(writer.entry(name)) + "\n```\n")
    anywhere = writer.anywhere_lines()
    if anywhere and entries is None:
        parts.append("## Anywhere in a run\n\n```python\n" + "\n".join(anywhere) + "\n```\n")
    return "\n".join(parts)
