"""Per-step overhead of lightcycle against a raw PyTorch loop, Lightning and ignite.

Workload (issue 7): ``Linear(32, 32) - ReLU - Linear(32, 1)``, MSE loss, SGD (lr 0.01),
batch 32, a ``DataLoader`` over an in-memory ``TensorDataset``, one torch thread.

Variants (each run in a fresh subprocess, variants interleaved within every repeat):

* ``raw``       a hand-written PyTorch loop (training_step, zero_grad, backward, step);
* ``trainer``   ``lightcycle.Trainer`` with no callbacks;
* ``callbacks`` ``lightcycle.Trainer`` with five callbacks, each overriding the six
  per-batch training hooks (``on_train_batch_start/end``, ``on_before_zero_grad``,
  ``on_before_backward``, ``on_after_backward``, ``on_before_optimizer_step``);
* ``driver``    the custom-loop driver (``lightcycle.custom_loop.LoopDriver``) around the
  raw loop's own step (see :func:`_run_driver`);
* ``log``       as ``trainer``, plus ``self.log("loss", loss)`` in ``training_step``;
* ``profiler``  as ``trainer``, with ``profiler="simple"`` (its report written to a temporary
  folder): what timing every hook call costs (``--profiler simple`` is the same);
* ``lightning_profiler`` ``pytorch_lightning.Trainer(profiler="simple")``, for comparison;
* ``lightning`` ``pytorch_lightning.Trainer`` (when installed);
* ``ignite``    ``ignite.engine.Engine`` with the same step (when installed);
* ``protocol``  no orchestrator: the module hooks of Lightning's automatic-optimization
  batch called by hand (see :func:`_run_protocol`). Not a product; the floor under
  ``trainer``: what any Trainer that keeps Lightning's hook protocol pays per batch;
* ``checked``   ``lightcycle.Trainer(checked=True)``: every event checked against the
  ``transitions`` machine's answers (asked once per state and event, then kept); reported
  separately, with its cost over ``trainer`` (target <= 3 us/step, issue 18).
* ``log10``     as ``trainer``, plus ten ``self.log`` calls per step (``log10`` − ``trainer``,
  divided by ten, is the cost of one logged scalar);
* ``realistic``, ``realistic_lightning``, ``realistic_ignite``: the defaults a user gets
  (see :func:`_realistic_trainer_kwargs`): a progress bar, checkpointing, a CSV logger, the
  model summary, the sanity check, three metrics logged with ``prog_bar=True``, validation
  (10 batches) after every epoch of 100 training batches. Their paired raw loop does the same
  user work (the two extra metrics' arithmetic, epochs over a training ``DataLoader``, the
  validation ``DataLoader`` iterated and its forward passes); ``raw_realistic`` is that loop
  run as a variant (its paired figure is the pairing's noise); ignite's is
  its nearest equivalent (``ProgressBar``, ``Checkpoint`` every epoch, an evaluator every
  epoch, three ``RunningAverage`` metrics on the bar; it has no CSV logger or model summary).

``--scaling`` prints another table instead: lightcycle against Lightning with 0/1/5/20/50
callbacks, 0/1/10/50 logged metrics and validation every epoch / 100 / 20 / 5 steps (each
paired with a raw loop doing the same validation work), then the import time
(``python -X importtime``) and the time from ``fit`` to the first training batch.

Timing. Every variant calls the same ``training_step`` body, which counts its calls and
reads ``time.perf_counter()`` when the count reaches ``warmup`` and ``warmup + steps``.
The difference covers exactly ``steps`` complete iterations (data loading, hooks,
forward, backward, optimizer step) of the fit loop; setup, the warm-up steps and teardown
are excluded. Each run trains ``warmup + steps + 1`` batches of a single epoch. On CUDA
the two time stamps are preceded by ``torch.cuda.synchronize()``; those two
synchronisations are outside the timed steps' per-step path.

Memory. Peak resident set size of the child (``resource.getrusage(RUSAGE_SELF).ru_maxrss``)
and, on CUDA, ``torch.cuda.max_memory_allocated()``.

Usage::

    python benchmarks/overhead.py                       # all variants, 2000 steps, 5 repeats
    python benchmarks/overhead.py --variants raw trainer driver --repeats 9
    python benchmarks/overhead.py --device cuda
    python benchmarks/overhead.py --child trainer       # one measurement, JSON on stdout
    python benchmarks/overhead.py --variants trainer callbacks --executors generated interpreted

``--executors`` runs each lightcycle variant once per event executor (``LIGHTCYCLE_EXECUTOR``
in the child: the generated functions or the reference interpreter), interleaved with the
rest; rows are labelled ``[generated]`` / ``[interpreted]``. Without it the child runs the
default executor.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

ALL_VARIANTS = (
    "raw",
    "trainer",
    "callbacks",
    "driver",
    "log",
    "log10",
    "profiler",
    "protocol",
    "lightning",
    "lightning_profiler",
    "ignite",
    "raw_realistic",
    "realistic",
    "realistic_lightning",
    "realistic_ignite",
    "checked",
)
PROFILED = ("profiler", "lightning_profiler")
"""Variants run only when asked for (``--profiler simple`` or ``--variants``)."""
REALISTIC = ("raw_realistic", "realistic", "realistic_lightning", "realistic_ignite")
"""Variants run only when asked for (``--variants``)."""
LABELS = {
    "raw": "(a) raw PyTorch loop",
    "trainer": "(b) lightcycle Trainer",
    "callbacks": "(c) lightcycle Trainer + 5 callbacks x 6 hooks",
    "driver": "(d) lightcycle custom-loop driver",
    "log": "    lightcycle Trainer + self.log(loss)",
    "log10": "    lightcycle Trainer + 10 x self.log",
    "raw_realistic": "    raw loop doing the realistic user work",
    "realistic": "(h) lightcycle, realistic defaults",
    "realistic_lightning": "(i) pytorch-lightning, realistic defaults",
    "realistic_ignite": "(j) pytorch-ignite, nearest equivalent",
    "protocol": "    Lightning's batch protocol by hand (floor)",
    "profiler": "    lightcycle Trainer + profiler='simple'",
    "lightning": "(e) pytorch-lightning 2.x",
    "lightning_profiler": "    pytorch-lightning + profiler='simple'",
    "ignite": "(f) pytorch-ignite",
    "checked": "(g) lightcycle checked=True",
}
TARGETS_US = {"trainer": 15.0, "callbacks": 20.0, "driver": 6.0, "realistic": 40.0}
EPOCH = 100  # training batches per epoch in the realistic variants
VAL_BATCHES = 10  # validation batches after each of their epochs
LIGHTCYCLE_VARIANTS = ("trainer", "callbacks", "driver", "log", "checked")
EXECUTORS = ("generated", "interpreted")


def split_key(key: str) -> tuple[str, str | None]:
    """``"trainer@interpreted"`` -> ``("trainer", "interpreted")``; a plain variant -> ``(variant, None)``."""
    variant, _, executor = key.partition("@")
    return variant, executor or None


def keys_for(variants: list[str], executors: list[str] | None) -> list[str]:
    """The measurements to make: each lightcycle variant once per executor, the others once."""
    keys = []
    for v in variants:
        if executors and v in LIGHTCYCLE_VARIANTS:
            keys += [f"{v}@{e}" for e in executors]
        else:
            keys.append(v)
    return keys


PER_BATCH_HOOKS = (
    "on_train_batch_start",
    "on_train_batch_end",
    "on_before_zero_grad",
    "on_before_backward",
    "on_after_backward",
    "on_before_optimizer_step",
)
BATCH = 32
FEATURES = 32
LR = 0.01


# --------------------------------------------------------------------------- child side


class _Clock:
    """Counts training steps and times the window ``[warmup, warmup + steps)`` in blocks.

    Every ``block`` steps the time per step of the block just finished is recorded
    (wall-clock and process CPU time). A run's figure is the median over its blocks: a
    burst of activity elsewhere on the machine during one block does not move it. The
    mean over the window is kept too.

    Paired mode (``paired``: a function running ``block`` steps of the raw loop on its own
    model and data and returning their wall and CPU µs per step): between two blocks of
    the variant, outside the timed blocks, a block of the raw loop runs in the same
    process. The difference between each variant block and the raw block next to it is
    the overhead measured under the same conditions (load from other processes, clock
    frequency, cache state), which a machine shared with other work needs.
    """

    def __init__(
        self,
        warmup: int,
        steps: int,
        sync: Callable[[], None] | None,
        block: int = 100,
        paired: Callable[[int], tuple[float, float]] | None = None,
    ) -> None:
        self.n = 0
        self.marks = [*range(warmup, warmup + steps, max(1, block)), warmup + steps]
        self.next = self.marks[0]
        self.seen = 0  # marks reached
        self.sync = sync
        self.paired = paired
        self.start = (0.0, 0.0)
        self.blocks: list[tuple[float, float]] = []  # (wall, cpu) µs per step, one per block
        self.raw_blocks: list[tuple[float, float]] = []  # the paired raw blocks
        self.total = (0.0, 0.0)

    def tick(self) -> None:
        n = self.n
        if n == self.next:
            if self.sync is not None:
                self.sync()
            now = (time.perf_counter(), time.process_time())
            k = self.seen
            if k:
                size = self.marks[k] - self.marks[k - 1]
                block = ((now[0] - self.start[0]) / size * 1e6, (now[1] - self.start[1]) / size * 1e6)
                self.blocks.append(block)
                self.total = (self.total[0] + block[0] * size, self.total[1] + block[1] * size)
            self.seen = k = k + 1
            if k < len(self.marks):
                self.next = self.marks[k]
                if self.paired is not None:
                    self.raw_blocks.append(self.paired(self.marks[k] - self.marks[k - 1]))
                    now = (time.perf_counter(), time.process_time())
            else:
                self.next = -1
            self.start = now
        self.n = n + 1

    @property
    def done(self) -> bool:
        return self.seen == len(self.marks)

    def summary(self) -> dict[str, float]:
        """Medians over blocks (µs per step) and, when paired, of the block differences."""
        out = {
            "us_per_step": statistics.median(b[0] for b in self.blocks),
            "cpu_us_per_step": statistics.median(b[1] for b in self.blocks),
            "mean_us_per_step": self.total[0] / (self.marks[-1] - self.marks[0]),
        }
        if self.raw_blocks:
            pairs = list(zip(self.blocks, self.raw_blocks, strict=True))
            out["paired_raw_us_per_step"] = statistics.median(r[0] for _, r in pairs)
            out["paired_over_us"] = statistics.median(b[0] - r[0] for b, r in pairs)
            out["paired_cpu_over_us"] = statistics.median(b[1] - r[1] for b, r in pairs)
        return out


def _raw_blocks(
    device: str,
    total: int,
    sync: Callable[[], None] | None,
    work: dict[str, Any] | None = None,
    tick: Callable[[], None] | None = None,
) -> Callable[[int], tuple[float, float]]:
    """A raw loop on its own model and data, run ``n`` steps at a time (paired mode).

    ``tick``: called before each step's forward pass, where the variants' ``training_step``
    ticks the clock (the ``raw_realistic`` variant: this loop, counted on its own). Paired
    blocks pass none (two bytecodes per step for the test).

    ``work`` (the realistic and scaling variants): ``metrics`` (compute the two extra metrics
    of the realistic module), ``val_every`` and ``val_batches`` (iterate a validation
    ``DataLoader`` of that many batches every ``val_every`` steps, a forward pass and the loss
    for each, as the variant's validation does), ``epoch`` (training batches per epoch: the
    training ``DataLoader`` holds that many and is iterated again at each epoch, as a raw
    ``for epoch ...: for x, y in loader:`` loop does; without it one pass over one loader).
    The loaders are iterated as a hand-written loop would iterate them (a new iterator per
    pass, each batch collated by the ``DataLoader``), so the paired overhead is the
    framework's, not the data pipeline's that any loop pays.
    """
    import torch
    from torch.nn import functional as F

    work = work or {}
    metrics = bool(work.get("metrics"))
    val_every = int(work.get("val_every") or 0)
    val_batches = int(work.get("val_batches") or 0)
    dev = torch.device(device)
    net = _net().to(dev)
    opt = torch.optim.SGD(net.parameters(), lr=LR)
    epoch = int(work.get("epoch") or 0)
    val = _loader(max(val_batches, 1))
    if epoch:
        train = _loader(epoch)

        def epochs() -> Iterator[Any]:
            while True:
                yield from train  # a new iterator over the loader at each epoch

        batches = epochs()
    else:
        batches = iter(_loader(total))
    done = [0]

    def run(n: int) -> tuple[float, float]:
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(n):
            x, y = next(batches)
            x, y = x.to(dev), y.to(dev)
            if tick is not None:
                tick()
            pred = net(x)
            loss = F.mse_loss(pred, y)
            if metrics:
                (pred - y).abs().mean().detach()
                loss.detach().sqrt()
            opt.zero_grad()
            loss.backward()
            opt.step()
            done[0] += 1
            if val_every and done[0] % val_every == 0:
                with torch.no_grad():
                    for vx, vy in val:
                        F.mse_loss(net(vx.to(dev)), vy.to(dev))
        if sync is not None:
            sync()
        return (time.perf_counter() - t0) / n * 1e6, (time.process_time() - c0) / n * 1e6

    for _ in range(2):
        run(10)  # warm-up
    return run


def _net() -> Any:
    import torch

    return torch.nn.Sequential(torch.nn.Linear(FEATURES, 32), torch.nn.ReLU(), torch.nn.Linear(32, 1))


def _loader(n_batches: int) -> Any:
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    g = torch.Generator().manual_seed(0)
    x = torch.randn(n_batches * BATCH, FEATURES, generator=g)
    y = torch.randn(n_batches * BATCH, 1, generator=g)
    return DataLoader(TensorDataset(x, y), batch_size=BATCH, shuffle=False)


def _lightcycle_module(clock: _Clock, log: bool = False) -> Any:
    import torch
    from torch.nn import functional as F

    import lightcycle as L

    class Model(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = _net()

        def training_step(self, batch: Any, batch_idx: int) -> Any:
            clock.tick()
            x, y = batch
            loss = F.mse_loss(self.net(x), y)
            if log:
                self.log("loss", loss)
            return loss

        def configure_optimizers(self) -> Any:
            return torch.optim.SGD(self.parameters(), lr=LR)

    return Model()


def _lightcycle_callbacks(n: int) -> list[Any]:
    import lightcycle as L

    def noop(self: Any, *args: Any) -> None:
        return None

    cls = type("PerBatchCallback", (L.Callback,), {name: noop for name in PER_BATCH_HOOKS})
    return [cls() for _ in range(n)]


def _trainer_kwargs(total: int) -> dict[str, Any]:
    return {
        "max_epochs": 1,
        "max_steps": total,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "enable_checkpointing": False,
        "logger": False,
        "num_sanity_val_steps": 0,
    }


def _profiler(kind: str | None, module: Any) -> Any:
    """A SimpleProfiler of ``module`` writing its report to a temporary folder (not to the child's output)."""
    if kind is None:
        return None
    import tempfile

    return module.SimpleProfiler(dirpath=tempfile.mkdtemp(prefix="lc_bench_prof_"), filename="bench")


def _run_lightcycle(
    clock: _Clock,
    total: int,
    device: str,
    *,
    callbacks: int = 0,
    checked: bool = False,
    log: bool = False,
    profiler: str | None = None,
) -> None:
    import lightcycle as L
    import lightcycle.profilers as profilers

    trainer = L.Trainer(
        accelerator=device,
        devices=1,
        callbacks=_lightcycle_callbacks(callbacks),
        checked=checked,
        profiler=_profiler(profiler, profilers),
        **_trainer_kwargs(total),
    )
    trainer.fit(_lightcycle_module(clock, log=log), train_dataloaders=_loader(total))


def _run_driver(clock: _Clock, total: int, device: str) -> None:
    """(d): the custom-loop driver, :class:`lightcycle.custom_loop.LoopDriver`.

    The loop is the raw loop's, with the driver's calls around it (the documented custom
    loop, ``docs/custom-loop.md``): the module has no ``training_step``, so the code
    between ``train_batch_start`` and ``train_batch_end`` is the step, and ``backward`` /
    ``optimizer_step`` fire what Lightning's manual optimization fires. The forward pass
    calls the same ``net`` as the raw loop (the module holds it), so the step is the raw
    loop's to the letter: calling ``model(x)`` instead would add a second ``nn.Module``
    call layer (~100 bytecodes, ~3 µs), which is the user's model design, not the driver.
    """
    import torch
    from torch.nn import functional as F

    import lightcycle as L
    from lightcycle import LoopDriver

    class Model(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = _net()

        def forward(self, x: Any) -> Any:
            return self.net(x)

    dev = torch.device(device)
    model = Model().to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    net = model.net
    lc = LoopDriver(model, device=dev)
    loader = _loader(total)
    with lc.fit(optimizers=[opt]):
        for _epoch in lc.epochs(max_epochs=1):
            for i, batch in enumerate(loader):
                x, y = lc.train_batch_start(batch, i)
                clock.tick()
                opt.zero_grad()
                loss = F.mse_loss(net(x), y)
                lc.backward(loss)
                lc.optimizer_step(opt)
                lc.train_batch_end(loss)


def _run_protocol(clock: _Clock, total: int, device: str) -> None:
    """The floor under (b): Lightning's module protocol for one batch, with nothing around it.

    The calls a Lightning-compatible Trainer cannot leave out, made by hand on the same
    module as ``trainer``: ``transfer_batch_to_device``, then ``optimizer_step`` with a
    :class:`~lightcycle.core.optim.LightningOptimizer` whose ``step`` passes a closure to
    ``SGD.step`` (which runs it under ``torch.enable_grad()``); the closure runs
    ``training_step``, ``optimizer_zero_grad`` and ``backward``. No lifecycle state, no
    callbacks, no ``_current_fx_name``, no metrics, no validation or stopping checks:
    (b) minus this is what the orchestration itself costs.
    """
    import torch

    from lightcycle.core.optim import LightningOptimizer

    dev = torch.device(device)
    model = _lightcycle_module(clock).to(dev)
    model.train()
    opt = model.configure_optimizers()
    lopt = LightningOptimizer(opt)
    for batch_idx, batch in enumerate(_loader(total)):
        batch = model.transfer_batch_to_device(batch, dev, 0)

        def closure(batch: Any = batch, batch_idx: int = batch_idx) -> Any:
            loss = model.training_step(batch, batch_idx)
            model.optimizer_zero_grad(0, batch_idx, opt)
            model.backward(loss)
            return loss

        model.optimizer_step(0, batch_idx, lopt, closure)


def _configured_module(fw: Any, clock: _Clock, *, metrics: int = 0, realistic: bool = False) -> Any:
    """The benchmark module for ``fw`` (lightcycle or pytorch_lightning), with logging.

    ``realistic``: logs the loss and two more metrics (MAE, RMSE) with ``prog_bar=True``, and
    a validation loss. Otherwise ``metrics`` calls ``self.log`` with the loss per step (the
    scaling table), and ``validation_step`` computes the loss without logging it.
    """
    import torch
    from torch.nn import functional as F

    names = [f"m{i}" for i in range(metrics)]

    class Model(fw.LightningModule):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.net = _net()

        def training_step(self, batch: Any, batch_idx: int) -> Any:
            clock.tick()
            x, y = batch
            pred = self.net(x)
            loss = F.mse_loss(pred, y)
            if realistic:
                self.log("loss", loss, prog_bar=True)
                self.log("mae", (pred - y).abs().mean(), prog_bar=True)
                self.log("rmse", loss.detach().sqrt(), prog_bar=True)
            for name in names:
                self.log(name, loss)
            return loss

        def validation_step(self, batch: Any, batch_idx: int) -> Any:
            x, y = batch
            loss = F.mse_loss(self.net(x), y)
            if realistic:
                self.log("val_loss", loss)
            return loss

        def configure_optimizers(self) -> Any:
            return torch.optim.SGD(self.parameters(), lr=LR)

    return Model()


def _framework(name: str) -> Any:
    if name == "lightning":
        import pytorch_lightning

        return pytorch_lightning
    import lightcycle

    return lightcycle


def _run_realistic(clock: _Clock, total: int, device: str, fw_name: str = "lightcycle") -> None:
    """(h)/(i): what ``Trainer()`` gives by default, plus a CSV logger and three bar metrics.

    Epochs of :data:`EPOCH` batches, each followed by :data:`VAL_BATCHES` validation batches,
    the default sanity check (2 batches), a ``ModelCheckpoint`` (the default one, saving the
    last epoch's checkpoint in a temporary folder), the model summary, the progress bar
    (tqdm, redrawn every batch as by default; its output goes to the parent's pipe), and a
    ``CSVLogger`` (flushed every 100 steps, logging every 50).
    """
    import tempfile

    fw = _framework(fw_name)
    csv_logger: Any
    if fw_name == "lightning":
        from pytorch_lightning.loggers import CSVLogger as csv_logger
    else:
        from lightcycle.loggers import CSVLogger as csv_logger
    with tempfile.TemporaryDirectory() as root:
        trainer = fw.Trainer(
            accelerator="gpu" if device == "cuda" and fw_name == "lightning" else device,
            devices=1,
            max_steps=total,
            max_epochs=-(-total // EPOCH) + 1,
            default_root_dir=root,
            logger=csv_logger(root),
        )
        trainer.fit(
            _configured_module(fw, clock, realistic=True),
            train_dataloaders=_loader(EPOCH),
            val_dataloaders=_loader(VAL_BATCHES),
        )


def _run_realistic_ignite(clock: _Clock, total: int, device: str) -> None:
    """(j): ignite's nearest equivalent of the realistic defaults.

    ``ProgressBar`` showing three ``RunningAverage`` metrics, an evaluator run on the
    validation batches after every epoch, a ``Checkpoint`` of the model and optimizer after
    every epoch. ignite has no CSV logger and no model summary (left out).
    """
    import tempfile

    import torch
    from ignite.engine import Engine, Events
    from ignite.handlers import Checkpoint, DiskSaver, ProgressBar
    from ignite.metrics import RunningAverage
    from torch.nn import functional as F

    dev = torch.device(device)
    net = _net().to(dev)
    opt = torch.optim.SGD(net.parameters(), lr=LR)

    def update(engine: Any, batch: Any) -> dict[str, Any]:
        net.train()
        x, y = batch[0].to(dev), batch[1].to(dev)
        clock.tick()
        pred = net(x)
        loss = F.mse_loss(pred, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return {"loss": loss.detach(), "mae": (pred - y).abs().mean().detach(), "rmse": loss.detach().sqrt()}

    def evaluate(engine: Any, batch: Any) -> Any:
        net.eval()
        with torch.no_grad():
            return F.mse_loss(net(batch[0].to(dev)), batch[1].to(dev))

    trainer, evaluator = Engine(update), Engine(evaluate)
    names = ("loss", "mae", "rmse")
    for name in names:
        RunningAverage(output_transform=lambda out, key=name: out[key]).attach(trainer, name)
    ProgressBar().attach(trainer, metric_names=list(names))
    val = _loader(VAL_BATCHES)
    trainer.add_event_handler(Events.EPOCH_COMPLETED, lambda engine: evaluator.run(val))
    with tempfile.TemporaryDirectory() as root:
        checkpoint = Checkpoint({"model": net, "optimizer": opt}, DiskSaver(root, require_empty=False), n_saved=1)
        trainer.add_event_handler(Events.EPOCH_COMPLETED, checkpoint)
        trainer.run(_loader(EPOCH), max_epochs=-(-total // EPOCH))


def _run_scaled(
    clock: _Clock,
    total: int,
    device: str,
    fw_name: str = "lightcycle",
    callbacks: int = 0,
    metrics: int = 0,
    val_every: int | None = None,
) -> None:
    """A cell of the scaling table: the bare Trainer of (b)/(e) with ``callbacks`` per-batch
    callbacks, ``metrics`` logged scalars per step, and validation (2 batches) every
    ``val_every`` training steps (0: once per epoch, which here is after the timed steps, so
    what is left is the per-batch cost of having validation at all; ``None``: no validation)."""
    fw = _framework(fw_name)
    kwargs = _trainer_kwargs(total)
    if val_every:
        kwargs["val_check_interval"] = val_every
    trainer = fw.Trainer(
        accelerator="gpu" if device == "cuda" and fw_name == "lightning" else device,
        devices=1,
        callbacks=_callbacks(fw, callbacks),
        **kwargs,
    )
    val = _loader(2) if val_every is not None else None
    trainer.fit(_configured_module(fw, clock, metrics=metrics), train_dataloaders=_loader(total), val_dataloaders=val)


def _callbacks(fw: Any, n: int) -> list[Any]:
    def noop(self: Any, *args: Any) -> None:
        return None

    cls = type("PerBatchCallback", (fw.Callback,), {name: noop for name in PER_BATCH_HOOKS})
    return [cls() for _ in range(n)]


def _run_raw(clock: _Clock, total: int, device: str) -> None:
    import torch
    from torch.nn import functional as F

    dev = torch.device(device)
    net = _net().to(dev)
    opt = torch.optim.SGD(net.parameters(), lr=LR)
    net.train()
    for x, y in _loader(total):
        x, y = x.to(dev), y.to(dev)
        clock.tick()
        loss = F.mse_loss(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()


def _run_raw_realistic(clock: _Clock, total: int, device: str) -> None:
    """The realistic variants' paired raw loop (:data:`REALISTIC_WORK`), run as a variant of its own.

    What (h)-(j) are compared with in paired mode, counted alone: ``instructions.py --bytecodes
    --variants raw_realistic realistic`` gives the realistic overhead over the same user work.
    """
    run = _raw_blocks(device, total + 20, None, REALISTIC_WORK, tick=clock.tick)  # (its warm-up: 20 steps)
    run(total - 20)


def _run_lightning(clock: _Clock, total: int, device: str, profiler: str | None = None) -> None:
    import pytorch_lightning as pl
    import pytorch_lightning.profilers as profilers
    import torch
    from torch.nn import functional as F

    class Model(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = _net()

        def training_step(self, batch: Any, batch_idx: int) -> Any:
            clock.tick()
            x, y = batch
            return F.mse_loss(self.net(x), y)

        def configure_optimizers(self) -> Any:
            return torch.optim.SGD(self.parameters(), lr=LR)

    trainer = pl.Trainer(
        accelerator="gpu" if device == "cuda" else "cpu",
        devices=1,
        profiler=_profiler(profiler, profilers),
        **_trainer_kwargs(total),
    )
    trainer.fit(Model(), train_dataloaders=_loader(total))


def _run_ignite(clock: _Clock, total: int, device: str) -> None:
    import torch
    from ignite.engine import Engine
    from torch.nn import functional as F

    dev = torch.device(device)
    net = _net().to(dev)
    opt = torch.optim.SGD(net.parameters(), lr=LR)

    def update(engine: Any, batch: Any) -> float:
        net.train()
        x, y = batch[0].to(dev), batch[1].to(dev)
        clock.tick()
        loss = F.mse_loss(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss  # type: ignore[no-any-return]  # no .item(): no sync, as the others

    Engine(update).run(_loader(total), max_epochs=1)


RUNNERS: dict[str, Callable[[_Clock, int, str], None]] = {
    "raw": _run_raw,
    "trainer": _run_lightcycle,
    "callbacks": lambda c, n, d: _run_lightcycle(c, n, d, callbacks=5),
    "driver": _run_driver,
    "log": lambda c, n, d: _run_lightcycle(c, n, d, log=True),
    "profiler": lambda c, n, d: _run_lightcycle(c, n, d, profiler="simple"),
    "protocol": _run_protocol,
    "lightning": _run_lightning,
    "lightning_profiler": lambda c, n, d: _run_lightning(c, n, d, profiler="simple"),
    "ignite": _run_ignite,
    "checked": lambda c, n, d: _run_lightcycle(c, n, d, checked=True),
    "log10": lambda c, n, d: _run_scaled(c, n, d, metrics=10),
    "raw_realistic": _run_raw_realistic,
    "realistic": _run_realistic,
    "realistic_lightning": lambda c, n, d: _run_realistic(c, n, d, "lightning"),
    "realistic_ignite": _run_realistic_ignite,
}
REALISTIC_WORK = {"metrics": True, "val_every": EPOCH, "val_batches": VAL_BATCHES, "epoch": EPOCH}


def child(
    variant: str,
    steps: int,
    warmup: int,
    device: str,
    block: int = 100,
    paired: bool = True,
    config: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run one variant in this process and return its measurement.

    ``config`` (the scaling table): ``framework`` (``"lightcycle"`` or ``"lightning"``),
    ``callbacks``, ``metrics``, ``val_every``; the variant is then ignored.
    """
    import warnings

    import torch

    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)
    torch.manual_seed(0)
    sync = torch.cuda.synchronize if device == "cuda" else None
    total = warmup + steps + 1
    work: dict[str, Any] | None = REALISTIC_WORK if variant in REALISTIC else None
    if config is not None:
        work = {"val_every": config.get("val_every") or 0, "val_batches": 2}
    raw = _raw_blocks(device, steps + 2 * block + 40, sync, work) if paired else None
    clock = _Clock(warmup, steps, sync, block, raw)
    if config is not None:
        _run_scaled(
            clock,
            total,
            device,
            config.get("framework", "lightcycle"),
            config.get("callbacks", 0),
            config.get("metrics", 0),
            config.get("val_every"),
        )
    else:
        RUNNERS[variant](clock, total, device)
    if not clock.done:
        raise RuntimeError(f"{variant}: only {clock.n} of {total} training steps ran")
    out: dict[str, Any] = {"variant": variant, **clock.summary()}
    out["maxrss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if device == "cuda":
        out["cuda_peak_mib"] = torch.cuda.max_memory_allocated() / 2**20
    return out


# --------------------------------------------------------------------------- parent side


def available(variant: str) -> bool:
    module = {
        "lightning": "pytorch_lightning",
        "lightning_profiler": "pytorch_lightning",
        "realistic_lightning": "pytorch_lightning",
        "ignite": "ignite",
        "realistic_ignite": "ignite",
    }.get(variant)
    return module is None or importlib.util.find_spec(module) is not None


def machine() -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    parts = [
        f"{cpu}, {os.cpu_count()} logical CPUs",
        f"Python {platform.python_version()}",
        f"torch {torch.__version__}",
    ]
    for name in ("pytorch_lightning", "ignite"):
        if importlib.util.find_spec(name) is not None:
            mod = __import__(name)
            parts.append(f"{name} {mod.__version__}")
    if torch.cuda.is_available():
        parts.append(torch.cuda.get_device_name(0))
    return "; ".join(parts)


def measure(key: str, args: argparse.Namespace, config: dict[str, Any] | None = None) -> dict[str, Any]:
    variant, executor = split_key(key)
    cmd = [
        sys.executable,
        os.path.abspath(__file__),
        "--child",
        variant,
        "--steps",
        str(args.steps),
        "--warmup",
        str(args.warmup),
        "--device",
        args.device,
        "--block",
        str(args.block),
        *(["--no-paired"] if args.no_paired else []),
        *(["--config", json.dumps(config)] if config is not None else []),
    ]
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env.pop("LIGHTCYCLE_CHECKED", None)
    env.pop("LIGHTCYCLE_DEBUG", None)
    env.pop("LIGHTCYCLE_EXECUTOR", None)
    if executor is not None:
        env["LIGHTCYCLE_EXECUTOR"] = executor
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{key} failed:\n{proc.stdout}\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def report(results: dict[str, list[dict[str, Any]]], args: argparse.Namespace) -> str:
    """The table: medians over the runs of each variant (each run: medians over its blocks)."""

    def med(v: str, key: str = "us_per_step") -> float:
        values = [r[key] for r in results[v] if key in r]
        return statistics.median(values) if values else math.nan

    raw = med("raw") if "raw" in results else math.nan
    pl_over = med("lightning") - raw if "lightning" in results else math.nan
    cuda = args.device == "cuda"
    paired = not args.no_paired
    lines = [
        f"machine: {machine()}",
        f"device {args.device}; {args.steps} timed steps after {args.warmup} warm-up steps, in blocks of"
        f" {args.block}; median of {args.repeats} fresh-process runs per variant, interleaved; 1 torch thread",
        "us/step: median over the runs of each run's median block. over raw: minus raw's. paired: median over the"
        " runs of each run's median difference between its blocks and raw-loop blocks run between them in the"
        " same process (robust to load from other processes)."
        if paired
        else "",
        "",
        f"{'variant':<60}{'us/step':>9}{'over raw':>10}{'x raw':>7}{'/PL over':>9}"
        + (f"{'paired':>8}{'cpu':>7}" if paired else "")
        + f"{'target':>8}{'RSS MiB':>9}"
        + (f"{'CUDA MiB':>10}" if cuda else ""),
    ]

    def row(v: str) -> str:
        over = med(v) - raw
        base, executor = split_key(v)
        vs_pl = f"{over / pl_over:9.3f}" if base not in ("raw", "lightning") and pl_over > 0 else f"{'':>9}"
        target = f"{'<=' + format(TARGETS_US[base], 'g'):>8}" if base in TARGETS_US else f"{'':>8}"
        label = LABELS[base] + (f" [{executor}]" if executor else "")
        line = f"{label:<60}{med(v):9.1f}{over:10.1f}{med(v) / raw:7.3f}{vs_pl}"
        if paired:
            line += f"{med(v, 'paired_over_us'):8.1f}{med(v, 'paired_cpu_over_us'):7.1f}"
        line += f"{target}{med(v, 'maxrss_mib'):9.0f}"
        return line + (f"{med(v, 'cuda_peak_mib'):10.2f}" if cuda else "")

    ordered = sorted(results, key=lambda k: ALL_VARIANTS.index(split_key(k)[0]))
    checked = [k for k in ordered if split_key(k)[0] == "checked"]
    lines += [row(v) for v in ordered if v not in checked]
    lines += _derived_lines(results, med, paired)
    if checked:
        lines += ["", "checked mode (every event checked against the transitions machine's answers):"]
        lines += [row(v) for v in checked]
    if paired:
        # the noise a single median hides: this machine moves a figure by several us between runs
        spread = []
        for v in ordered:
            values = [r["paired_over_us"] for r in results.get(v, []) if "paired_over_us" in r]
            if values and v != "raw":
                spread.append(f"{v} {min(values):.1f}..{max(values):.1f}")
        if spread:
            lines += ["", "paired, lowest..highest run: " + "; ".join(spread)]
    for key, what in (("us_per_step", "over raw"), ("paired_over_us", "paired")):
        if key == "paired_over_us" and not paired:
            continue
        verdict = []
        for v in ordered:
            limit = TARGETS_US.get(split_key(v)[0])
            if limit is not None:
                over = med(v, key) - (raw if key == "us_per_step" else 0.0)
                verdict.append(f"{v} {over:+.1f} us (<= {limit:g}: {'met' if over <= limit else 'MISSED'})")
        if verdict:
            lines.append(f"targets, {what}: " + "; ".join(verdict))
    for on, off in (("profiler", "trainer"), ("lightning_profiler", "lightning")):
        if on in results and off in results:
            lines.append(f"{on}: {med(on) - med(off):+.1f} us/step over {off} (the SimpleProfiler's cost)")
    for k in checked:
        unchecked = k.replace("checked", "trainer", 1)
        if unchecked in results:
            key = "paired_over_us" if paired else "us_per_step"
            cost = med(k, key) - med(unchecked, key)
            lines.append(f"checked mode over unchecked ({k} - {unchecked}): {cost:+.1f} us/step (target <= 3)")
    trainer = next((k for k in ordered if split_key(k)[0] == "trainer"), None)
    for other in ("lightning", "ignite"):
        if other in results and trainer is not None:
            key = "paired_over_us" if paired else "us_per_step"
            base = 0.0 if paired else raw
            o, t = med(other, key) - base, med(trainer, key) - base
            lines.append(
                f"{other} overhead {o:.1f} us/step, lightcycle Trainer {t:.1f} us/step"
                f" ({'paired' if paired else 'over raw'}): {o / t:.1f}x"
            )
    return "\n".join(line for line in lines if line is not None)


def _derived_lines(results: dict[str, list[dict[str, Any]]], med: Callable[..., float], paired: bool) -> list[str]:
    """The targets that compare two variants: one logged metric; realistic against Lightning's."""
    key = "paired_over_us" if paired else "us_per_step"
    base = 0.0 if paired else med("raw")
    out = []
    if "log10" in results and "trainer" in results:
        per = (med("log10", key) - med("trainer", key)) / 10
        out.append(f"one self.log'd scalar: (log10 - trainer) / 10 = {per:.2f} us/step (<= 3: {_verdict(per <= 3)})")
    if "realistic" in results and "realistic_lightning" in results:
        ours, theirs = med("realistic", key) - base, med("realistic_lightning", key) - base
        ratio = theirs / ours if ours > 0 else math.inf
        out.append(
            f"realistic defaults: lightcycle {ours:.1f} us/step, Lightning {theirs:.1f}: 1/{ratio:.1f} of Lightning's"
            f" (<= 1/40: {_verdict(ratio >= 40)})"
        )
    if "realistic" in results and "realistic_ignite" in results:
        out.append(f"realistic: ignite's nearest equivalent {med('realistic_ignite', key) - base:.1f} us/step")
    return out


def _verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


SCALING: tuple[tuple[str, dict[str, Any]], ...] = (
    *((f"callbacks {n}", {"callbacks": n}) for n in (0, 1, 5, 20, 50)),
    *((f"metrics {n}", {"metrics": n}) for n in (1, 10, 50)),
    ("validation every epoch", {"val_every": 0}),
    *((f"validation every {n} steps", {"val_every": n}) for n in (100, 20, 5)),
)
"""The scaling table's rows (``metrics 0`` is ``callbacks 0``: the same bare Trainer; the
validation rows run 2 validation batches each time, the paired raw loop too)."""


def scaling(args: argparse.Namespace) -> str:
    """lightcycle against Lightning, row by row, paired µs per step over raw (wall and process
    CPU time); then import and first-batch times."""
    frameworks = [f for f in ("lightcycle", "lightning") if f == "lightcycle" or available("lightning")]
    results: dict[tuple[str, str, str], list[float]] = {}
    keys = (("paired_over_us", "wall"), ("paired_cpu_over_us", "process CPU time"))
    for r in range(args.repeats):
        for label, config in SCALING:
            for fw in frameworks if r % 2 == 0 else frameworks[::-1]:
                out = measure("trainer", args, {**config, "framework": fw})
                for key, _ in keys:
                    results.setdefault((label, fw, key), []).append(out[key])
                done = f"repeat {r + 1}/{args.repeats} {label:<28} {fw:<10} {out['paired_cpu_over_us']:8.1f}"
                print(done, file=sys.stderr, flush=True)
    lines = [f"machine: {machine()}"]
    for key, what in keys:
        lines += _scaling_table(results, frameworks, key, what, args)
    lines += ["", *startup_lines(args.repeats, frameworks)]
    return "\n".join(lines)


def _scaling_table(
    results: dict[tuple[str, str, str], list[float]],
    frameworks: list[str],
    key: str,
    what: str,
    args: argparse.Namespace,
) -> list[str]:
    lines = [
        "",
        f"scaling ({what}): paired us/step over a raw loop doing the same validation work; median of"
        f" {args.repeats} runs (lowest..highest); {args.steps} timed steps after {args.warmup}",
        "",
        f"{'configuration':<28}{'lightcycle':>22}{'Lightning':>24}{'ratio':>8}",
    ]
    for label, _ in SCALING:
        cells = []
        for fw in frameworks:
            v = results[(label, fw, key)]
            cells.append((statistics.median(v), min(v), max(v)))
        widths = (22, 24)[: len(cells)]
        text = "".join(f"{m:10.1f} ({lo:.1f}..{hi:.1f})".rjust(w) for (m, lo, hi), w in zip(cells, widths, strict=True))
        ratio = f"{cells[1][0] / cells[0][0]:8.1f}" if len(cells) > 1 and cells[0][0] > 0 else ""
        lines.append(f"{label:<28}{text}{ratio}")
    return lines


def import_time(module: str) -> float:
    """Seconds that importing ``module`` and reading its ``Trainer`` take in a fresh interpreter.

    The sum of ``-X importtime``'s top-level cumulative figures: lightcycle imports lazily
    (``import lightcycle`` alone loads neither torch nor the Trainer), so the ``Trainer``
    attribute is read too, and every import it triggers is counted.
    """
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {module}; {module}.Trainer"],
        capture_output=True,
        text=True,
        check=True,
    )
    total = 0
    for line in proc.stderr.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[0].startswith("import time:") and parts[1].strip().isdigit():
            name = parts[2]
            if name.strip() and not name[1:].startswith(" "):  # a top-level import (no nesting indent)
                total += int(parts[1])
    if not total:
        raise RuntimeError(f"no importtime lines for {module}")
    return total / 1e6


def first_batch(framework: str) -> dict[str, float]:
    """In this process: seconds to import the framework, then from ``Trainer(...)`` to the first
    ``training_step`` (the bare Trainer of (b), on the CPU)."""
    t0 = time.perf_counter()
    fw = _framework(framework)
    _ = fw.Trainer, fw.LightningModule, fw.Callback  # (lightcycle resolves these lazily)
    t1 = time.perf_counter()
    seen: list[float] = []

    class FirstTick:
        def tick(self) -> None:
            if not seen:
                seen.append(time.perf_counter())

    import warnings

    warnings.filterwarnings("ignore")
    trainer = fw.Trainer(accelerator="cpu", devices=1, **_trainer_kwargs(2))
    trainer.fit(_configured_module(fw, FirstTick()), train_dataloaders=_loader(4))  # type: ignore[arg-type]
    return {"import_s": t1 - t0, "first_batch_s": seen[0] - t1}


def startup_lines(repeats: int, frameworks: list[str]) -> list[str]:
    """Import time (``-X importtime``, torch alone for reference) and time to the first batch."""
    rows = {}
    for module in ("lightcycle", "pytorch_lightning") if "lightning" in frameworks else ("lightcycle",):
        rows[module] = [import_time(module) for _ in range(repeats)]
    lines = ["import time, torch included (python -X importtime, `import m; m.Trainer`; median (lowest..highest)):"]
    for module, values in rows.items():
        lines.append(f"  {module:<20}{statistics.median(values):7.2f} s ({min(values):.2f}..{max(values):.2f})")
    lines.append("time from Trainer(...) to the first training_step (fresh process, after the imports):")
    for fw in frameworks:
        values = []
        for _ in range(repeats):
            proc = subprocess.run(
                [sys.executable, os.path.abspath(__file__), "--first-batch", fw],
                capture_output=True,
                text=True,
                check=True,
                env=dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1"),
            )
            values.append(json.loads(proc.stdout.strip().splitlines()[-1])["first_batch_s"])
        lines.append(f"  {fw:<20}{statistics.median(values):7.3f} s ({min(values):.3f}..{max(values):.3f})")
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=2000, help="timed steps per run")
    parser.add_argument("--warmup", type=int, default=200, help="untimed steps before the timed ones")
    parser.add_argument("--repeats", type=int, default=5, help="fresh-process runs per variant (at least 5)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument(
        "--variants", nargs="+", choices=ALL_VARIANTS, default=None, help="default: all that are installed"
    )
    parser.add_argument("--block", type=int, default=100, help="steps per timing block")
    parser.add_argument(
        "--no-paired", action="store_true", help="no raw-loop blocks between the variant's blocks (see _Clock)"
    )
    parser.add_argument(
        "--profiler",
        choices=("simple",),
        help="also run the Trainers with this profiler (variants profiler, lightning_profiler)",
    )
    parser.add_argument(
        "--executors", nargs="+", choices=EXECUTORS, default=None, help="run each lightcycle variant with each executor"
    )
    parser.add_argument("--json", help="also write the raw measurements to this file")
    parser.add_argument(
        "--scaling", action="store_true", help="the scaling table (callbacks, metrics, validation), then start-up"
    )
    parser.add_argument("--child", choices=ALL_VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--config", help=argparse.SUPPRESS)
    parser.add_argument("--first-batch", choices=("lightcycle", "lightning"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.first_batch:
        print(json.dumps(first_batch(args.first_batch)))
        return
    if args.child:
        config = json.loads(args.config) if args.config else None
        paired = not args.no_paired
        print(json.dumps(child(args.child, args.steps, args.warmup, args.device, args.block, paired, config)))
        return
    if args.scaling:
        print(scaling(args))
        return
    chosen = args.variants or [v for v in ALL_VARIANTS if v not in PROFILED and v not in REALISTIC]
    if args.profiler:
        chosen = [*chosen, *(v for v in PROFILED if v not in chosen)]
    variants = [v for v in chosen if available(v)]
    if "raw" not in variants:
        variants.insert(0, "raw")
    keys = keys_for(variants, args.executors)
    results: dict[str, list[dict[str, Any]]] = {k: [] for k in keys}
    for r in range(args.repeats):
        order = keys[r % len(keys) :] + keys[: r % len(keys)]  # rotate: no fixed position bias
        for v in order:
            results[v].append(measure(v, args))
            print(
                f"repeat {r + 1}/{args.repeats} {v:<22} {results[v][-1]['us_per_step']:8.1f} us/step",
                file=sys.stderr,
                flush=True,
            )
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "machine": machine(), "results": results}, f, indent=1)
    print(report(results, args))


if __name__ == "__main__":
    main()
