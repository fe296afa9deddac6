"""The closure protocol of automatic optimization, against live pytorch-lightning.

``optimizer_step`` receives a closure that runs ``training_step``, the zero-grad hooks and
backward; ``on_before_optimizer_step`` runs after every evaluation of the closure. These
tests run the same module body under both frameworks for the ways user code drives that
closure: the default, an optimizer that evaluates it several times (LBFGS), an override
that calls it itself and steps without it, an override that wraps it, and one that never
calls it (an error). The hook sequences, the parameters and the error type must be equal.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest
import pytorch_lightning as PL
import torch
from torch.nn import functional as F

import lightcycle as LC
from tests import kit

STYLES = ("default", "lbfgs", "call_then_step", "wrapped", "never_called")


def _run(fw: ModuleType, style: str) -> dict[str, Any]:
    events: list[str] = []

    class Recorder(fw.Callback):  # type: ignore[misc, name-defined]
        def on_before_optimizer_step(self, trainer: Any, pl_module: Any, optimizer: Any) -> None:
            events.append("cb.on_before_optimizer_step")

        def on_before_zero_grad(self, trainer: Any, pl_module: Any, optimizer: Any) -> None:
            events.append("cb.on_before_zero_grad")

        def on_before_backward(self, trainer: Any, pl_module: Any, loss: Any) -> None:
            events.append("cb.on_before_backward")

        def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
            events.append(f"cb.on_train_batch_end loss={float(outputs['loss']):.6f}")

    class Model(fw.LightningModule):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            super().__init__()
            torch.manual_seed(0)
            self.net = torch.nn.Linear(3, 1)

        def training_step(self, batch: Any, batch_idx: int) -> Any:
            events.append("training_step")
            x, y = batch
            return F.mse_loss(self.net(x), y)

        def configure_optimizers(self) -> Any:
            if style == "lbfgs":
                return torch.optim.LBFGS(self.parameters(), lr=0.5, max_iter=3)
            return torch.optim.SGD(self.parameters(), lr=0.1)

        def optimizer_step(self, epoch: int, batch_idx: int, optimizer: Any, optimizer_closure: Any = None) -> None:
            events.append("optimizer_step")
            if style == "call_then_step":
                optimizer_closure()
                optimizer.step()
            elif style == "wrapped":

                def closure() -> Any:
                    loss = optimizer_closure()
                    events.append("after user closure")
                    return loss

                optimizer.step(closure=closure)
            elif style == "never_called":
                return
            else:
                super().optimizer_step(epoch, batch_idx, optimizer, optimizer_closure)

    g = torch.Generator().manual_seed(1)
    data = [(torch.randn(4, 3, generator=g), torch.randn(4, 1, generator=g)) for _ in range(2)]
    trainer = fw.Trainer(**kit.quiet(max_epochs=1, callbacks=[Recorder()], accelerator="cpu", devices=1))
    model = Model()
    error = None
    try:
        trainer.fit(model, train_dataloaders=torch.utils.data.DataLoader(data, batch_size=None))
    except Exception as exc:  # the outcome is compared, not hidden
        error = type(exc).__name__
    return {
        "events": events,
        "error": error,
        "weights": [round(v, 6) for v in model.net.weight.detach().flatten().tolist()],
        "global_step": trainer.global_step,
    }


@pytest.mark.parametrize("style", STYLES)
def test_closure_protocol_equals_lightning(style: str) -> None:
    theirs = _run(PL, style)
    ours = _run(LC, style)
    assert theirs["events"], "the Lightning run recorded nothing"
    assert ours == theirs


def test_the_protocol_styles_differ() -> None:
    """Not vacuous: the styles produce different sequences (LBFGS re-runs the closure)."""
    runs = {style: _run(LC, style)["events"] for style in ("default", "lbfgs", "wrapped")}
    assert runs["lbfgs"].count("training_step") > runs["default"].count("training_step") == 2
    assert "after user closure" in runs["wrapped"]
    assert _run(LC, "never_called")["error"] == "MisconfigurationException"
