"""A custom lifecycle event, declared as data: ``ema_update`` after each optimizer step.

The event is added to a copy of the declared lifecycle (``LIFECYCLE.extend``): a trigger
with its parameters, the states it may fire from, and the hooks it fires. Everything
that reads a lifecycle sees it: the driver checks it (fired anywhere else it raises
``LifecycleError``), callbacks that define ``on_ema_update`` receive it, and the tools
draw and verify it::

    python -m lightcycle diagram --lifecycle examples.custom_event   # from the repo root

(``examples.custom_event:LIFECYCLE`` is the extended lifecycle.) Run the example::

    python examples/custom_event.py
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

import lightcycle as L
from lightcycle import LoopDriver
from lightcycle.errors import LifecycleError
from lightcycle.states.model import Event, Hook, Target, Transition

EMA_UPDATE = Event("ema_update", ("optimizer",), "after an optimizer step: the averaged weights follow the model")

LIFECYCLE = L.LIFECYCLE.extend(
    transitions=[
        Transition(
            EMA_UPDATE,
            # after your own optimizer step (manual), or after the Trainer-style automatic step
            ("fit.train.epoch.batch.manual", "fit.train.epoch.batch.stepped"),
            None,  # internal: the lifecycle stays where it is
            (Hook("on_ema_update", Target.CALLBACKS, ("optimizer",)),),
        )
    ]
)
"""lightcycle's lifecycle plus ``ema_update``."""


class EMA(L.Callback):
    """Keeps an exponential moving average of the module's weights."""

    def __init__(self, decay: float = 0.9) -> None:
        self.decay = decay
        self.shadow: dict[str, torch.Tensor] = {}
        self.updates = 0

    def on_fit_start(self, trainer: Any, pl_module: L.LightningModule) -> None:
        self.shadow = {k: v.detach().clone() for k, v in pl_module.state_dict().items()}

    def on_ema_update(self, trainer: Any, pl_module: L.LightningModule, optimizer: torch.optim.Optimizer) -> None:
        with torch.no_grad():
            for k, v in pl_module.state_dict().items():
                if v.dtype.is_floating_point:
                    self.shadow[k].lerp_(v, 1.0 - self.decay)
        self.updates += 1


class Net(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.Linear(4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.layer(x)
        return out


def main(epochs: int = 3, batches: int = 8) -> EMA:
    """Train a little with the EMA callback; returns it."""
    torch.manual_seed(0)
    model = Net()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    ema = EMA()
    lc = LoopDriver(model, callbacks=[ema], lifecycle=LIFECYCLE)
    ema_update = lc.event("ema_update")  # looked up once; checked on every call
    data = [(torch.randn(16, 4), torch.randn(16, 1)) for _ in range(batches)]
    with lc.fit(optimizers=opt):
        for _epoch in lc.epochs(epochs):
            for i, batch in enumerate(data):
                x, y = lc.train_batch_start(batch, i)
                opt.zero_grad()
                loss = nn.functional.mse_loss(model(x), y)
                lc.backward(loss)
                lc.optimizer_step(opt)
                ema_update(opt)  # the custom event: EMA.on_ema_update(trainer, module, opt)
                lc.train_batch_end(loss)
            try:
                lc.fire("ema_update", opt)  # between batches: not declared there
            except LifecycleError as err:
                if _epoch == 0:
                    print(f"as declared, between batches: {err}")
    print(f"{ema.updates} EMA updates; averaged weight norm {ema.shadow['layer.weight'].norm():.4f}")
    return ema


if __name__ == "__main__":
    main()
