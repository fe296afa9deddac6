"""The per-step path forces no host-device synchronisation (issue 7).

* CPU (always runs): during the training batches of a fit in which ``training_step`` logs
  tensors with ``self.log`` / ``self.log_dict`` (step and epoch values, every reduction,
  progress-bar keys), no tensor is turned into a Python value or copied to the host:
  ``item``, ``tolist``, ``float()``, ``int()``, ``bool()``, ``__index__``, ``cpu``,
  ``numpy`` and formatting are counted and must not be called. On a GPU each of these
  would wait for the device.
* CUDA (skipped without a CUDA device): the same kind of run on the GPU under
  ``torch.cuda.set_sync_debug_mode("error")``, which raises on any synchronising CUDA
  call, for the Trainer and for a custom loop (``LoopDriver``).

In both, the check covers every training batch after the first two (warm-up: CUDA
libraries initialise on first use) up to ``on_train_epoch_end``: the transfer hooks,
``on_train_batch_start``, the optimizer step with its closure, ``on_train_batch_end``,
the metric store, the validation and scheduler checks. Progress bar and logger are off:
displaying or sending a value needs it on the host, in Lightning as here.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Iterator
from typing import Any

import pytest
import torch
from torch.nn import functional as F

import lightcycle as L
from lightcycle import LoopDriver
from tests import kit

_HOST_READS = (
    "item",
    "tolist",
    "__float__",
    "__int__",
    "__bool__",
    "__index__",
    "cpu",
    "numpy",
    "__format__",
    "__repr__",
)
_WARMUP = 2
_BATCHES = 8


class _Window(L.Callback):
    """Opens the checked window at batch ``_WARMUP``'s start, closes it at epoch end."""

    def __init__(self, on: Any, off: Any) -> None:
        self._on, self._off = on, off

    def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int) -> None:
        if batch_idx == _WARMUP:
            self._on()

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        self._off()


class _LoggingModel(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 1))

    def training_step(self, batch: Any, batch_idx: int) -> Any:
        x, y = batch
        out = self.net(x)
        loss = F.mse_loss(out, y)
        self.log("loss", loss, prog_bar=True)  # step value, epoch mean weighted by the batch size
        self.log("loss_both", loss, on_step=True, on_epoch=True)
        self.log_dict({"out_max": out.max(), "out_min": out.min()}, reduce_fx="max")
        self.log("out_sum", out.sum(), reduce_fx="sum", on_step=False, on_epoch=True)
        self.log("out_min_epoch", out.min(), reduce_fx=torch.min)
        self.log("py_number", 1.5)  # a Python number becomes a (host) tensor: nothing to wait for
        return {"loss": loss, "out": out.detach()}

    def configure_optimizers(self) -> Any:
        return torch.optim.SGD(self.parameters(), lr=0.01)


def _batches(device: torch.device, n: int = _BATCHES) -> list[list[torch.Tensor]]:
    g = torch.Generator().manual_seed(0)
    return [[torch.randn(4, 8, generator=g).to(device), torch.randn(4, 1, generator=g).to(device)] for _ in range(n)]


class _Loader:
    """An in-memory loader of ready batches (already on the device: no transfer needed)."""

    def __init__(self, batches: list[Any]) -> None:
        self.batches = batches

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self) -> Iterator[Any]:
        return iter(self.batches)


def _trainer(callbacks: list[L.Callback], device: str) -> L.Trainer:
    return L.Trainer(
        **kit.quiet(accelerator=device, devices=1, max_epochs=1, callbacks=callbacks, num_sanity_val_steps=0)
    )


# --------------------------------------------------------------------------- CPU: no host reads


