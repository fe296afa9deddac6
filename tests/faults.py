"""Helpers for the verification tests: a probing recorder, a tiny module and datamodule,
drawable run configurations, and fault injection at any hook site.

A :class:`Probe` is a :class:`~lightcycle.callbacks.HookRecorder`, so the lifecycle driver
calls its ``record_hook`` for every module and datamodule hook as well as for its own
callback hooks. That makes it an injector: when its plan names ``(src, hook, occurrence)``
it raises the planned exception right after recording that call, which is exactly "the
hook raised" for every hook site a run reaches (callback hooks, module hooks, the steps,
the dataloader and batch-transfer hooks, the datamodule's hooks).

Every run has two probes: ``first`` (logs module/datamodule events and its own callback
events to the shared log) and ``injector`` (the second callback; logs its own callback
events and raises). The shared log therefore holds every hook call of the run, in order,
once.
"""

from __future__ import annotations

import tempfile
import warnings
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import lightcycle as L
from lightcycle.callbacks import HookRecorder

LogEntry = tuple[str, str, str]
"""(who, src, hook): who is ``first``/``injector`` for callback events, ``-`` otherwise."""


class InjectedAbort(BaseException):
    """A custom BaseException subclass (not an Exception): must travel like KeyboardInterrupt."""


class SecondaryFailure(ValueError):
    """Raised inside on_exception while another exception is being handled."""


KINDS = ("runtime", "keyboard", "base", "secondary")
"""Fault kinds: RuntimeError; KeyboardInterrupt; a custom BaseException; a RuntimeError
at the site plus a second failure inside the first callback's on_exception."""


def make_exception(kind: str, site: Site) -> BaseException:
    label = f"injected at {site.src}:{site.hook}#{site.occurrence}"
    if kind == "keyboard":
        return KeyboardInterrupt(label)
    if kind == "base":
        return InjectedAbort(label)
    return RuntimeError(label)


@dataclass(frozen=True)
class Site:
    """One hook call of a run: the ``occurrence``-th call of ``hook`` on ``src``."""

    src: str
    hook: str
    occurrence: int

    def __str__(self) -> str:
        return f"{self.src}:{self.hook}#{self.occurrence}"


@dataclass
class Plan:
    """What a probe does besides recording."""

    site: Site | None = None
    exception: BaseException | None = None
    fail_in_on_exception: bool = False


class Probe(HookRecorder):
    """A HookRecorder that also logs to a shared list, keeps on_exception's objects and injects.

    Its ctx adds the trainer's stage flags (``trainer_training``, ``validating``,
    ``testing``, ``predicting``) to what HookRecorder records.
    """

    def __init__(self, who: str, log: list[LogEntry], log_module_events: bool) -> None:
        super().__init__()
        self.who = who
        self.log = log
        self.log_module_events = log_module_events
        self.plan = Plan()
        self.seen: Counter[tuple[str, str]] = Counter()
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
        key = (src, hook)
        occurrence = self.seen[key]
        self.seen[key] += 1
        site = self.plan.site
        if site is not None and (site.src, site.hook, site.occurrence) == (src, hook, occurrence):
            exc = self.plan.exception
            self.plan.site = None
            assert exc is not None
            raise exc

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        self.exceptions.append(exception)
        super().on_exception(trainer, pl_module, exception)
        if self.plan.fail_in_on_exception:
            raise SecondaryFailure(f"{self.who}: failed inside on_exception")

    def reset(self) -> None:
        self.events.clear()
        self.seen.clear()
        self.exceptions.clear()
        self.plan = Plan()


# --------------------------------------------------------------------------- model and data


def _data(n: int, seed: int) -> TensorDataset:
    g = torch.Generator().manual_seed(seed)
    return TensorDataset(torch.randn(n, 4, generator=g), torch.randn(n, 1, generator=g))


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


