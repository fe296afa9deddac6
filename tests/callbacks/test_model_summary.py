"""ModelSummary prints Lightning's table: names, types, params, mode, FLOPs, sizes and totals."""

from __future__ import annotations

import logging
from types import ModuleType
from typing import Any

import pytest
import pytorch_lightning as PL
import torch

import lightcycle as LC
from lightcycle.core.model_summary import get_human_readable_count
from tests.callback_programs import run


def _model(fw: ModuleType, example: bool, frozen: bool) -> Any:
    class Model(fw.LightningModule):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.layer = torch.nn.Linear(4, 3)
            self.head = torch.nn.Sequential(torch.nn.ReLU(), torch.nn.Sequential(torch.nn.Linear(3, 1)))
            self.loose = torch.nn.Parameter(torch.zeros(7))
            self.norm = torch.nn.BatchNorm1d(3).eval()
            if example:
                self.example_input_array = torch.zeros(2, 4)
            if frozen:
                self.layer.requires_grad_(False)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.layer(x))  # type: ignore[no-any-return]

        def training_step(self, batch: Any, batch_idx: int) -> Any:
            return self(batch[0]).sum() + self.loose.sum()

        def configure_optimizers(self) -> Any:
            return torch.optim.SGD(self.parameters(), lr=0.1)

    return Model()


@pytest.mark.parametrize("depth", [1, 2, -1, 0])
@pytest.mark.parametrize(("example", "frozen"), [(False, False), (True, True)])
def test_model_summary_table_equals_lightning(
    depth: int, example: bool, frozen: bool, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    with caplog.at_level(logging.INFO, logger="pytorch_lightning.callbacks.model_summary"):
        run(PL, lambda fw: [fw.callbacks.ModelSummary(max_depth=depth)], module=_model(PL, example, frozen))
    lightning = "".join(r.getMessage() for r in caplog.records if r.name.endswith("model_summary"))
    capsys.readouterr()
    run(LC, lambda fw: [fw.callbacks.ModelSummary(max_depth=depth)], module=_model(LC, example, frozen))
    ours = capsys.readouterr().out
    if depth == 0:
        assert lightning == "" and ours == ""
    else:
        assert "Total Flops" in lightning
        assert ours.rstrip("\n") == lightning


def test_default_summary_is_lightnings(capsys: pytest.CaptureFixture[str]) -> None:
    """On by default, and the rich table when rich is installed (it is, with the test extra), as in Lightning."""
    outs = []
    for fw in (PL, LC):
        capsys.readouterr()
        trainer = run(fw, lambda fw: [], enable_model_summary=True, module=_model(fw, False, False))["trainer"]
        outs.append(capsys.readouterr().out)
        assert type(trainer.callbacks[-1]).__name__ == "RichModelSummary"
    assert "Total estimated model params size (MB)" in outs[0]
    assert outs[1] == outs[0]


@pytest.mark.parametrize("n", [0, 123, 1234, 2_000_000, 3_000_000_000, 4 * 10**14, 5 * 10**15])
def test_human_readable_count_equals_lightning(n: int) -> None:
    from pytorch_lightning.utilities.model_summary.model_summary import get_human_readable_count as pl_count

    assert get_human_readable_count(n) == pl_count(n)


@pytest.mark.parametrize("depth", [1, 2, -1])
@pytest.mark.parametrize(("example", "frozen"), [(False, False), (True, True)])
def test_summary_object_equals_lightnings_utility(depth: int, example: bool, frozen: bool) -> None:
    """``ModelSummary(model)`` of ``utilities.model_summary`` (printed in notebooks): its table and numbers."""
    from pytorch_lightning.utilities.model_summary import ModelSummary as PLSummary

    from lightcycle.core.model_summary import ModelSummary

    theirs, ours = (
        PLSummary(_model(PL, example, frozen), max_depth=depth),
        ModelSummary(_model(LC, example, frozen), max_depth=depth),
    )
    assert str(ours) == str(theirs) and repr(ours) == repr(theirs)
    for attribute in ("layer_names", "layer_types", "in_sizes", "out_sizes", "param_nums", "training_modes"):
        assert getattr(ours, attribute) == getattr(theirs, attribute), attribute
    for attribute in ("total_parameters", "trainable_parameters", "total_layer_params", "model_size", "total_flops"):
        assert getattr(ours, attribute) == getattr(theirs, attribute), attribute


@pytest.mark.parametrize("size", [0.0, 0.004, 1234.5678, 2_000_000.25])
def test_formatted_model_size_equals_lightning(size: float) -> None:
    from pytorch_lightning.utilities.model_summary import get_formatted_model_size as pl_size

    from lightcycle.core.model_summary import get_formatted_model_size

    assert get_formatted_model_size(size) == pl_size(size)


def test_bad_max_depth_is_refused() -> None:
    from lightcycle.core.model_summary import summarize

    with pytest.raises(ValueError, match="max_depth"):
        summarize(torch.nn.Linear(1, 1), max_depth=-2)


def test_rich_model_summary_equals_lightning(capsys: pytest.CaptureFixture[str]) -> None:
    outs = []
    for fw in (PL, LC):
        capsys.readouterr()
        run(fw, lambda fw: [fw.callbacks.RichModelSummary(max_depth=-1)], module=_model(fw, True, True))
        outs.append(capsys.readouterr().out)
    assert "Total FLOPs" in outs[0]
    assert outs[1] == outs[0]


def test_rich_model_summary_without_rich_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "rich" else real(name, *a))
    with pytest.raises(ModuleNotFoundError, match=r"pip install lightcycle\[rich\]"):
        LC.callbacks.RichModelSummary()
