"""A recording module and callback, written once and run against either framework.

``build(pl)`` returns the classes for ``pl`` = ``pytorch_lightning`` or ``lightcycle``;
``run_scenario(pl, scenario)`` runs one scenario and returns its events and end state.
Events have the format of ``shared/traces`` (src, hook, args, ctx, optional phase), so a
lightcycle trace can be compared with a live Lightning trace event for event.
"""

from __future__ import annotations

import copy
import inspect
import logging
import tempfile
import types
import warnings
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, IterableDataset, TensorDataset

from tests import kit

for _name in ("pytorch_lightning", "lightning", "lightning.pytorch", "lightning_fabric"):
    logging.getLogger(_name).setLevel(logging.ERROR)

KEY_ARGS = ("batch_idx", "dataloader_idx", "stage", "exception", "outputs")
BASE_KWARGS: dict[str, Any] = kit.quiet(accelerator="cpu", devices=1)


def jsonable(v: Any) -> Any:
    if isinstance(v, (bool, int, float, str)) or v is None:
        return v
    if isinstance(v, BaseException):
        return f"{type(v).__name__}: {v}"
    if isinstance(v, torch.Tensor):
        return f"Tensor{tuple(v.shape)}"
    if isinstance(v, dict):
        return {str(k): jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v]
    return type(v).__name__


def summary_key(key: str) -> str:
    """A checkpoint key as the comparisons see it: both writers' version keys look alike
    (lightcycle's own ``lightcycle_version`` marker is left out by the callers)."""
    return "<version>" if key == "pytorch-lightning_version" else key


def ckpt_summary(ckpt: dict[str, Any]) -> dict[str, Any]:
    keys = sorted(summary_key(k) for k in ckpt if k != "lightcycle_version")
    return {
        "keys": keys,
        "epoch": ckpt.get("epoch"),
        "global_step": ckpt.get("global_step"),
        "callbacks": sorted(str(k) for k in (ckpt.get("callbacks") or {})),
    }


class Stream(IterableDataset):  # type: ignore[type-arg]
    """A dataset's items as a stream: a loader over it has no length."""

    def __init__(self, dataset: TensorDataset) -> None:
        self.dataset = dataset

    def __iter__(self) -> Any:
        return iter(self.dataset)


@dataclass
class Behaviour:
    """What the recording objects do besides recording (one scenario's injections)."""

    batch_start_return: dict[tuple[int, int], Any] = field(default_factory=dict)  # (epoch, batch) -> value
    step_raise: dict[tuple[int, int], BaseException] = field(default_factory=dict)  # training_step
    stop_at: tuple[int, int] | None = None  # (epoch, batch) at callback on_train_batch_end
    stop_in_hook: str | None = None  # callback hook that sets should_stop (first call outside sanity)
    raise_in: dict[tuple[str, str], BaseException] = field(default_factory=dict)  # (src, hook) -> exc, first call
    raise_skip_sanity: bool = True
    two_val_loaders: bool = False
    manual: bool = False
    n_train: int = 16
    n_eval: int = 8
    batch_size: int = 2
    scheduler: str | None = None  # None | "step" | "epoch" | "plateau"
    log_metrics: bool = False
    fail_in_on_exception: bool = False
    # Injections at the n-th recorded event of a hook (1-based; every event counts: sanity-check
    # calls and the "return" phase of a module hook too), so a point drawn from one run's trace
    # can be hit exactly in another run of the same scenario.
    stop_at_call: tuple[str, int] | None = None  # (callback hook, n): set trainer.should_stop there
    raise_at_call: dict[tuple[str, str, int], BaseException] = field(default_factory=dict)  # (src, hook, n) -> exc
    iterable_train: bool = False  # the train loader iterates an IterableDataset (no length)
    iterable_eval: bool = False  # so do the val/test/predict loaders
    max_events: int | None = None  # a run that records more raises RuntimeError once (a runaway loop)


