"""One small training program, run under pytorch_lightning and under lightcycle, for the callback tests.

``run(fw, ...)`` builds the same module (optimizers chosen by name), data, a recording logger and
the callbacks that ``make_callbacks(fw)`` returns, fits, and reports what a callback can change or
leave behind: the logger's rows, ``callback_metrics``, the module's weights, the callbacks' checkpointed
state and the hooks they fired.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from types import ModuleType
from typing import Any

import torch
from pytorch_lightning.loggers import Logger as PLLogger
from torch.utils.data import DataLoader, TensorDataset

from tests import kit


def _optimizers(kind: str, module: torch.nn.Module) -> Any:
    layer, head = module.layer, module.head  # type: ignore[union-attr]
    if kind == "sgd":
        return torch.optim.SGD(module.parameters(), lr=0.1)
    if kind == "sgd_momentum_step_sched":
        opt = torch.optim.SGD(module.parameters(), lr=0.1, momentum=0.9, weight_decay=0.01)
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
    if kind == "adam_groups_epoch_sched":
        opt = torch.optim.Adam([{"params": layer.parameters()}, {"params": head.parameters(), "lr": 0.01}], lr=0.02)
        return [opt], [torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.9)]
    if kind == "two_sgd_named":
        a = torch.optim.SGD(layer.parameters(), lr=0.1)
        b = torch.optim.SGD([{"params": head.parameters(), "name": "head"}], lr=0.2)
        c = torch.optim.Adam(head.parameters(), lr=0.3)
        sched = {"scheduler": torch.optim.lr_scheduler.StepLR(c, 1), "name": "my-sched", "interval": "step"}
        return [a, b, c], [sched]
    raise ValueError(kind)


class _Recording(PLLogger):
    """A logger that records ``log_metrics`` calls (built on Lightning's Logger so both accept it)."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[tuple[int | None, dict[str, float]]] = []

    @property
    def name(self) -> str:
        return "rec"

    @property
    def version(self) -> int:
        return 0

    def log_metrics(self, metrics: dict[str, Any], step: int | None = None) -> None:
        self.rows.append((step, {k: float(v) for k, v in metrics.items()}))

    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        pass


def make_module(fw: ModuleType, optimizers: str = "sgd", manual: bool = False) -> Any:
    """The program's LightningModule class for framework ``fw`` (instantiated, seeded)."""

    class Model(fw.LightningModule):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.layer = torch.nn.Linear(4, 3)
            self.head = torch.nn.Sequential(torch.nn.ReLU(), torch.nn.Linear(3, 1))
            self.automatic_optimization = not manual

        def training_step(self, batch: Any, batch_idx: int) -> Any:
            loss = self.head(self.layer(batch[0])).pow(2).mean()
            self.log("train_loss", loss)
            if manual:
                for opt in self.optimizers() if isinstance(self.optimizers(), list) else [self.optimizers()]:
                    opt.zero_grad()
                self.manual_backward(loss)
                for opt in self.optimizers() if isinstance(self.optimizers(), list) else [self.optimizers()]:
                    opt.step()
                return None
            return loss

        def validation_step(self, batch: Any, batch_idx: int) -> None:
            self.log("val_loss", self.head(self.layer(batch[0])).pow(2).mean())

        def configure_optimizers(self) -> Any:
            return _optimizers(optimizers, self)

    torch.manual_seed(0)
    return Model()


def loaders(n: int = 16, batch_size: int = 4) -> tuple[DataLoader[Any], DataLoader[Any]]:
    """Fixed train and validation loaders (no shuffling: both frameworks see the same batches)."""
    x = torch.randn(n, 4, generator=torch.Generator().manual_seed(1))
    return DataLoader(TensorDataset(x), batch_size=batch_size), DataLoader(TensorDataset(x[:8]), batch_size=4)


def run(
    fw: ModuleType,
    make_callbacks: Callable[[ModuleType], list[Any]],
    *,
    optimizers: str = "sgd",
    manual: bool = False,
    module: Any = None,
    **trainer_kwargs: Any,
) -> dict[str, Any]:
    """Fit the program under ``fw`` and report what the callbacks did.

    Returns:
        ``rows`` (logger calls), ``callback_metrics``, ``weights``, ``states`` (each callback's
        ``state_dict``), ``callbacks`` (the objects), ``trainer`` and ``module``.
    """
    model = module if module is not None else make_module(fw, optimizers, manual)
    train, val = loaders()
    logger = _Recording()
    callbacks = make_callbacks(fw)
    kwargs: dict[str, Any] = kit.quiet(
        logger=logger,
        max_epochs=2,
        log_every_n_steps=1,
        accelerator="cpu",
        # Default checkpoints and logs go to a fresh folder, never into the working directory.
        default_root_dir=tempfile.mkdtemp(prefix="lc_callbacks_"),
    )
    kwargs.update(trainer_kwargs)
    trainer = fw.Trainer(callbacks=callbacks, **kwargs)
    trainer.fit(model, train, val)
    return {
        "rows": [(s, r) for s, r in logger.rows],
        "callback_metrics": {k: float(v) for k, v in trainer.callback_metrics.items()},
        "weights": {k: v.detach().clone() for k, v in model.state_dict().items()},
        "states": [cb.state_dict() for cb in callbacks],
        "callbacks": callbacks,
        "trainer": trainer,
        "module": model,
    }


def same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    """Equal names and (to float rounding) equal values."""
    return a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
