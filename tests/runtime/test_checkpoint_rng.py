"""The RNG states in a checkpoint: compact (fit-loop format 3), and the older form still resumes exactly.

A fit checkpoint holds the global RNG states twice (at the save, and at the start of the epoch
for a mid-epoch resume). Format 3 stores the Mersenne Twister words of Python's ``random`` and
NumPy's global generator, and torch's states, as bytes, so ``torch.save`` pickles a few dozen
objects for them instead of ~1,300 (its pickler calls ``persistent_id`` for each). Formats 1 and 2
stored a tuple of 625 ints, an int64 tensor and uint8 tensors; a file in that form must still
resume with the same Python, NumPy and torch draws (and loader order) as the uninterrupted fit.
"""

from __future__ import annotations

import io
import pickle
import random
import struct
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import lightcycle as LC
from lightcycle.callbacks import ModelCheckpoint
from tests import kit

QUIET = kit.quiet(checkpointing=None)  # the tests choose checkpointing
Base = kit.linear_module_class(LC, loss="mse", train_data=lambda: kit.regression_loader(shuffle=True))


class Drawing(Base):  # type: ignore[misc,valid-type]
    """Draws from every global generator in each training step (gauss twice: the cached second
    value of Python's and NumPy's Box-Muller transform is part of their state)."""

    def __init__(self) -> None:
        super().__init__()
        self.draws: list[tuple[Any, ...]] = []

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        draw = (random.random(), random.gauss(0, 1), float(np.random.rand()), float(np.random.randn()))
        self.draws.append((self.global_step, *draw, float(torch.rand(()))))
        loss: torch.Tensor = super().training_step(batch, batch_idx)
        return loss


def _fit(folder: Path, seed: int, ckpt_path: Path | None = None) -> Drawing:
    LC.seed_everything(seed, verbose=False)
    model = Drawing()
    callbacks = [
        ModelCheckpoint(dirpath=folder, every_n_train_steps=1, save_top_k=-1),  # batch_end files
        ModelCheckpoint(dirpath=folder, filename="end-{epoch}", every_n_epochs=1, save_top_k=-1),  # epoch_end
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        LC.Trainer(max_epochs=2, callbacks=callbacks, **QUIET).fit(model, ckpt_path=ckpt_path)
    return model


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Drawing]:
    """The checkpoints of an uninterrupted fit, and its model (with its draws)."""
    folder = tmp_path_factory.mktemp("written")
    return folder, _fit(folder, seed=0)


def _rng_dicts(fit_loop: dict[str, Any]) -> list[dict[str, Any]]:
    return [fit_loop["rng"], *([fit_loop["epoch_rng"]["global"]] if fit_loop["epoch_rng"] else [])]


def _pickled_objects(obj: Any) -> int:
    """How many objects ``torch.save``'s pickler would call ``persistent_id`` for."""
    seen = 0

    class Counting(pickle.Pickler):
        def persistent_id(self, obj: Any) -> None:
            nonlocal seen
            seen += 1

    Counting(io.BytesIO(), protocol=2).dump(obj)
    return seen


def test_the_rng_states_are_stored_as_bytes_in_a_few_dozen_objects(written: tuple[Path, Drawing]) -> None:
    fit_loop = torch.load(written[0] / "epoch=0-step=3.ckpt", weights_only=True)["loops"]["fit_loop"]
    assert fit_loop["lightcycle"] == 3 and fit_loop["position"] == "batch_end"
    for states in _rng_dicts(fit_loop):
        version, words, _ = states["python"]
        assert version == 3 and isinstance(words, bytes) and len(words) == 625 * 4
        assert isinstance(states["numpy"][1], bytes) and len(states["numpy"][1]) == 624 * 4
        assert isinstance(states["torch"], bytes) and len(states["torch"]) == torch.get_rng_state().numel()
    assert len(fit_loop["generators"]) == 1 and all(isinstance(g, bytes) for g in fit_loop["generators"])
    # after an odd number of gauss draws the second value of the pair is part of the state
    assert isinstance(fit_loop["rng"]["python"][2], float) and fit_loop["rng"]["numpy"][3] == 1
    rng = {k: fit_loop[k] for k in ("rng", "epoch_rng", "generators")}
    assert _pickled_objects(rng) < 100  # the old form: over 1,300 (626 for a tuple of 625 ints, ~20 a tensor)


def _tensor(state: bytes) -> torch.Tensor:
    return torch.frombuffer(bytearray(state), dtype=torch.uint8)


def _as_format_2(path: Path, to: Path) -> Path:
    """Rewrite a checkpoint's RNG states in the form formats 1 and 2 stored them (tuple, tensors)."""
    ckpt = torch.load(path, weights_only=False)
    fit_loop = ckpt["loops"]["fit_loop"]
    fit_loop["lightcycle"] = 2
    for states in _rng_dicts(fit_loop):
        states["torch"] = _tensor(states["torch"])
        version, words, gauss = states["python"]
        states["python"] = (version, struct.unpack("<625I", words), gauss)
        kind, keys, pos, has_gauss, cached = states["numpy"]
        states["numpy"] = (kind, torch.from_numpy(np.frombuffer(keys, "<u4").astype(np.int64)), pos, has_gauss, cached)
    fit_loop["generators"] = [_tensor(g) for g in fit_loop["generators"]]
    if fit_loop["epoch_rng"]:
        fit_loop["epoch_rng"]["generators"] = [_tensor(g) for g in fit_loop["epoch_rng"]["generators"]]
    assert _pickled_objects({k: fit_loop[k] for k in ("rng", "epoch_rng", "generators")}) > 1300
    torch.save(ckpt, to)
    return to


@pytest.mark.parametrize("form", ["format3", "format2"])
@pytest.mark.parametrize(("name", "step"), [("epoch=0-step=3.ckpt", 3), ("end-epoch=0.ckpt", 4)])
def test_a_resume_draws_what_the_uninterrupted_fit_drew(
    form: str, name: str, step: int, written: tuple[Path, Drawing], tmp_path: Path
) -> None:
    folder, whole = written
    path = folder / name
    if form == "format2":
        path = _as_format_2(path, tmp_path / "format2.ckpt")
    resumed = _fit(tmp_path / "resumed", seed=12345, ckpt_path=path)  # another seed: the file must set them
    assert resumed.trainer.global_step == whole.trainer.global_step == 8
    assert resumed.draws == [d for d in whole.draws if d[0] >= step]
    assert all(torch.equal(v, whole.state_dict()[k]) for k, v in resumed.state_dict().items())
