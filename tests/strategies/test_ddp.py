"""DDP on 2 CPU ranks (gloo), self-launched: per-rank hook order and weights as Lightning's, failures named.

Each run is ``tests/ddp_program.py`` in a subprocess that re-launches itself for rank 1;
collectives time out after 30 s and every subprocess after 150 s, so a hang fails the test.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from lightcycle.errors import MisconfigurationException
from lightcycle.strategies import (
    DDPStrategy,
    SingleDeviceStrategy,
    SLURMEnvironment,
    TorchElasticEnvironment,
    environment,
    sampler,
)
from lightcycle.strategies.select import select
from lightcycle.verify import load_trace, verify_trace
from lightcycle.verify_ranks import verify_ranks
from tests import paths

PROGRAM = paths.TESTS / "ddp_program.py"
ROOT = paths.ROOT
FIXTURES = paths.FIXTURES / "lightning-2.6.6-ddp"


def _rank_traces(out: Path) -> dict[str, list[dict[str, Any]]]:
    return {str(p): load_trace(p) for p in sorted(out.glob("trace.rank*.jsonl"))}


def _run(impl: str, scenario: str, out: Path, torchrun: bool = False) -> tuple[int, dict[int, dict[str, Any]]]:
    """Run the program self-launched (``python program.py``) or under ``torchrun --standalone``."""
    rc, ranks, _ = _run_full(impl, scenario, out, torchrun)
    return rc, ranks


def _run_full(
    impl: str, scenario: str, out: Path, torchrun: bool = False
) -> tuple[int, dict[int, dict[str, Any]], str]:
    """:func:`_run`, and the launcher's stderr (torchrun reports each rank's exit status there)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for key in ("LOCAL_RANK", "RANK", "WORLD_SIZE", "MASTER_PORT", "MASTER_ADDR", "TORCHELASTIC_RUN_ID"):
        env.pop(key, None)
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    command = [*(launcher if torchrun else [sys.executable]), str(PROGRAM), impl, str(out), scenario]
    proc = subprocess.run(command, env=env, capture_output=True, timeout=150)
    ranks = {r: json.loads((out / f"{impl}.rank{r}.json").read_text()) for r in (0, 1)}
    return proc.returncode, ranks, proc.stderr.decode(errors="replace")


def _hooks(record: dict[str, Any]) -> list[tuple[str, str, str | None]]:
    return [(e["src"], e["hook"], e.get("phase")) for e in record["events"]]


def test_two_rank_fit_matches_lightning(tmp_path: Path) -> None:
    rc_l, lightning = _run("lightning", "fit", tmp_path)
    rc_c, ours = _run("lightcycle", "fit", tmp_path)
    assert rc_l == 0 and rc_c == 0
    for rank in (0, 1):
        assert ours[rank]["world_size"] == 2
        assert _hooks(ours[rank]) == _hooks(lightning[rank])
        assert ours[rank]["weights"] == lightning[rank]["weights"]
    # prepare_data on local rank 0 only, as Lightning
    assert ("module", "prepare_data", None) not in _hooks(ours[1])
    assert ours[0]["weights"] == ours[1]["weights"]
    # every rank runs the save hooks (in the hook comparison); rank 0's folder is every rank's, only
    # rank 0 writes there, and nothing is written under rank 1's own default_root_dir
    assert ours[1]["ckpt_dir"] == ours[0]["ckpt_dir"]
    assert ours[0]["ckpt_files"] == lightning[0]["ckpt_files"] == ["epoch=1-step=8.ckpt"]
    for rank in (0, 1):
        assert ours[rank]["best"] == lightning[rank]["best"]
        assert ours[rank]["files_under_own_root"] == lightning[rank]["files_under_own_root"]
    assert ours[1]["files_under_own_root"] == []
    # HookRecorder wrote one trace per rank; each follows the lifecycle and the ranks agree
    traces = _rank_traces(tmp_path)
    assert [Path(p).name for p in traces] == ["trace.rank0.jsonl", "trace.rank1.jsonl"]
    for events in traces.values():
        assert verify_trace(events).ok
        assert {e["ctx"]["world_size"] for e in events} == {2}
    assert verify_ranks(traces) == []
    for events in traces.values():
        barriers = [e["args"].get("name") for e in events if e["src"] == "strategy" and e["hook"] == "barrier"]
        assert "Trainer.save_checkpoint" in barriers and "train_dataloader()" in barriers
        # every rank waits for rank 0's prepare_data, then Lightning's pre_setup barrier, before any setup hook
        assert barriers[:3] == ["prepare_data", "pre_setup", "post_setup"]
        order = [(e["src"], e["hook"], e["args"].get("name")) for e in events]
        assert order.index(("strategy", "barrier", "pre_setup")) < order.index(("callback", "setup", None))
    rank0 = [(e["src"], e["hook"]) for e in next(iter(traces.values()))]
    assert rank0.index(("module", "prepare_data")) < rank0.index(("strategy", "barrier"))


