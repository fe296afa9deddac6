"""``lightcycle run``: unmodified Lightning programs on lightcycle, compared with the same program under Lightning.

Each example under ``examples/`` imports ``lightning.pytorch`` or ``pytorch_lightning``; it runs
once under ``lightcycle run --trace`` and once under real Lightning (``tests/lightning_runner.py``,
the same recorder format), in subprocesses. The callback hook traces (hook, arguments, trainer
state at the hook) and the printed results must be equal.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.paths import ROOT, TESTS

EXAMPLES = ROOT / "examples"
TIMEOUT = 120


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.pop("LIGHTCYCLE_TRACE", None)
    return env


def lightcycle_run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lightcycle", "run", *args],
        cwd=cwd,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )


def lightning_run(trace: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(TESTS / "lightning_runner.py"), str(trace), *args],
        cwd=cwd,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )


def _normalize(value: Any) -> Any:
    """Checkpoint summaries: the version values and the recorder's state key differ by design, and
    lightcycle's files carry its own ``lightcycle_version`` beside Lightning's version key."""
    if isinstance(value, dict):
        return {k: _normalize(v) for k, v in value.items()}
    if isinstance(value, list):
        out = []
        for v in value:
            if v == "lightcycle_version":
                continue
            if v == "pytorch-lightning_version":
                v = "<version>"
            elif isinstance(v, str) and v.startswith("HookRecorder"):
                v = "HookRecorder"
            out.append(_normalize(v))
        return sorted(out, key=str) if all(isinstance(v, str) for v in out) else out
    return value


def callback_events(path: Path) -> list[dict[str, Any]]:
    events = []
    for line in path.read_text().splitlines():
        event = json.loads(line)
        if event["src"] == "callback":
            event.get("ctx", {}).pop("state", None)
            events.append(_normalize(event))
    return events


def results(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if line.startswith("RESULT ")]


@pytest.mark.parametrize(
    ("example", "args"),
    [("lightning_regression.py", ["--max-epochs", "4", "--root", "out"]), ("lightning_classifier.py", [])],
)
def test_example_runs_as_under_lightning(tmp_path: Path, example: str, args: list[str]) -> None:
    ours = tmp_path / "lightcycle"
    theirs = tmp_path / "lightning"
    ours.mkdir()
    theirs.mkdir()
    script = str(EXAMPLES / example)
    mine = lightcycle_run("--trace", "trace.jsonl", script, *args, cwd=ours)
    real = lightning_run(theirs / "trace.jsonl", script, *args, cwd=theirs)
    assert real.returncode == 0, real.stderr[-3000:]
    assert mine.returncode == 0, mine.stderr[-3000:]
    assert results(mine.stdout) == results(real.stdout) != []
    a, b = callback_events(ours / "trace.jsonl"), callback_events(theirs / "trace.jsonl")
    assert len(a) == len(b) > 50
    for i, (x, y) in enumerate(zip(a, b, strict=True)):
        assert x == y, f"event {i} differs"


PROGRAM = """
import multiprocessing, os, subprocess, sys
import lightning.pytorch as pl
import pytorch_lightning
import lightning

def worker(_):
    from pytorch_lightning.callbacks import EarlyStopping
    return EarlyStopping.__module__

if __name__ == "__main__":
    print("main", __name__, os.path.basename(__file__), sys.argv[1:], os.path.basename(sys.path[0]))
    print("same", pl.Trainer is pytorch_lightning.Trainer is lightning.Trainer, pl.Trainer.__module__)
    child = subprocess.run(
        [sys.executable, "-c", "from lightning.pytorch.callbacks import ModelCheckpoint as M; print(M.__module__)"],
        capture_output=True, text=True,
    )
    print("child", child.stdout.strip(), child.returncode)
    with multiprocessing.get_context("spawn").Pool(1) as pool:  # re-imports this file as __mp_main__
        print("spawned", pool.map(worker, [0])[0])
    sys.exit(int(sys.argv[1]))
