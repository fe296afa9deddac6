"""Check a recorded hook trace against a lifecycle declaration.

A trace is a list of events in the shared traces' JSON-lines format (``src``, ``hook``,
``args``, ``ctx`` and an optional ``phase``), recorded by
:class:`~lightcycle.callbacks.HookRecorder` or from real Lightning. :func:`verify_trace`
decides whether the declaration (:data:`~lightcycle.states.LIFECYCLE`, or an extended
copy) could have produced it, and if not, where it first goes wrong.

How. Every transition's hooks are compiled into a pattern of tokens over ``(src, hook)``
events; the trace is then read by a nondeterministic automaton whose configurations are
a leaf state plus the position reached in the current transition's pattern:

- a hook on every callback is one event per recording callback: exactly ``n`` identical
  events, where ``n`` (the number of recording callbacks) is guessed from the trace and
  may change when a new run starts; ``m`` of them may be monitoring callbacks (the same
  split for the whole run), which see ``on_train_epoch_end`` after the module;
  ``load_state_dict`` goes only to callbacks that stored a state (0 to ``n``);
- module hooks are required when the trace has module events at all, except those that
  run only if overridden and those :class:`~lightcycle.LightningModule` does not define
  (a custom event's module hook: a module without the method is not called);
  datamodule, batch-transfer and dataloader hooks may be absent;
- a transition to a destination whose only hook is a module hook producing its result
  (``configure_optimizers``, ``training_step``, ``validation_step``, ...; not a run's
  entry) may happen unrecorded, the caller supplying the result (a
  :class:`~lightcycle.custom_loop.LoopDriver` given its optimizers, or whose loop is the
  step), but only when the next event carries ``ctx.state``: that state, the transition's
  destination or one reached from it, proves the transition happened. In traces without
  ``ctx.state`` (Lightning's) such a hook is required as before;
- a transition whose hooks may all be absent (or that has none) is an epsilon move;
- a transition declared from ``ANY`` may happen inside another transition's hooks (a
  callback saving a checkpoint), and one declared from ``ANY`` to a destination (the
  interruption) may cut any pattern short: the hook that raised is the last one seen,
  or an unrecorded receiver raised (another callback, the datamodule, runtime code
  between events), but never just before a required module hook that was not recorded;
- when an event's ``ctx`` has a ``stage``, the state must hold that stage; a ``state``
  (lightcycle's traces) must be the state itself; a ``fn`` must be the run's; a ``status``
  must be ``running`` inside a run;
- the interruption keeps the stage: its events (``on_exception``, saves inside it) must
  carry the interrupted run's ``fn`` and one of that run's stages, never ``None``, and the
  status ``interrupted``; an interruption from the initial state (an entry point failing
  before its first hook: a lone ``on_exception``) carries the ``fn`` and a stage of its run.

Events with ``phase: "return"``, with a ``src`` other than callback/module/datamodule,
and module events whose hook the declaration never names (user APIs such as
``clip_gradients`` or ``manual_backward``, which Lightning's traces record) are skipped
and counted. A complete trace ends back in the initial state; ``partial=True`` accepts a
trace that stops mid-run (a crashed process's live trace). A trace with no hook event to
check (empty, or only skipped events) fails either way: nothing was verified.

Nothing here knows the hook order: it is all read from the declaration.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lightcycle.core.module_hooks import BASE_MODULE_HOOKS
from lightcycle.states.declaration import LIFECYCLE
from lightcycle.states.model import ANY, SEPARATOR, Hook, Lifecycle, Result, Stage, Target, Transition
from lightcycle.verify_result import CONTEXT, VerifyResult, Violation, load_trace, nothing_checked

__all__ = ["VerifyResult", "Violation", "load_trace", "verify_trace"]

SOURCES = ("callback", "module", "datamodule")
"""The ``src`` values a trace's hook events have; other values are skipped."""

_CTX_KEYS = ("stage", "state", "fn", "status")  # the ctx keys an event is checked by
_MAX_CALLBACKS = 16  # the most recording callbacks considered
_MEMO_MAX = 200_000  # memoized moves kept per compiled automaton