def test_prepare_data_failing_on_rank0_releases_the_waiting_rank(tmp_path: Path) -> None:
    """Lightning's rank 1 waits for rank 0's prepare_data with no timeout and so hangs for ever here."""
    rc, ours = _run("lightcycle", "fail_prepare", tmp_path)
    assert rc == 1 and ours[0]["children_exit"] == [1]
    assert ours[0]["exception"] == "ValueError: no data on rank 0"
    assert ours[1]["exception"] == (
        "RankFailedError: rank 0 raised ValueError: no data on rank 0. "
        "This rank stopped while it waited for the other ranks."
    )
    for rank in (0, 1):
        assert [e["hook"] for e in ours[rank]["events"]][-1] == "on_exception"
        assert "setup" not in [e["hook"] for e in ours[rank]["events"]]
    traces = _rank_traces(tmp_path)
    assert verify_ranks(traces) == [] and all(verify_trace(events).ok for events in traces.values())


@pytest.mark.parametrize("torchrun", [False, True], ids=["selflaunch", "torchrun"])
def test_sigterm_to_one_rank_stops_every_rank_with_143(tmp_path: Path, torchrun: bool) -> None:
    """Rank 1 alone gets SIGTERM after batch 1: the ranks agree before batch 2, all exit 143.

    Lightning broadcasts rank 0's flag only: its rank 1 raises alone and rank 0 waits in the
    next collective. Lightning's ranks also exit 0 where the spec (and lightcycle) say 143.
    """
    rc, ours, stderr = _run_full("lightcycle", "sigterm_rank1", tmp_path, torchrun=torchrun)
    if torchrun:  # the agent reports each rank's exit status
        assert rc != 0
        statuses = dict(re.findall(r"rank\s*:\s*(\d) \(local_rank: \d\)\s*exitcode\s*:\s*(-?\d+)", stderr))
        assert statuses == {"0": "143", "1": "143"}, stderr[-3000:]
    else:
        assert rc == 143 and ours[0]["children_exit"] == [143]
    traces = _rank_traces(tmp_path)
    for rank in (0, 1):
        record = ours[rank]
        assert record["exception"] == "SIGTERMException: 143"
        assert record["state"]["status"] == "interrupted" and record["state"]["global_step"] == 2
        hooks = [e["hook"] for e in record["events"]]
        assert hooks[-1] == "on_exception" and hooks.count("on_exception") == 1
        # batch 2 never started on either rank: the decision came before it
        assert [
            e["args"].get("batch_idx")
            for e in record["events"]
            if e["hook"] == "on_train_batch_start" and e["src"] == "module"
        ] == [0, 1]
    for events in traces.values():
        assert verify_trace(events).ok
        last = events[-1]
        assert (last["hook"], last["args"]["exception"]) == ("on_exception", "SIGTERMException: 143")
    assert verify_ranks(traces) == []  # no collective after the agreement, the same ones before it


