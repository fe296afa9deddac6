"""A checkpoint is checked completely before any hook; paths are checked; writes fail clearly.

Each broken field of a real checkpoint must be refused before the first hook with the file,
the field and what was expected; path arguments of the wrong kind say what they are; a full
disk names the file and keeps the previous checkpoint; files get the umask's mode, as
Lightning's do; every rename or link replace is followed by an fsync of the folder.
"""

from __future__ import annotations

import copy
import errno
import hashlib
import os
import shutil
import stat
import subprocess
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytorch_lightning as PL
import torch

import lightcycle as LC
from lightcycle.callbacks import ModelCheckpoint
from lightcycle.errors import MisconfigurationException
from tests import kit

QUIET = kit.quiet()


def _module(pl: Any) -> Any:
    base = kit.linear_module_class(pl, loss="mse", train_data=lambda: kit.regression_loader(shuffle=True))

    class Tiny(base):  # type: ignore[misc,valid-type]
        def __init__(self) -> None:
            super().__init__()
            self.hooks: list[str] = []

        def setup(self, stage: str) -> None:
            self.hooks.append("setup")

        def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
            self.hooks.append("on_load_checkpoint")

    return Tiny()


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A mid-epoch fit checkpoint (position batch_end), as loaded."""
    folder = tmp_path_factory.mktemp("good")
    ckpt = ModelCheckpoint(dirpath=folder, every_n_train_steps=3, save_top_k=-1)
    trainer = LC.Trainer(max_epochs=1, callbacks=[ckpt], **{**QUIET, "enable_checkpointing": True})
    trainer.fit(_module(LC))
    loaded: dict[str, Any] = torch.load(folder / "epoch=0-step=3.ckpt", weights_only=False)
    assert loaded["loops"]["fit_loop"]["position"] == "batch_end"
    return loaded


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """Set (or delete, for ``...``) the field at dotted ``path``; fit_loop keys hold dots themselves."""

    def apply(ckpt: dict[str, Any]) -> None:
        holder: Any = ckpt
        parts = path.split("/")
        for part in parts[:-1]:
            holder = holder[part]
        if value is ...:
            del holder[parts[-1]]
        else:
            holder[parts[-1]] = value

    return apply


def _as_lightning_layout(ckpt: dict[str, Any]) -> None:
    """Only the Lightning progress that lightcycle also writes: read as a Lightning checkpoint."""
    del ckpt["loops"]["fit_loop"]["lightcycle"]


BROKEN = {
    "epoch": (_set("epoch", "3"), "`epoch` is a str"),
    "global_step": (_set("global_step", -1), "`global_step` is an int"),
    "state_dict": (_set("state_dict", [1.0]), "`state_dict` is a list"),
    "callbacks": (_set("callbacks", [1]), "`callbacks` is a list"),
    "optimizer_states": (_set("optimizer_states", {"lr": 1}), "`optimizer_states` is a dict"),
    "lr_schedulers": (_set("lr_schedulers", [1]), "`lr_schedulers` is a list"),
    "loops": (_set("loops", "x"), "`loops` is a str"),
    "format": (_set("loops/fit_loop/lightcycle", 99), "`loops.fit_loop.lightcycle` is an int .*reads \\(1, 2, 3\\)"),
    "position": (_set("loops/fit_loop/position", "sideways"), "`loops.fit_loop.position` is a str"),
    "epochs_processed": (_set("loops/fit_loop/epochs_processed", ...), "`loops.fit_loop.epochs_processed` is missing"),
    "epochs_completed": (_set("loops/fit_loop/epochs_completed", 5), "`loops.fit_loop.epochs_completed`.*at most"),
    "batch_idx": (_set("loops/fit_loop/batch_idx", 1.5), "`loops.fit_loop.batch_idx` is a float"),
    "is_last_batch": (_set("loops/fit_loop/is_last_batch", 0), "`loops.fit_loop.is_last_batch` is an int"),
    "rng": (_set("loops/fit_loop/rng", ...), "`loops.fit_loop.rng` is missing"),
    "rng.torch": (_set("loops/fit_loop/rng/torch", [0]), "`loops.fit_loop.rng` is a dict"),
    # Mersenne Twister words cut short (format 3 stores them as bytes): random.setstate would fail late
    "rng.python": (_set("loops/fit_loop/rng/python", (3, b"\0" * 2496, None)), "`loops.fit_loop.rng` is a dict"),
    "rng.numpy": (
        _set("loops/fit_loop/rng/numpy", ("MT19937", b"\0" * 2500, 0, 0, 0.0)),
        "`loops.fit_loop.rng` is a dict",
    ),
    "epoch_rng": (_set("loops/fit_loop/epoch_rng", {"global": 1}), "`loops.fit_loop.epoch_rng` is a dict"),
    "generators": (_set("loops/fit_loop/generators", ...), "`loops.fit_loop.generators` is missing"),
    "lightning.epoch_progress": (
        lambda c: (_as_lightning_layout(c), _set("loops/fit_loop/epoch_progress/total/completed", "1")(c)),
        "`loops.fit_loop.epoch_progress.total.completed` is a str",
    ),
    "lightning.batch_progress": (
        lambda c: (_as_lightning_layout(c), _set("loops/fit_loop/epoch_loop.batch_progress/current", 3)(c)),
        "`loops.fit_loop.epoch_loop.batch_progress.current` is an int",
    ),
}


@pytest.mark.parametrize("field", list(BROKEN))
def test_a_broken_field_is_refused_before_any_hook_naming_file_and_field(
    field: str, good: dict[str, Any], tmp_path: Path
) -> None:
    breaks, message = BROKEN[field]
    ckpt = copy.deepcopy(good)
    breaks(ckpt)
    path = tmp_path / "broken.ckpt"
    torch.save(ckpt, path)
    model = _module(LC)
    trainer = LC.Trainer(max_epochs=2, **QUIET)
    with pytest.raises(MisconfigurationException, match=message) as info:
        trainer.fit(model, ckpt_path=path)
    assert str(path) in str(info.value) and "expected" in str(info.value)
    assert model.hooks == []  # nothing ran: not even setup


def test_the_unbroken_checkpoint_and_its_lightning_layout_both_resume(good: dict[str, Any], tmp_path: Path) -> None:
    for name, edit in (("as_written", lambda c: None), ("lightning_layout", _as_lightning_layout)):
        ckpt = copy.deepcopy(good)
        edit(ckpt)
        torch.save(ckpt, tmp_path / f"{name}.ckpt")
        trainer = LC.Trainer(max_epochs=1, **QUIET)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            trainer.fit(_module(LC), ckpt_path=tmp_path / f"{name}.ckpt")
        assert trainer.global_step == 4, name


def test_evaluation_reads_only_what_it_restores(good: dict[str, Any], tmp_path: Path) -> None:
    ckpt = copy.deepcopy(good)
    ckpt["loops"]["fit_loop"]["position"] = "sideways"  # fit would refuse it; validate restores no loop state
    torch.save(ckpt, tmp_path / "eval.ckpt")

    class WithVal(type(_module(LC))):  # type: ignore[misc]
        def validation_step(self, batch: Any, batch_idx: int) -> None:
            pass

        def val_dataloader(self) -> Any:
            return self.train_dataloader()

    LC.Trainer(**QUIET).validate(WithVal(), ckpt_path=tmp_path / "eval.ckpt", verbose=False)


# --------------------------------------------------------------------------- path arguments


@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        (b"/tmp/x.ckpt", TypeError, r"`ckpt_path` is a bytes \(b'/tmp/x.ckpt'\); expected a str or an os.PathLike"),
        (3, TypeError, r"`ckpt_path` is an int \(3\); expected a str or an os.PathLike"),
        (None, None, ""),
    ],
)
def test_a_ckpt_path_of_the_wrong_type_says_what_it_is(value: Any, error: Any, message: str) -> None:
    trainer = LC.Trainer(max_epochs=1, limit_train_batches=1, **QUIET)
    model = _module(LC)
    if error is None:
        trainer.fit(model, ckpt_path=value)
        return
    with pytest.raises(error, match=message):
        trainer.fit(model, ckpt_path=value)
    assert model.hooks == []


def test_a_folder_as_ckpt_path_is_called_a_folder(good: dict[str, Any], tmp_path: Path) -> None:
    torch.save(good, tmp_path / "last.ckpt")
    model = _module(LC)
    with pytest.raises(IsADirectoryError, match=r"is a folder, not a checkpoint file.*\['last.ckpt'\]"):
        LC.Trainer(max_epochs=1, **QUIET).fit(model, ckpt_path=tmp_path)
    assert model.hooks == []


def test_save_checkpoint_refuses_a_folder_and_a_non_path(tmp_path: Path) -> None:
    trainer = LC.Trainer(max_epochs=1, limit_train_batches=1, **QUIET)
    trainer.fit(_module(LC))
    with pytest.raises(IsADirectoryError, match="is a folder"):
        trainer.save_checkpoint(tmp_path)
    with pytest.raises(TypeError, match=r"`filepath` is an int \(7\)"):
        trainer.save_checkpoint(7)
    assert os.listdir(tmp_path) == []  # no temporary file left behind


# --------------------------------------------------------------------------- file modes and fsync


@pytest.mark.parametrize("umask", [None, 0o027])
def test_checkpoint_files_get_the_umasks_mode_as_lightnings_do(umask: int | None, tmp_path: Path) -> None:
    """Lightning (fsspec) reads the umask once, when fsspec is imported: it is compared under the
    process's own umask; under another one, lightcycle's files follow it as ``open()``'s do."""
    modes = {}
    current = os.umask(0o022)
    os.umask(current)
    umask = current if umask is None else umask
    old = os.umask(umask)
    try:
        for pl in (PL, LC) if umask == current else (LC,):
            folder = tmp_path / pl.__name__
            ckpt = pl.callbacks.ModelCheckpoint(dirpath=folder, save_last="link")
            kw = {**QUIET, "enable_checkpointing": True}
            trainer = pl.Trainer(max_epochs=1, limit_train_batches=1, callbacks=[ckpt], **kw)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                trainer.fit(_module(pl))
            trainer.save_checkpoint(folder / "manual.ckpt")
            modes[pl.__name__] = {
                f.name: stat.S_IMODE(f.lstat().st_mode) for f in folder.iterdir() if not f.is_symlink()
            }
    finally:
        os.umask(old)
    assert modes["lightcycle"] == dict.fromkeys(["epoch=0-step=1.ckpt", "last.ckpt", "manual.ckpt"], 0o666 & ~umask)
    if "pytorch_lightning" in modes:
        assert set(modes["lightcycle"].values()) == set(modes["pytorch_lightning"].values()), modes