"""


def test_argv_main_file_exit_status_and_child_processes(tmp_path: Path) -> None:
    (tmp_path / "prog").mkdir()
    script = tmp_path / "prog" / "prog.py"
    script.write_text(PROGRAM)
    done = lightcycle_run(str(script), "3", "--flag", cwd=tmp_path)
    assert done.returncode == 3, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "main __main__ prog.py ['3', '--flag'] prog"
    assert lines[1] == "same True lightcycle.trainer.trainer"
    assert lines[2] == "child lightcycle.callbacks.model_checkpoint 0"
    assert lines[3] == "spawned lightcycle.callbacks.early_stopping"


def test_module_form(tmp_path: Path) -> None:
    pkg = tmp_path / "mypkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "train.py").write_text(
        "import sys\nimport lightning.pytorch as pl\nprint(__name__, sys.argv[1:], pl.Trainer.__module__)\n"
    )
    done = lightcycle_run("-m", "mypkg.train", "--lr", "0.1", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "__main__ ['--lr', '0.1'] lightcycle.trainer.trainer"


CLI_PROGRAM = """
from lightning.pytorch.cli import LightningCLI
from lightning.pytorch.demos.boring_classes import BoringDataModule, BoringModel

cli = LightningCLI(BoringModel, BoringDataModule, run=False, save_config_callback=None)
for logger in cli.trainer.loggers:
    extra = logger._kwargs if hasattr(logger, "_kwargs") else ""
    print("LOGGER", type(logger).__module__, type(logger).__name__, logger.save_dir, extra)
"""

CLI_CONFIG = """
trainer:
  logger:
    - class_path: lightning.pytorch.loggers.CSVLogger
      init_args: {save_dir: csv}
    - class_path: pytorch_lightning.loggers.TensorBoardLogger
      init_args: {save_dir: tb, flush_secs: 5}
"""


def test_a_cli_config_naming_lightning_loggers_builds_lightcycles(tmp_path: Path) -> None:
    (tmp_path / "cli.py").write_text(CLI_PROGRAM)
    (tmp_path / "config.yaml").write_text(CLI_CONFIG)
    done = lightcycle_run("cli.py", "--config", "config.yaml", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    csv, tb = (line for line in done.stdout.splitlines() if line.startswith("LOGGER"))
    assert csv == "LOGGER lightcycle.loggers.csv_logs CSVLogger csv "
    # SummaryWriter's arguments, read from its signature as Lightning's CLI reads them (the others at defaults)
    assert tb.startswith("LOGGER lightcycle.loggers.tensorboard TensorBoardLogger tb {")
    assert "'flush_secs': 5" in tb and "'max_queue': 10" in tb


ALIASED = """
from pytorch_lightning.callbacks.progress import ProgressBar, RichProgressBar, TQDMProgressBar
from lightning.pytorch.utilities.model_summary import ModelSummary, summarize, get_formatted_model_size
import lightcycle.callbacks as C
import lightcycle.core.model_summary as S
print(ProgressBar is C.ProgressBar, RichProgressBar is C.RichProgressBar, TQDMProgressBar is C.TQDMProgressBar)
print(ModelSummary is S.ModelSummary, summarize is S.summarize, get_formatted_model_size(1234.5))
from lightning.pytorch.plugins.environments import ClusterEnvironment, SLURMEnvironment
from lightning_fabric.plugins.environments import SLURMEnvironment as FabricSLURM
import lightcycle.strategies.environment as E
print(SLURMEnvironment is FabricSLURM is E.SLURMEnvironment, ClusterEnvironment is E.ClusterEnvironment)
try:
    from lightning.pytorch.plugins.environments import KubeflowEnvironment
except ImportError as e:
    print("refused", "SLURMEnvironment, TorchElasticEnvironment and LightningEnvironment" in str(e))