@pytest.mark.parametrize(("failing", "torchrun"), [(0, False), (1, True)], ids=["rank0-selflaunch", "rank1-torchrun"])
def test_one_rank_raises_every_rank_stops_and_names_it(tmp_path: Path, failing: int, torchrun: bool) -> None:
    """Under torchrun the environment is detected and nothing is launched (the agent started both ranks)."""
    rc, ours = _run("lightcycle", f"fail_rank{failing}", tmp_path, torchrun=torchrun)
    assert rc != 0
    other = 1 - failing
    assert ours[failing]["exception"] == f"ValueError: boom on rank {failing}"
    assert ours[other]["exception"].startswith(
        f"RankFailedError: rank {failing} raised ValueError: boom on rank {failing}"
    )
    for rank in (0, 1):
        assert ours[rank]["state"]["status"] == "interrupted"
        assert [e["hook"] for e in ours[rank]["events"]].count("on_exception") == 1
    # self-launch: rank 0 started rank 1; torchrun: the agent started both, lightcycle launched nothing
    assert [ours[r]["launched_children"] for r in (0, 1)] == [not torchrun, False]
    # no collective on either interruption path, both ranks interrupted: the ranks agree
    traces = _rank_traces(tmp_path)
    assert len(traces) == 2 and verify_ranks(traces) == []
    assert all(verify_trace(events).ok for events in traces.values())


def _fixture(config: str) -> dict[str, list[dict[str, Any]]]:
    return {f"{config}.rank{r}": load_trace(FIXTURES / f"{config}.rank{r}.jsonl") for r in (0, 1)}


def test_verify_ranks_on_lightning_traces() -> None:
    assert verify_ranks(_fixture("ddp_2__fit_test")) == []
    assert verify_ranks(_fixture("ddp_2__fail_rank1")) == []
    # Lightning's OnExceptionCheckpoint: a barrier inside on_exception, on both ranks
    problems = verify_ranks(_fixture("ddp_2__fail_rank1_onexc_ckpt"))
    assert len(problems) == 2 and all("began barrier after on_exception" in p for p in problems)


def test_verify_ranks_finds_asymmetry_and_missing_ranks() -> None:
    traces = _fixture("ddp_2__fit_test")
    rank1 = traces["ddp_2__fit_test.rank1"]
    first_barrier = next(i for i, e in enumerate(rank1) if e["src"] == "strategy" and e["hook"] == "barrier")
    skewed = {**traces, "ddp_2__fit_test.rank1": rank1[:first_barrier] + rank1[first_barrier + 1 :]}
    (problem,) = verify_ranks(skewed)
    assert "differs" in problem and "rank 1" in problem
    assert verify_ranks({"a": traces["ddp_2__fit_test.rank0"]}) == []  # one rank: nothing to compare
    half = {**_fixture("ddp_2__fail_rank1"), "x.rank2": traces["ddp_2__fit_test.rank0"]}
    assert any("both rank 0" in p for p in verify_ranks(half))
    left = {"r0": _fixture("ddp_2__fail_rank1")["ddp_2__fail_rank1.rank0"], "r1": rank1}
    assert any("left behind" in p for p in verify_ranks(left))