def build(pl: types.ModuleType) -> types.SimpleNamespace:
    """The recording classes for framework ``pl``."""
    events: list[dict[str, Any]] = []
    calls: dict[tuple[str, str], int] = {}  # (src, hook) -> events recorded so far
    beh = Behaviour()

    def ctx(trainer: Any, module: Any) -> dict[str, Any]:
        c: dict[str, Any] = {}
        if trainer is not None:
            st = trainer.state
            c["fn"] = st.fn.value if st.fn is not None else None
            c["stage"] = st.stage.value if st.stage is not None else None
            c["status"] = st.status.value
            c["epoch"] = trainer.current_epoch
            c["global_step"] = trainer.global_step
            c["sanity"] = trainer.sanity_checking
            c["should_stop"] = trainer.should_stop
        if module is not None:
            c["training"] = module.training
        return c

    def rec(src: str, hook: str, args: dict[str, Any], trainer: Any, module: Any, phase: str | None = None) -> None:
        ev: dict[str, Any] = {
            "src": src,
            "hook": hook,
            "args": {k: jsonable(v) for k, v in args.items()},
            "ctx": ctx(trainer, module),
        }
        if phase:
            ev["phase"] = phase
        events.append(ev)
        calls[(src, hook)] = calls.get((src, hook), 0) + 1
        if beh.max_events is not None and len(events) == beh.max_events + 1:
            ev["args"]["_action"] = "raise RuntimeError"
            raise RuntimeError(f"recording: more than {beh.max_events} events (a runaway loop?)")

    def maybe_raise(src: str, hook: str, trainer: Any) -> None:
        at = (src, hook, calls.get((src, hook), 0))
        if at in beh.raise_at_call:
            exc = beh.raise_at_call.pop(at)
            events[-1]["args"]["_action"] = f"raise {type(exc).__name__}"
            raise exc
        exc = beh.raise_in.get((src, hook))
        if exc is None:
            return
        if beh.raise_skip_sanity and trainer is not None and trainer.sanity_checking:
            return
        del beh.raise_in[(src, hook)]
        events[-1]["args"]["_action"] = f"raise {type(exc).__name__}"
        raise exc

    hook_names = sorted(
        n
        for n in dir(pl.Callback)
        if n.startswith("on_") or n in ("setup", "teardown", "state_dict", "load_state_dict")
    )

    def make_cb_method(name: str) -> Any:
        base = getattr(pl.Callback, name)
        sig = inspect.signature(base)

        def method(self: Any, *a: Any, **kw: Any) -> Any:
            passed = dict(sig.bind(self, *a, **kw).arguments)
            trainer = passed.get("trainer", self._trainer)
            module = passed.get("pl_module")
            args = {k: passed[k] for k in KEY_ARGS if k in passed}
            if name in ("on_save_checkpoint", "on_load_checkpoint"):
                args["checkpoint"] = ckpt_summary(passed["checkpoint"])
            if name == "load_state_dict":
                args["state_dict"] = passed["state_dict"]
            rec(
                "callback",
                name,
                args,
                trainer,
                module if module is not None else getattr(trainer, "lightning_module", None),
            )
            if name == "setup":
                self._trainer = trainer
            if name == "on_train_batch_end" and beh.stop_at == (trainer.current_epoch, passed["batch_idx"]):
                trainer.should_stop = True
                events[-1]["args"]["_action"] = "set trainer.should_stop=True"
            if beh.stop_at_call == (name, calls[("callback", name)]) and trainer is not None:
                trainer.should_stop = True
                events[-1]["args"]["_action"] = "set trainer.should_stop=True"
            if beh.stop_in_hook == name and trainer is not None and not trainer.sanity_checking:
                beh.stop_in_hook = None
                trainer.should_stop = True
                events[-1]["args"]["_action"] = "set trainer.should_stop=True"
            if name == "on_exception" and beh.fail_in_on_exception:
                events[-1]["args"]["_action"] = "raise RuntimeError"
                raise RuntimeError("injected: inside on_exception")
            maybe_raise("callback", name, trainer)
            if name == "state_dict":
                return {"recorder": 1}
            return base(self, *a, **kw)

        method.__name__ = name
        return method

    def state_key(self: Any) -> str:
        return f"RecordingCallback[{self._index}]"

    def init(self: Any, index: int = 0) -> None:
        self._index = index
        self._trainer = None

    RecordingCallback = type(
        "RecordingCallback",
        (pl.Callback,),
        {"__init__": init, "state_key": property(state_key), **{n: make_cb_method(n) for n in hook_names}},
    )

    def data(n: int, seed: int) -> TensorDataset:
        g = torch.Generator().manual_seed(seed)
        return TensorDataset(torch.randn(n, 4, generator=g), torch.randn(n, 1, generator=g))

    def loader(ds: TensorDataset, iterable: bool) -> DataLoader:
        return DataLoader(Stream(ds) if iterable else ds, batch_size=beh.batch_size)

    def dl(idx: Any) -> dict[str, Any]:
        return {} if idx is None else {"dataloader_idx": idx}

    class RecModule(pl.LightningModule):  # type: ignore[name-defined,misc]
        def __init__(self) -> None:
            super().__init__()
            self.layer = nn.Linear(4, 1)
            if beh.manual:
                self.automatic_optimization = False

        def _r(self, hook: str, phase: str | None = None, **args: Any) -> None:
            rec("module", hook, args, self._trainer, self, phase)
            maybe_raise("module", hook, self._trainer)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.layer(x)

        def _loss(self, batch: Any) -> torch.Tensor:
            x, y = batch
            return nn.functional.mse_loss(self(x), y)

        def prepare_data(self) -> None:
            self._r("prepare_data")

        def setup(self, stage: str) -> None:
            self._r("setup", stage=stage)

        def teardown(self, stage: str) -> None:
            self._r("teardown", stage=stage)

        def train_dataloader(self) -> Any:
            self._r("train_dataloader")
            return loader(data(beh.n_train, 1), beh.iterable_train)

        def val_dataloader(self) -> Any:
            self._r("val_dataloader")
            if beh.two_val_loaders:
                return [loader(data(beh.n_eval, 2), beh.iterable_eval), loader(data(beh.n_eval, 3), beh.iterable_eval)]
            return loader(data(beh.n_eval, 2), beh.iterable_eval)

        def test_dataloader(self) -> Any:
            self._r("test_dataloader")
            if beh.two_val_loaders:
                return [loader(data(beh.n_eval, 4), beh.iterable_eval), loader(data(beh.n_eval, 6), beh.iterable_eval)]
            return loader(data(beh.n_eval, 4), beh.iterable_eval)

        def predict_dataloader(self) -> Any:
            self._r("predict_dataloader")
            if beh.two_val_loaders:
                return [loader(data(beh.n_eval, 5), beh.iterable_eval), loader(data(beh.n_eval, 7), beh.iterable_eval)]
            return loader(data(beh.n_eval, 5), beh.iterable_eval)

        def on_before_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
            self._r("on_before_batch_transfer", dataloader_idx=dataloader_idx)
            return super().on_before_batch_transfer(batch, dataloader_idx)

        def transfer_batch_to_device(self, batch: Any, device: torch.device, dataloader_idx: int) -> Any:
            self._r("transfer_batch_to_device", dataloader_idx=dataloader_idx, device=str(device))
            return super().transfer_batch_to_device(batch, device, dataloader_idx)

        def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
            self._r("on_after_batch_transfer", dataloader_idx=dataloader_idx)
            return super().on_after_batch_transfer(batch, dataloader_idx)

        def configure_callbacks(self) -> Any:
            self._r("configure_callbacks")
            return []

        def configure_model(self) -> None:
            self._r("configure_model")

        def configure_optimizers(self) -> Any:
            self._r("configure_optimizers")
            opt = torch.optim.SGD(self.parameters(), lr=0.1)
            if beh.scheduler == "step":
                return {
                    "optimizer": opt,
                    "lr_scheduler": {"scheduler": torch.optim.lr_scheduler.StepLR(opt, 1), "interval": "step"},
                }
            if beh.scheduler == "epoch":
                return [opt], [torch.optim.lr_scheduler.StepLR(opt, 1)]
            if beh.scheduler == "plateau":
                return {
                    "optimizer": opt,
                    "lr_scheduler": {
                        "scheduler": torch.optim.lr_scheduler.ReduceLROnPlateau(opt),
                        "monitor": "train_loss",
                    },
                }
            return opt

        def on_fit_start(self) -> None:
            self._r("on_fit_start")

        def on_fit_end(self) -> None:
            self._r("on_fit_end")

        def on_train_start(self) -> None:
            self._r("on_train_start")

        def on_train_end(self) -> None:
            self._r("on_train_end")

        def on_validation_start(self) -> None:
            self._r("on_validation_start")

        def on_validation_end(self) -> None:
            self._r("on_validation_end")

        def on_test_start(self) -> None:
            self._r("on_test_start")

        def on_test_end(self) -> None:
            self._r("on_test_end")

        def on_predict_start(self) -> None:
            self._r("on_predict_start")

        def on_predict_end(self) -> None:
            self._r("on_predict_end")

        def on_train_epoch_start(self) -> None:
            self._r("on_train_epoch_start")

        def on_train_epoch_end(self) -> None:
            self._r("on_train_epoch_end")

        def on_validation_epoch_start(self) -> None:
            self._r("on_validation_epoch_start")

        def on_validation_epoch_end(self) -> None:
            self._r("on_validation_epoch_end")

        def on_test_epoch_start(self) -> None:
            self._r("on_test_epoch_start")

        def on_test_epoch_end(self) -> None:
            self._r("on_test_epoch_end")

        def on_predict_epoch_start(self) -> None:
            self._r("on_predict_epoch_start")

        def on_predict_epoch_end(self) -> None:
            self._r("on_predict_epoch_end")

        def on_validation_model_zero_grad(self) -> None:
            self._r("on_validation_model_zero_grad")
            super().on_validation_model_zero_grad()

        def on_validation_model_eval(self) -> None:
            self._r("on_validation_model_eval")
            super().on_validation_model_eval()

        def on_validation_model_train(self) -> None:
            self._r("on_validation_model_train")
            super().on_validation_model_train()

        def on_test_model_eval(self) -> None:
            self._r("on_test_model_eval")
            super().on_test_model_eval()

        def on_test_model_train(self) -> None:
            self._r("on_test_model_train")
            super().on_test_model_train()

        def on_predict_model_eval(self) -> None:
            self._r("on_predict_model_eval")
            super().on_predict_model_eval()

        def on_train_batch_start(self, batch: Any, batch_idx: int) -> Any:
            ret = beh.batch_start_return.get((self.current_epoch, batch_idx))
            self._r("on_train_batch_start", batch_idx=batch_idx, **({"_return": ret} if ret is not None else {}))
            return ret

        def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
            self._r("on_train_batch_end", batch_idx=batch_idx, outputs=outputs)

        def on_validation_batch_start(self, batch: Any, batch_idx: int, dataloader_idx: Any = None) -> None:
            self._r("on_validation_batch_start", batch_idx=batch_idx, **dl(dataloader_idx))

        def on_validation_batch_end(self, outputs: Any, batch: Any, batch_idx: int, dataloader_idx: Any = None) -> None:
            self._r("on_validation_batch_end", batch_idx=batch_idx, outputs=outputs, **dl(dataloader_idx))

        def on_test_batch_start(self, batch: Any, batch_idx: int, dataloader_idx: Any = None) -> None:
            self._r("on_test_batch_start", batch_idx=batch_idx, **dl(dataloader_idx))

        def on_test_batch_end(self, outputs: Any, batch: Any, batch_idx: int, dataloader_idx: Any = None) -> None:
            self._r("on_test_batch_end", batch_idx=batch_idx, outputs=outputs, **dl(dataloader_idx))

        def on_predict_batch_start(self, batch: Any, batch_idx: int, dataloader_idx: Any = None) -> None:
            self._r("on_predict_batch_start", batch_idx=batch_idx, **dl(dataloader_idx))

        def on_predict_batch_end(self, outputs: Any, batch: Any, batch_idx: int, dataloader_idx: Any = None) -> None:
            self._r("on_predict_batch_end", batch_idx=batch_idx, outputs=outputs, **dl(dataloader_idx))

        def training_step(self, batch: Any, batch_idx: int) -> Any:
            self._r("training_step", batch_idx=batch_idx)
            exc = beh.step_raise.get((self.current_epoch, batch_idx))
            if exc is not None:
                events[-1]["args"]["_action"] = f"raise {type(exc).__name__}"
                raise exc
            loss = self._loss(batch)
            if beh.log_metrics:
                self.log("train_loss", loss, on_step=True, on_epoch=True)
            if beh.manual:
                opt = self.optimizers()
                opt.zero_grad()
                self.manual_backward(loss)
                opt.step()
            self._r("training_step", phase="return", batch_idx=batch_idx)
            return loss

        def validation_step(self, batch: Any, batch_idx: int, dataloader_idx: Any = None) -> Any:
            self._r("validation_step", batch_idx=batch_idx, **dl(dataloader_idx))
            loss = self._loss(batch)
            if beh.log_metrics:
                self.log("val_loss", loss)
            return loss

        def test_step(self, batch: Any, batch_idx: int, dataloader_idx: Any = None) -> Any:
            self._r("test_step", batch_idx=batch_idx, **dl(dataloader_idx))
            loss = self._loss(batch)
            if beh.log_metrics:
                self.log("test_loss", loss)
            return loss

        def predict_step(self, batch: Any, batch_idx: int, dataloader_idx: Any = None) -> Any:
            self._r("predict_step", batch_idx=batch_idx, **dl(dataloader_idx))
            return self(batch[0])

        def on_before_backward(self, loss: torch.Tensor) -> None:
            self._r("on_before_backward")

        def backward(self, loss: torch.Tensor, *args: Any, **kwargs: Any) -> None:
            self._r("backward")
            super().backward(loss, *args, **kwargs)

        def manual_backward(self, loss: torch.Tensor, *args: Any, **kwargs: Any) -> None:
            self._r("manual_backward")
            super().manual_backward(loss, *args, **kwargs)
            self._r("manual_backward", phase="return")

        def on_after_backward(self) -> None:
            self._r("on_after_backward")

        def on_before_optimizer_step(self, optimizer: Any) -> None:
            self._r("on_before_optimizer_step")

        def configure_gradient_clipping(
            self, optimizer: Any, gradient_clip_val: Any = None, gradient_clip_algorithm: Any = None
        ) -> None:
            self._r(
                "configure_gradient_clipping",
                gradient_clip_val=gradient_clip_val,
                gradient_clip_algorithm=gradient_clip_algorithm,
            )
            super().configure_gradient_clipping(optimizer, gradient_clip_val, gradient_clip_algorithm)

        def clip_gradients(
            self, optimizer: Any, gradient_clip_val: Any = None, gradient_clip_algorithm: Any = None
        ) -> None:
            self._r(
                "clip_gradients", gradient_clip_val=gradient_clip_val, gradient_clip_algorithm=gradient_clip_algorithm
            )
            super().clip_gradients(optimizer, gradient_clip_val, gradient_clip_algorithm)

        def optimizer_step(self, epoch: int, batch_idx: int, optimizer: Any, optimizer_closure: Any = None) -> None:
            self._r("optimizer_step", epoch=epoch, batch_idx=batch_idx)
            super().optimizer_step(epoch, batch_idx, optimizer, optimizer_closure)
            self._r("optimizer_step", phase="return", epoch=epoch, batch_idx=batch_idx)

        def on_before_zero_grad(self, optimizer: Any) -> None:
            self._r("on_before_zero_grad")

        def optimizer_zero_grad(self, epoch: int, batch_idx: int, optimizer: Any) -> None:
            self._r("optimizer_zero_grad", epoch=epoch, batch_idx=batch_idx)
            super().optimizer_zero_grad(epoch, batch_idx, optimizer)

        def lr_scheduler_step(self, scheduler: Any, metric: Any) -> None:
            self._r("lr_scheduler_step", metric=None if metric is None else "set")
            super().lr_scheduler_step(scheduler, metric)

        def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
            self._r("on_save_checkpoint", checkpoint=ckpt_summary(checkpoint))

        def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
            self._r("on_load_checkpoint", checkpoint=ckpt_summary(checkpoint))

    class NoValModule(RecModule):
        # the framework's own function object: "not overridden", so no validation loop
        val_dataloader = pl.LightningModule.val_dataloader

    return types.SimpleNamespace(
        pl=pl,
        events=events,
        behaviour=beh,
        RecordingCallback=RecordingCallback,
        RecModule=RecModule,
        NoValModule=NoValModule,
    )


