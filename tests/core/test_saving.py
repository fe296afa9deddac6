"""``core.saving``'s hyper-parameter files against Lightning's functions of the same names."""

from __future__ import annotations

from argparse import Namespace
from pathlib import Path
from typing import Any

import pytest
import yaml
from pytorch_lightning.core import saving as theirs

from lightcycle.core import saving as ours
from lightcycle.core.hparams import AttributeDict

HPARAMS: dict[str, Any] = {"lr": 0.001, "batch_size": 32, "name": "run/a", "layers": [64, 32], "nested": {"a": 1}}


@pytest.mark.parametrize("given", [dict(HPARAMS), Namespace(**HPARAMS)])
def test_tags_csv_is_lightnings_file(tmp_path: Path, given: Any) -> None:
    theirs.save_hparams_to_tags_csv(tmp_path / "theirs.csv", given)
    ours.save_hparams_to_tags_csv(tmp_path / "ours.csv", given)
    assert (tmp_path / "ours.csv").read_bytes() == (tmp_path / "theirs.csv").read_bytes()
    assert ours.load_hparams_from_tags_csv(tmp_path / "ours.csv") == HPARAMS


@pytest.mark.parametrize("given", [dict(HPARAMS), Namespace(**HPARAMS), AttributeDict(HPARAMS)])
def test_yaml_holds_lightnings_values(tmp_path: Path, given: Any) -> None:
    theirs.save_hparams_to_yaml(tmp_path / "theirs.yaml", given, use_omegaconf=False)
    ours.save_hparams_to_yaml(tmp_path / "ours.yaml", given)
    lightning = yaml.full_load((tmp_path / "theirs.yaml").read_text())
    assert yaml.safe_load((tmp_path / "ours.yaml").read_text()) == lightning == HPARAMS
    assert ours.load_hparams_from_yaml(tmp_path / "ours.yaml") == HPARAMS


def test_yaml_writes_a_tuple_as_a_list_and_other_mappings_as_dicts(tmp_path: Path) -> None:
    class Config(dict[str, Any]):
        pass

    ours.save_hparams_to_yaml(tmp_path / "h.yaml", {"shape": (3, 4), "cfg": Config(depth=2)})
    assert yaml.safe_load((tmp_path / "h.yaml").read_text()) == {"shape": [3, 4], "cfg": {"depth": 2}}


@pytest.mark.parametrize("writer", ["save_hparams_to_yaml", "save_hparams_to_tags_csv"])
def test_a_missing_folder_is_lightnings_error(tmp_path: Path, writer: str) -> None:
    target = tmp_path / "absent" / "h.file"
    messages = []
    for module in (theirs, ours):
        with pytest.raises(RuntimeError) as caught:
            getattr(module, writer)(target, {"a": 1})
        messages.append(str(caught.value))
    assert messages[0] == messages[1] == f"Missing folder: {tmp_path / 'absent'}."
    assert not target.parent.exists()


def test_yaml_refuses_what_is_not_a_mapping(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="hparams must be dictionary"):
        ours.save_hparams_to_yaml(tmp_path / "h.yaml", [1, 2])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("hparams", "updates"),
    [({"c": 4}, {"a": {"b": 2}, "c": 1}), ({"a": {"b": 2, "x": 0}, "c": 1}, {"a": {"b": 4}, "c": 7, "d": [1]})],
)
def test_update_hparams_is_lightnings(hparams: dict[str, Any], updates: dict[str, Any]) -> None:
    mine, lightning = {k: dict(v) if isinstance(v, dict) else v for k, v in hparams.items()}, dict(hparams)
    theirs.update_hparams(lightning, updates)
    ours.update_hparams(mine, updates)
    assert mine == lightning


@pytest.mark.parametrize("text", ["1", "0.5", "True", "[1, 2]", "{'a': 1}", "word", "a b", ""])
def test_convert_is_lightnings(text: str) -> None:
    assert ours.convert(text) == theirs.convert(text)