def test_refused_strategies_name_what_to_use(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    monkeypatch.setenv("MASTER_PORT", "29512")  # no free-port search, and nothing left in the environment

    cpu = torch.device("cpu")
    with pytest.raises(MisconfigurationException, match=r"ddp_spawn.*use strategy='ddp'"):
        select("ddp_spawn", cpu, [0, 1], 1, False, True)
    with pytest.raises(MisconfigurationException, match=r"fsdp.*use strategy='ddp'"):
        select("fsdp", cpu, [0, 1], 1, False, True)
    with pytest.raises(MisconfigurationException, match="strategy='ddp'"):
        select("single_device", cpu, [0, 1], 1, False, True)
    with pytest.raises(ValueError, match="start_method"):
        DDPStrategy(start_method="spawn")
    assert isinstance(select("auto", cpu, [0], 1, False, True), SingleDeviceStrategy)
    auto = select("auto", cpu, [0, 1], 1, False, True)  # Lightning: several devices make "auto" DDP
    assert isinstance(auto, DDPStrategy) and auto.launcher is not None and auto.world_size == 2


def test_slurm_environment_is_read_as_lightning(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {
        "SLURM_NTASKS": "4",
        "SLURM_PROCID": "3",
        "SLURM_LOCALID": "1",
        "SLURM_NODEID": "1",
        "SLURM_JOB_NAME": "train",
        "SLURM_NODELIST": "node[03-05,07]",
        "SLURM_JOB_ID": "123456",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    for key in ("MASTER_ADDR", "MASTER_PORT", "TORCHELASTIC_RUN_ID"):
        monkeypatch.delenv(key, raising=False)
    found = environment.detect()
    assert isinstance(found, SLURMEnvironment)
    assert (found.global_rank(), found.local_rank(), found.node_rank(), found.world_size()) == (3, 1, 1, 4)
    assert (found.main_address, found.main_port) == ("node03", 13456)
    with pytest.raises(ValueError, match="SLURM_NTASKS=4"):
        found.validate_settings(2, 1)
    monkeypatch.setenv("SLURM_JOB_NAME", "bash")  # an interactive allocation: not a launcher
    assert isinstance(environment.detect(), environment.LightningEnvironment)


def test_torchrun_environment_is_detected_and_launches_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    for key, value in {"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1", "TORCHELASTIC_RUN_ID": "x"}.items():
        monkeypatch.setenv(key, value)
    assert isinstance(environment.detect(), TorchElasticEnvironment)
    strategy = select("ddp", torch.device("cpu"), [0, 1], 1, False, True)
    assert isinstance(strategy, DDPStrategy)
    assert (strategy.global_rank, strategy.local_rank, strategy.world_size, strategy.launcher) == (1, 1, 2, None)
    with pytest.raises(ValueError, match="torchrun started WORLD_SIZE=2"):
        select("ddp", torch.device("cpu"), [0, 1, 2], 1, False, True)


def test_sampler_rules_as_lightning() -> None:
    import torch
    from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

    ds = TensorDataset(torch.arange(10).float())
    train = sampler.prepare(DataLoader(ds, batch_size=2), "train", True, 1, 2)
    assert isinstance(train.sampler, DistributedSampler) and train.sampler.shuffle
    val = sampler.prepare(DataLoader(ds, batch_size=2), "val", True, 1, 2)
    assert not val.sampler.shuffle and list(val.sampler) == [1, 3, 5, 7, 9]
    assert sampler.prepare(DataLoader(ds), "train", False, 1, 2).sampler.__class__.__name__ == "SequentialSampler"
    predict = sampler.prepare(DataLoader(TensorDataset(torch.arange(5).float())), "predict", True, 1, 2)
    assert list(predict.sampler) == [1, 3]


def test_an_existing_process_group_is_used_not_replaced(tmp_path: Path) -> None:
    import torch
    import torch.distributed as dist
    from torch.utils.data import DataLoader, TensorDataset

    import lightcycle as L

    class Tiny(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.layer = torch.nn.Linear(2, 1)

        def training_step(self, batch: Any, batch_idx: int) -> Any:
            assert isinstance(self.trainer.strategy.model, torch.nn.parallel.DistributedDataParallel)
            return self.layer(batch[0]).sum()

        def configure_optimizers(self) -> Any:
            return torch.optim.SGD(self.parameters(), lr=0.1)

    store = dist.FileStore(str(tmp_path / "store"), 1)
    dist.init_process_group("gloo", store=store, rank=0, world_size=1)
    try:
        group = dist.group.WORLD
        trainer = L.Trainer(
            strategy="ddp",
            accelerator="cpu",
            devices=1,
            max_steps=2,
            logger=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            enable_checkpointing=False,
            default_root_dir=tmp_path,
        )
        assert isinstance(trainer.strategy, DDPStrategy) and trainer.strategy.launcher is None
        model = Tiny()
        trainer.fit(model, DataLoader(TensorDataset(torch.randn(8, 2)), batch_size=2))
        assert trainer.global_step == 2
        assert dist.is_initialized() and dist.group.WORLD is group
        assert trainer.strategy.model is model  # unwrapped after the fit
    finally:
        dist.destroy_process_group()


def test_the_strategy_steps_are_declared_at_lightnings_places() -> None:
    from lightcycle.states import LIFECYCLE, Action
    from lightcycle.states import declaration as ev

    def actions(trigger: Any, source_prefix: str) -> set[Action]:
        return {
            a
            for t in LIFECYCLE.transitions
            if t.trigger is trigger and t.source[0].startswith(source_prefix)
            for a in (*t.before, *t.after)
        }

    for fn in ("fit", "validate", "test", "predict"):
        # the process group before prepare_data; every rank waits for it before the setup hooks
        assert Action.SETUP_ENVIRONMENT in actions(ev.PREPARE_DATA, fn)
        assert Action.PREPARE_DATA_BARRIER in actions(ev.PREPARE_DATA, fn)
        (prepare,) = [
            t for t in LIFECYCLE.transitions if t.trigger is ev.PREPARE_DATA and t.source == (f"{fn}.configuring",)
        ]
        assert prepare.dest == f"{fn}.prepared" and [h.name for h in prepare.hooks] == ["prepare_data", "prepare_data"]
    assert Action.STRATEGY_SETUP in actions(ev.CONFIGURE_OPTIMIZERS, "fit")  # wrap, then configure_optimizers
    assert Action.STRATEGY_TEARDOWN in actions(ev.FIT_END, "fit")  # unwrap before on_fit_end
    for fn in ("validate", "test", "predict"):
        assert Action.STRATEGY_SETUP in actions(ev.SETUP, fn)
        assert Action.STRATEGY_TEARDOWN in actions(ev.TEARDOWN, fn)


RESUME_PROGRAM = paths.TESTS / "ddp_resume_program.py"


def _resume_run(root: Path, mode: str) -> subprocess.CompletedProcess[bytes]:
    """Run one phase; the caller's assertion shows its output (both ranks write to these pipes).

    ``subprocess.run`` returns only once every holder of the pipes closed them, so the self-launched
    rank 1 (which inherits them) has exited too, even when rank 0 died by SIGKILL.
    """
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for key in ("LOCAL_RANK", "RANK", "WORLD_SIZE", "MASTER_PORT", "MASTER_ADDR", "TORCHELASTIC_RUN_ID"):
        env.pop(key, None)
    command = [sys.executable, str(RESUME_PROGRAM), str(root), mode, "1"]  # each rank seeds itself: seed + rank
    return subprocess.run(command, env=env, capture_output=True, timeout=150)


def _outputs(*runs: subprocess.CompletedProcess[bytes]) -> str:
    """The tails of each run's stdout and stderr, for an assertion message."""
    parts = []
    for run in runs:
        mode = run.args[3]
        for name, data in (("stdout", run.stdout), ("stderr", run.stderr)):
            parts.append(f"--- {mode} (exit {run.returncode}) {name}:\n{data.decode(errors='replace')[-3000:]}")
    return "\n".join(parts)


def test_two_rank_run_killed_with_sigkill_resumes_bitwise(tmp_path: Path) -> None:
    """tests/exact_resume.py's run (dropout, shuffling, Adam, StepLR, a checkpoint every step) on 2 ranks.

    Every rank SIGKILLs itself after the checkpoint of epoch 1, batch 1; a new 2-rank fit from
    ``"last"`` ends with each rank's weights, optimizer and scheduler bitwise equal to the
    uninterrupted run's. The ranks seed themselves differently, so their dropout draws differ:
    each rank must resume from its own RNG state, not rank 0's.
    """
    import torch

    full, cut = tmp_path / "full", tmp_path / "cut"
    whole = _resume_run(full, "full")
    assert whole.returncode == 0, _outputs(whole)
    killed = _resume_run(cut, "kill")
    assert killed.returncode == -9, _outputs(killed)  # rank 0 (the launching process) died by SIGKILL
    assert not list(cut.glob("kill.rank*.pt"))  # no rank finished
    assert (cut / "ckpts" / "last.ckpt").exists()
    saved = torch.load(cut / "ckpts" / "last.ckpt", weights_only=False)
    assert saved["global_step"] == 5 and len(saved["loops"]["fit_loop"]["rank_rng"]) == 2
    resumed = _resume_run(cut, "resume")
    assert resumed.returncode == 0, _outputs(killed, resumed)
    for rank in (0, 1):
        expected = torch.load(full / f"full.rank{rank}.pt", weights_only=False)
        got = torch.load(cut / f"resume.rank{rank}.pt", weights_only=False)
        assert got["global_step"] == expected["global_step"] == 9
        for name, tensor in expected["weights"].items():
            assert torch.equal(got["weights"][name], tensor), (rank, name)
        for key, value in expected["optimizer"]["state"].items():
            for field, tensor in value.items():
                assert torch.equal(got["optimizer"]["state"][key][field], tensor), (rank, key, field)
        assert got["scheduler"] == expected["scheduler"]


LOOP_PROGRAM = paths.TESTS / "ddp_loop_program.py"


def _loop_run(out: Path, scenario: str, impl: str) -> tuple[int, dict[int, dict[str, Any]]]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for key in ("LOCAL_RANK", "RANK", "WORLD_SIZE", "MASTER_PORT", "MASTER_ADDR", "TORCHELASTIC_RUN_ID"):
        env.pop(key, None)
    command = [sys.executable, str(LOOP_PROGRAM), str(out), scenario, impl]
    proc = subprocess.run(command, env=env, capture_output=True, timeout=150)
    return proc.returncode, {r: json.loads((out / f"{impl}.rank{r}.json").read_text()) for r in (0, 1)}


def test_loop_driver_under_ddp_trains_as_the_trainer_does(tmp_path: Path) -> None:
    """The same module and schedule through LoopDriver(strategy=DDPStrategy, devices=2) and Trainer(...)."""
    rc_loop, loop = _loop_run(tmp_path, "fit", "loop")
    rc_trainer, trainer = _loop_run(tmp_path, "fit", "trainer")
    assert rc_loop == rc_trainer == 0 and loop[0]["children_exit"] == [0]
    for rank in (0, 1):
        assert loop[rank]["world_size"] == 2 and loop[rank]["wrapped"] == ["DistributedDataParallel"]
        assert loop[rank]["seen"] == trainer[rank]["seen"]  # the same distributed sampler, epoch by epoch
        assert loop[rank]["weights"] == trainer[rank]["weights"]  # bitwise
    assert loop[0]["weights"] == loop[1]["weights"]
    assert (loop[0]["prepared"], loop[1]["prepared"]) == (True, False)  # prepare_data on local rank 0 only
    for epoch in (0, 1):  # each epoch the ranks share the 16 samples out, and the order changes
        halves = [loop[r]["seen"][epoch * 8 : (epoch + 1) * 8] for r in (0, 1)]
        assert sorted(halves[0] + halves[1]) == list(range(16))
    assert loop[0]["seen"][:8] != loop[0]["seen"][8:]
    traces = {str(p): load_trace(p) for p in sorted(tmp_path.glob("loop.trace.rank*.jsonl"))}
    assert len(traces) == 2 and verify_ranks(traces) == []
    assert all(verify_trace(events).ok for events in traces.values())


def test_loop_driver_under_ddp_one_rank_raises_and_is_named(tmp_path: Path) -> None:
    rc, loop = _loop_run(tmp_path, "fail_rank1", "loop")
    assert rc == 1 and loop[0]["children_exit"] == [1]
    assert loop[1]["exception"] == "ValueError: boom in the loop on rank 1"
    assert loop[0]["exception"].startswith("RankFailedError: rank 1 raised ValueError: boom in the loop on rank 1")
    assert loop[0]["status"] == loop[1]["status"] == "interrupted"


def test_loop_driver_with_several_devices_needs_a_distributed_strategy() -> None:
    import torch

    import lightcycle as L
    from lightcycle import LoopDriver

    class Tiny(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.layer = torch.nn.Linear(2, 1)

    with pytest.raises(MisconfigurationException, match="strategy='ddp'"):
        LoopDriver(Tiny(), devices=2)
    with pytest.raises(MisconfigurationException, match="devices=0"):
        LoopDriver(Tiny(), devices=0)
    with pytest.raises(MisconfigurationException, match=r"ddp_spawn.*use strategy='ddp'"):
        LoopDriver(Tiny(), strategy="ddp_spawn", devices=2)
