"""LightningCLI: the same CLI program run under Lightning and under lightcycle (subprocesses) gives the same
parsed config (``--print_config``), hook trace, metrics, weights and files (``config.yaml``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

import lightcycle
from lightcycle.cli import LightningCLI, ReduceLROnPlateau, SaveConfigCallback
from lightcycle.demos.boring_classes import BoringDataModule, BoringModel
from lightcycle.errors import MisconfigurationException
from tests import kit
from tests.paths import ROOT, TESTS

DRIVER = TESTS / "cli_programs" / "run_many.py"

# Lightning 2.6 Trainer arguments lightcycle's Trainer does not take (README, "Trainer arguments"), and the
# Trainer-method argument it lacks; every other key of the parsed config must be equal.
LIGHTNING_ONLY_TRAINER_KEYS = {
    "enable_autolog_hparams",
    "model_registry",
}
LIGHTNING_ONLY_METHOD_KEYS = {"weights_only"}
LIGHTCYCLE_ONLY_TRAINER_KEYS = {"lifecycle", "checked"}


SCENARIOS: dict[str, tuple[list[str], dict[str, str]]] = {
    "print_config": (
        ["fit", "--model.out_features=3", "--data.batch_size=2", "--optimizer=SGD", "--optimizer.lr=0.05"]
        + ["--print_config"],
        {},
    ),
    "fit": (
        [
            "fit",
            "--trainer.limit_train_batches=3",
            "--trainer.limit_val_batches=2",
            "--data.batch_size=2",
            "--model.out_features=3",
            "--optimizer=Adam",
            "--optimizer.lr=0.01",
            "--lr_scheduler=StepLR",
            "--lr_scheduler.step_size=1",
            "--notes=hello",
        ],
        {},
    ),
    "test_from_config": (["test", "--config", "{tmp}/config.yaml", "--data.length=8"], {"CLI_SUBCLASS_DATA": "1"}),
    # not `1`: Lightning's CLI reads it as 1 or as 1.0 (every batch) depending on what the program imported first
    # a Trainer argument typed with Lightning's Logger union: a logger class by name and its arguments
    "logger_by_name": (
        ["fit", "--trainer.max_epochs=1", "--trainer.limit_train_batches=2", "--trainer.limit_val_batches=1"]
        + ["--trainer.logger=CSVLogger", "--trainer.logger.save_dir=logs", "--trainer.logger.name=exp"],
        {},
    ),
    "loggers_from_config": (["fit", "--config", "{tmp}/loggers.yaml"], {}),
    "run_false": (
        ["--trainer.max_epochs=2", "--trainer.limit_train_batches=2", "--trainer.limit_val_batches=2"],
        {"CLI_RUN": "0"},
    ),
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, dict[str, Any]]]:
    """Every scenario under both frameworks: one process per framework, the two side by side."""
    tmp = tmp_path_factory.mktemp("cli")
    (tmp / "config.yaml").write_text(
        yaml.safe_dump(
            {
                "seed_everything": 7,
                "trainer": {"limit_test_batches": 3, "logger": False},
                "model": {"out_features": 4},
                "data": {"class_path": "__main__.OtherData", "init_args": {"shift": 2.0}},
            }
        )
    )
    (tmp / "loggers.yaml").write_text(
        yaml.safe_dump(
            {
                "trainer": {
                    "max_epochs": 1,
                    "limit_train_batches": 2,
                    "limit_val_batches": 1,
                    "logger": [
                        {"class_path": "CSVLogger", "init_args": {"save_dir": "csv", "version": 3}},
                        {"class_path": "TensorBoardLogger", "init_args": {"save_dir": "tb", "name": "runs"}},
                    ],
                }
            }
        )
    )
    procs = {}
    for framework in ("lightning", "lightcycle"):
        plan = []
        for name, (args, env) in SCENARIOS.items():
            cwd = tmp / framework / name
            cwd.mkdir(parents=True)
            plan.append({"cwd": str(cwd), "args": [a.format(tmp=tmp) for a in args], "env": env})
        (tmp / f"{framework}.json").write_text(json.dumps(plan))
        env = {**os.environ, "PYTHONPATH": str(ROOT), "CLI_FRAMEWORK": framework, "CLI_TRACE": "trace.json"}
        command = [sys.executable, str(DRIVER), str(tmp / f"{framework}.json")]
        procs[framework] = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    results: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in SCENARIOS}
    for framework, proc in procs.items():
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, f"{framework}: {err.decode()[-3000:]}"
        for name in SCENARIOS:
            cwd = tmp / framework / name
            trace = cwd / "trace.json"
            results[name][framework] = {
                "stdout": (cwd / "stdout.txt").read_text(),
                "trace": json.loads(trace.read_text()) if trace.exists() else None,
                "files": sorted(
                    str(p.relative_to(cwd))
                    for p in cwd.rglob("*")
                    if p.is_file() and p.name not in ("trace.json", "stdout.txt")
                ),
                "cwd": cwd,
            }
    return results


def comparable(config_text: str, framework: str) -> dict[str, Any]:
    """A dumped config without its version header and the keys only one framework has (checked apart)."""
    header = config_text.splitlines()[0]
    assert header == ("# pytorch_lightning==2.6.6" if framework == "lightning" else "# lightcycle==0.1.0"), header
    config = yaml.safe_load(config_text)
    only = LIGHTNING_ONLY_TRAINER_KEYS if framework == "lightning" else LIGHTCYCLE_ONLY_TRAINER_KEYS
    assert only <= set(config["trainer"]), only - set(config["trainer"])
    config["trainer"] = {k: v for k, v in config["trainer"].items() if k not in only}
    if framework == "lightning":
        assert set(config) >= LIGHTNING_ONLY_METHOD_KEYS
        config = {k: v for k, v in config.items() if k not in LIGHTNING_ONLY_METHOD_KEYS}
    return config


def assert_same_config(a: str, b: str) -> None:
    assert comparable(a, "lightning") == comparable(b, "lightcycle")


def assert_same_run(results: dict[str, dict[str, Any]]) -> None:
    theirs, ours = results["lightning"]["trace"], results["lightcycle"]["trace"]
    assert ours["events"], "nothing recorded"
    for i, (x, y) in enumerate(zip(theirs["events"], ours["events"], strict=True)):
        assert x == y, f"event {i}: Lightning {x} != lightcycle {y}"
    assert theirs == ours


def logger_free(files: list[str]) -> list[str]:
    # Lightning's default logger here is TensorBoard (installed), lightcycle's is CSV: their own files differ
    return [f for f in files if "tfevents" not in f and not f.endswith(("metrics.csv", "hparams.yaml"))]


def test_print_config_is_lightnings(runs: dict[str, Any]) -> None:
    results = runs["print_config"]
    assert_same_config(results["lightning"]["stdout"], results["lightcycle"]["stdout"])
    config = yaml.safe_load(results["lightcycle"]["stdout"])
    assert config["model"] == {"out_features": 3}  # batch_size is a link target: not dumped, as in Lightning
    assert config["data"] == {"batch_size": 2, "length": 32}
    assert config["seed_everything"] == 123 and config["notes"] == "none"
    assert config["optimizer"]["class_path"] == "torch.optim.SGD"
    assert results["lightcycle"]["trace"] is None and results["lightcycle"]["files"] == []  # printed, ran nothing


def test_fit_runs_like_lightning_and_saves_the_same_config(runs: dict[str, Any]) -> None:
    results = runs["fit"]
    assert_same_run(results)
    assert results["lightcycle"]["trace"]["optimizer"] == "Adam"
    assert results["lightcycle"]["trace"]["hparams"] == {
        "out_features": "3",
        "batch_size": "2",
        "_instantiator": "lightcycle.cli.instantiate_module",
    }
    assert logger_free(results["lightning"]["files"]) == logger_free(results["lightcycle"]["files"])
    saved = "lightning_logs/version_0/config.yaml"
    assert saved in results["lightcycle"]["files"]
    texts = [(results[f]["cwd"] / saved).read_text() for f in ("lightning", "lightcycle")]
    assert_same_config(*texts)
    assert yaml.safe_load(texts[1])["notes"] == "hello"


def test_config_file_subclass_data_and_test_subcommand(runs: dict[str, Any]) -> None:
    results = runs["test_from_config"]
    assert_same_run(results)
    assert results["lightcycle"]["trace"]["callback_metrics"].keys() == {"test_loss"}
    # without a logger the config goes to default_root_dir (here the working folder)
    assert logger_free(results["lightning"]["files"]) == logger_free(results["lightcycle"]["files"]) == ["config.yaml"]
    texts = [(results[f]["cwd"] / "config.yaml").read_text() for f in ("lightning", "lightcycle")]
    assert_same_config(*texts)
    assert yaml.safe_load(texts[1])["data"]["init_args"] == {"batch_size": 2, "length": 8, "shift": 2.0}


def _saved_loggers(results: dict[str, Any], saved: str) -> tuple[Any, Any]:
    """The ``trainer.logger`` entry of each framework's saved config, the rest compared equal."""
    texts = [(results[f]["cwd"] / saved).read_text() for f in ("lightning", "lightcycle")]
    theirs, ours = (comparable(text, f) for text, f in zip(texts, ("lightning", "lightcycle"), strict=True))
    loggers = theirs["trainer"].pop("logger"), ours["trainer"].pop("logger")
    assert theirs == ours
    return loggers