class _HostReadCounter:
    """Counts host reads of tensors (the calls that synchronise on a GPU) while switched on."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.active = False
        self.calls: list[str] = []
        for name in _HOST_READS:
            original = getattr(torch.Tensor, name)
            monkeypatch.setattr(torch.Tensor, name, self._counting(name, original))

    def _counting(self, name: str, original: Any) -> Any:
        counter = self

        def counted(tensor: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
            # the one read allowed: LightningModule.log's steady path keeps a *CPU* step value as
            # its number (no device to wait for; its site key holds is_cpu, see test_log_steady_path)
            caller = sys._getframe(1).f_code
            cpu_step_value = (
                name == "item"
                and tensor.device.type == "cpu"
                and caller.co_name == "log"
                and caller.co_filename.endswith("module.py")
            )
            if counter.active and not cpu_step_value:
                counter.calls.append(f"Tensor.{name} called from:\n" + "".join(traceback.format_stack(limit=8)[:-1]))
            return original(tensor, *args, **kwargs)

        return counted

    def on(self) -> None:
        self.active = True

    def off(self) -> None:
        self.active = False


def test_self_log_of_tensors_reads_nothing_back_per_step(monkeypatch: pytest.MonkeyPatch) -> None:
    counter = _HostReadCounter(monkeypatch)
    model = _LoggingModel()
    trainer = _trainer([_Window(counter.on, counter.off)], "cpu")
    trainer.fit(model, train_dataloaders=_Loader(_batches(torch.device("cpu"))))
    assert trainer.global_step == _BATCHES
    assert not counter.active, "the window was closed at on_train_epoch_end"
    assert counter.calls == [], f"{len(counter.calls)} host reads in the per-step path; first:\n{counter.calls[0]}"
    # the values are there, as tensors, and right
    metrics = trainer.callback_metrics
    assert {"loss", "loss_both", "loss_both_epoch", "out_max", "out_min", "out_sum", "py_number"} <= set(metrics)
    assert all(isinstance(v, torch.Tensor) for v in metrics.values())
    assert float(metrics["py_number"]) == 1.5


def test_the_counter_sees_a_host_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """The check above is not vacuous: a training_step that reads its loss is caught."""

    class Reading(_LoggingModel):
        def training_step(self, batch: Any, batch_idx: int) -> Any:
            loss = F.mse_loss(self.net(batch[0]), batch[1])
            if loss.item() > 1e9:  # a host read per step
                raise AssertionError("unreachable")
            return loss

    counter = _HostReadCounter(monkeypatch)
    trainer = _trainer([_Window(counter.on, counter.off)], "cpu")
    trainer.fit(Reading(), train_dataloaders=_Loader(_batches(torch.device("cpu"))))
    assert len(counter.calls) == _BATCHES - _WARMUP
    assert "Tensor.item" in counter.calls[0]


# --------------------------------------------------------------------------- CUDA: sync debug mode

_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


class _SyncErrors:
    """``torch.cuda.set_sync_debug_mode("error")`` while switched on."""

    def on(self) -> None:
        torch.cuda.set_sync_debug_mode("error")

    def off(self) -> None:
        torch.cuda.set_sync_debug_mode("default")


@_cuda
def test_steps_on_cuda_do_not_synchronise() -> None:
    """The Trainer, then a custom loop, each with sync errors on for all batches after warm-up."""
    device = torch.device("cuda")
    sync = _SyncErrors()
    trainer = _trainer([_Window(sync.on, sync.off)], "cuda")
    try:
        trainer.fit(_LoggingModel(), train_dataloaders=_Loader(_batches(device)))
    finally:
        sync.off()
    assert trainer.global_step == _BATCHES
    assert trainer.callback_metrics["loss_both_epoch"].isfinite()

    class Model(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 1))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.net(x)

    model = Model().to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    lc = LoopDriver(model, callbacks=[_Window(sync.on, sync.off)], device=device)
    try:
        with lc.fit(optimizers=[opt]):
            for _epoch in lc.epochs(max_epochs=1):
                for i, batch in enumerate(_batches(device)):
                    x, y = lc.train_batch_start(batch, i)
                    opt.zero_grad()
                    loss = F.mse_loss(model(x), y)
                    lc.backward(loss)
                    lc.optimizer_step(opt)
                    lc.log("loss", loss)
                    lc.train_batch_end(loss)
    finally:
        sync.off()
    assert lc.global_step == _BATCHES
