"""Cluster environments given as ``Trainer(plugins=[...])``, as Lightning takes them."""

from __future__ import annotations

import warnings
from typing import Any

import pytest
import pytorch_lightning as PL
from pytorch_lightning.plugins.environments import LightningEnvironment as PLLightningEnvironment

import lightcycle as LC
from lightcycle.errors import MisconfigurationException
from lightcycle.strategies import DDPStrategy
from lightcycle.strategies.environment import LightningEnvironment, SLURMEnvironment

SLURM = {
    "SLURM_NTASKS": "2",
    "SLURM_PROCID": "1",
    "SLURM_LOCALID": "1",
    "SLURM_NODEID": "0",
    "SLURM_JOB_NAME": "train",
    "SLURM_NODELIST": "node[03-05]",
    "SLURM_JOB_ID": "12345",
}
QUIET: dict[str, Any] = {"logger": False, "enable_progress_bar": False, "enable_model_summary": False}


@pytest.fixture
def slurm(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in SLURM.items():
        monkeypatch.setenv(key, value)
    for key in ("MASTER_ADDR", "MASTER_PORT", "TORCHELASTIC_RUN_ID", "LOCAL_RANK", "RANK", "WORLD_SIZE"):
        monkeypatch.delenv(key, raising=False)


def test_a_slurm_environment_plugin_gives_ddp_its_ranks(slurm: None) -> None:
    given = SLURMEnvironment(auto_requeue=False)
    trainer = LC.Trainer(accelerator="cpu", devices=2, strategy="ddp", plugins=[given], **QUIET)
    strategy = trainer.strategy
    assert isinstance(strategy, DDPStrategy) and strategy.cluster_environment is given
    assert (strategy.global_rank, strategy.local_rank, strategy.world_size, strategy.launcher) == (1, 1, 2, None)
    assert (given.main_address, given.main_port) == ("node03", 12345)
    assert given.auto_requeue is False


def test_asking_for_slurm_requeue_warns_that_it_is_not_done() -> None:
    with pytest.warns(UserWarning, match=r"does not save an hpc checkpoint and requeue.*auto_requeue=False"):
        SLURMEnvironment()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        SLURMEnvironment(auto_requeue=False)


def test_one_process_takes_an_environment_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    trainer = LC.Trainer(accelerator="cpu", devices=1, plugins=LightningEnvironment(), **QUIET)
    assert trainer.world_size == 1 and trainer.global_rank == 0


def test_two_environments_are_lightnings_error() -> None:
    from lightning_fabric.utilities.exceptions import MisconfigurationException as PLMisconfigurationException

    with pytest.raises(PLMisconfigurationException) as lightning:
        PL.Trainer(accelerator="cpu", plugins=[PLLightningEnvironment(), PLLightningEnvironment()], **QUIET)
    with pytest.raises(MisconfigurationException) as ours:
        LC.Trainer(accelerator="cpu", plugins=[LightningEnvironment(), LightningEnvironment()], **QUIET)
    assert str(ours.value) == str(lightning.value)
    assert "Received multiple values for ClusterEnvironment flags in `plugins`" in str(ours.value)


def test_an_environment_in_both_the_plugins_and_the_strategy_is_refused(slurm: None) -> None:
    with pytest.raises(MisconfigurationException, match=r"both give a cluster environment; pass one of them"):
        LC.Trainer(
            accelerator="cpu",
            devices=2,
            strategy=DDPStrategy(cluster_environment=SLURMEnvironment(auto_requeue=False)),
            plugins=[SLURMEnvironment(auto_requeue=False)],
            **QUIET,
        )


def test_another_kind_of_plugin_names_what_is_accepted() -> None:
    with pytest.raises(MisconfigurationException, match=r"Found invalid type for plugin 3\..*cluster environments"):
        LC.Trainer(accelerator="cpu", plugins=[3], **QUIET)
