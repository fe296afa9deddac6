"""The workload every ``overhead.py`` variant trains, and how a run of it is timed.

The model (``Linear(32, 32) - ReLU - Linear(32, 1)``), its data (``DataLoader`` batches of
:data:`BATCH` over an in-memory ``TensorDataset``), the step clock that every variant's
``training_step`` ticks (:class:`_Clock`), and the raw PyTorch loop run in blocks between the
variant's timed blocks (paired mode, :func:`_raw_blocks`). torch is imported inside the
functions: importing this module is cheap.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterator
from typing import Any

BATCH = 32
FEATURES = 32
LR = 0.01
EPOCH = 100  # training batches per epoch in the realistic variants
VAL_BATCHES = 10  # validation batches after each of their epochs


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
            loss.backward()  # type: ignore[no-untyped-call]  # (torch leaves Tensor.backward unannotated)
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
