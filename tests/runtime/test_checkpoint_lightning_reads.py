"""Lightning 2.6 reads lightcycle's checkpoints; lightcycle reads its own older format.

Live Lightning (in its own process, ``tests/lightning_reads.py``) loads each checkpoint a
lightcycle fit can write (mid-epoch, epoch end, after a fit) with ``load_from_checkpoint`` and
resumes ``Trainer.fit`` from it; it must start and end at the same epoch and global step, with
the same first batch and learning rate, as lightcycle resuming the same file; from a
``StatefulDataLoader`` run, also with the same data (Lightning loads the loader state that
lightcycle stores as its ``combined_loader`` state).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import torch

import lightcycle as LC
from lightcycle.callbacks import ModelCheckpoint
from tests import kit
from tests.lightning_reads import make_net, resume
from tests.paths import FIXTURES, ROOT

FIXTURE = FIXTURES / "lightcycle-format1-epoch1-step3.ckpt"
QUIET = kit.quiet(checkpointing=None)  # the tests choose checkpointing


def _write_checkpoints(folder: Path) -> list[str]:
    steps = ModelCheckpoint(dirpath=folder, every_n_train_steps=3, save_top_k=-1)
    epochs = ModelCheckpoint(dirpath=folder, filename="end-{epoch}", every_n_epochs=1, save_top_k=-1)
    stateful = ModelCheckpoint(dirpath=folder / "stateful", every_n_train_steps=3, save_top_k=-1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer = LC.Trainer(max_epochs=2, callbacks=[steps, epochs], **QUIET)
        trainer.fit(make_net(LC)(width=4))
        trainer.save_checkpoint(folder / "after_fit.ckpt")
        LC.Trainer(max_epochs=1, callbacks=[stateful], **QUIET).fit(make_net(LC, stateful=True)(width=4))
    names = (
        "epoch=0-step=3.ckpt",
        "epoch=1-step=6.ckpt",
        "end-epoch=0.ckpt",
        "after_fit.ckpt",
        "stateful/epoch=0-step=3.ckpt",
    )
    fit_loops = [torch.load(folder / n, weights_only=False)["loops"]["fit_loop"] for n in names]
    assert [f["position"] for f in fit_loops] == ["batch_end", "batch_end", "epoch_end", "boundary", "batch_end"]
    assert fit_loops[-1]["state_dict"]["combined_loader"] == [fit_loops[-1]["loader_state"]]
    return [str(folder / n) for n in names[:-1]] + [f"stateful:{folder / names[-1]}"]


def test_lightning_loads_and_resumes_lightcycle_checkpoints_where_lightcycle_does(tmp_path: Path) -> None:
    files = _write_checkpoints(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONWARNINGS": "ignore"}
    done = subprocess.run(
        [sys.executable, "-m", "tests.lightning_reads", *files],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lightning = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert [r["path"] for r in lightning] == files
    for seen in lightning:
        assert seen["width"] == 4 and seen["same_weights"], seen
        stateful = seen["path"].startswith("stateful:")
        ours = resume(LC, seen["path"].removeprefix("stateful:"), stateful)
        if not stateful:  # Lightning restarts a plain loader's data mid-epoch (docs: differences, 2)
            del ours["first_data"]
        assert {k: seen[k] for k in ours} == ours, seen["path"]


def test_a_format_1_checkpoint_from_before_the_generators_still_resumes_exactly(tmp_path: Path) -> None:
    """The fixture was written by lightcycle at 43ed21e (fit_loop format 1, no ``generators``) by the
    fit below, killed after its third step; resuming it ends where the uninterrupted fit ends."""
    fit_loop = torch.load(FIXTURE, weights_only=False)["loops"]["fit_loop"]
    assert fit_loop["lightcycle"] == 1 and "generators" not in fit_loop and fit_loop["position"] == "batch_end"

    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset

    class Net(LC.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.save_hyperparameters()
            self.layer = nn.Linear(2, 1)

        def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
            return self.layer(batch[0]).sum()

        def configure_optimizers(self) -> Any:
            return torch.optim.SGD(self.parameters(), lr=0.1)

        def train_dataloader(self) -> Any:
            return DataLoader(TensorDataset(torch.arange(8.0).view(4, 2)), batch_size=2)

    def fit(ckpt_path: Path | None) -> Net:
        LC.seed_everything(0, verbose=False)
        model = Net()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            LC.Trainer(max_epochs=2, enable_checkpointing=False, **QUIET).fit(model, ckpt_path=ckpt_path)
        return model

    whole, resumed = fit(None), fit(FIXTURE)
    assert resumed.trainer.global_step == whole.trainer.global_step == 4
    assert all(torch.equal(v, whole.state_dict()[k]) for k, v in resumed.state_dict().items())
