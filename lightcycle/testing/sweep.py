"""``interruption_sweep``: interrupt a run at every hook site it reaches, with every fault kind.

One uninterrupted run enumerates the sites (every hook call on a callback, the module or the
datamodule, in the order the run reached them); then, for each site and fault kind, a fresh
Trainer (or :class:`~lightcycle.custom_loop.LoopDriver`) from ``make_trainer()`` runs again
with the hook call at that site raising instead of running, and ``check(trainer, outcome)``
judges the result. See ``docs/testing-kit.md``.
"""

from __future__ import annotations

import random
import signal
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from lightcycle.errors import SIGTERMException
from lightcycle.testing.faults import FAULTS, SIGTERM, FailingHandler, check_faults, make_fault
from lightcycle.testing.probe import Call, Probe

Site = Call
"""A hook site: ``receiver``, ``hook``, ``occurrence``, lifecycle ``state``; ``key`` names it."""


@dataclass
class Tally:
    """What the sweeps of one name tried (the pytest plugin's summary)."""

    sites: set[str] = field(default_factory=set)
    faults: set[str] = field(default_factory=set)
    injections: int = 0


TALLY: dict[str, Tally] = {}
"""Per sweep name (the test's, for the marker), what was tried."""


class SweepError(RuntimeError):
    """The sweep cannot run: the uninterrupted run failed, reached no site, or bad arguments."""


@dataclass
class Outcome:
    """What one injected run did, handed to ``check``.

    Attributes:
        site: where the fault was injected.
        fault: the fault kind's name.
        injected: the exception object raised at the site (``None`` if the site was not
            reached, and for the ``"sigterm"`` fault, which raises nothing there).
        raised: what reached the caller of ``run`` (``None`` when it returned); for
            ``"sigterm"``, a ``SIGTERMException`` or ``None``.
        after: the hook calls made after the fault, in order (``on_exception`` handlers, ...).
        reached: whether the run reached the site.
    """

    site: Site
    fault: str
    injected: BaseException | None
    raised: BaseException | None
    after: tuple[Call, ...]
    reached: bool

    @property
    def after_hooks(self) -> list[tuple[str, str]]:
        """``(receiver, hook)`` of each call after the fault."""
        return [(c.receiver, c.hook) for c in self.after]


@dataclass(frozen=True)
class Failure:
    """One (site, fault) whose check failed.

    Attributes:
        site: the site.
        fault: the fault kind.
        message: the check's ``AssertionError`` message.
        reproduction: a call that reruns just this injection.
    """

    site: Site
    fault: str
    message: str

    @property
    def reproduction(self) -> str:
        """One line that reruns only this injection."""
        return f"interruption_sweep(make_trainer, run, check, faults=[{self.fault!r}], only=[{self.site.key!r}])"


