"""``configure_model`` under the precision's init context, and clipping through the precision plugin (live Lightning).

Lightning runs ``configure_model`` inside ``strategy.tensor_init_context()`` and
``precision.module_init_context()``: layers created there get the precision's dtype at
creation (not only after the module is converted), and so does anything else the hook makes.
``LightningModule.clip_gradients`` hands the clipping to the precision plugin, which refuses
a fused optimizer under ``16-mixed`` (its gradients are unscaled inside ``step``).
"""

from __future__ import annotations

import types
import warnings
from typing import Any

import pytest
import pytorch_lightning as PL
import torch
from torch.utils.data import DataLoader, TensorDataset

import lightcycle as LC
from lightcycle.precision import MixedPrecision

QUIET: dict[str, Any] = dict(
    accelerator="cpu",
    devices=1,
    max_steps=1,
    logger=False,
    enable_checkpointing=False,
    enable_progress_bar=False,
    enable_model_summary=False,
)


def _model(pl: types.ModuleType, seen: dict[str, Any], fused: bool = False) -> Any:
    class Model(pl.LightningModule):  # type: ignore[misc, name-defined]
        def configure_model(self) -> None:
            if hasattr(self, "layer"):
                return
            seen["default_dtype"] = torch.get_default_dtype()
            self.layer = torch.nn.Linear(2, 1)
            seen["created"] = self.layer.weight.dtype
            seen["buffer"] = torch.zeros(1).dtype

        def training_step(self, batch: Any, batch_idx: int) -> Any:
            return self.layer(batch[0].to(self.layer.weight.dtype)).float().pow(2).mean()

        def configure_optimizers(self) -> Any:
            return (
                torch.optim.SGD(self.parameters(), lr=0.1, fused=True)
                if fused
                else torch.optim.SGD(self.parameters(), lr=0.1)
            )

        def train_dataloader(self) -> Any:
            return DataLoader(TensorDataset(torch.ones(4, 2)), batch_size=2)

    return Model()


@pytest.mark.parametrize("precision", ["bf16-true", "16-true", "64-true", "bf16-mixed", "32-true"])
def test_configure_model_runs_in_the_precisions_init_context(precision: str) -> None:
    results = []
    for pl in (PL, LC):
        seen: dict[str, Any] = {}
        model = _model(pl, seen)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pl.Trainer(**QUIET, precision=precision).fit(model)
        seen["final"] = model.layer.weight.dtype
        seen["after"] = torch.get_default_dtype()  # the context is left again
        results.append(seen)
    assert results[1] == results[0]
    if precision != "32-true" and precision != "bf16-mixed":
        assert results[1]["created"] != torch.float32


def test_clipping_goes_through_the_precision_plugin() -> None:
    """16-mixed (its GradScaler, on CPU through the plugin) refuses clipping a fused optimizer, as Lightning."""
    from pytorch_lightning.plugins.precision import MixedPrecision as LightningMixedPrecision

    errors = []
    for pl, plugin in ((PL, LightningMixedPrecision("16-mixed", "cpu")), (LC, MixedPrecision("16-mixed", "cpu"))):
        with warnings.catch_warnings(), pytest.raises(RuntimeError) as info:
            warnings.simplefilter("ignore")
            pl.Trainer(**QUIET, plugins=[plugin], gradient_clip_val=1.0).fit(_model(pl, {}, fused=True))
        errors.append(str(info.value))
    assert errors[1] == errors[0]
    assert "does not allow for gradient clipping" in errors[1]
