# ruff: noqa
# A copy of the team's recording tool (shared/tools/trace_ddp.py) that recorded tests/fixtures/lightning-2.6.6-ddp,
# kept so those traces can be recorded again from this repository; not part of the package.
"""Per-rank hook traces of real Lightning 2.6 under DDP on CPU (gloo).

Usage (from this directory, in a venv with torch and pytorch-lightning 2.6):

    python trace_ddp.py --all --out .                          # every config below, each as its own job
    python trace_ddp.py --out . --strategy ddp --devices 2 --scenario fit_test   # one config

Configs: strategy in {auto (devices=1), ddp, ddp_spawn} x scenario in {fit_test, fail_rank1, fail_rank0}.

Every process writes <out>/<strategy>_<devices>__<scenario>.rank<R>.jsonl *live* (appended and flushed per
event, so a process killed by Lightning's child-process observer still leaves its trace), plus
<...>.rank<R>.meta.json when it ends normally. A ddp_spawn launcher process writes <...>.launcher.jsonl.

Event format: the shared Lightning reference traces' format (src, hook, args, ctx, optional phase),
recorded by the same RecordingCallback / RecModule as shared/tools/trace_lightning.py
(copied below), with three additions:
  * ctx gains "rank", "world_size", "pid", "wrapped" (type of strategy.model: LightningModule subclass
    or DistributedDataParallel) and "pg" (torch.distributed.is_initialized());
  * training/validation/test_step args carry "_indices": the dataset indices of the batch (the shard
    the DistributedSampler gave this rank);
  * events with src "strategy", "launcher", "dist", "data", "trainer", "loop" record Lightning-internal
    distributed steps (process-group init, DDP wrapping, barriers, broadcasts, reduces, sampler injection,
    the per-batch SIGTERM broadcast, checkpoint writes) in the same stream, so their position relative to
    hooks is visible. `lightcycle verify` skips these (it checks only callback/module/datamodule events).
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

if os.environ.get("TRACE_IMPL", "pytorch_lightning") == "lightning":
    import lightning.pytorch as pl
    from lightning.pytorch.callbacks import ModelCheckpoint
else:
    import pytorch_lightning as pl
    from pytorch_lightning.callbacks import ModelCheckpoint

EVENTS: list[dict] = []


class _Cfg:
    """Per-run knobs read by the recording module / callback."""

    train_batch_start_return: dict = {}  # (epoch, batch_idx) -> return value
    step_raise: dict = {}  # (epoch, batch_idx) -> exception instance
    cb_stop_at: tuple | None = None  # (epoch, batch_idx) at on_train_batch_end -> trainer.should_stop = True
    cb_raise_val_batch_end: bool = False  # raise ValueError at first non-sanity on_validation_batch_end
    cb_raise_setup: bool = False
    two_val_loaders: bool = False
    manual: bool = False
    sync_dist: bool = True
    raise_rank: int = -1


CFG = _Cfg()


def _ctx(trainer, module) -> dict:
    c: dict = {}
    try:
        if trainer is not None:
            st = trainer.state
            c["fn"] = st.fn.value if st.fn is not None else None
            c["stage"] = st.stage.value if st.stage is not None else None
            c["status"] = st.status.value
            c["epoch"] = trainer.current_epoch
            c["global_step"] = trainer.global_step
            c["sanity"] = trainer.sanity_checking
            c["should_stop"] = trainer.should_stop
    except Exception as e:  # pragma: no cover - record, never fail
        c["ctx_error"] = repr(e)
    if module is not None:
        c["training"] = module.training
    return c


def _jsonable(v):
    if isinstance(v, (bool, int, float, str)) or v is None:
        return v
    if isinstance(v, BaseException):
        return f"{type(v).__name__}: {v}"
    if isinstance(v, torch.Tensor):
        return f"Tensor{tuple(v.shape)}"
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    return type(v).__name__


def rec(src, hook, args, trainer, module, phase=None):
    ev = {"src": src, "hook": hook, "args": {k: _jsonable(v) for k, v in args.items()}, "ctx": _ctx(trainer, module)}
    if phase:
        ev["phase"] = phase
    ev["ctx"].update(_dist_ctx(trainer))
    EVENTS.append(ev)
    _write_live(ev)


def _ckpt_summary(ckpt: dict) -> dict:
    return {
        "keys": sorted(ckpt.keys()),
        "epoch": ckpt.get("epoch"),
        "global_step": ckpt.get("global_step"),
        "callbacks": sorted(str(k) for k in (ckpt.get("callbacks") or {}).keys()),
    }


# --------------------------------------------------------------------------- callback
CALLBACK_HOOKS = sorted(
    n for n in dir(pl.Callback) if n.startswith("on_") or n in ("setup", "teardown", "state_dict", "load_state_dict")
)
KEY_ARGS = ("batch_idx", "dataloader_idx", "stage", "exception", "outputs")


def _make_cb_method(name):
    base = getattr(pl.Callback, name)
    sig = inspect.signature(base)

    def method(self, *a, **kw):
        bound = sig.bind(self, *a, **kw)
        passed = dict(bound.arguments)
        trainer = passed.get("trainer", self._trainer)
        module = passed.get("pl_module")
        args = {k: passed[k] for k in KEY_ARGS if k in passed}
        if name in ("on_save_checkpoint", "on_load_checkpoint"):
            args["checkpoint"] = _ckpt_summary(passed["checkpoint"])
        if name == "load_state_dict":
            args["state_dict"] = passed["state_dict"]
        rec(
            "callback",
            name,
            args,
            trainer,
            module if module is not None else getattr(trainer, "lightning_module", None),
        )
        # injected behaviours
        if name == "setup":
            self._trainer = trainer
            if CFG.cb_raise_setup:
                EVENTS[-1]["args"]["_action"] = "raise RuntimeError"
                raise RuntimeError("injected: callback setup")
        if name == "on_train_batch_end" and CFG.cb_stop_at == (trainer.current_epoch, passed["batch_idx"]):
            trainer.should_stop = True
            EVENTS[-1]["args"]["_action"] = "set trainer.should_stop=True"
        if name == "on_validation_batch_end" and CFG.cb_raise_val_batch_end and not trainer.sanity_checking:
            EVENTS[-1]["args"]["_action"] = "raise ValueError"
            raise ValueError("injected: callback on_validation_batch_end")
        if name == "state_dict":
            # non-empty so that Lightning stores it and calls load_state_dict on resume
            return {"recorder": 1}
        return base(self, *a, **kw)

    method.__name__ = name
    return method


RecordingCallback = type(
    "RecordingCallback",
    (pl.Callback,),
    {"_trainer": None, **{n: _make_cb_method(n) for n in CALLBACK_HOOKS}},
)


# --------------------------------------------------------------------------- module
def _data(n=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return TensorDataset(torch.randn(n, 4, generator=g), torch.randn(n, 1, generator=g), torch.arange(n))


def _dl(dataloader_idx):
    # module hooks/steps declare dataloader_idx=None so we can tell "not passed" from 0
    return {} if dataloader_idx is None else {"dataloader_idx": dataloader_idx}


class RecModule(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.layer = nn.Linear(4, 1)
        if CFG.manual:
            self.automatic_optimization = False

    def _r(self, hook, phase=None, **args):
        rec("module", hook, args, self._trainer, self, phase)

    def forward(self, x):
        return self.layer(x)

    def _loss(self, batch):
        x, y = batch[0], batch[1]
        return nn.functional.mse_loss(self(x), y)

    # ---- data hooks
    def prepare_data(self):
        self._r("prepare_data")

    def setup(self, stage):
        self._r("setup", stage=stage)

    def teardown(self, stage):
        self._r("teardown", stage=stage)

    def train_dataloader(self):
        self._r("train_dataloader")
        return DataLoader(_data(16, 1), batch_size=2)

    def val_dataloader(self):
        self._r("val_dataloader")
        if CFG.two_val_loaders:
            return [DataLoader(_data(8, 2), batch_size=2), DataLoader(_data(8, 3), batch_size=2)]
        return DataLoader(_data(8, 2), batch_size=2)

    def test_dataloader(self):
        self._r("test_dataloader")
        return DataLoader(_data(8, 4), batch_size=2)

    def predict_dataloader(self):
        self._r("predict_dataloader")
        return DataLoader(_data(8, 5), batch_size=2)

    def on_before_batch_transfer(self, batch, dataloader_idx):
        self._r("on_before_batch_transfer", dataloader_idx=dataloader_idx)
        return super().on_before_batch_transfer(batch, dataloader_idx)

    def transfer_batch_to_device(self, batch, device, dataloader_idx):
        self._r("transfer_batch_to_device", dataloader_idx=dataloader_idx, device=str(device))
        return super().transfer_batch_to_device(batch, device, dataloader_idx)

    def on_after_batch_transfer(self, batch, dataloader_idx):
        self._r("on_after_batch_transfer", dataloader_idx=dataloader_idx)
        return super().on_after_batch_transfer(batch, dataloader_idx)

    # ---- configure
    def configure_callbacks(self):
        self._r("configure_callbacks")
        return []

    def configure_model(self):
        self._r("configure_model")

    def configure_optimizers(self):
        self._r("configure_optimizers")
        return torch.optim.SGD(self.parameters(), lr=0.1)

    # ---- fit / stage start-end
    def on_fit_start(self):
        self._r("on_fit_start")

    def on_fit_end(self):
        self._r("on_fit_end")

    def on_train_start(self):
        self._r("on_train_start")

    def on_train_end(self):
        self._r("on_train_end")

    def on_validation_start(self):
        self._r("on_validation_start")

    def on_validation_end(self):
        self._r("on_validation_end")

    def on_test_start(self):
        self._r("on_test_start")

    def on_test_end(self):
        self._r("on_test_end")

    def on_predict_start(self):
        self._r("on_predict_start")

    def on_predict_end(self):
        self._r("on_predict_end")

    # ---- epochs
    def on_train_epoch_start(self):
        self._r("on_train_epoch_start")

    def on_train_epoch_end(self):
        self._r("on_train_epoch_end")

    def on_validation_epoch_start(self):
        self._r("on_validation_epoch_start")

    def on_validation_epoch_end(self):
        self._r("on_validation_epoch_end")

    def on_test_epoch_start(self):
        self._r("on_test_epoch_start")

    def on_test_epoch_end(self):
        self._r("on_test_epoch_end")

    def on_predict_epoch_start(self):
        self._r("on_predict_epoch_start")

    def on_predict_epoch_end(self):
        self._r("on_predict_epoch_end")

    # ---- model mode hooks
    def on_validation_model_zero_grad(self):
        self._r("on_validation_model_zero_grad")
        super().on_validation_model_zero_grad()

    def on_validation_model_eval(self):
        self._r("on_validation_model_eval")
        super().on_validation_model_eval()

    def on_validation_model_train(self):
        self._r("on_validation_model_train")
        super().on_validation_model_train()

    def on_test_model_eval(self):
        self._r("on_test_model_eval")
        super().on_test_model_eval()

    def on_test_model_train(self):
        self._r("on_test_model_train")
        super().on_test_model_train()

    def on_predict_model_eval(self):
        self._r("on_predict_model_eval")
        super().on_predict_model_eval()

    # ---- batches
    def on_train_batch_start(self, batch, batch_idx):
        ret = CFG.train_batch_start_return.get((self.current_epoch, batch_idx))
        self._r("on_train_batch_start", batch_idx=batch_idx, **({"_return": ret} if ret is not None else {}))
        return ret

    def on_train_batch_end(self, outputs, batch, batch_idx):
        self._r("on_train_batch_end", batch_idx=batch_idx, outputs=outputs)

    def on_validation_batch_start(self, batch, batch_idx, dataloader_idx=None):
        self._r("on_validation_batch_start", batch_idx=batch_idx, **_dl(dataloader_idx))

    def on_validation_batch_end(self, outputs, batch, batch_idx, dataloader_idx=None):
        self._r("on_validation_batch_end", batch_idx=batch_idx, outputs=outputs, **_dl(dataloader_idx))

    def on_test_batch_start(self, batch, batch_idx, dataloader_idx=None):
        self._r("on_test_batch_start", batch_idx=batch_idx, **_dl(dataloader_idx))

    def on_test_batch_end(self, outputs, batch, batch_idx, dataloader_idx=None):
        self._r("on_test_batch_end", batch_idx=batch_idx, outputs=outputs, **_dl(dataloader_idx))

    def on_predict_batch_start(self, batch, batch_idx, dataloader_idx=None):
        self._r("on_predict_batch_start", batch_idx=batch_idx, **_dl(dataloader_idx))

    def on_predict_batch_end(self, outputs, batch, batch_idx, dataloader_idx=None):
        self._r("on_predict_batch_end", batch_idx=batch_idx, outputs=outputs, **_dl(dataloader_idx))

    # ---- steps
    def training_step(self, batch, batch_idx):
        self._r("training_step", batch_idx=batch_idx, _indices=batch[2].tolist())
        exc = CFG.step_raise.get((self.current_epoch, batch_idx)) if self.global_rank == CFG.raise_rank else None
        if exc is not None:
            EVENTS[-1]["args"]["_action"] = f"raise {type(exc).__name__}"
            raise exc
        loss = self._loss(batch)
        self.log("train_loss", loss, sync_dist=CFG.sync_dist)
        if CFG.manual:
            opt = self.optimizers()
            opt.zero_grad()
            self.manual_backward(loss)
            opt.step()
        self._r("training_step", phase="return", batch_idx=batch_idx)
        return loss

    def validation_step(self, batch, batch_idx, dataloader_idx=None):
        self._r("validation_step", batch_idx=batch_idx, _indices=batch[2].tolist(), **_dl(dataloader_idx))
        loss = self._loss(batch)
        self.log("val_loss", loss, sync_dist=CFG.sync_dist)
        return loss

    def test_step(self, batch, batch_idx, dataloader_idx=None):
        self._r("test_step", batch_idx=batch_idx, _indices=batch[2].tolist(), **_dl(dataloader_idx))
        return self._loss(batch)

    def predict_step(self, batch, batch_idx, dataloader_idx=None):
        self._r("predict_step", batch_idx=batch_idx, **_dl(dataloader_idx))
        return self(batch[0])

    # ---- optimisation
    def on_before_backward(self, loss):
        self._r("on_before_backward")

    def backward(self, loss, *args, **kwargs):
        self._r("backward")
        super().backward(loss, *args, **kwargs)

    def manual_backward(self, loss, *args, **kwargs):
        self._r("manual_backward")
        super().manual_backward(loss, *args, **kwargs)
        self._r("manual_backward", phase="return")

    def on_after_backward(self):
        self._r("on_after_backward")

    def on_before_optimizer_step(self, optimizer):
        self._r("on_before_optimizer_step")

    def configure_gradient_clipping(self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None):
        self._r(
            "configure_gradient_clipping",
            gradient_clip_val=gradient_clip_val,
            gradient_clip_algorithm=gradient_clip_algorithm,
        )
        super().configure_gradient_clipping(optimizer, gradient_clip_val, gradient_clip_algorithm)

    def clip_gradients(self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None):
        self._r("clip_gradients", gradient_clip_val=gradient_clip_val, gradient_clip_algorithm=gradient_clip_algorithm)
        super().clip_gradients(optimizer, gradient_clip_val, gradient_clip_algorithm)

    def optimizer_step(self, epoch, batch_idx, optimizer, optimizer_closure=None):
        self._r("optimizer_step", epoch=epoch, batch_idx=batch_idx)
        super().optimizer_step(epoch, batch_idx, optimizer, optimizer_closure)
        self._r("optimizer_step", phase="return", epoch=epoch, batch_idx=batch_idx)

    def on_before_zero_grad(self, optimizer):
        self._r("on_before_zero_grad")

    def optimizer_zero_grad(self, epoch, batch_idx, optimizer):
        self._r("optimizer_zero_grad", epoch=epoch, batch_idx=batch_idx)
        super().optimizer_zero_grad(epoch, batch_idx, optimizer)

    def lr_scheduler_step(self, scheduler, metric):
        self._r("lr_scheduler_step")
        super().lr_scheduler_step(scheduler, metric)

    def toggle_optimizer(self, optimizer):
        self._r("toggle_optimizer")
        super().toggle_optimizer(optimizer)

    def untoggle_optimizer(self, optimizer):
        self._r("untoggle_optimizer")
        super().untoggle_optimizer(optimizer)

    # ---- checkpoint
    def on_save_checkpoint(self, checkpoint):
        self._r("on_save_checkpoint", checkpoint=_ckpt_summary(checkpoint))

    def on_load_checkpoint(self, checkpoint):
        self._r("on_load_checkpoint", checkpoint=_ckpt_summary(checkpoint))


# =========================================================================== distributed additions
import multiprocessing
import torch.distributed as _dist
from pytorch_lightning.strategies import DDPStrategy, SingleDeviceStrategy
from pytorch_lightning.strategies.launchers.subprocess_script import _SubprocessScriptLauncher
from pytorch_lightning.strategies.launchers.multiprocessing import _MultiProcessingLauncher
from pytorch_lightning.trainer.connectors.data_connector import _DataConnector
from pytorch_lightning.loops.training_epoch_loop import _TrainingEpochLoop

_AP = argparse.ArgumentParser()
_AP.add_argument("--out", default=".")
_AP.add_argument("--strategy", default="ddp", choices=["auto", "ddp", "ddp_spawn"])
_AP.add_argument("--devices", type=int, default=2)
_AP.add_argument(
    "--scenario", default="fit_test", choices=["fit_test", "fail_rank1", "fail_rank0", "fail_rank1_onexc_ckpt"]
)
_AP.add_argument("--precision", default="32-true", choices=["32-true", "bf16-mixed", "16-mixed"])
_AP.add_argument("--tag-prefix", default="", help="prefix for the output names, e.g. 'torchrun_'")
_AP.add_argument("--all", action="store_true")
ARGS, _ = _AP.parse_known_args()
TAG = f"{ARGS.tag_prefix}{'single' if ARGS.strategy == 'auto' else ARGS.strategy}_{ARGS.devices}__{ARGS.scenario}"
if ARGS.precision != "32-true":
    TAG += f"__{ARGS.precision}"
_FH = {}


def _proc_key() -> str:
    if ARGS.strategy == "ddp_spawn" and multiprocessing.parent_process() is None:
        return "launcher"  # the process that called trainer.fit(); the ranks are its spawned children
    return f"rank{int(os.environ.get('NODE_RANK', 0)) * ARGS.devices + int(os.environ.get('LOCAL_RANK', 0))}"


_PREFIXES = sorted(
    {os.path.dirname(os.path.abspath(__file__)), os.getcwd(), sys.prefix, sys.base_prefix, os.path.abspath(ARGS.out)},
    key=len,
    reverse=True,
)


def _scrub(text: str) -> str:
    """Keep this machine's absolute paths out of the recorded files."""
    for prefix in _PREFIXES:
        label = (
            "<venv>"
            if prefix in (sys.prefix, sys.base_prefix)
            else "<out>"
            if prefix == os.path.abspath(ARGS.out)
            else "<here>"
        )
        text = text.replace(prefix, label)
    return text


