"""Trainer(precision=...) against live Lightning: hooks, what the hooks see, losses, weights, checkpoints.

One program runs under ``pytorch_lightning`` and under lightcycle for every precision. The
recorder notes, at each hook, what precision changes: the dtype of the parameters and of
the batch, whether autocast is on in the steps, the loss ``on_before_backward`` receives
(scaled under a GradScaler) and the gradient norm ``on_before_optimizer_step`` sees
(unscaled). ``16-mixed`` on CPU is Lightning's ``bf16-mixed`` (with its warning); the
GradScaler runs on CPU through ``plugins=[MixedPrecision("16-mixed", "cpu")]`` in both.
"""

from __future__ import annotations

import tempfile
import types
import warnings
from typing import Any

import pytest
import pytorch_lightning as PL
import torch
from torch.utils.data import DataLoader, TensorDataset

import lightcycle as LC
import lightcycle.precision as LCP
from tests import kit


def _build(pl: types.ModuleType, manual: bool = False) -> tuple[type, type]:
    class Recorder(pl.Callback):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            self.events: list[tuple[Any, ...]] = []

        def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int) -> None:
            self.events.append(("train_batch_start", str(batch[0].dtype), str(pl_module.layer.weight.dtype)))

        def on_before_backward(self, trainer: Any, pl_module: Any, loss: torch.Tensor) -> None:
            self.events.append(("before_backward", round(float(loss), 4), str(loss.dtype)))

        def on_after_backward(self, trainer: Any, pl_module: Any) -> None:
            self.events.append(("after_backward",))

        def on_before_optimizer_step(self, trainer: Any, pl_module: Any, optimizer: Any) -> None:
            norm = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in pl_module.parameters()]))
            self.events.append(("before_optimizer_step", repr(round(float(norm), 3))))  # repr: nan == nan

        def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
            self.events.append(("train_batch_end", round(float(outputs["loss"]), 4), trainer.global_step))

        def on_validation_batch_start(
            self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int, dl: int = 0
        ) -> None:
            self.events.append(("validation_batch_start", str(batch[0].dtype)))

    class Model(pl.LightningModule):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.layer = torch.nn.Linear(4, 1)
            self.automatic_optimization = not manual
            self.seen: list[tuple[Any, ...]] = []

        def training_step(self, batch: Any, batch_idx: int) -> Any:
            x, y = batch
            out = self.layer(x)
            self.seen.append(("training_step", torch.is_autocast_enabled(self.device.type), str(out.dtype)))
            loss = torch.nn.functional.mse_loss(out.float(), y.float())
            self.log("train_loss", loss)
            if manual:
                opt = self.optimizers()
                opt.zero_grad()
                self.manual_backward(loss)
                opt.step()
            return loss

        def validation_step(self, batch: Any, batch_idx: int) -> None:
            x, y = batch
            out = self.layer(x)
            self.seen.append(("validation_step", torch.is_autocast_enabled(self.device.type), str(out.dtype)))
            self.log("val_loss", torch.nn.functional.mse_loss(out.float(), y.float()))

        def configure_optimizers(self) -> Any:
            return torch.optim.SGD(self.parameters(), lr=0.1)

        def train_dataloader(self) -> Any:
            g = torch.Generator().manual_seed(1)
            data = TensorDataset(torch.randn(8, 4, generator=g), torch.randn(8, 1, generator=g))
            return DataLoader(data, batch_size=2)

        def val_dataloader(self) -> Any:
            g = torch.Generator().manual_seed(2)
            return DataLoader(
                TensorDataset(torch.randn(4, 4, generator=g), torch.randn(4, 1, generator=g)), batch_size=2
            )

    return Recorder, Model


