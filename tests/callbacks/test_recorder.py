"""HookRecorder: the trace format, module hooks through the driver, custom events, live files."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, TensorDataset

import lightcycle as L
from examples.custom_event import LIFECYCLE as WITH_EMA
from lightcycle import LoopDriver
from lightcycle.callbacks import HookRecorder
from lightcycle.commands.main import main
from tests import kit


def _model_class(fw: Any) -> Any:
    """``Linear(2, 1)`` trained on the mean square of its output; validation logs ``v``."""

    class Tiny(kit.linear_module_class(fw, width=2)):  # type: ignore[misc]
        def validation_step(self, batch: Any, batch_idx: int) -> None:
            self.log("v", self.layer(batch[0]).mean())

    return Tiny


Tiny = _model_class(L)


def _loader() -> DataLoader:
    return DataLoader(TensorDataset(torch.randn(8, 2)), batch_size=4)


def _trainer(**kw: Any) -> L.Trainer:
    return L.Trainer(**kit.quiet(max_epochs=1, **kw))


def test_records_callback_and_module_hooks_with_state_paths(tmp_path: Path) -> None:
    path = tmp_path / "trace.jsonl"
    rec = HookRecorder(path)
    _trainer(callbacks=[rec], num_sanity_val_steps=1).fit(Tiny(), _loader(), _loader())
    rec.close()
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert lines == rec.events
    assert lines[0]["src"] == "module" and lines[0]["hook"] == "configure_callbacks"
    assert lines[-1]["src"] == "module" and lines[-1]["hook"] == "teardown"
    # the module's no-op hooks are recorded too: Lightning calls them
    module_hooks = {e["hook"] for e in lines if e["src"] == "module"}
    assert {"on_train_batch_start", "training_step", "backward", "optimizer_step"} <= module_hooks
    batch_starts = [e for e in lines if e["hook"] == "on_train_batch_start" and e["src"] == "callback"]
    assert [e["args"]["batch_idx"] for e in batch_starts] == [0, 1]
    assert all(e["ctx"]["state"] == "fit.train.epoch.batch.started" for e in batch_starts)
    sanity = [e for e in lines if e["ctx"].get("sanity")]
    assert sanity and all(e["ctx"]["stage"] == "sanity_check" for e in sanity)


Plain = kit.plain_module_class(L, width=2)  # no training_step: the custom loop's own code is the step


def test_records_hooks_of_custom_events() -> None:
    rec = HookRecorder()
    model = Plain()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    lc = LoopDriver(model, callbacks=[rec], lifecycle=WITH_EMA)
    ema = lc.event("ema_update")
    with lc.fit(optimizers=[opt]):
        for _ in lc.epochs(1):
            for i, batch in enumerate(_loader()):
                lc.train_batch_start(batch, i)
                loss = model.layer(batch[0]).pow(2).mean()
                opt.zero_grad()
                lc.backward(loss)
                lc.optimizer_step(opt)
                ema(opt)
                lc.train_batch_end(loss)
    hooks = [e["hook"] for e in rec.events if e["src"] == "callback"]
    assert hooks.count("on_ema_update") == 2
    first = hooks.index("on_ema_update")
    assert hooks[first - 1] == "on_before_optimizer_step"
    assert hooks[first + 1] == "on_train_batch_end"


def _fit_recorded(pl: Any, path: Path) -> HookRecorder:
    """The same program under ``pl`` (pytorch_lightning or lightcycle), recorded to ``path``."""
    rec = HookRecorder(path)

    trainer = pl.Trainer(
        **kit.quiet(max_epochs=2, num_sanity_val_steps=1, accelerator="cpu", devices=1, callbacks=[rec])
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(_model_class(pl)(), _loader(), _loader())
    rec.close()
    return rec


def test_records_a_live_lightning_run_that_lightcycle_verify_accepts(tmp_path: Path) -> None:
    """HookRecorder in a pytorch_lightning Trainer: the callback events of lightcycle's run, no ``state``."""
    import pytorch_lightning

    theirs = _fit_recorded(pytorch_lightning, tmp_path / "lightning.jsonl")
    ours = _fit_recorded(L, tmp_path / "lightcycle.jsonl")
    assert theirs.events and all(e["src"] == "callback" for e in theirs.events)
    # what the Lightning trainer exposes, and no lifecycle state (it has no driver)
    assert {k for e in theirs.events for k in e["ctx"]} == {
        "fn", "stage", "status", "epoch", "global_step", "sanity", "should_stop", "training", "model"
    }  # fmt: skip
    mine = [
        {**e, "ctx": {k: v for k, v in e["ctx"].items() if k != "state"}} for e in ours.events if e["src"] == "callback"
    ]
    assert theirs.events == mine
    assert main(["verify", str(tmp_path / "lightning.jsonl")]) == 0