# token kinds: how many events one declared hook produces
_CB_ALL = 0  # every recording callback: exactly n
_CB_SOME = 1  # callbacks with a stored state: 0..n
_CB_PLAIN = 2  # plain callbacks: n - m
_CB_MONITORING = 3  # monitoring callbacks: m
_REQUIRED = 4  # module hook: 1 (0..1 when the trace has no module events)
_OPTIONAL = 5  # 0..1


@dataclass(frozen=True)
class _Token:
    srcs: frozenset[str]
    hook: str
    kind: int

    def label(self) -> str:
        src = "|".join(sorted(self.srcs))
        return f"{src}:{self.hook}"


@dataclass(frozen=True)
class _Pattern:
    tid: int
    trigger: str
    sources: tuple[int, ...]
    dest: int | None
    tokens: tuple[_Token, ...]
    nestable: bool  # internal and declared from ANY: may run inside another transition's hooks
    preempts: bool  # declared from ANY to a destination: may cut any pattern short
    silent: bool  # its one required module hook may be supplied by the caller (see _silent)


Cursor = tuple[int, int, int]  # (pattern id, token position, events taken at that position)
Config = tuple[int, int, int, "Cursor | None", "Cursor | None"]
"""(n recording callbacks, m of them monitoring, state, outer cursor, nested cursor)."""


# --------------------------------------------------------------------------- compiling


def _base_module_hooks(names: Iterable[str]) -> frozenset[str]:
    """Which of ``names`` the base LightningModule has (a module hook it lacks may be missing).

    Answered from a torch-free table for the standard hooks, so ``lightcycle verify`` does
    not import torch; a custom module hook makes it look at the class itself.
    """
    wanted = set(names)
    if wanted <= BASE_MODULE_HOOKS:
        return frozenset(wanted)
    # deferred: torch for the CLI start-up (`lightcycle verify` imports this module)
    from lightcycle.core.module import LightningModule

    return frozenset(wanted & set(dir(LightningModule)))


def _token(hook: Hook, module_events: bool, base: frozenset[str]) -> _Token:
    target = hook.target
    if target is Target.CALLBACKS:
        return _Token(frozenset({"callback"}), hook.name, _CB_SOME if hook.per_state_key else _CB_ALL)
    if target is Target.PLAIN_CALLBACKS:
        return _Token(frozenset({"callback"}), hook.name, _CB_PLAIN)
    if target is Target.MONITORING_CALLBACKS:
        return _Token(frozenset({"callback"}), hook.name, _CB_MONITORING)
    if target is Target.MODULE:
        required = module_events and not hook.only_if_overridden and hook.otherwise is None and hook.name in base
        return _Token(frozenset({"module"}), hook.name, _REQUIRED if required else _OPTIONAL)
    if target is Target.DATAMODULE:
        return _Token(frozenset({"datamodule"}), hook.name, _OPTIONAL)
    return _Token(frozenset({"module", "datamodule"}), hook.name, _OPTIONAL)  # batch hook, data source


def _silent(transition: Transition, tokens: tuple[_Token, ...], initial: str) -> bool:
    """Whether the runtime may move through ``transition`` without recording its hook.

    That is a transition to a destination whose one hook is a required module hook
    producing the trigger's result: the caller may supply that result instead (a loop
    given its optimizers, a loop whose code is the step), and the runtime then skips it.
    A run's entry (from the initial state, ``configure_callbacks``) is not: every run
    calls it, and nothing else would show where the run began.
    """
    if transition.dest is None or len(transition.hooks) != 1 or initial in transition.source:
        return False
    hook = transition.hooks[0]
    return hook.target is Target.MODULE and hook.result is Result.RETURN and tokens[0].kind == _REQUIRED