@dataclass
class SweepReport:
    """The result of a sweep.

    Attributes:
        sites: every site of the uninterrupted run, in order.
        tried: the sites injected (all of ``sites`` unless ``max_sites``/``only`` chose fewer).
        faults: the fault kinds tried.
        failures: the (site, fault) pairs whose check failed, in the order tried.
    """

    sites: list[Site]
    tried: list[Site]
    faults: tuple[str, ...]
    failures: list[Failure] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No check failed."""
        return not self.failures

    @property
    def injections(self) -> int:
        """How many injected runs were made."""
        return len(self.tried) * len(self.faults)

    def failing_sites(self) -> list[Site]:
        """The tried sites where at least one fault failed, in run order."""
        bad = {f.site.key for f in self.failures}
        return [s for s in self.tried if s.key in bad]

    def table(self, every_site: bool = False) -> str:
        """A table of sites × fault kinds (``ok``/``FAIL``).

        Args:
            every_site: a row for every tried site, not only the failing ones.

        Returns:
            The table, one line per row.
        """
        failed = {(f.site.key, f.fault) for f in self.failures}
        rows = self.tried if every_site else self.failing_sites()
        width = max([len(s.key) for s in rows] + [4])
        swidth = max([len(s.state) for s in rows] + [5])
        lines = [f"{'site':<{width}}  {'state':<{swidth}}  " + "  ".join(self.faults)]
        for s in rows:
            cells = "  ".join(f"{'FAIL' if (s.key, f) in failed else 'ok':<{len(f)}}" for f in self.faults)
            lines.append(f"{s.key:<{width}}  {s.state:<{swidth}}  {cells}".rstrip())
        return "\n".join(lines)

    def __str__(self) -> str:
        head = (
            f"interruption sweep: {len(self.tried)} of {len(self.sites)} sites x {len(self.faults)} fault kinds"
            f" = {self.injections} injections, {len(self.failures)} failed"
        )
        if self.ok:
            return head
        first = self.failures[0]
        return (
            f"{head}\n{self.table()}\nfirst failure, {first.site.key} [{first.fault}]: {first.message}\n"
            f"reproduce: {first.reproduction}"
        )


def _attach(target: Any, probe: Probe, fault: str | None) -> FailingHandler | None:
    callbacks = getattr(target, "callbacks", None)
    if not isinstance(callbacks, list) or not hasattr(target, "_driver"):
        raise SweepError(
            f"make_trainer() returned {type(target).__name__}: it must return a lightcycle Trainer or LoopDriver"
        )
    handler = FailingHandler() if fault == "on_exception_failure" else None
    if handler is not None:
        callbacks.insert(0, handler)
    callbacks.append(probe)
    return handler


def _run(
    make_trainer: Callable[[], Any], run: Callable[[Any], Any], probe: Probe, fault: str | None
) -> tuple[Any, BaseException | None]:
    """Build a target, attach the probe, run, detach; returns the target and what reached the caller."""
    target = make_trainer()
    handler = _attach(target, probe, fault)
    if handler is not None:
        probe.skip_ids.add(id(handler))
    raised: BaseException | None = None
    try:
        run(target)
    except BaseException as exc:  # the outcome is the check's to judge
        raised = exc
    finally:
        probe.restore()
        # the target's callbacks are the user's again (configure_callbacks may have made a new list)
        target.callbacks[:] = [cb for cb in target.callbacks if cb is not probe and cb is not handler]
    return target, raised


def enumerate_sites(make_trainer: Callable[[], Any], run: Callable[[Any], Any]) -> list[Site]:
    """Run once uninterrupted and return every hook site it reached, in order.

    Args:
        make_trainer: builds a fresh Trainer or LoopDriver (with fresh callbacks and module).
        run: runs it (``lambda t: t.fit(model)``, or a custom loop).

    Returns:
        The sites.

    Raises:
        SweepError: the run raised (chained), or reached no hook.
    """
    probe = Probe()
    _, raised = _run(make_trainer, run, probe, None)
    if raised is not None:
        raise SweepError(f"the uninterrupted run raised {raised!r}: fix it before sweeping") from raised
    if not probe.calls:
        raise SweepError("the uninterrupted run reached no hook: does run(trainer) run the trainer it is given?")
    return list(probe.calls)


def _ignore_sigterm(signum: int, frame: Any) -> None:
    """The sweep's SIGTERM handler under the run's: the signal was the sweep's own."""


def inject(make_trainer: Callable[[], Any], run: Callable[[Any], Any], site: Site, fault: str) -> tuple[Any, Outcome]:
    """Run once with ``fault`` injected at ``site``.

    Args:
        make_trainer: builds a fresh Trainer or LoopDriver.
        run: runs it.
        site: where to inject (from :func:`enumerate_sites`).
        fault: a fault kind's name.

    Returns:
        The target that ran and the :class:`Outcome`.
    """
    (fault,) = check_faults([fault])
    exc = make_fault(fault, site.key)
    probe = Probe(site.key, exc)
    if fault == SIGTERM:
        # a handler of the sweep's own under the run's (which chains to it): a signal that
        # arrives while no run handler is installed must not end the process
        try:
            previous = signal.signal(signal.SIGTERM, _ignore_sigterm)
        except ValueError as err:
            raise SweepError("the 'sigterm' fault needs the main thread (signal handlers live there)") from err
        try:
            target, raised = _run(make_trainer, run, probe, fault)
        finally:
            signal.signal(signal.SIGTERM, previous)
    else:
        target, raised = _run(make_trainer, run, probe, fault)
    if isinstance(raised, KeyboardInterrupt) and raised is not exc:
        raise raised  # a real Ctrl-C: stop the sweep
    reached = probe.fired_at is not None
    after = tuple(probe.calls[probe.fired_at + 1 :]) if probe.fired_at is not None else ()
    return target, Outcome(site, fault, exc if reached else None, raised, after, reached)