def _write_live(ev: dict) -> None:
    key = _proc_key()
    fh = _FH.get(key)
    if fh is None:
        fh = _FH[key] = open(Path(ARGS.out) / f"{TAG}.{key}.jsonl", "a", encoding="utf-8")
    fh.write(_scrub(json.dumps(ev)) + "\n")
    fh.flush()


def _dist_ctx(trainer) -> dict:
    c = {"pid": os.getpid(), "pg": bool(_dist.is_available() and _dist.is_initialized())}
    if c["pg"]:
        c["rank"], c["world_size"] = _dist.get_rank(), _dist.get_world_size()
    elif trainer is not None:
        c["rank"], c["world_size"] = trainer.global_rank, trainer.world_size
    strategy = getattr(trainer, "strategy", None)
    if strategy is not None and strategy.model is not None:
        c["wrapped"] = type(strategy.model).__name__
    return c


def _trainer_of(strategy):
    lm = getattr(strategy, "_lightning_module", None)
    return getattr(lm, "_trainer", None) if lm is not None else None


def _wrap(cls, name, src, argfn=None, returns=False, trainer_fn=_trainer_of):
    orig = getattr(cls, name)

    def wrapper(self, *a, **kw):
        try:
            args = argfn(self, *a, **kw) if argfn else {}
        except Exception as e:  # never fail the run because of recording
            args = {"_argfn_error": repr(e)}
        t = trainer_fn(self)
        rec(src, name, args, t, None)
        out = orig(self, *a, **kw)
        if returns:
            rec(src, name, {}, trainer_fn(self), None, phase="return")
        return out

    wrapper.__name__ = name
    setattr(cls, name, wrapper)