class _Automaton:
    """The declaration compiled for one trace (which sources it records)."""

    def __init__(self, lifecycle: Lifecycle, module_events: bool, candidates: tuple[int, ...]) -> None:
        leaves = lifecycle.leaves()
        self.states: tuple[str, ...] = tuple(leaves)
        index = {p: i for i, p in enumerate(self.states)}
        self.stages: tuple[object, ...] = tuple(leaves.values())
        self.initial = index[lifecycle.initial]
        runs = {s.name for s in lifecycle.states if s.children}
        self.run_of: tuple[str | None, ...] = tuple(
            top if top in runs else None for top in (p.split(SEPARATOR)[0] for p in self.states)
        )
        # A state that keeps the stage (the interruption) gets one copy per run it can interrupt,
        # so its events are checked against that run's fn and stages; the original stands for an
        # interruption from the initial state (an entry point failing before its first hook).
        self.run_stages: dict[str, frozenset[object]] = {
            r: frozenset(st for st, run in zip(self.stages, self.run_of, strict=True) if run == r) for r in runs
        }
        self.kept_run: tuple[str | None, ...] = (None,) * len(self.states)
        copies: dict[int, dict[str, int]] = {}
        for k in [i for i, st in enumerate(self.stages) if st is Stage.KEEP]:
            for r in sorted(runs):
                copies.setdefault(k, {})[r] = len(self.states)
                self.states += (self.states[k],)
                self.stages += (Stage.KEEP,)
                self.run_of += (None,)
                self.kept_run += (r,)
        self._copies = copies
        # trainer.state.status inside a run is "running"; the interruption (the state that keeps
        # the interrupted run's stage) sets "interrupted" before its first hook (Lightning's
        # _interrupt, and lightcycle's Trainer). Other states (idle) may see any status.
        self.status_of: tuple[str | None, ...] = tuple(
            "interrupted" if stage is Stage.KEEP else "running" if run is not None else None
            for stage, run in zip(self.stages, self.run_of, strict=True)
        )
        self.splits: tuple[tuple[int, int], ...] = tuple((n, m) for n in candidates for m in range(n + 1))
        self.patterns: list[_Pattern] = []
        self.starts: list[list[_Pattern]] = [[] for _ in self.states]
        self.nested: list[list[_Pattern]] = [[] for _ in self.states]
        self.preempt: list[list[_Pattern]] = [[] for _ in self.states]
        base = _base_module_hooks(h.name for t in lifecycle.transitions for h in t.hooks if h.target is Target.MODULE)
        for t in lifecycle.transitions:
            from_any = ANY in t.source
            tokens = tuple(_token(h, module_events, base) for h in t.hooks)
            pattern = _Pattern(
                tid=len(self.patterns),
                trigger=t.trigger.name,
                sources=tuple(i for s in lifecycle.sources(t) for i in (index[s], *copies.get(index[s], {}).values())),
                dest=None if t.dest is None else index[t.dest],
                tokens=tokens,
                nestable=from_any and t.dest is None,
                preempts=from_any and t.dest is not None,
                silent=_silent(t, tokens, lifecycle.initial),
            )
            self.patterns.append(pattern)
            for s in pattern.sources:
                (self.preempt if pattern.preempts else self.starts)[s].append(pattern)
                if pattern.nestable:
                    self.nested[s].append(pattern)
            if pattern.preempts and self.initial not in pattern.sources:
                # an entry point that fails before its first hook (bad arguments) interrupts a
                # run that has its fn and stage but no hook yet: a lone on_exception, which
                # Lightning records even when the trace has module events (a retry loop)
                self.preempt[self.initial].append(pattern)
        self.has_silent = any(p.silent for p in self.patterns)
        self._closures: dict[tuple[Config, bool], frozenset[Config]] = {}
        self._steps: dict[tuple[Config, tuple[Any, ...]], Config | None] = {}
        self._closed: dict[tuple[frozenset[Config], bool], frozenset[Config]] = {}
        self._advances: dict[tuple[frozenset[Config], tuple[Any, ...]], frozenset[Config]] = {}

    # ------------------------------------------------------------------ token arithmetic

    @staticmethod
    def bounds(token: _Token, n: int, m: int) -> tuple[int, int]:
        """How many events ``token`` stands for, with ``n`` recording callbacks, ``m`` monitoring."""
        kind = token.kind
        if kind == _CB_ALL:
            return n, n
        if kind == _CB_SOME:
            return 0, n
        if kind == _CB_PLAIN:
            return n - m, n - m
        if kind == _CB_MONITORING:
            return m, m
        if kind == _REQUIRED:
            return 1, 1
        return 0, 1

    def interrupted(self, dest: int, source: int) -> int:
        """The copy of ``dest`` (a state keeping the stage) for the run that ``source`` is in."""
        copies = self._copies.get(dest)
        run = self.run_of[source] or self.kept_run[source]
        return dest if copies is None or run is None else copies[run]

    def start(self, pattern: _Pattern) -> Cursor | None:
        return (pattern.tid, 0, 0) if pattern.tokens else None

    def token(self, cursor: Cursor) -> _Token:
        return self.patterns[cursor[0]].tokens[cursor[1]]

    # ------------------------------------------------------------------ moves

    def _open(self, cursor: Cursor | None) -> bool:
        """Whether something may run unrecorded here: not just before a required module hook.

        Only then can a run be interrupted or a checkpoint be saved: a required module hook
        that had been called would have been recorded.
        """
        return cursor is None or cursor[2] > 0 or self.token(cursor).kind != _REQUIRED

    def _epsilon(self, c: Config, proven: bool) -> Iterator[Config]:
        """The epsilon moves from ``c``; ``proven``: the next event's ``ctx.state`` pins it."""
        n, m, s, outer, inner = c
        top = inner if inner is not None else outer
        if self._open(outer) and self._open(inner):
            for p in self.preempt[s]:
                assert p.dest is not None
                yield (n, m, self.interrupted(p.dest, s), self.start(p), None)
        if top is None:
            for p in self.starts[s]:
                cursors = (self.start(p), None) if proven and p.silent else (self.start(p),)
                for cursor in cursors:
                    if s == self.initial and p.dest is not None:
                        for n2, m2 in self.splits:
                            yield (n2, m2, p.dest, cursor, None)
                    else:
                        yield (n, m, s if p.dest is None else p.dest, cursor, None)
            return
        tid, pos, taken = top
        pattern = self.patterns[tid]
        lo, _ = self.bounds(pattern.tokens[pos], n, m)
        if taken >= lo:
            advanced: Cursor | None = (tid, pos + 1, 0) if pos + 1 < len(pattern.tokens) else None
            yield (n, m, s, outer, advanced) if inner is not None else (n, m, s, advanced, None)
        if inner is None and self._open(outer):
            for p in self.nested[s]:
                cursor = self.start(p)
                if cursor is not None:
                    yield (n, m, s, outer, cursor)

    def closure(self, c: Config, proven: bool = False) -> frozenset[Config]:
        proven = proven and self.has_silent
        hit = self._closures.get((c, proven))
        if hit is not None:
            return hit
        seen: set[Config] = set()
        todo = [c]
        while todo:
            x = todo.pop()
            if x in seen:
                continue
            seen.add(x)
            todo.extend(self._epsilon(x, proven))
        out = frozenset(seen)
        self._closures[(c, proven)] = out
        return out

    def closed(self, raw: frozenset[Config], proven: bool = False) -> frozenset[Config]:
        """Every configuration reachable from ``raw`` by epsilon moves.

        With ``proven`` (the next event carries ``ctx.state``), silent transitions too.
        """
        proven = proven and self.has_silent
        hit = self._closed.get((raw, proven))
        if hit is None:
            out: set[Config] = set()
            for c in raw:
                out |= self.closure(c, proven)
            hit = self._closed[(raw, proven)] = frozenset(out)
        return hit

    def advance(
        self, raw: frozenset[Config], src: str, hook: str, key: tuple[Any, ...], ctx: Mapping[str, Any]
    ) -> frozenset[Config]:
        """The configurations after one event (before epsilon moves); empty when it is not allowed."""
        memo = (raw, key)
        hit = self._advances.get(memo)
        if hit is None:
            if len(self._advances) > _MEMO_MAX:  # keep memory bounded over many traces
                self._advances.clear()
                self._closed.clear()
                self._steps.clear()
            taken = (self.step(c, src, hook, key, ctx) for c in self.closed(raw, "state" in ctx))
            hit = self._advances[memo] = frozenset(c for c in taken if c is not None)
        return hit

    def ctx_ok(self, s: int, ctx: Mapping[str, Any]) -> bool:
        return self.ctx_problem(s, ctx) is None

    def ctx_problem(self, s: int, ctx: Mapping[str, Any]) -> str | None:
        """Why an event with ``ctx`` cannot have been recorded in state ``s`` (``None``: it can).

        Only the keys the trace records are checked (Lightning's traces have no ``state``).
        """
        name = self.states[s]
        if "state" in ctx and ctx["state"] != name:
            return f"its ctx.state is {ctx['state']!r}: it was recorded in another state"
        stage = self.stages[s]
        if stage is Stage.KEEP:
            # an interruption keeps the stage and fn of the run it interrupts, and every entry
            # point sets both before its first hook: a lone on_exception (the entry point failed
            # at once) sees them too; they are cleared only after the run's teardown
            for key in ("stage", "fn"):
                if key in ctx and ctx[key] is None:
                    return (
                        f"its ctx.{key} is None, but state {name!r} keeps the {key} of the interrupted run "
                        f"(Lightning clears trainer.state.{key} only after on_exception and teardown)"
                    )
            kept = self.kept_run[s]
            if kept is not None and ctx.get("fn", kept) != kept:
                return f"its ctx.fn is {ctx['fn']!r}, but the interrupted run is {kept!r}"
            run = kept if kept is not None else ctx.get("fn")
            if run in self.run_stages and ctx.get("stage", Stage.KEEP) not in self.run_stages[run] | {Stage.KEEP}:
                return f"its ctx.stage is {ctx['stage']!r}, which the interrupted run {run!r} never has"
        elif "stage" in ctx and ctx["stage"] != stage:
            return f"its ctx.stage is {ctx['stage']!r}: it was recorded in another state"
        run = self.run_of[s]
        if run is not None and ctx.get("fn") is not None and ctx["fn"] != run:
            return f"its ctx.fn is {ctx['fn']!r}: it was recorded in another run"
        status = self.status_of[s]
        if status is not None and "status" in ctx and ctx["status"] != status:
            return f"its ctx.status is {ctx['status']!r}, but the trainer's status in state {name!r} is {status!r}"
        return None

    def matches(self, c: Config, src: str, hook: str) -> tuple[Cursor, _Token, int] | None:
        """The cursor whose next token is ``src:hook``, with its upper bound (ignores ctx)."""
        n, m, _, outer, inner = c
        top = inner if inner is not None else outer
        if top is None:
            return None
        token = self.token(top)
        if src not in token.srcs or hook != token.hook:
            return None
        return top, token, self.bounds(token, n, m)[1]

    def step(self, c: Config, src: str, hook: str, key: tuple[Any, ...], ctx: Mapping[str, Any]) -> Config | None:
        """The configuration after ``c`` takes the event (before epsilon moves), if it can."""
        memo = (c, key)
        if memo in self._steps:
            return self._steps[memo]
        out: Config | None = None
        found = self.matches(c, src, hook)
        if found is not None and self.ctx_ok(c[2], ctx):
            (tid, pos, taken), _, hi = found
            if taken < hi:
                n, m, s, outer, inner = c
                cursor: Cursor = (tid, pos, taken + 1)
                out = (n, m, s, outer, cursor) if inner is not None else (n, m, s, cursor, None)
        self._steps[memo] = out
        return out

    # ------------------------------------------------------------------ diagnostics

    def from_anywhere(self, c: Config) -> bool:
        """Whether ``c`` just started an ANY-declared transition (a save, the interruption)."""
        top = c[4] if c[4] is not None else c[3]
        if top is None or top[1] != 0 or top[2] != 0:
            return False
        pattern = self.patterns[top[0]]
        return pattern.nestable or pattern.preempts

    def allowed(self, configs: Iterable[Config]) -> tuple[str, ...]:
        main: set[str] = set()
        anywhere: set[str] = set()
        can_end = False
        for c in configs:
            n, m, s, outer, inner = c
            top = inner if inner is not None else outer
            if top is None:
                can_end = can_end or s == self.initial
                continue
            token = self.token(top)
            if top[2] < self.bounds(token, n, m)[1]:
                (anywhere if self.from_anywhere(c) else main).add(token.label())
        out = sorted(main)
        if can_end:
            out.append("(end of trace)")
        if anywhere:
            out.append("anywhere in a run: " + " ".join(sorted(anywhere)))
        return tuple(out)

    def ahead(self, c: Config) -> list[str]:
        """The required events still due in the current transition, in order."""
        n, m, _, outer, inner = c
        top = inner if inner is not None else outer
        if top is None:
            return []
        tid, pos, taken = top
        tokens = self.patterns[tid].tokens
        return [
            tokens[i].label()
            for i in range(pos, len(tokens))
            if self.bounds(tokens[i], n, m)[0] > (taken if i == pos else 0)
        ]

    def pending(self, c: Config) -> list[str]:
        """The required events ``c`` still waits for, innermost first."""
        n, m, _, outer, inner = c
        out: list[str] = []
        for cur in (inner, outer):
            if cur is None:
                continue
            tid, pos, taken = cur
            pattern = self.patterns[tid]
            for i in range(pos, len(pattern.tokens)):
                lo, _ = self.bounds(pattern.tokens[i], n, m)
                if lo > (taken if i == pos else 0):
                    out.append(f"{pattern.tokens[i].label()} (of event {pattern.trigger!r})")
        return out


