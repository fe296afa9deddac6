"""Exact resume: a fit that dies and is resumed from its last checkpoint ends bitwise equal
to an uninterrupted fit with the same seed (CPU, deterministic algorithms).

The run (``tests/exact_resume.py``) has dropout, a shuffled train loader, Adam and an
epoch-interval StepLR; ``ModelCheckpoint(every_n_train_steps=1, save_last=True)`` writes
``last.ckpt`` after every batch, and the resumed fit passes ``ckpt_path="last"`` after
seeding differently, so everything random must come from the checkpoint. The SIGKILL matrix
varies where the order comes from (the global RNG, ``DataLoader(generator=)``,
``RandomSampler(generator=)``, a loader with ``state_dict``/``load_state_dict``, torchdata's
``StatefulDataLoader``), accumulation, mid-epoch validation, manual optimization and
``every_n_epochs`` checkpoints.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import pytest
import torch

from tests.exact_resume import DEFAULT, EPOCHS, LOADERS, Crash, Setup, fit, kill_inside_save, resume_path, state
from tests.paths import ROOT


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return state(fit(str(tmp_path_factory.mktemp("ref")), seed=7))


def _resume(root: Path, setup: Setup = DEFAULT) -> dict[str, Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return state(fit(str(root), seed=12345, ckpt_path=resume_path(str(root), setup), setup=setup))


@pytest.mark.parametrize(
    "point",
    [
        (0, 1, "batch_end"),  # mid-epoch
        (0, 4, "batch_end"),  # after the epoch's last batch, before its validation and epoch end
        (0, -1, "validation_end"),
        (0, -1, "epoch_end"),
        (1, -1, "epoch_start"),
        (2, 2, "batch_end"),
    ],
    ids=lambda p: f"epoch{p[0]}-batch{p[1]}-{p[2]}",
)
def test_crash_then_resume_is_bitwise_exact(
    point: tuple[int, int, str], reference: dict[str, Any], tmp_path: Path
) -> None:
    with pytest.raises(RuntimeError, match="crash at"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit(str(tmp_path), seed=7, crash=Crash(*point))
    resumed = _resume(tmp_path)
    assert resumed["global_step"] == reference["global_step"] and resumed["epoch"] == EPOCHS
    assert _equal(resumed, reference)


def _kill_points() -> list[tuple[int, int, str]]:
    rng = random.Random(20240607)
    return [
        (rng.randrange(EPOCHS), rng.randrange(1, 4), "batch_end"),  # a random batch in the middle of an epoch
        (rng.randrange(EPOCHS - 1), -1, "epoch_end"),  # at an epoch end
        (0, rng.randrange(3, 12), "save"),  # inside a checkpoint write: the file is half-written when killed
    ]


def _killed_child(root: Path, point: tuple[int, int, str], setup: Setup = DEFAULT) -> int:
    """Run the fit in a child process that SIGKILLs itself at ``point``; returns its wait status.

    The child is forked (a fresh interpreter would spend most of the test importing torch);
    where fork is unavailable it is ``python -m tests.exact_resume``.
    """
    if not hasattr(os, "fork"):  # pragma: no cover - non-POSIX
        assert setup == DEFAULT, "the script runs the default setup only"
        env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONWARNINGS": "ignore"}
        args = [sys.executable, "-m", "tests.exact_resume", str(root), *map(str, point)]
        return -subprocess.run(args, cwd=ROOT, env=env, capture_output=True, timeout=300).returncode
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        try:
            warnings.simplefilter("ignore")
            if point[2] == "save":
                kill_inside_save(point[1])
                fit(str(root), seed=7)
            else:
                fit(str(root), seed=7, crash=Crash(*point, kill=True), setup=setup)
        finally:
            os._exit(3)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.WTERMSIG(status) if os.WIFSIGNALED(status) else -os.WEXITSTATUS(status)
        time.sleep(0.02)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    raise AssertionError(f"the killed fit at {point} did not finish in time")


@pytest.mark.parametrize("point", _kill_points(), ids=lambda p: f"epoch{p[0]}-{p[1]}-{p[2]}")
def test_sigkill_then_resume_is_bitwise_exact(
    point: tuple[int, int, str],
    reference: dict[str, Any],
    tmp_path: Path,
) -> None:
    assert _killed_child(tmp_path, point) == signal.SIGKILL
    root = tmp_path
    files = os.listdir(root / "ckpts")
    assert "last.ckpt" in files
    if point[2] == "save":  # the half-written temporary file is all that the kill left behind
        assert any(f.startswith(".tmp-") for f in files)
    resumed = _resume(root)
    assert _equal(resumed, reference)


_REFERENCES: dict[Setup, dict[str, Any]] = {}


def _reference(setup: Setup, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The uninterrupted run of ``setup`` (computed once per setup)."""
    if setup not in _REFERENCES:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _REFERENCES[setup] = state(fit(str(tmp_path_factory.mktemp("ref")), seed=7, setup=setup))
    return _REFERENCES[setup]


LAST_BATCH, EPOCH_END, MID_EPOCH = (0, 4, "batch_end"), (0, -1, "epoch_end"), (1, 2, "batch_end")
MATRIX = [
    *((Setup(loader=kind), point) for kind in LOADERS for point in (LAST_BATCH, EPOCH_END, MID_EPOCH)),
    # accumulation (2 of 5 batches): batch 2 does not step, so the last checkpoint is batch 1's
    (Setup("generator", accumulate=2), (0, 2, "batch_end")),
    (Setup("generator", accumulate=2), LAST_BATCH),
    # validation after batches 1 and 3: killed at the end of the first one, and after it
    (Setup("generator", val_every=2), (0, -1, "validation_end")),
    (Setup("stateful", val_every=2), (0, 2, "batch_end")),
    (Setup("generator", manual=True), LAST_BATCH),
    (Setup("torchdata", manual=True), MID_EPOCH),
    # resumed from the epoch-0 file (written at the end of epoch 0's validation)
    *((Setup(kind, every_n_epochs=True), MID_EPOCH) for kind in ("generator", "sampler", "stateful")),
]


@pytest.mark.parametrize(
    ("setup", "point"),
    MATRIX,
    ids=[
        f"{s.loader}{'-acc' if s.accumulate > 1 else ''}{'-val' if s.val_every else ''}{'-manual' if s.manual else ''}"
        f"{'-every_n_epochs' if s.every_n_epochs else ''}-epoch{p[0]}-batch{p[1]}-{p[2]}"
        for s, p in MATRIX
    ],
)
def test_sigkill_then_resume_is_bitwise_exact_for_every_source_of_order(
    setup: Setup, point: tuple[int, int, str], tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    reference = _reference(setup, tmp_path_factory)
    assert _killed_child(tmp_path, point, setup) == signal.SIGKILL
    resumed = _resume(tmp_path, setup)
    assert resumed["global_step"] == reference["global_step"] and resumed["epoch"] == EPOCHS
    assert _equal(resumed, reference)
