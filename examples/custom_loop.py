"""Your own PyTorch training loop, with lightcycle's callbacks, checks and exception contract.

The loop below is plain PyTorch: its own data loaders, forward pass, mixed precision
(``torch.autocast`` and a ``GradScaler``, both enabled on CUDA only, so it runs anywhere) and
optimizer code. A :class:`~lightcycle.custom_loop.LoopDriver` marks where the lifecycle
is, so two unmodified Lightning-style callbacks work inside it: a metrics callback and
``EarlyStopping(monitor="val_loss")``, which reads ``trainer.callback_metrics`` and sets
``trainer.should_stop`` (``lc.epochs`` then ends training).

Run it::

    python examples/custom_loop.py                 # a few seconds on a CPU
    python examples/custom_loop.py --max-epochs 3  # shorter
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import lightcycle as L
from lightcycle import LoopDriver
from lightcycle.callbacks import EarlyStopping


class Regressor(L.LightningModule):
    """A plain model: it has no ``training_step``, so the loop below is the training step."""

    def __init__(self, features: int = 16) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(features, 64), nn.ReLU(), nn.Linear(64, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.net(x)
        return out


class EpochMetrics(L.Callback):
    """Keeps and prints the metrics of each epoch (what callbacks see as ``callback_metrics``)."""

    def __init__(self) -> None:
        self.history: list[dict[str, float]] = []

    def on_train_epoch_end(self, trainer: Any, pl_module: L.LightningModule) -> None:
        metrics = {k: round(float(v), 4) for k, v in trainer.callback_metrics.items()}
        self.history.append(metrics)
        print(f"epoch {trainer.current_epoch:2d}  step {trainer.global_step:4d}  {metrics}")

    def on_fit_end(self, trainer: Any, pl_module: L.LightningModule) -> None:
        print(f"fit ended after {trainer.current_epoch} epochs (should_stop={trainer.should_stop})")


def make_loaders(n_train: int, n_val: int, features: int, batch_size: int) -> tuple[DataLoader[Any], DataLoader[Any]]:
    """A noisy linear problem: the validation loss stops improving after a few epochs."""
    g = torch.Generator().manual_seed(0)
    w = torch.randn(features, 1, generator=g)

    def split(n: int) -> TensorDataset:
        x = torch.randn(n, features, generator=g)
        return TensorDataset(x, x @ w + 0.5 * torch.randn(n, 1, generator=g))

    train = DataLoader(split(n_train), batch_size=batch_size, shuffle=True, generator=g)
    return train, DataLoader(split(n_val), batch_size=batch_size)


def main(max_epochs: int = 40, n_train: int = 1024, batch_size: int = 64, patience: int = 3) -> LoopDriver:
    """Train with early stopping; returns the driver (its callbacks hold the history)."""
    torch.manual_seed(0)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    amp = device.type == "cuda"  # mixed precision on CUDA; plain float32 on CPU
    train_loader, val_loader = make_loaders(n_train, n_train // 4, 16, batch_size)

    model = Regressor().to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    scaler = torch.amp.GradScaler(device.type, enabled=amp)
    lc = LoopDriver(model, callbacks=[EpochMetrics(), EarlyStopping(monitor="val_loss", patience=patience)])

    with lc.fit(optimizers=[opt]):  # configure_callbacks, setup, on_fit_start ... teardown
        for _epoch in lc.epochs(max_epochs):  # stops at max_epochs or when EarlyStopping says so
            for i, batch in enumerate(train_loader):
                x, y = lc.train_batch_start(batch, i)  # moved to the device by the transfer hooks
                opt.zero_grad(set_to_none=True)
                with torch.autocast(device.type, dtype=torch.float16, enabled=amp):
                    loss = nn.functional.mse_loss(model(x).float(), y)
                lc.backward(scaler.scale(loss))  # on_before_backward, backward, on_after_backward
                scaler.unscale_(opt)
                nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                lc.optimizer_step(opt, scaler.step)  # on_before_optimizer_step, then scaler.step(opt)
                scaler.update()
                lc.log("train_loss", loss, prog_bar=True)
                lc.train_batch_end(loss)  # on_train_batch_end(outputs={"loss": ...})
            with lc.validation():  # eval mode + inference mode; train mode restored after
                for i, batch in enumerate(val_loader):
                    x, y = lc.validation_batch_start(batch, i)
                    with torch.autocast(device.type, dtype=torch.float16, enabled=amp):
                        val_loss = nn.functional.mse_loss(model(x).float(), y)
                    lc.log("val_loss", val_loss)  # epoch mean -> callback_metrics["val_loss"]
                    lc.validation_batch_end(val_loss)
    return lc


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-epochs", type=int, default=40)
    parser.add_argument("--n-train", type=int, default=1024)
    parser.add_argument("--patience", type=int, default=3)
    args = parser.parse_args()
    start = time.perf_counter()
    main(max_epochs=args.max_epochs, n_train=args.n_train, patience=args.patience)
    print(f"done in {time.perf_counter() - start:.1f} s")
