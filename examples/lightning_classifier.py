"""An unmodified ``pytorch_lightning`` program: a classifier with validation and predict.

Uses the ``pytorch_lightning`` spelling and Lightning utilities (``rank_zero_info``,
``seed_everything``); run it on lightcycle without editing it::

    lightcycle run --checked --diagram run.mmd examples/lightning_classifier.py
"""

import json
import sys

import pytorch_lightning as pl
import torch
from pytorch_lightning import seed_everything
from pytorch_lightning.utilities import rank_zero_info
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class Classifier(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.model = nn.Sequential(nn.Linear(2, 32), nn.ReLU(), nn.Linear(32, 3))

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = nn.functional.cross_entropy(self.model(x), y)
        self.log("loss", loss)
        return {"loss": loss}

    def validation_step(self, batch, batch_idx):
        x, y = batch
        logits = self.model(x)
        self.log("val_acc", (logits.argmax(-1) == y).float().mean(), on_epoch=True)
        self.log("val_loss", nn.functional.cross_entropy(logits, y))

    def predict_step(self, batch, batch_idx):
        return self.model(batch[0]).argmax(-1)

    def on_train_epoch_end(self) -> None:
        rank_zero_info(f"epoch {self.current_epoch} done")

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=0.02)


def loaders():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(192, 2, generator=g)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 0.5).long()
    train = DataLoader(TensorDataset(x[:128], y[:128]), batch_size=16, shuffle=True)
    val = DataLoader(TensorDataset(x[128:], y[128:]), batch_size=32)
    return train, val


if __name__ == "__main__":
    seed_everything(1, verbose=False)
    train, val = loaders()
    model = Classifier()
    trainer = pl.Trainer(
        max_epochs=3,
        accelerator="cpu",
        devices=1,
        val_check_interval=0.5,
        accumulate_grad_batches=2,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(model, train, val)
    metrics = {k: round(float(v), 6) for k, v in sorted(trainer.callback_metrics.items())}
    predictions = trainer.predict(model, val)
    print("RESULT", json.dumps({"metrics": metrics, "predicted": torch.cat(predictions).tolist()}))
    sys.exit(0 if metrics["val_acc"] > 0.5 else 4)