for _cls in (DDPStrategy, SingleDeviceStrategy):
    _wrap(_cls, "setup_environment", "strategy", returns=True)
    _wrap(_cls, "setup", "strategy", returns=True)
    _wrap(_cls, "model_to_device", "strategy", lambda s: {"device": str(s.root_device)})
    _wrap(_cls, "setup_optimizers", "strategy")
    _wrap(_cls, "barrier", "strategy", lambda s, *a, **k: {"name": a[0] if a else k.get("name")})
    _wrap(
        _cls,
        "broadcast",
        "strategy",
        lambda s, obj, src=0: {
            "obj": obj if isinstance(obj, (str, bool, int, float)) or obj is None else type(obj).__name__,
            "src": src,
        },
    )
    _wrap(
        _cls,
        "reduce",
        "strategy",
        lambda s, t, *a, **k: {
            "tensor": _jsonable(t),
            "reduce_op": str(k.get("reduce_op", a[1] if len(a) > 1 else "mean")),
        },
    )
    _wrap(_cls, "reduce_boolean_decision", "strategy", lambda s, d, all=True: {"decision": bool(d), "all": all})
    _wrap(
        _cls,
        "save_checkpoint",
        "strategy",
        lambda s, ckpt, fp, *a, **k: {"file": os.path.basename(str(fp)), "writes": s.is_global_zero},
    )
    _wrap(_cls, "on_exception", "strategy", lambda s, e: {"exception": _jsonable(e)})
    _wrap(_cls, "teardown", "strategy", returns=True)