def test_logger_given_by_class_name_is_built_as_in_lightning(runs: dict[str, Any]) -> None:
    results = runs["logger_by_name"]
    assert_same_run(results)
    files = results["lightcycle"]["files"]
    assert files == results["lightning"]["files"]
    assert {"logs/exp/version_0/metrics.csv", "logs/exp/version_0/config.yaml"} <= set(files)
    metrics = [(results[f]["cwd"] / "logs/exp/version_0/metrics.csv").read_text() for f in ("lightning", "lightcycle")]
    assert metrics[0] == metrics[1] and "val_loss" in metrics[1]
    theirs, ours = _saved_loggers(results, "logs/exp/version_0/config.yaml")
    assert theirs["class_path"] == "pytorch_lightning.loggers.CSVLogger"
    assert ours["class_path"] == "lightcycle.loggers.CSVLogger"
    assert ours["init_args"] == theirs["init_args"]
    assert ours["init_args"]["save_dir"] == "logs" and ours["init_args"]["name"] == "exp"


def test_a_list_of_loggers_from_a_config_file_is_built_as_in_lightning(runs: dict[str, Any]) -> None:
    results = runs["loggers_from_config"]
    assert_same_run(results)
    files = results["lightcycle"]["files"]
    assert logger_free(files) == logger_free(results["lightning"]["files"])
    # the first logger's folder takes the config, as in Lightning; the second writes its event file
    assert {"csv/lightning_logs/version_3/metrics.csv", "csv/lightning_logs/version_3/config.yaml"} <= set(files)
    assert any(f.startswith("tb/runs/version_0/events.out.tfevents") for f in files), files
    theirs, ours = _saved_loggers(results, "csv/lightning_logs/version_3/config.yaml")
    names = ("CSVLogger", "TensorBoardLogger")
    assert [entry["class_path"] for entry in ours] == [f"lightcycle.loggers.{n}" for n in names]
    assert [entry["class_path"] for entry in theirs] == [f"pytorch_lightning.loggers.{n}" for n in names]
    assert [entry["init_args"] for entry in ours] == [entry["init_args"] for entry in theirs]