class TinyModule(L.LightningModule):
    """Linear(4, 1) with every loop defined; behaviour set by a :class:`Config`."""

    def __init__(self, cfg: Config) -> None:
        super().__init__()
        self.cfg = cfg
        self.layer = nn.Linear(4, 1)
        self.automatic_optimization = not cfg.manual
        self.skipped: list[tuple[int, int]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x)

    def _loss(self, batch: Any) -> torch.Tensor:
        x, y = batch
        return nn.functional.mse_loss(self(x), y)

    def training_step(self, batch: Any, batch_idx: int) -> Any:
        loss = self._loss(batch)
        if self.cfg.manual:
            opt = self.optimizers()
            opt.zero_grad()
            self.manual_backward(loss)
            opt.step()
        return loss

    def validation_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> Any:
        return self._loss(batch)

    def test_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> Any:
        return self._loss(batch)

    def predict_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> Any:
        return self(batch[0])

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> Any:
        if self.cfg.skip_at == (self.current_epoch, batch_idx):
            self.skipped.append((self.current_epoch, batch_idx))
            return -1
        return None

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        if self.cfg.stop_at == (self.current_epoch, batch_idx):
            self.trainer.should_stop = True

    def configure_optimizers(self) -> Any:
        opt = torch.optim.SGD(self.parameters(), lr=0.05)
        if self.cfg.scheduler == "step":
            return {
                "optimizer": opt,
                "lr_scheduler": {"scheduler": torch.optim.lr_scheduler.StepLR(opt, 1), "interval": "step"},
            }
        if self.cfg.scheduler == "epoch":
            return [opt], [torch.optim.lr_scheduler.StepLR(opt, 1)]
        return opt

    def train_dataloader(self) -> Any:
        return DataLoader(_data(2 * self.cfg.batches[0], 1), batch_size=2)

    def val_dataloader(self) -> Any:
        return DataLoader(_data(2 * self.cfg.batches[1], 2), batch_size=2)

    def test_dataloader(self) -> Any:
        return DataLoader(_data(2 * self.cfg.batches[1], 3), batch_size=2)

    def predict_dataloader(self) -> Any:
        return DataLoader(_data(2 * self.cfg.batches[1], 4), batch_size=2)


class TinyDataModule(L.LightningDataModule):
    """The same data through a datamodule; keeps the exceptions its on_exception saw."""

    def __init__(self, cfg: Config) -> None:
        super().__init__()
        self.cfg = cfg
        self.exceptions: list[BaseException] = []

    def train_dataloader(self) -> Any:
        return DataLoader(_data(2 * self.cfg.batches[0], 1), batch_size=2)

    def val_dataloader(self) -> Any:
        return DataLoader(_data(2 * self.cfg.batches[1], 2), batch_size=2)

    def test_dataloader(self) -> Any:
        return DataLoader(_data(2 * self.cfg.batches[1], 3), batch_size=2)

    def predict_dataloader(self) -> Any:
        return DataLoader(_data(2 * self.cfg.batches[1], 4), batch_size=2)

    def on_exception(self, exception: BaseException) -> None:
        self.exceptions.append(exception)


# --------------------------------------------------------------------------- running

BASE_KWARGS: dict[str, Any] = dict(
    accelerator="cpu",
    enable_progress_bar=False,
    enable_model_summary=False,
)


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
    injector: Probe
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
        self.injector.reset()
        self.logger.finalized.clear()
        if self.datamodule is not None:
            self.datamodule.exceptions.clear()


def make_run(cfg: Config, checked: bool = False, root: str | None = None) -> Run:
    """A fresh Trainer, module, (datamodule) and the two probes for ``cfg``."""
    log: list[LogEntry] = []
    first = Probe("first", log, log_module_events=True)
    injector = Probe("injector", log, log_module_events=False)
    kwargs = {**BASE_KWARGS, "enable_checkpointing": cfg.checkpointing, **cfg.trainer}
    if root is None:
        root = tempfile.mkdtemp(prefix="lc_faults_")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logger = StatusLogger()
        trainer = L.Trainer(
            callbacks=[first, injector], default_root_dir=root, checked=checked, logger=logger, **kwargs
        )
    dm = TinyDataModule(cfg) if cfg.datamodule else None
    return Run(cfg, trainer, TinyModule(cfg), dm, first, injector, log, logger)


def sites(run: Run) -> list[Site]:
    """Every hook site the injector saw in a run, in order (occurrences counted per hook)."""
    seen: Counter[tuple[str, str]] = Counter()
    out: list[Site] = []
    for event in run.injector.events:
        key = (event["src"], event["hook"])
        out.append(Site(event["src"], event["hook"], seen[key]))
        seen[key] += 1
    return out


def log_index(run: Run, site: Site) -> int:
    """Where the injector's site is in the shared log (the event that raised)."""
    want = ("injector" if site.src == "callback" else "-", site.src, site.hook)
    count = -1
    for i, entry in enumerate(run.log):
        if entry == want:
            count += 1
            if count == site.occurrence:
                return i
    raise AssertionError(f"site {site} not in the shared log")
