"""The variants of ``overhead.py``: their names, how each one trains, and the child-side measurement.

The catalogue of variant names (and ``variant@executor`` keys), one runner per variant
(:data:`RUNNERS`: a raw loop, lightcycle's Trainer in its configurations, the custom-loop
driver, Lightning's and ignite's equivalents, the realistic defaults, the scaling cells), and
:func:`child`, which runs one of them in this process under a :class:`_Clock` and returns its
measurement (``overhead.py --child``); :func:`first_batch` measures the time to the first
training step (``overhead.py --first-batch``). The frameworks are imported inside the
runners, so importing this module is cheap.
"""

from __future__ import annotations

import resource
import time
from collections.abc import Callable
from typing import Any

from _overhead_workload import EPOCH, LR, VAL_BATCHES, _Clock, _loader, _net, _raw_blocks

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
    "realistic_async",
    "realistic_lightning",
    "realistic_ignite",
    "checked",
)
PROFILED = ("profiler", "lightning_profiler")
"""Variants run only when asked for (``--profiler simple`` or ``--variants``)."""
REALISTIC = ("raw_realistic", "realistic", "realistic_async", "realistic_lightning", "realistic_ignite")
"""Variants run only when asked for (``--variants``)."""
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


def _run_realistic(
    clock: _Clock, total: int, device: str, fw_name: str = "lightcycle", async_checkpoints: bool = False
) -> None:
    """(h)/(i): what ``Trainer()`` gives by default, plus a CSV logger and three bar metrics.

    Epochs of :data:`EPOCH` batches, each followed by :data:`VAL_BATCHES` validation batches,
    the default sanity check (2 batches), a ``ModelCheckpoint`` (the default one, saving the
    last epoch's checkpoint in a temporary folder), the model summary, the progress bar
    (tqdm, redrawn every batch as by default; its output goes to the parent's pipe), and a
    ``CSVLogger`` (flushed every 100 steps, logging every 50). ``async_checkpoints`` (the
    ``realistic_async`` variant): the same with ``plugins=[AsyncCheckpointIO()]``, so that the
    per-epoch checkpoint is pickled on the training thread and written in the background.
    """
    import tempfile

    fw = _framework(fw_name)
    csv_logger: Any
    if fw_name == "lightning":
        from pytorch_lightning.loggers import CSVLogger as csv_logger
    else:
        from lightcycle.loggers import CSVLogger as csv_logger
    plugins: list[Any] | None = None
    if async_checkpoints:
        from lightcycle.plugins import AsyncCheckpointIO

        plugins = [AsyncCheckpointIO()]
    with tempfile.TemporaryDirectory() as root:
        trainer = fw.Trainer(
            accelerator="gpu" if device == "cuda" and fw_name == "lightning" else device,
            devices=1,
            max_steps=total,
            max_epochs=-(-total // EPOCH) + 1,
            default_root_dir=root,
            logger=csv_logger(root),
            plugins=plugins,
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
        loss.backward()  # type: ignore[no-untyped-call]
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
        loss.backward()  # type: ignore[no-untyped-call]
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

    def update(engine: Any, batch: Any) -> Any:
        net.train()
        x, y = batch[0].to(dev), batch[1].to(dev)
        clock.tick()
        loss = F.mse_loss(net(x), y)
        opt.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]
        opt.step()
        return loss  # no .item(): no sync, as the others

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
    "realistic_async": lambda c, n, d: _run_realistic(c, n, d, async_checkpoints=True),
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