def test_run_false_parses_without_subcommands(runs: dict[str, Any]) -> None:
    results = runs["run_false"]
    assert_same_run(results)
    assert logger_free(results["lightning"]["files"]) == logger_free(results["lightcycle"]["files"])


# ---------------------------------------------------------------------- lightcycle alone, in process


@pytest.fixture(autouse=True)
def _no_pytest_argv(monkeypatch: pytest.MonkeyPatch) -> None:
    # LightningCLI warns when given both args= and command-line arguments; pytest's are not the program's
    monkeypatch.setattr(sys, "argv", ["program"])


def _cli(tmp_path: Path, *args: str, **kwargs: Any) -> LightningCLI:
    base = ["--trainer.limit_train_batches=2", "--trainer.limit_val_batches=2", "--trainer.max_epochs=1"]
    defaults = {"enable_progress_bar": False, "enable_model_summary": False, "default_root_dir": str(tmp_path)}
    return LightningCLI(BoringModel, BoringDataModule, trainer_defaults=defaults, args=[*args, *base], **kwargs)


def test_plugins_are_built_from_class_paths(tmp_path: Path) -> None:
    """``--trainer.plugins``: one plugin by class path, or a list of them in a config file."""
    from lightcycle.plugins import AsyncCheckpointIO, DoublePrecision
    from lightcycle.strategies.environment import LightningEnvironment

    cli = _cli(tmp_path, "--trainer.logger=false", "--trainer.plugins=lightcycle.plugins.AsyncCheckpointIO", run=False)
    assert isinstance(cli.trainer.strategy.checkpoint_io, AsyncCheckpointIO)
    config = tmp_path / "plugins.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "trainer": {
                    "plugins": [
                        {"class_path": "lightcycle.plugins.DoublePrecision"},
                        {"class_path": "lightcycle.strategies.environment.LightningEnvironment"},
                    ]
                }
            }
        )
    )
    cli = _cli(tmp_path, "--config", str(config), "--trainer.logger=false", run=False)
    assert isinstance(cli.trainer.precision_plugin, DoublePrecision)
    assert isinstance(cli.trainer._cfg.cluster_environment, LightningEnvironment)  # (one process: kept, unused)