# --------------------------------------------------------------------------- checking


_AUTOMATA: dict[tuple[int, bool, tuple[int, ...]], tuple[Lifecycle, _Automaton]] = {}
_AUTOMATA_MAX = 16


def _automaton(lifecycle: Lifecycle, module_events: bool, candidates: tuple[int, ...]) -> _Automaton:
    """The compiled automaton, reused across traces (its memo tables make re-checks fast)."""
    key = (id(lifecycle), module_events, candidates)
    hit = _AUTOMATA.get(key)
    if hit is not None and hit[0] is lifecycle:
        return hit[1]
    if len(_AUTOMATA) >= _AUTOMATA_MAX:
        _AUTOMATA.pop(next(iter(_AUTOMATA)))
    nfa = _Automaton(lifecycle, module_events, candidates)
    _AUTOMATA[key] = (lifecycle, nfa)
    return nfa


def _candidates(events: Sequence[tuple[int, str, str, Mapping[str, Any]]]) -> tuple[int, ...]:
    """The possible numbers of recording callbacks: 1 to the longest run of one callback hook."""
    longest = run = 0
    prev: str | None = None
    for _, src, hook, _ in events:
        if src != "callback":
            prev, run = None, 0
            continue
        run = run + 1 if prev == hook else 1
        prev = hook
        longest = max(longest, run)
    if longest == 0:
        return (0,)
    return tuple(range(1, min(longest, _MAX_CALLBACKS) + 1))