_wrap(DDPStrategy, "setup_distributed", "strategy", returns=True)
_wrap(DDPStrategy, "configure_ddp", "strategy", returns=True)
_wrap(
    _SubprocessScriptLauncher,
    "launch",
    "launcher",
    lambda s, fn, *a, **k: {
        "creates_processes_externally": s.cluster_environment.creates_processes_externally,
        "num_processes": s.num_processes,
    },
    trainer_fn=lambda s: None,
)
_wrap(
    _MultiProcessingLauncher,
    "launch",
    "launcher",
    lambda s, fn, *a, **k: {"start_method": s._start_method, "nprocs": s._strategy.num_processes},
    returns=True,
    trainer_fn=lambda s: None,
)
_wrap(_TrainingEpochLoop, "_broadcast_sigterm_tensor", "loop", trainer_fn=lambda s: s.trainer)
_wrap(
    pl.Trainer,
    "save_checkpoint",
    "trainer",
    lambda s, fp, *a, **k: {"file": os.path.basename(str(fp))},
    trainer_fn=lambda s: s,
)
_wrap(pl.Trainer, "_teardown", "trainer", trainer_fn=lambda s: s)

# precision: where the GradScaler acts relative to the hooks, and whether the step runs under autocast
for _name in ("scale", "unscale_", "step", "update"):
    _wrap(
        torch.amp.GradScaler,
        _name,
        "precision",
        lambda s, *a, **k: {"scale": float(s.get_scale()) if s.is_enabled() else None},
        trainer_fn=lambda s: None,
    )