def _run(
    pl: types.ModuleType, manual: bool = False, ckpt_path: str | None = None, accelerator: str = "cpu", **trainer: Any
) -> dict[str, Any]:
    recorder_cls, model_cls = _build(pl, manual)
    torch.manual_seed(0)
    model = model_cls()
    recorder = recorder_cls()
    root = tempfile.mkdtemp(prefix="lc_precision_")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        args: dict[str, Any] = dict(max_epochs=2, limit_train_batches=3, limit_val_batches=1, num_sanity_val_steps=0)
        t = pl.Trainer(
            **kit.quiet(
                checkpointing=None,
                accelerator=accelerator,
                devices=1,
                default_root_dir=root,
                callbacks=[recorder],
                **{**args, **trainer},
            )
        )
        t.fit(model, ckpt_path=ckpt_path)
    path = f"{root}/final.ckpt"
    t.save_checkpoint(path)
    ckpt = torch.load(path, weights_only=False)
    return {
        "events": recorder.events,
        "seen": model.seen,
        "weights": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "metrics": {k: round(float(v), 4) for k, v in t.callback_metrics.items()},
        "global_step": t.global_step,
        "precision": t.precision,
        "ckpt_keys": sorted(k for k in ckpt if k not in ("pytorch-lightning_version", "lightcycle_version")),
        "scaler": ckpt.get("MixedPrecision"),
        "path": path,
        "warnings": sorted({str(w.message) for w in caught if "precision=" in str(w.message)}),
    }


