"""A LightningCLI program, written once, run under Lightning or lightcycle (``CLI_FRAMEWORK``).

Model and data module with typed arguments, a linked argument, the recording callback as a
``trainer_defaults`` callback; ``CLI_TRACE=FILE`` writes the hooks, metrics and weights as JSON.
``CLI_RUN=0`` builds the CLI with ``run=False`` and fits by hand, as Lightning's docs show.
"""

from __future__ import annotations

import json
import os
from typing import Any

import torch
from torch.utils.data import DataLoader

if os.environ.get("CLI_FRAMEWORK") == "lightning":
    import pytorch_lightning as pl
    from pytorch_lightning.cli import LightningArgumentParser, LightningCLI
    from pytorch_lightning.demos.boring_classes import BoringModel, RandomDataset
else:
    import lightcycle as pl  # type: ignore[no-redef]
    from lightcycle.cli import LightningArgumentParser, LightningCLI  # type: ignore[assignment]
    from lightcycle.demos.boring_classes import BoringModel, RandomDataset  # type: ignore[assignment]

from tests.recording import build


class Model(BoringModel):
    """A BoringModel with a configurable width; logs its losses.

    Args:
        out_features: the layer's output width.
        batch_size: linked from ``data.batch_size``.
    """

    def __init__(self, out_features: int = 2, batch_size: int = 1) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.layer = torch.nn.Linear(32, out_features)
        self.batch_size = batch_size

    def training_step(self, batch: Any, batch_idx: int) -> Any:
        out = super().training_step(batch, batch_idx)
        self.log("train_loss", out["loss"], batch_size=self.batch_size)
        return out

    def validation_step(self, batch: Any, batch_idx: int) -> Any:
        out = super().validation_step(batch, batch_idx)
        self.log("val_loss", out["x"], batch_size=self.batch_size)
        return out

    def test_step(self, batch: Any, batch_idx: int) -> Any:
        out = super().test_step(batch, batch_idx)
        self.log("test_loss", out["y"], batch_size=self.batch_size)
        return out


class Data(pl.LightningDataModule):
    """Random vectors of 32.

    Args:
        batch_size: items per batch.
        length: items per stage.
    """

    def __init__(self, batch_size: int = 4, length: int = 32) -> None:
        super().__init__()
        self.batch_size = batch_size
        self.length = length

    def setup(self, stage: str) -> None:
        self.data = RandomDataset(32, self.length)

    def train_dataloader(self) -> DataLoader[Any]:
        return DataLoader(self.data, batch_size=self.batch_size)

    def val_dataloader(self) -> DataLoader[Any]:
        return DataLoader(self.data, batch_size=self.batch_size)

    def test_dataloader(self) -> DataLoader[Any]:
        return DataLoader(self.data, batch_size=self.batch_size)

    def predict_dataloader(self) -> DataLoader[Any]:
        return DataLoader(self.data, batch_size=self.batch_size)


class OtherData(Data):
    """A subclass, to choose with ``--data=...OtherData`` in subclass mode."""

    def __init__(self, batch_size: int = 2, length: int = 16, shift: float = 1.0) -> None:
        super().__init__(batch_size, length)
        self.shift = shift


class CLI(LightningCLI):
    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.link_arguments("data.batch_size", "model.batch_size")
        parser.add_argument("--notes", type=str, default="none", help="free text, saved in the config")


def main() -> None:
    ns = build(pl)
    defaults = {"callbacks": [ns.RecordingCallback()], "max_epochs": 1, "enable_progress_bar": False}
    run = os.environ.get("CLI_RUN", "1") == "1"
    cli = CLI(
        Model,
        Data,
        subclass_mode_data=os.environ.get("CLI_SUBCLASS_DATA") == "1",
        trainer_defaults=defaults,
        seed_everything_default=123,
        run=run,
    )
    if not run:
        cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    out = os.environ.get("CLI_TRACE")
    if out:
        record = {
            "events": ns.events,
            "callback_metrics": {k: float(v) for k, v in cli.trainer.callback_metrics.items()},
            "weights": {k: v.tolist() for k, v in cli.model.state_dict().items()},
            # LightningCLI stores the parsed config; the instantiator's module differs by framework
            "hparams": {k: str(v).replace("pytorch_lightning", "lightcycle") for k, v in cli.model.hparams.items()},
            "optimizer": type(cli.trainer.optimizers[0]).__name__ if cli.trainer.optimizers else None,
            "lr": [g["lr"] for g in cli.trainer.optimizers[0].param_groups] if cli.trainer.optimizers else None,
        }
        with open(out, "w") as f:
            json.dump(record, f)


if __name__ == "__main__":
    main()