_orig_training_step = RecModule.training_step


def _training_step(self, batch, batch_idx):
    dev = "cpu"
    rec(
        "precision",
        "autocast_in_training_step",
        {
            "enabled": torch.is_autocast_enabled(dev),
            "dtype": str(torch.get_autocast_dtype(dev)) if torch.is_autocast_enabled(dev) else None,
            "forward_dtype": str(self(batch[0]).dtype),
        },
        self._trainer,
        self,
    )
    return _orig_training_step(self, batch, batch_idx)


RecModule.training_step = _training_step

_orig_prepare = _DataConnector._prepare_dataloader


def _prepare_dataloader(self, dataloader, shuffle, mode):
    out = _orig_prepare(self, dataloader, shuffle, mode)
    sampler = getattr(out, "sampler", None)
    rec(
        "data",
        "_prepare_dataloader",
        {
            "mode": str(getattr(mode, "value", mode)),
            "shuffle": shuffle,
            "sampler": type(sampler).__name__,
            "num_replicas": getattr(sampler, "num_replicas", None),
            "len": len(out) if hasattr(out, "__len__") else None,
        },
        self.trainer,
        None,
    )
    return out


_DataConnector._prepare_dataloader = _prepare_dataloader

_orig_init_pg, _orig_destroy_pg = _dist.init_process_group, _dist.destroy_process_group