def test_an_existing_config_file_stops_the_run_before_it_trains(tmp_path: Path) -> None:
    _cli(tmp_path, "fit", "--trainer.logger=false")
    assert (tmp_path / "config.yaml").is_file()
    with pytest.raises(RuntimeError, match=r"config.yaml to NOT exist.*save_config_kwargs"):
        _cli(tmp_path, "fit", "--trainer.logger=false")
    cli = _cli(tmp_path, "fit", "--trainer.logger=false", save_config_kwargs={"overwrite": True})
    assert cli.trainer.global_step == 2


def test_no_save_config_callback_writes_nothing(tmp_path: Path) -> None:
    cli = _cli(tmp_path, "fit", "--trainer.logger=false", save_config_callback=None)
    assert not (tmp_path / "config.yaml").exists()
    assert not any(isinstance(cb, SaveConfigCallback) for cb in cli.trainer.callbacks)


def test_save_to_log_dir_false_needs_a_save_config_override() -> None:
    with pytest.raises(ValueError, match="subclassing SaveConfigCallback"):
        SaveConfigCallback(None, {}, save_to_log_dir=False)  # type: ignore[arg-type]


def test_seed_true_picks_a_seed_and_records_it(tmp_path: Path) -> None:
    cli = _cli(tmp_path, "validate", "--seed_everything=true", "--trainer.logger=false")
    seed = cli.config["validate"]["seed_everything"]
    assert isinstance(seed, int) and seed is not True
    assert yaml.safe_load((tmp_path / "config.yaml").read_text())["seed_everything"] == seed


def test_reduce_lr_on_plateau_is_configured_with_its_monitor(tmp_path: Path) -> None:
    cli = _cli(
        tmp_path,
        "--optimizer=SGD",
        "--optimizer.lr=0.5",
        "--lr_scheduler=lightcycle.cli.ReduceLROnPlateau",
        "--lr_scheduler.monitor=val_loss",
        run=False,
    )
    config = cli.model.configure_optimizers()
    assert isinstance(config["lr_scheduler"]["scheduler"], ReduceLROnPlateau)
    assert config["lr_scheduler"]["monitor"] == "val_loss"
    assert config["optimizer"].param_groups[0]["lr"] == 0.5


