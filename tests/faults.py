"""Helpers for the verification tests: a recording probe, a tiny module and datamodule, and
drawable run configurations. Fault injection itself is the public kit's
(:mod:`lightcycle.testing`; ``tests/runtime/test_faults.py`` sweeps with it).

A :class:`Probe` is a :class:`~lightcycle.callbacks.HookRecorder`, so the lifecycle driver
calls its ``record_hook`` for every module and datamodule hook as well as for its own
callback hooks. Every run has two probes: ``first`` (logs module/datamodule events and its
own callback events to the shared log) and ``second`` (logs its own callback events). The
shared log therefore holds every hook call of the run, in order, once.
"""

from __future__ import annotations

import tempfile
import warnings
from dataclasses import dataclass, field
from typing import Any

import lightcycle as L
from lightcycle.callbacks import HookRecorder
from lightcycle.testing import tiny_loaders
from lightcycle.testing.tiny import LoaderHooks
from lightcycle.testing.tiny import TinyModule as KitModule
from tests import kit

LogEntry = tuple[str, str, str]
"""(who, src, hook): who is ``first``/``second`` for callback events, ``-`` otherwise."""


class Probe(HookRecorder):
    """A HookRecorder that also logs to a shared list and keeps the objects on_exception got.

    Its ctx adds the trainer's stage flags (``trainer_training``, ``validating``,
    ``testing``, ``predicting``) to what HookRecorder records.
    """

    def __init__(self, who: str, log: list[LogEntry], log_module_events: bool) -> None:
        super().__init__()
        self.who = who
        self.log = log
        self.log_module_events = log_module_events
        self.exceptions: list[BaseException] = []

    @property
    def state_key(self) -> str:
        return f"Probe[{self.who}]"

    def _context(self) -> dict[str, Any]:
        ctx = super()._context()
        t = self._trainer
        if t is not None:
            ctx["trainer_training"] = t.training
            ctx["validating"] = t.validating
            ctx["testing"] = t.testing
            ctx["predicting"] = t.predicting
        return ctx

    def record_hook(self, src: str, hook: str, named: dict[str, Any]) -> None:
        super().record_hook(src, hook, named)
        if src == "callback" or self.log_module_events:
            self.log.append((self.who if src == "callback" else "-", src, hook))

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        self.exceptions.append(exception)
        super().on_exception(trainer, pl_module, exception)

    def reset(self) -> None:
        self.events.clear()
        self.exceptions.clear()


# --------------------------------------------------------------------------- model and data


@dataclass(frozen=True)
class Config:
    """One drawable run: Trainer arguments, entry point and the module's behaviour.

    Attributes:
        trainer: keyword arguments for ``lightcycle.Trainer`` (besides the fixed ones).
        entry: fit, validate, test or predict.
        datamodule: supply the data through a datamodule instead of the module.
        manual: manual optimization (training_step calls manual_backward and opt.step).
        skip_at: (epoch, batch) where the module's on_train_batch_start returns -1.
        stop_at: (epoch, batch) where the module's on_train_batch_end sets should_stop.
        scheduler: None, "step" or "epoch" (a StepLR at that interval).
        batches: batches per dataloader (train, eval).
        checkpointing: keep the default ModelCheckpoint (saves during fit).
    """

    trainer: dict[str, Any] = field(default_factory=dict)
    entry: str = "fit"
    datamodule: bool = False
    manual: bool = False
    skip_at: tuple[int, int] | None = None
    stop_at: tuple[int, int] | None = None
    scheduler: str | None = None
    batches: tuple[int, int] = (2, 2)
    checkpointing: bool = False


class TinyModule(KitModule):
    """The kit's tiny module (no logging) with a :class:`Config`'s ``-1`` skip and ``should_stop``."""

    def __init__(self, cfg: Config) -> None:
        super().__init__(cfg.batches[0], cfg.batches[1], manual=cfg.manual, scheduler=cfg.scheduler, log=False)
        self.cfg = cfg
        self.skipped: list[tuple[int, int]] = []

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> Any:
        if self.cfg.skip_at == (self.current_epoch, batch_idx):
            self.skipped.append((self.current_epoch, batch_idx))
            return -1
        return None

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        if self.cfg.stop_at == (self.current_epoch, batch_idx):
            self.trainer.should_stop = True


class TinyDataModule(LoaderHooks, L.LightningDataModule):
    """The same data through a datamodule; keeps the exceptions its on_exception saw."""

    def __init__(self, cfg: Config) -> None:
        super().__init__()
        self.cfg = cfg
        self.loaders = tiny_loaders(cfg.batches[0], cfg.batches[1])
        self.exceptions: list[BaseException] = []

    def on_exception(self, exception: BaseException) -> None:
        self.exceptions.append(exception)


# --------------------------------------------------------------------------- running

# each run passes its own logger and enable_checkpointing (Config)
BASE_KWARGS: dict[str, Any] = kit.quiet(logger=None, checkpointing=None, accelerator="cpu")


class StatusLogger:
    """A logger that only remembers how the Trainer finalized it (internal teardown)."""

    def __init__(self) -> None:
        self.finalized: list[str] = []

    def log_metrics(self, metrics: dict[str, Any], step: int | None = None) -> None:
        pass

    def finalize(self, status: str) -> None:
        self.finalized.append(status)


@dataclass
class Run:
    """One Trainer with its probes, ready to run (and run again)."""

    cfg: Config
    trainer: L.Trainer
    model: TinyModule
    datamodule: TinyDataModule | None
    first: Probe
    second: Probe
    log: list[LogEntry]
    logger: StatusLogger
    exception: BaseException | None = None
    output: Any = None

    def go(self) -> Run:
        """Run the entry point once; keeps the exception that reached the caller."""
        self.exception = None
        self.output = None
        kwargs: dict[str, Any] = {}
        if self.datamodule is not None:
            kwargs["datamodule"] = self.datamodule
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                self.output = getattr(self.trainer, self.cfg.entry)(self.model, **kwargs)
            except BaseException as exc:
                self.exception = exc
        return self

    def reset(self) -> None:
        """Forget what was recorded (before running the same objects again)."""
        self.log.clear()
        self.first.reset()
        self.second.reset()
        self.logger.finalized.clear()
        if self.datamodule is not None:
            self.datamodule.exceptions.clear()


def make_run(cfg: Config, checked: bool = False, root: str | None = None) -> Run:
    """A fresh Trainer, module, (datamodule) and the two probes for ``cfg``."""
    log: list[LogEntry] = []
    first = Probe("first", log, log_module_events=True)
    second = Probe("second", log, log_module_events=False)
    kwargs = {**BASE_KWARGS, "enable_checkpointing": cfg.checkpointing, **cfg.trainer}
    if root is None:
        root = tempfile.mkdtemp(prefix="lc_faults_")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logger = StatusLogger()
        trainer = L.Trainer(callbacks=[first, second], default_root_dir=root, checked=checked, logger=logger, **kwargs)
    dm = TinyDataModule(cfg) if cfg.datamodule else None
    return Run(cfg, trainer, TinyModule(cfg), dm, first, second, log, logger)