def _init_pg(backend=None, *a, **k):
    rec(
        "dist",
        "init_process_group",
        {"backend": backend, "rank": k.get("rank"), "world_size": k.get("world_size")},
        None,
        None,
    )
    out = _orig_init_pg(backend, *a, **k)
    rec("dist", "init_process_group", {}, None, None, phase="return")
    return out


def _destroy_pg(*a, **k):
    rec("dist", "destroy_process_group", {}, None, None)
    return _orig_destroy_pg(*a, **k)


_dist.init_process_group, _dist.destroy_process_group = _init_pg, _destroy_pg


def _meta(extra: dict) -> None:
    key = _proc_key()
    (Path(ARGS.out) / f"{TAG}.{key}.meta.json").write_text(
        _scrub(json.dumps({"tag": TAG, "process": key, **extra}, indent=2)) + "\n"
    )


# module level, so that ddp_spawn's children (which re-import this file, not run it) get it too
if ARGS.scenario in ("fail_rank1", "fail_rank1_onexc_ckpt"):
    CFG.step_raise, CFG.raise_rank = {(0, 1): RuntimeError("injected: training_step on rank 1")}, 1
elif ARGS.scenario == "fail_rank0":
    CFG.step_raise, CFG.raise_rank = {(0, 1): RuntimeError("injected: training_step on rank 0")}, 0