def verify_trace(
    events: Sequence[Mapping[str, Any]],
    lifecycle: Lifecycle = LIFECYCLE,
    *,
    partial: bool = False,
) -> VerifyResult:
    """Check that ``lifecycle`` could have produced ``events``.

    Args:
        events: the trace, in call order (e.g. from :func:`load_trace`).
        lifecycle: the declaration to check against (an extended copy works too).
        partial: accept a trace that stops before its run is over.

    Returns:
        A :class:`VerifyResult`: ``ok`` with per-hook counts, or the first violation
        with the events around it, the state(s) it happened in and what was allowed.
    """
    declared: set[str] = set().union(*lifecycle.hook_names().values())
    ignored: Counter[str] = Counter()
    checked: list[tuple[int, str, str, Mapping[str, Any]]] = []
    for i, event in enumerate(events):
        src, hook = event.get("src"), event.get("hook")
        if event.get("phase") == "return":
            ignored["phase=return"] += 1
        elif src not in SOURCES:
            ignored[f"src={src}"] += 1
        elif not isinstance(hook, str):
            ignored["no hook name"] += 1
        elif src == "module" and hook not in declared:
            ignored[f"undeclared module:{hook}"] += 1
        else:
            ctx = event.get("ctx")
            checked.append((i, str(src), hook, ctx if isinstance(ctx, dict) else {}))
    if not checked:
        return VerifyResult(False, 0, {}, dict(ignored), (), nothing_checked(events, ignored))
    has_module = any(src == "module" for _, src, _, _ in checked)
    candidates = _candidates(checked)
    nfa = _automaton(lifecycle, has_module, candidates)
    raw: frozenset[Config] = frozenset((n, m, nfa.initial, None, None) for n, m in nfa.splits)
    counts: Counter[tuple[str, str]] = Counter()
    for i, src, hook, ctx in checked:
        key = (src, hook, *((k, ctx[k]) for k in _CTX_KEYS if k in ctx))
        taken = nfa.advance(raw, src, hook, key, ctx)
        if not taken:
            violation = _violation(nfa, events, i, src, hook, ctx, nfa.closed(raw, "state" in ctx), raw)
            return VerifyResult(False, sum(counts.values()), dict(counts), dict(ignored), candidates, violation)
        counts[(src, hook)] += 1
        raw = taken
    current = nfa.closed(raw)
    finished = [c for c in current if c[2] == nfa.initial and c[3] is None and c[4] is None]
    used = tuple(sorted({c[0] for c in (finished or current)}))
    if not finished and not partial:
        states = tuple(sorted({nfa.states[c[2]] for c in raw}))
        pending = sorted({p for c in raw for p in nfa.pending(c)})
        message = (
            f"the trace ends inside a run (state {', '.join(states)}); "
            + (f"still expected: {', '.join(pending[:6])}; " if pending else "")
            + f"a complete run returns to {nfa.states[nfa.initial]!r} (teardown, or on_exception after an error)"
        )
        context = tuple((j, events[j]) for j in range(max(0, len(events) - CONTEXT), len(events)))
        violation = Violation(len(events), None, message, states, nfa.allowed(current), context)
        return VerifyResult(False, sum(counts.values()), dict(counts), dict(ignored), used, violation)
    return VerifyResult(True, sum(counts.values()), dict(counts), dict(ignored), used)


