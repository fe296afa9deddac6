"""A 2-rank DDP run of the recording scenario, under Lightning or lightcycle (run as a script).

``python tests/ddp_program.py IMPL OUT SCENARIO``: IMPL is ``lightning`` or ``lightcycle``;
the process self-launches rank 1 (``strategy="ddp"``, ``devices=2``, gloo, 30 s collective
timeout) and each rank writes ``OUT/IMPL.rank{R}.json``: its hook events, end state,
exception text, final weights and what its
ModelCheckpoint (the default one: every epoch, last) wrote; lightcycle's ranks also
write ``OUT/trace.rank{R}.jsonl`` with a HookRecorder. SCENARIO: ``fit`` (fit then test), ``fail_rank0`` or
``fail_rank1`` (that rank's ``training_step`` raises at epoch 0, batch 1), ``fail_prepare`` (rank 0's
``prepare_data`` raises), ``sigterm_rank0``/``sigterm_rank1`` (that rank sends itself SIGTERM after
training batch 1 of epoch 0). The process re-raises the run's exception, so it exits as a user's
script would (``SIGTERMException``: 143); rank 0 of a self-launched run also records how the ranks
it started exited (``children_exit``).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import types
from datetime import timedelta
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tests.recording import Scenario, run_scenario


def _with_recorder(lightcycle: types.ModuleType, path: str, extra: list[Any]) -> types.ModuleType:
    """``lightcycle`` whose Trainer also gets a HookRecorder writing ``path`` (one file per rank) and ``extra``."""

    from lightcycle.callbacks import HookRecorder

    class Trainer(lightcycle.Trainer):  # type: ignore[misc, name-defined]
        def __init__(self, **kwargs: Any) -> None:
            kwargs["callbacks"] = [*kwargs.get("callbacks", []), *extra, HookRecorder(path, keep=False)]
            super().__init__(**kwargs)

    class Proxy(types.ModuleType):
        def __getattr__(self, name: str) -> Any:
            return getattr(lightcycle, name)

    proxy = Proxy("lightcycle")
    proxy.Trainer = Trainer  # type: ignore[attr-defined]
    return proxy


def _sigterm_at(pl: Any, epoch: int, batch_idx: int) -> Any:
    """A callback that sends this process SIGTERM after training batch ``batch_idx`` of ``epoch``."""

    class SigtermAt(pl.Callback):  # type: ignore[misc, name-defined]
        def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, index: int) -> None:
            if (trainer.current_epoch, index) == (epoch, batch_idx):
                os.kill(os.getpid(), signal.SIGTERM)

    return SigtermAt()


def main() -> None:
    impl, out, scenario = sys.argv[1:4]
    callbacks: list[Any] = []  # the lightcycle Trainer's extra callbacks (filled below, before any Trainer)
    if "TORCHELASTIC_RUN_ID" in os.environ:
        # torchrun's agent SIGTERMs the other ranks as soon as one exits with an error; ignored here
        # so that each rank's record is written (the agent SIGKILLs after its grace period anyway)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if impl == "lightning":
        import pytorch_lightning as pl
        from pytorch_lightning.strategies import DDPStrategy
    else:
        import lightcycle
        from lightcycle.strategies import DDPStrategy  # type: ignore[assignment]

        pl = _with_recorder(lightcycle, os.path.join(out, "trace.jsonl"), callbacks)  # type: ignore[assignment]
    rank = int(os.environ.get("LOCAL_RANK", "0"))
    behaviour: dict[str, object] = {"log_metrics": True}
    if scenario.startswith("fail_rank") and rank == int(scenario[-1]):
        behaviour["step_raise"] = {(0, 1): ValueError(f"boom on rank {rank}")}
    if scenario == "fail_prepare" and rank == 0:
        behaviour["raise_in"] = {("module", "prepare_data"): ValueError("no data on rank 0")}
    if scenario.startswith("sigterm_rank") and rank == int(scenario[-1]):
        callbacks.append(_sigterm_at(pl, epoch=0, batch_idx=1))
    trainer_args = dict(
        strategy=DDPStrategy(timeout=timedelta(seconds=30)),
        devices=2,
        max_epochs=2,
        num_sanity_val_steps=2,
        enable_checkpointing=True,
        **({"max_steps": int(os.environ["DDP_MAX_STEPS"])} if "DDP_MAX_STEPS" in os.environ else {}),
    )
    result = run_scenario(pl, Scenario(trainer=trainer_args, behaviour=behaviour))
    trainer = result["trainer"]
    rank = trainer.global_rank
    module = trainer.lightning_module
    weights = {k: v.detach().flatten().tolist() for k, v in module.state_dict().items()} if module is not None else {}
    ckpt = trainer.checkpoint_callback
    root = trainer.default_root_dir
    record = {
        "ckpt_dir": ckpt.dirpath,
        "ckpt_files": sorted(os.listdir(ckpt.dirpath)) if ckpt.dirpath and os.path.isdir(ckpt.dirpath) else [],
        "best": os.path.basename(ckpt.best_model_path),
        "files_under_own_root": sorted(
            os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs
        ),
        "events": result["events"],
        "state": result["state"],
        "exception": result["exception"],
        "weights": weights,
        "world_size": trainer.world_size,
        "launched_children": bool(getattr(getattr(trainer.strategy, "launcher", None), "launched", False)),
    }
    launcher = getattr(trainer.strategy, "launcher", None)
    if (
        impl == "lightcycle" and launcher is not None and launcher.launched
    ):  # the ranks this process started, and how they ended
        record["children_exit"] = launcher.wait(timeout=60)
    with open(os.path.join(out, f"{impl}.rank{rank}.json"), "w") as f:
        json.dump(record, f)
    if result["error"] is not None:
        raise result["error"]  # the process ends as the run did: SIGTERMException exits 143


if __name__ == "__main__":
    main()