def test_every_rename_and_link_replace_is_followed_by_a_folder_fsync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events: list[tuple[str, str]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            events.append(("fsync folder", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(src: Any, dst: Any, **kw: Any) -> None:
        real_replace(src, dst, **kw)
        events.append(("replace", os.fspath(dst)))

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    folder = tmp_path / "ckpts"
    ckpt = ModelCheckpoint(dirpath=folder, every_n_train_steps=1, save_last="link")
    LC.Trainer(max_epochs=1, callbacks=[ckpt], **{**QUIET, "enable_checkpointing": True}).fit(_module(LC))
    replaced = [i for i, (kind, _) in enumerate(events) if kind == "replace"]
    assert len(replaced) == 8 and sum(p.endswith("last.ckpt") for _, p in events) == 4  # 4 saves, 4 link replaces
    for i in replaced:
        assert events[i + 1] == ("fsync folder", str(folder)), events[i : i + 2]


# --------------------------------------------------------------------------- a full disk


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 256 KiB tmpfs mounted for the test (needs root, as here and in CI)."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs root")
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True, timeout=30)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_full_disk_names_the_file_and_keeps_the_previous_checkpoint(tiny_disk: Path) -> None:
    trainer = LC.Trainer(max_epochs=1, limit_train_batches=1, **QUIET)
    trainer.fit(_module(LC))
    target = tiny_disk / "model.ckpt"
    trainer.save_checkpoint(target)
    before = _digest(target)
    with open(tiny_disk / "filler", "wb") as fh:  # leave a few KiB: less than a checkpoint
        fh.write(b"\0" * (256 * 1024 - os.path.getsize(target) - 8 * 1024))
    with pytest.raises(OSError, match="No space left on device") as info:
        trainer.save_checkpoint(target)
    assert info.value.errno == errno.ENOSPC and str(target) in str(info.value)
    assert _digest(target) == before
    assert sorted(os.listdir(tiny_disk)) == ["filler", "model.ckpt"]  # no temporary file left
    torch.load(target, weights_only=False)