def _violation(
    nfa: _Automaton,
    events: Sequence[Mapping[str, Any]],
    index: int,
    src: str,
    hook: str,
    ctx: Mapping[str, Any],
    current: frozenset[Config],
    raw: frozenset[Config],
) -> Violation:
    states = tuple(sorted({nfa.states[c[2]] for c in raw}))
    label = f"{src}:{hook}"
    reason = "is not allowed here"
    # the configurations in the run the event names first, so the reason given is about that run
    fn = ctx.get("fn")
    # (then by state and callback split, so the reason does not depend on set order)
    for c in sorted(current, key=lambda c: ((nfa.run_of[c[2]] or nfa.kept_run[c[2]]) != fn, c[2], c[0], c[1])):
        found = nfa.matches(c, src, hook)
        if found is None:
            continue
        (_, _, taken), token, hi = found
        problem = nfa.ctx_problem(c[2], ctx)
        if problem is not None:
            want = nfa.stages[c[2]]
            seen = {k: ctx[k] for k in _CTX_KEYS if k in ctx}
            reason = (
                f"comes where the lifecycle would allow it (state {nfa.states[c[2]]!r}, stage {want!r}), "
                f"but {problem} (ctx {seen})"
            )
            break
        if taken >= hi:
            reason = (
                f"is one more than allowed: {hi} event(s) of {token.label()} expected here "
                f"with {c[0]} recording callback(s); duplicated?"
            )
            break
    else:
        firsts: set[str] = set()
        for c in current:
            if nfa.from_anywhere(c):
                continue
            ahead = nfa.ahead(c)
            if label in ahead[1:]:
                firsts.update(ahead[: ahead.index(label)])
        if firsts:
            reason = f"comes too early: {' and '.join(sorted(firsts))} must come first (dropped or swapped?)"
    if reason == "is not allowed here":
        expected = [a for a in nfa.allowed(current) if not a.startswith("anywhere")]
        if expected:
            reason += f"; expected {' or '.join(expected[:5])}" + (" (dropped? moved?)" if len(expected) <= 2 else "")
    message = f"event {index}: {src} {hook} {reason}"
    lo, hi = max(0, index - CONTEXT), min(len(events), index + CONTEXT + 1)
    context = tuple((j, events[j]) for j in range(lo, hi))
    stages = tuple(sorted({_stage_name(nfa.stages[c[2]]) for c in raw}))
    return Violation(index, events[index], message, states, nfa.allowed(current), context, stages)


def _stage_name(stage: object) -> str:
    if stage is Stage.KEEP:
        return "(kept from the interrupted state)"
    return repr(stage)
