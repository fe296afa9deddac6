"""Lightning's public import paths under lightcycle's aliases: each resolves or is refused as documented.

``fixtures/lightning_public_paths.json`` lists Lightning 2.6.6's public modules and names
(regenerate with ``fixtures/make_lightning_paths.py``). A fresh process installs the aliases
and resolves every entry (``check_lightning_paths.py``); what does not resolve must be in
:data:`lightcycle.compat.not_offered.NOT_OFFERED` and refused with the error that names it,
and no entry of that table may name something that resolves (remove it when lightcycle gains it).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

from lightcycle.compat.not_offered import NOT_OFFERED, reason_for
from tests.paths import ROOT, TESTS


@pytest.fixture(scope="module")
def outcome() -> dict[str, Any]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run(
        [sys.executable, str(TESTS / "check_lightning_paths.py")], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_every_path_resolves_or_is_refused_as_documented(outcome: dict[str, Any]) -> None:
    assert outcome["other"] == {}
    for path, message in outcome["refused"].items():
        assert reason_for(path) is not None, f"{path} is refused but not listed in NOT_OFFERED"
        assert "lightcycle does not offer `" in message and "Change that import" in message
        assert path.startswith(message.split("`")[1]), message  # the module or the name itself


def test_no_listed_entry_resolves(outcome: dict[str, Any]) -> None:
    resolved = set(outcome["resolved"])
    stale = sorted(key for key in NOT_OFFERED if key in resolved)
    assert stale == [], f"lightcycle offers these now: remove them from NOT_OFFERED: {stale}"


def test_the_commonly_imported_names_resolve(outcome: dict[str, Any]) -> None:
    resolved = set(outcome["resolved"])
    wanted = [
        "lightning.pytorch.Trainer",
        "lightning.pytorch.LightningModule",
        "lightning.pytorch.LightningDataModule",
        "lightning.pytorch.Callback",
        "lightning.pytorch.seed_everything",
        "lightning.pytorch.core.LightningModule",
        "lightning.pytorch.trainer.Trainer",
        "lightning.pytorch.trainer.states.TrainerFn",
        "lightning.pytorch.callbacks.ModelCheckpoint",
        "lightning.pytorch.callbacks.EarlyStopping",
        "lightning.pytorch.callbacks.TQDMProgressBar",
        "lightning.pytorch.utilities.rank_zero_only",
        "lightning.pytorch.utilities.rank_zero_info",
        "lightning.pytorch.utilities.rank_zero_warn",
        "lightning.pytorch.utilities.rank_zero.rank_zero_debug",
        "lightning.pytorch.utilities.grad_norm",
        "lightning.pytorch.utilities.AttributeDict",
        "lightning.pytorch.utilities.move_data_to_device",
        "lightning.pytorch.utilities.seed.isolate_rng",
        "lightning.pytorch.utilities.model_helpers.is_overridden",
        "lightning.pytorch.utilities.exceptions.MisconfigurationException",
        "lightning.pytorch.utilities.imports",
        "lightning.pytorch.utilities.model_summary",
        "lightning.pytorch.utilities.model_summary.model_summary.ModelSummary",
        "lightning.pytorch.utilities.model_summary.model_summary.summarize",
        "lightning.pytorch.callbacks.progress",
        "lightning.pytorch.utilities.types.OptimizerLRSchedulerConfig",
        "lightning.pytorch.utilities.types.LRSchedulerConfigType",
        "lightning.pytorch.utilities.types.OptimizerConfig",
    ]
    assert [name for name in wanted if name not in resolved] == []
    total = len(outcome["resolved"]) + len(outcome["refused"])
    print(f"{len(outcome['resolved'])} of {total} Lightning public paths resolve; {len(outcome['refused'])} refused")


@pytest.mark.parametrize("name", ["LRSchedulerConfigType", "OptimizerConfig", "OptimizerLRSchedulerConfig"])
def test_configure_optimizers_typed_dicts_have_lightnings_keys(name: str) -> None:
    """The TypedDicts programs annotate ``configure_optimizers`` with: the same required and optional keys."""
    import pytorch_lightning.utilities.types as theirs

    import lightcycle.utilities.types as ours

    mine, lightning = getattr(ours, name), getattr(theirs, name)
    assert mine.__required_keys__ == lightning.__required_keys__
    assert mine.__optional_keys__ == lightning.__optional_keys__