def end_state(trainer: Any) -> dict[str, Any]:
    st = trainer.state
    return {
        "status": st.status.value,
        "fn": st.fn.value if st.fn is not None else None,
        "stage": st.stage.value if st.stage is not None else None,
        "current_epoch": trainer.current_epoch,
        "global_step": trainer.global_step,
        "should_stop": trainer.should_stop,
        "interrupted": trainer.interrupted,
    }


@dataclass
class Scenario:
    """One run: Trainer arguments, the entry point, and the injected behaviour."""

    trainer: dict[str, Any]
    entry: str = "fit"
    behaviour: dict[str, Any] = field(default_factory=dict)
    module: str = "rec"  # rec | noval
    extra_callbacks: int = 0  # more recording callbacks (to see list-order dispatch)


def run_scenario(pl: types.ModuleType, sc: Scenario, seed: int = 0) -> dict[str, Any]:
    """Run ``sc`` with framework ``pl``; returns events, end state and the exception text."""
    ns = build(pl)
    for k, v in sc.behaviour.items():
        setattr(ns.behaviour, k, copy.deepcopy(v))  # injections are consumed as they fire
    pl.seed_everything(seed, verbose=False) if "verbose" in inspect.signature(
        pl.seed_everything
    ).parameters else pl.seed_everything(seed)
    tmp = tempfile.mkdtemp(prefix="lc_trace_")
    cbs = [ns.RecordingCallback(i) for i in range(1 + sc.extra_callbacks)]
    kwargs = {**BASE_KWARGS, **sc.trainer}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer = pl.Trainer(**kwargs, callbacks=cbs, default_root_dir=tmp)
        model = (ns.NoValModule if sc.module == "noval" else ns.RecModule)()
        exc: str | None = None
        error: BaseException | None = None
        try:
            out = getattr(trainer, sc.entry)(model)
        except BaseException as e:
            exc = f"{type(e).__name__}: {e}".split("\n")[0]
            error = e
            out = None
    return {
        "events": list(ns.events),
        "state": end_state(trainer),
        "exception": exc,
        "error": error,  # the object itself, for a caller that re-raises it (its exit status)
        "output": jsonable(out),
        "trainer": trainer,
    }