_orig_wrapping = _MultiProcessingLauncher._wrapping_function


def _wrapping_function(self, process_idx, trainer, function, args, kwargs, return_queue, global_states=None):
    os.environ["LOCAL_RANK"] = str(process_idx)  # Lightning sets it too, a few lines later
    rec("launcher", "_wrapping_function", {"process_idx": process_idx}, None, None)
    try:
        out = _orig_wrapping(self, process_idx, trainer, function, args, kwargs, return_queue, global_states)
        _meta({"exception_propagated": None, "n_events_this_process": len(EVENTS)})
        return out
    except BaseException as e:
        _meta({"exception_propagated": f"{type(e).__name__}: {e}"[:500], "n_events_this_process": len(EVENTS)})
        raise


_MultiProcessingLauncher._wrapping_function = _wrapping_function


def run() -> None:
    pl.seed_everything(0, workers=True, verbose=False)
    ckdir = Path(ARGS.out) / "_ckpt" / TAG
    prec: dict = {}
    if ARGS.precision == "bf16-mixed":
        prec = {"precision": "bf16-mixed"}
    elif ARGS.precision == "16-mixed":
        # Trainer(accelerator="cpu", precision="16-mixed") silently becomes bf16-mixed (a warning); the plugin
        # forces fp16 autocast + a GradScaler on CPU so the scaler's place in the hook order can be recorded
        from pytorch_lightning.plugins.precision import MixedPrecision

        prec = {"plugins": [MixedPrecision("16-mixed", "cpu")]}
    callbacks = [RecordingCallback(), ModelCheckpoint(dirpath=str(ckdir), monitor="val_loss", save_last=True)]
    strategy = ARGS.strategy
    if ARGS.scenario == "fail_rank1_onexc_ckpt":
        # Lightning's own "save a checkpoint when something goes wrong" callback; its on_exception calls
        # trainer.save_checkpoint (a barrier) on the failing rank only. A short collective timeout bounds a hang.
        import datetime
        from pytorch_lightning.callbacks import OnExceptionCheckpoint

        callbacks.append(OnExceptionCheckpoint(dirpath=str(ckdir)))
        if ARGS.strategy in ("ddp", "ddp_spawn"):
            strategy = DDPStrategy(
                start_method="popen" if ARGS.strategy == "ddp" else "spawn", timeout=datetime.timedelta(seconds=60)
            )
    trainer = pl.Trainer(
        **prec,
        accelerator="cpu",
        devices=ARGS.devices,
        strategy=strategy,
        max_epochs=2,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=str(ckdir),
        callbacks=callbacks,
    )
    model = RecModule()
    meta: dict = {
        "trainer": {
            "accelerator": "cpu",
            "devices": ARGS.devices,
            "strategy": str(ARGS.strategy),
            "max_epochs": 2,
            "precision": ARGS.precision,
        },
        "cluster_environment": type(getattr(trainer.strategy, "cluster_environment", None)).__name__,
        "precision_plugin": type(trainer.precision_plugin).__name__,
        "callbacks": [type(c).__name__ for c in callbacks],
    }
    t0 = time.perf_counter()
    try:
        trainer.fit(model)
        if ARGS.scenario == "fit_test":
            meta["test"] = _jsonable(trainer.test(model, verbose=False))
            preds = trainer.predict(model)
            meta["predict_batches_on_this_process"] = len(preds) if preds is not None else None
        meta["exception_propagated"] = None
    except BaseException as e:  # noqa: BLE001
        meta["exception_propagated"] = f"{type(e).__name__}: {e}"[:500]
        raise
    finally:
        meta["wall_s"] = round(time.perf_counter() - t0, 2)
        meta["state_after"] = {
            "status": trainer.state.status.value,
            "fn": trainer.state.fn.value if trainer.state.fn else None,
            "epoch": trainer.current_epoch,
            "global_step": trainer.global_step,
        }
        meta["callback_metrics"] = {k: float(v) for k, v in trainer.callback_metrics.items()}
        meta["checkpoint_files"] = sorted(os.listdir(ckdir)) if ckdir.exists() else []
        meta["n_events_this_process"] = sum(1 for _ in EVENTS)
        _meta(meta)