"""


def test_lightnings_package_paths_of_the_bars_and_the_summary(tmp_path: Path) -> None:
    (tmp_path / "aliased.py").write_text(ALIASED)
    done = lightcycle_run("aliased.py", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.splitlines() == ["True True True", "True True 1,234.500", "True True", "refused True"]


FABRIC_HELPERS = """
import subprocess, sys
from lightning.fabric import seed_everything as from_package
from lightning.fabric.utilities import AttributeDict, rank_zero_warn
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.fabric.utilities.rank_zero import rank_zero_info, rank_zero_only
from lightning.fabric.utilities.seed import seed_everything
from lightning.fabric.utilities.types import _DEVICE, _PATH
from lightning.fabric.utilities.warnings import LightningDeprecationWarning, PossibleUserWarning
from lightning_fabric.utilities.seed import seed_everything as other_spelling
from lightning_fabric.utilities.apply_func import move_data_to_device
from lightning_fabric.utilities.data import AttributeDict as DataAttributeDict
import lightcycle, lightcycle.errors, lightcycle.utilities.rank_zero as rz
print(seed_everything is from_package is other_spelling is lightcycle.seed_everything, seed_everything(5))
print(rank_zero_only is rz.rank_zero_only, PossibleUserWarning is lightcycle.errors.PossibleUserWarning)
print(MisconfigurationException is lightcycle.errors.MisconfigurationException, _PATH is not None)
print(DataAttributeDict is AttributeDict, move_data_to_device(1, "cpu"))
child = subprocess.run(
    [sys.executable, "-c", "import lightning_fabric.utilities.seed as s; print(s.seed_everything.__module__)"],
    capture_output=True, text=True,
)
print("child", child.stdout.strip(), child.returncode)
"""


def test_the_fabric_helpers_programs_import_are_lightcycles(tmp_path: Path) -> None:
    (tmp_path / "helpers.py").write_text(FABRIC_HELPERS)
    done = lightcycle_run("helpers.py", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.splitlines() == ["True 5", "True True", "True True", "True 1", "child lightcycle.seed 0"]


REFUSED = [
    ("from pytorch_lightning.callbacks import ModelPruning", "pytorch_lightning.callbacks.ModelPruning"),
    ("from lightning.fabric import Fabric", "lightning.fabric.Fabric"),
    ("from lightning import Fabric", "lightning.Fabric"),
    ("from lightning.pytorch.tuner import Tuner", "lightning.pytorch.tuner"),
]


def test_refused_names_say_which_import_to_change(tmp_path: Path) -> None:
    script = tmp_path / "prog.py"
    caught = [f"try:\n    {line}\nexcept ImportError as e:\n    print(e)" for line, _ in REFUSED[:-1]]
    script.write_text("\n".join([*caught, REFUSED[-1][0]]) + "\n")
    done = lightcycle_run(str(script), cwd=tmp_path)
    assert done.returncode == 1  # the last one is not caught: a traceback and status 1, as under python
    messages = [*done.stdout.strip().splitlines(), done.stderr.strip().splitlines()[-1]]
    assert messages[-1].startswith("lightcycle.compat.not_offered.NotOfferedError: ")
    for number, ((line, name), message) in enumerate(zip(REFUSED, messages, strict=True)):
        assert f"lightcycle does not offer `{name}` yet" in message
        assert f"{script}:{4 * number + 2 if number < 3 else 13}: {line}" in message


TWO_TRAINERS = """
import torch
from torch.utils.data import DataLoader, TensorDataset
import lightning.pytorch as pl

class M(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.l = torch.nn.Linear(2, 1)
    def training_step(self, batch, batch_idx):
        return self.l(batch[0]).pow(2).mean()
    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)

data = DataLoader(TensorDataset(torch.randn(8, 2)), batch_size=4)
for _ in range(2):
    t = pl.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                   enable_model_summary=False)
    t.fit(M(), data)
print("checked", t._driver._checker is not None)
"""


def test_trace_series_diagrams_and_checked_mode(tmp_path: Path) -> None:
    script = tmp_path / "two.py"
    script.write_text(TWO_TRAINERS)
    (tmp_path / "run.2.jsonl").write_text("stale")  # removed before the run: the series is the run's
    done = lightcycle_run("--trace", "run.jsonl", "--diagram", "run.mmd", "--checked", str(script), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "checked True"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.1.jsonl", "run.1.mmd", "run.jsonl", "run.mmd", "two.py"]
    from lightcycle.verify import load_trace, verify_trace

    for trace in ("run.jsonl", "run.1.jsonl"):
        assert verify_trace(load_trace(tmp_path / trace)).ok
    first, second = (tmp_path / "run.mmd").read_text(), (tmp_path / "run.1.mmd").read_text()
    assert "sequenceDiagram" in first and "two.py" in first and "Trainer 2" not in first
    assert "sequenceDiagram" in second and "Trainer 2" in second


def test_usage_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from lightcycle.commands.main import main

    monkeypatch.chdir(tmp_path)
    assert main(["run"]) == 2
    assert main(["run", "nope.py"]) == 2
    assert main(["run", "--trace", "t.jsonl", "-m"]) == 2
    err = capsys.readouterr().err
    assert "SCRIPT [ARGS...] or -m MODULE" in err and "'nope.py'" in err and "-m needs a MODULE" in err
    assert list(tmp_path.iterdir()) == []  # nothing ran, nothing was written