def test_integral_float_limit_counts_batches_as_in_lightning(tmp_path: Path) -> None:
    # LightningCLI hands the Trainer `limit_train_batches=3.0` for `--trainer.limit_train_batches=3`
    import pytorch_lightning

    steps = []
    for pl in (pytorch_lightning, lightcycle):
        kwargs = {"limit_train_batches": 3.0, "limit_val_batches": 0, "max_epochs": 1, "logger": False}
        trainer = pl.Trainer(**kwargs, enable_progress_bar=False, enable_checkpointing=False, default_root_dir=tmp_path)
        trainer.fit(kit.boring_classes(pl).BoringModel())
        steps.append(trainer.global_step)
    assert steps == [3, 3]


def test_checkpoint_of_a_cli_run_loads_through_its_instantiator(tmp_path: Path) -> None:
    from lightcycle.demos.boring_classes import DemoModel

    class Saved(DemoModel):
        def __init__(self, out_dim: int = 10, learning_rate: float = 0.02) -> None:
            super().__init__(out_dim, learning_rate)
            self.save_hyperparameters()

    cli = LightningCLI(
        Saved,
        BoringDataModule,
        args=["fit", "--model.out_dim=3", "--trainer.limit_train_batches=2", "--trainer.limit_val_batches=0"]
        + ["--trainer.max_epochs=1", f"--trainer.default_root_dir={tmp_path}", "--trainer.enable_progress_bar=false"],
    )
    assert dict(cli.model.hparams) == {
        "out_dim": 3,
        "learning_rate": 0.02,
        "_instantiator": "lightcycle.cli.instantiate_module",
    }
    ckpt = next(tmp_path.rglob("*.ckpt"))
    loaded = Saved.load_from_checkpoint(ckpt)
    assert loaded.l1.out_features == 3 and dict(loaded.hparams) == {"out_dim": 3, "learning_rate": 0.02}
    # a checkpoint naming an instantiator outside the allowlist is refused before anything is built
    import torch

    data = torch.load(ckpt, weights_only=False)
    data["hyper_parameters"]["_instantiator"] = "os.system"
    torch.save(data, tmp_path / "evil.ckpt")
    with pytest.raises(ValueError, match="not in the allowlist"):
        Saved.load_from_checkpoint(tmp_path / "evil.ckpt")


def test_dict_args_and_run_false(tmp_path: Path) -> None:
    cli = LightningCLI(
        BoringModel,
        args={"trainer": {"max_epochs": 3, "logger": False, "default_root_dir": str(tmp_path)}},
        run=False,
    )
    assert isinstance(cli.trainer, lightcycle.Trainer) and cli.trainer.max_epochs == 3
    assert cli.subcommand is None and cli.datamodule is None
    assert cli.trainer.global_step == 0  # run=False runs nothing


def test_bad_class_and_unknown_trainer_argument_are_refused(tmp_path: Path) -> None:
    from lightcycle.cli import LightningArgumentParser

    with pytest.raises(MisconfigurationException, match="Cannot add arguments from"):
        LightningArgumentParser().add_lightning_class_args(dict, "thing")
    with pytest.raises(SystemExit):  # jsonargparse names the key and exits with its usage message
        _cli(tmp_path, "fit", "--trainer.model_registry=my-model")


def test_missing_jsonargparse_names_the_extra() -> None:
    code = "import sys\nsys.modules['jsonargparse'] = None\nfrom lightcycle.cli import LightningCLI\nLightningCLI()"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 1
    assert "pip install 'lightcycle[cli]'" in result.stderr and "jsonargparse[signatures]>=4.39.0" in result.stderr