CONFIGS = (
    [("auto", 1, s, "32-true") for s in ("fit_test", "fail_rank0")]
    + [(st, 2, s, "32-true") for st in ("ddp", "ddp_spawn") for s in ("fit_test", "fail_rank1", "fail_rank0")]
    + [("auto", 1, "fit_test", p) for p in ("bf16-mixed", "16-mixed")]
    + [("ddp", 2, "fail_rank1_onexc_ckpt", "32-true")]
)


def run_all() -> None:
    out = Path(ARGS.out)
    summary = {}
    for st, dev, sc, pr in CONFIGS:
        tag = f"{'single' if st == 'auto' else st}_{dev}__{sc}" + (f"__{pr}" if pr != "32-true" else "")
        for f in out.glob(f"{tag}.*"):  # (a torchrun run is separate: see the README)
            f.unlink()
        cmd = [
            sys.executable,
            os.path.abspath(__file__),
            "--out",
            str(out),
            "--strategy",
            st,
            "--devices",
            str(dev),
            "--scenario",
            sc,
            "--precision",
            pr,
        ]
        t0 = time.perf_counter()
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
            rc, err = p.returncode, p.stderr
        except subprocess.TimeoutExpired as e:
            rc, err = "timeout", (e.stderr or b"").decode() if isinstance(e.stderr, bytes) else (e.stderr or "")
        summary[tag] = {
            "cmd": " ".join(["python", "trace_ddp.py"] + cmd[2:]).replace(str(out), "."),
            "returncode": rc,
            "wall_s": round(time.perf_counter() - t0, 1),
            "files": sorted(f.name for f in out.glob(f"{tag}.*")),
            "stderr_tail": [l for l in err.splitlines() if l.strip()][-12:],
        }
        print(tag, "rc", rc, summary[tag]["wall_s"], "s", summary[tag]["files"], flush=True)
    (out / "_summary.json").write_text(_scrub(json.dumps(summary, indent=2)) + "\n")
    import shutil

    shutil.rmtree(out / "_ckpt", ignore_errors=True)  # checkpoint files: only their names are kept (in the meta files)


if __name__ == "__main__":
    if ARGS.all:
        run_all()
    else:
        run()