def _assert_same(lightning: dict[str, Any], ours: dict[str, Any]) -> None:
    assert ours["events"] == lightning["events"]
    assert ours["seen"] == lightning["seen"]
    assert ours["metrics"] == lightning["metrics"]
    assert ours["global_step"] == lightning["global_step"]
    assert ours["precision"] == lightning["precision"]
    assert ours["ckpt_keys"] == lightning["ckpt_keys"]
    assert ours["scaler"] == lightning["scaler"]
    assert ours["warnings"] == lightning["warnings"]
    assert ours["weights"].keys() == lightning["weights"].keys()
    for k, w in lightning["weights"].items():
        assert ours["weights"][k].dtype == w.dtype, k
        torch.testing.assert_close(ours["weights"][k], w, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(
    "precision", ["32-true", 32, "32", "64-true", "bf16-mixed", "16-mixed", 16, "bf16-true", "16-true"]
)
def test_precision_equals_lightning(precision: Any) -> None:
    lightning = _run(PL, precision=precision)
    ours = _run(LC, precision=precision)
    _assert_same(lightning, ours)


@pytest.mark.parametrize("manual", [False, True])
def test_grad_scaler_on_cpu_equals_lightning(manual: bool) -> None:
    """The GradScaler's places: scaled loss in on_before_backward, unscaled gradients before the step."""
    lightning = _run(PL, manual, plugins=[PL.plugins.MixedPrecision("16-mixed", "cpu")])
    ours = _run(LC, manual, plugins=[LCP.MixedPrecision("16-mixed", "cpu")])
    assert lightning["scaler"] and lightning["scaler"]["scale"] <= 65536.0
    before = [e for e in ours["events"] if e[0] == "before_backward"]
    assert before and before[0][1] > 1000.0  # the hook saw the scaled loss
    _assert_same(lightning, ours)


def test_grad_scaler_clipping_and_skipped_steps_equal_lightning() -> None:
    """A huge initial scale overflows in float16: the scaler skips steps (still counted) and backs off."""

    def run(pl: types.ModuleType, plugin_mod: Any) -> dict[str, Any]:
        scaler = torch.amp.GradScaler("cpu", init_scale=2.0**40)
        return _run(pl, plugins=[plugin_mod.MixedPrecision("16-mixed", "cpu", scaler)], gradient_clip_val=0.5)

    lightning = run(PL, PL.plugins)
    ours = run(LC, LCP)
    assert lightning["scaler"]["scale"] < 2.0**40  # some steps were skipped
    _assert_same(lightning, ours)


def test_scaler_state_is_restored_on_resume_as_lightning() -> None:
    """A lightcycle checkpoint's scaler state resumes in Lightning and in lightcycle alike."""
    first = _run(LC, plugins=[LCP.MixedPrecision("16-mixed", "cpu", torch.amp.GradScaler("cpu", init_scale=2.0**40))])
    assert first["scaler"]["scale"] < 2.0**40

    def resume(pl: types.ModuleType, plugin_mod: Any) -> dict[str, Any]:
        plugin = plugin_mod.MixedPrecision("16-mixed", "cpu")
        return _run(pl, plugins=[plugin], max_epochs=3, ckpt_path=first["path"])

    lightning = resume(PL, PL.plugins)
    ours = resume(LC, LCP)
    _assert_same(lightning, ours)


def test_bad_precision_is_refused_before_any_hook() -> None:
    for bad in ("8-mixed", True, "transformer-engine"):
        with pytest.raises(ValueError, match="is invalid"):
            LC.Trainer(precision=bad)
    with pytest.raises(ValueError, match="Received both"):
        LC.Trainer(precision="bf16-mixed", plugins=[LCP.MixedPrecision("bf16-mixed", "cpu")])
    with pytest.raises(LC.MisconfigurationException, match="Found invalid type for plugin"):
        LC.Trainer(plugins=[object()])
    with pytest.raises(LC.MisconfigurationException, match="does not use a scaler"):
        LCP.MixedPrecision("bf16-mixed", "cpu", torch.amp.GradScaler("cpu"))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("precision", ["16-mixed", "bf16-mixed", "16-true"])
def test_cuda_precision_equals_lightning(precision: str) -> None:
    lightning = _run(PL, precision=precision, accelerator="cuda")
    ours = _run(LC, precision=precision, accelerator="cuda")
    _assert_same(lightning, ours)


def test_precision_actions_are_declared_at_their_place_and_cost_nothing_in_32_bit() -> None:
    from lightcycle.diagrams.labels import steps
    from lightcycle.states import declaration as ev
    from lightcycle.states.declaration import LIFECYCLE

    texts = {
        t.trigger.name: [text for _, text in steps(t)]
        for t in LIFECYCLE.transitions
        if t.trigger is not ev.ENTRY["fit"]
    }
    assert texts["backward"][0] == "[scale_loss]"
    assert texts["before_optimizer_step"][0] == "[unscale_gradients]"
    assert texts["before_optimizer_step"][-1] == "[scaler_step]"
    assert texts["manual_optimizer_step"][0] == "[unscale_gradients]"
    assert texts["training_step"][0] == "[autocast]"
    assert texts["validation_step"][0] == "[autocast]"
    full = LCP.Precision()

    def fn(*a: Any) -> Any:
        return a

    assert full.wrap_step(fn, full.train_step_context) is fn
    assert full.wrap_transfer(fn) is fn and full.wrap_backward(fn) is fn
    mixed = LCP.MixedPrecision("bf16-mixed", "cpu")
    assert mixed.wrap_step(fn, mixed.train_step_context) is not fn and mixed.wrap_backward(fn) is fn


def test_loop_driver_precision_equals_the_trainer() -> None:
    """LoopDriver(precision=...): the same autocast, scaled loss and scaler steps as the Trainer."""
    recorder_cls, model_cls = _build(LC)
    torch.manual_seed(0)
    model = model_cls()
    recorder = recorder_cls()
    plugin = LCP.MixedPrecision("16-mixed", "cpu")
    from lightcycle import LoopDriver

    lc = LoopDriver(model, [recorder], precision=plugin)
    loader = model.train_dataloader()
    with lc.fit():
        for _epoch in lc.epochs(max_epochs=2):
            for batch_idx, batch in enumerate(loader):
                if batch_idx == 3:
                    break
                lc.train_batch_start(batch, batch_idx)
                out = lc.training_step()["loss"]
                lc.train_batch_end(out)
    trainer = _run(LC, plugins=[LCP.MixedPrecision("16-mixed", "cpu")], limit_val_batches=0)
    train_events = [e for e in trainer["events"] if not e[0].startswith("validation")]
    assert recorder.events == train_events
    assert plugin.state_dict() == trainer["scaler"]
    for k, w in trainer["weights"].items():
        torch.testing.assert_close(model.state_dict()[k], w)
