"""An unmodified Lightning program: regression with a datamodule, checkpointing and early stopping.

Written against ``lightning.pytorch`` as Lightning's docs write programs; run it on lightcycle
without editing it::

    lightcycle run --trace run.jsonl examples/lightning_regression.py --max-epochs 4
    lightcycle verify run.jsonl

(``python examples/lightning_regression.py`` runs it under Lightning, where ``lightning`` is installed.)
"""

import argparse
import json
import os
import tempfile

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.utilities import grad_norm, rank_zero_only
from torch import nn
from torch.utils.data import DataLoader, TensorDataset, random_split


class SyntheticDataModule(pl.LightningDataModule):
    def __init__(self, n: int = 256, batch_size: int = 32) -> None:
        super().__init__()
        self.save_hyperparameters()

    def setup(self, stage: str) -> None:
        g = torch.Generator().manual_seed(7)
        x = torch.randn(self.hparams.n, 8, generator=g)
        y = x @ torch.linspace(-1, 1, 8).unsqueeze(1) + 0.1 * torch.randn(self.hparams.n, 1, generator=g)
        self.train_set, self.val_set, self.test_set = random_split(
            TensorDataset(x, y), [0.75, 0.125, 0.125], generator=torch.Generator().manual_seed(0)
        )

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.train_set, batch_size=self.hparams.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_set, batch_size=self.hparams.batch_size)

    def test_dataloader(self) -> DataLoader:
        return DataLoader(self.test_set, batch_size=self.hparams.batch_size)


class Regressor(pl.LightningModule):
    def __init__(self, lr: float = 0.05) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = nn.functional.mse_loss(self(x), y)
        self.log("train_loss", loss, on_step=True, on_epoch=True, prog_bar=True)
        return loss

    def on_before_optimizer_step(self, optimizer) -> None:
        # Lightning's documented way to watch gradient norms
        self.log_dict(grad_norm(self.net, norm_type=2))

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", nn.functional.mse_loss(self(x), y), prog_bar=True)

    def test_step(self, batch, batch_idx):
        x, y = batch
        self.log("test_loss", nn.functional.mse_loss(self(x), y))

    def configure_optimizers(self):
        optimizer = torch.optim.SGD(self.parameters(), lr=self.hparams.lr, momentum=0.9)
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.5)
        return {"optimizer": optimizer, "lr_scheduler": scheduler}


@rank_zero_only
def report(trainer: pl.Trainer, checkpoint: ModelCheckpoint, results: list) -> None:
    metrics = {k: round(float(v), 6) for k, v in sorted(trainer.callback_metrics.items())}
    print("RESULT", json.dumps({"fit": metrics, "test": results, "epoch": trainer.current_epoch}))
    print("RESULT", json.dumps({"best": os.path.basename(checkpoint.best_model_path), "step": trainer.global_step}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--max-epochs", type=int, default=4)
    parser.add_argument("--root", default=None)
    args = parser.parse_args()
    pl.seed_everything(42, verbose=False)
    root = args.root or tempfile.mkdtemp()
    checkpoint = ModelCheckpoint(dirpath=os.path.join(root, "ckpt"), monitor="val_loss", save_top_k=2)
    trainer = pl.Trainer(
        default_root_dir=root,
        max_epochs=args.max_epochs,
        accelerator="cpu",
        devices=1,
        callbacks=[checkpoint, EarlyStopping(monitor="val_loss", patience=3)],
        logger=CSVLogger(root),
        enable_progress_bar=False,
        enable_model_summary=False,
        log_every_n_steps=2,
    )
    model, data = Regressor(), SyntheticDataModule()
    trainer.fit(model, datamodule=data)
    fit_metrics = {k: round(float(v), 6) for k, v in sorted(trainer.callback_metrics.items())}
    print("RESULT", json.dumps({"after_fit": fit_metrics}))
    report(trainer, checkpoint, trainer.test(model, datamodule=data, ckpt_path="best", verbose=False))


if __name__ == "__main__":
    main()