def select_sites(
    sites: list[Site], *, max_sites: int | None = None, seed: int = 0, only: Iterable[str] | None = None
) -> list[Site]:
    """The sites to inject at: those named by ``only``, then at most ``max_sites`` drawn with ``seed``.

    Args:
        sites: every site of the run, in order.
        max_sites: keep at most this many (a seeded draw, kept in run order).
        seed: the seed of the draw.
        only: site keys (``receiver.hook#occurrence``) to keep.

    Returns:
        The chosen sites, in run order.

    Raises:
        SweepError: ``only`` names a site the run does not reach.
        ValueError: ``max_sites`` < 1.
    """
    if max_sites is not None and max_sites < 1:
        raise ValueError(f"max_sites must be at least 1, got {max_sites}")
    tried = sites
    if only is not None:
        wanted = set(only)
        missing = sorted(wanted - {s.key for s in sites})
        if missing:
            raise SweepError(f"the run reaches no site {missing}; its first sites are {[s.key for s in sites[:5]]}")
        tried = [s for s in sites if s.key in wanted]
    if max_sites is not None and max_sites < len(tried):
        picked = sorted(random.Random(seed).sample(range(len(tried)), max_sites))
        tried = [tried[i] for i in picked]
    return tried


def tally(name: str, sites: Iterable[Site], faults: Iterable[str], injections: int) -> None:
    """Add what a sweep tried to :data:`TALLY` (printed by the pytest plugin at the end)."""
    row = TALLY.setdefault(name, Tally())
    row.sites.update(s.key for s in sites)
    row.faults.update(faults)
    row.injections += injections


def interruption_sweep(
    make_trainer: Callable[[], Any],
    run: Callable[[Any], Any],
    check: Callable[[Any, Outcome], None] | None = None,
    faults: Iterable[str] = FAULTS,
    *,
    max_sites: int | None = None,
    seed: int = 0,
    only: Iterable[str] | None = None,
    name: str | None = None,
) -> SweepReport:
    """Interrupt a run at every hook site it reaches, with each fault kind, and check each outcome.

    Args:
        make_trainer: builds a fresh Trainer or LoopDriver with fresh callbacks (and module,
            if ``run`` does not make its own) on each call; the runs must be deterministic.
        run: runs the target once (``lambda t: t.fit(make_model())``, or a custom loop).
        check: ``check(trainer, outcome)``, called after each injected run; an
            ``AssertionError`` marks a failure (other exceptions propagate). ``None`` checks
            only that the injected exception reached the caller.
        faults: fault kind names (:data:`~lightcycle.testing.faults.FAULTS`, all four by
            default; ``"sigterm"`` on POSIX too, if named).
        max_sites: inject at most this many sites, drawn with ``seed`` (kept in run order).
        seed: the seed of that draw.
        only: inject only at these site keys (``receiver.hook#occurrence``).
        name: a label for the pytest plugin's summary (default ``"sweep"``).

    Returns:
        The :class:`SweepReport`.

    Raises:
        SweepError: the uninterrupted run failed, or ``only`` names a site the run does not reach.
        ValueError: an unknown fault kind, or ``max_sites`` < 1.
    """
    kinds = check_faults(faults)
    if max_sites is not None and max_sites < 1:
        raise ValueError(f"max_sites must be at least 1, got {max_sites}")
    sites = enumerate_sites(make_trainer, run)
    tried = select_sites(sites, max_sites=max_sites, seed=seed, only=only)
    report = SweepReport(sites, tried, kinds)
    for site in tried:
        for fault in kinds:
            target, outcome = inject(make_trainer, run, site, fault)
            try:
                if not outcome.reached:
                    raise AssertionError("the run never reached this site (is it deterministic?)")
                if check is None and fault == SIGTERM:
                    assert outcome.raised is None or isinstance(outcome.raised, SIGTERMException), (
                        f"the caller got {outcome.raised!r}"
                    )
                elif check is None:
                    assert outcome.raised is outcome.injected, f"the caller got {outcome.raised!r}"
                else:
                    check(target, outcome)
            except AssertionError as err:
                report.failures.append(Failure(site, fault, str(err) or repr(err)))
    tally(name or "sweep", tried, kinds, report.injections)
    return report
