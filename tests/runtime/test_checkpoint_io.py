"""Checkpoint IO plugins: ``Trainer(plugins=[...])`` with ``TorchCheckpointIO``, a custom
``CheckpointIO`` and ``AsyncCheckpointIO``; the calls a fit makes to its plugin, against
Lightning's; background writes in order, snapshotted, and never losing an error."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import pytest
import pytorch_lightning as PL
import torch

import lightcycle as LC
from lightcycle.callbacks import ModelCheckpoint
from lightcycle.errors import MisconfigurationException
from lightcycle.plugins import AsyncCheckpointIO, CheckpointIO, TorchCheckpointIO
from lightcycle.strategies import DDPStrategy
from tests import kit

QUIET = kit.quiet(checkpointing=None)


def _module_class(fw: Any) -> type[Any]:
    return kit.linear_module_class(
        fw,
        loss="mse",
        steps=("train", "val"),
        log=True,
        seed=0,
        train_data=kit.regression_loader,
        val_data=lambda: kit.regression_loader(seed=1),
    )


def _recording_io(base: type[Any]) -> type[Any]:
    class Recording(base):  # type: ignore[misc, valid-type]
        def __init__(self) -> None:
            super().__init__()
            self.calls: list[tuple[str, str]] = []

        def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
            self.calls.append(("save", os.path.basename(path)))
            super().save_checkpoint(checkpoint, path, storage_options=storage_options)

        def remove_checkpoint(self, path: Any) -> None:
            self.calls.append(("remove", os.path.basename(path)))
            super().remove_checkpoint(path)

    return Recording


def _fit(fw: Any, root: Path, plugin: Any, **kw: Any) -> Any:
    checkpoint = fw.callbacks.ModelCheckpoint(save_top_k=1, save_last=True)  # removes the previous epoch's
    trainer = fw.Trainer(
        default_root_dir=root, callbacks=[checkpoint], plugins=[plugin], **{**QUIET, "max_epochs": 4, **kw}
    )
    trainer.fit(_module_class(fw)())
    return trainer


def _files(root: Path) -> set[str]:
    return {p.name for p in root.rglob("*.ckpt")}


# --------------------------------------------------------------------------- what a fit asks its plugin


def test_a_fit_makes_lightnings_calls_to_its_checkpoint_io(tmp_path: Path) -> None:
    """ModelCheckpoint's saves and top-k removals reach the plugin, in Lightning's order."""
    ours, theirs = _recording_io(TorchCheckpointIO)(), _recording_io(PL.plugins.TorchCheckpointIO)()
    trainer = _fit(LC, tmp_path / "lc", ours)
    _fit(PL, tmp_path / "pl", theirs)
    assert trainer.strategy.checkpoint_io is ours
    assert ("remove", "epoch=0-step=4.ckpt") in ours.calls
    assert ours.calls == theirs.calls
    assert _files(tmp_path / "lc") == _files(tmp_path / "pl")


def test_the_default_plugin_is_torch_checkpoint_io_and_a_strategy_can_carry_one() -> None:
    assert type(LC.Trainer(**QUIET).strategy.checkpoint_io) is TorchCheckpointIO
    plugin = TorchCheckpointIO()
    assert DDPStrategy(checkpoint_io=plugin).checkpoint_io is plugin
    wrapper = AsyncCheckpointIO()
    trainer = LC.Trainer(**QUIET, plugins=wrapper)
    assert trainer.strategy.checkpoint_io is wrapper
    assert type(wrapper.checkpoint_io) is TorchCheckpointIO  # a wrapper without a base wraps the default


def test_bad_plugins_are_refused_before_any_hook() -> None:
    with pytest.raises(MisconfigurationException, match="Received multiple values for CheckpointIO"):
        LC.Trainer(**QUIET, plugins=[TorchCheckpointIO(), AsyncCheckpointIO()])
    with pytest.raises(MisconfigurationException, match="Found invalid type for plugin 'ddp'"):
        LC.Trainer(**QUIET, plugins=["ddp"])
    with pytest.raises(TypeError, match="takes a base plugin"):
        AsyncCheckpointIO(AsyncCheckpointIO())


def test_storage_options_reach_a_custom_plugin_and_the_default_refuses_them_first(tmp_path: Path) -> None:
    seen: list[Any] = []

    class Custom(TorchCheckpointIO):
        def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
            seen.append(storage_options)
            super().save_checkpoint(checkpoint, path)

    saves: list[str] = []

    class Hooked(_module_class(LC)):  # type: ignore[misc]
        def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
            saves.append("hook")

    trainer = LC.Trainer(default_root_dir=tmp_path, **{**kit.quiet(), "max_epochs": 1})
    trainer.fit(Hooked())
    with pytest.raises(TypeError, match="with `storage_options` arg is not supported for `TorchCheckpointIO`"):
        trainer.save_checkpoint(tmp_path / "x.ckpt", storage_options={"a": 1})
    assert saves == [] and not (tmp_path / "x.ckpt").exists()  # refused before on_save_checkpoint

    # behind the asynchronous wrapper the refusing plugin is its base, as Lightning's base raises it
    trainer = LC.Trainer(default_root_dir=tmp_path, plugins=[AsyncCheckpointIO()], **{**kit.quiet(), "max_epochs": 1})
    trainer.fit(Hooked())
    with pytest.raises(TypeError, match="with `storage_options` arg is not supported for `TorchCheckpointIO`"):
        trainer.save_checkpoint(tmp_path / "z.ckpt", storage_options={"a": 1})
    assert saves == [] and not (tmp_path / "z.ckpt").exists()

    trainer = LC.Trainer(default_root_dir=tmp_path, plugins=[Custom()], **{**kit.quiet(), "max_epochs": 1})
    trainer.fit(Hooked())
    trainer.save_checkpoint(tmp_path / "y.ckpt", storage_options={"a": 1})
    assert seen == [{"a": 1}] and (tmp_path / "y.ckpt").is_file()


def test_a_resume_reads_through_a_custom_plugins_load_checkpoint(tmp_path: Path) -> None:
    loaded: list[str] = []

    class Reading(TorchCheckpointIO):
        def load_checkpoint(self, path: Any, map_location: Any = None, weights_only: bool | None = None) -> Any:
            loaded.append(os.path.basename(path))
            return super().load_checkpoint(path, map_location=map_location, weights_only=False)

    first = LC.Trainer(default_root_dir=tmp_path, **{**kit.quiet(), "max_epochs": 1})
    first.fit(_module_class(LC)())
    first.save_checkpoint(tmp_path / "a.ckpt")
    second = LC.Trainer(default_root_dir=tmp_path, plugins=[Reading()], **{**kit.quiet(), "max_epochs": 2})
    second.fit(_module_class(LC)(), ckpt_path=tmp_path / "a.ckpt")
    assert loaded == ["a.ckpt"]
    assert second.current_epoch == 2 and second.global_step == 2 * first.global_step


# --------------------------------------------------------------------------- AsyncCheckpointIO


def test_async_writes_give_the_same_files_and_contents_as_synchronous_ones(tmp_path: Path) -> None:
    foreground, background = _recording_io(TorchCheckpointIO)(), _recording_io(TorchCheckpointIO)()
    sync = _fit(LC, tmp_path / "sync", foreground)
    asynchronous = _fit(LC, tmp_path / "async", AsyncCheckpointIO(background))
    assert _files(tmp_path / "sync") == _files(tmp_path / "async")
    assert background.calls == foreground.calls
    for name in _files(tmp_path / "sync"):
        (a,) = (tmp_path / "sync").rglob(name)
        (b,) = (tmp_path / "async").rglob(name)
        left, right = torch.load(a, weights_only=False), torch.load(b, weights_only=False)
        assert left["global_step"] == right["global_step"]
        for key, value in left["state_dict"].items():
            assert torch.equal(value, right["state_dict"][key]), (name, key)
    best = os.path.basename(sync.checkpoint_callback.best_model_path)
    assert os.path.basename(asynchronous.checkpoint_callback.best_model_path) == best


def test_async_snapshot_is_taken_when_save_returns(tmp_path: Path) -> None:
    """The default base serializes on the caller's thread: a later in-place change is not in the file."""
    gate = threading.Event()
    plugin = AsyncCheckpointIO()
    plugin.run_after_writes(gate.wait)  # hold the thread: the write below must wait for the gate
    weight = torch.zeros(3)
    plugin.save_checkpoint({"w": weight}, tmp_path / "a.ckpt")
    weight.add_(1.0)  # training goes on while the file is not written yet
    assert not (tmp_path / "a.ckpt").exists()
    gate.set()
    plugin.wait()
    assert torch.equal(torch.load(tmp_path / "a.ckpt")["w"], torch.zeros(3))
    plugin.teardown()


def test_async_removals_and_links_wait_for_the_saves_before_them(tmp_path: Path) -> None:
    order: list[str] = []
    gate = threading.Event()

    class Slow(TorchCheckpointIO):
        def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
            gate.wait()
            super().save_checkpoint(checkpoint, path)
            order.append(f"save {os.path.basename(path)}")

        def remove_checkpoint(self, path: Any) -> None:
            super().remove_checkpoint(path)
            order.append(f"remove {os.path.basename(path)}")

    plugin = AsyncCheckpointIO(Slow())
    plugin.save_checkpoint({"w": torch.ones(1)}, tmp_path / "b.ckpt")
    plugin.remove_checkpoint(tmp_path / "a.ckpt")
    plugin.run_after_writes(lambda: order.append("link"))
    assert order == []  # nothing ran yet: all of it is queued behind the held save
    gate.set()
    plugin.teardown()
    assert order == ["save b.ckpt", "remove a.ckpt", "link"]


def test_a_failed_background_write_is_raised_and_what_was_queued_behind_it_skipped(tmp_path: Path) -> None:
    class Failing(TorchCheckpointIO):
        def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
            if os.path.basename(path) == "bad.ckpt":
                raise OSError(28, "No space left on device", str(path))
            super().save_checkpoint(checkpoint, path)

    (tmp_path / "good.ckpt").write_bytes(b"the last good checkpoint")
    plugin = AsyncCheckpointIO(Failing())
    gate = threading.Event()
    plugin.run_after_writes(gate.wait)  # both calls below are queued before the failure happens
    plugin.save_checkpoint({"w": torch.ones(1)}, tmp_path / "bad.ckpt")
    plugin.remove_checkpoint(tmp_path / "good.ckpt")  # ModelCheckpoint's removal of the previous best
    gate.set()
    with pytest.raises(OSError, match="No space left"):
        plugin.wait()
    assert (tmp_path / "good.ckpt").read_bytes() == b"the last good checkpoint"
    plugin.wait()  # raised once; the plugin goes on
    plugin.save_checkpoint({"w": torch.ones(1)}, tmp_path / "next.ckpt")
    plugin.teardown()
    assert (tmp_path / "next.ckpt").is_file()


def test_a_fit_whose_background_write_fails_raises_it_through_on_exception(tmp_path: Path) -> None:
    class FailSecond(TorchCheckpointIO):
        def __init__(self) -> None:
            self.saves = 0

        def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
            self.saves += 1
            if self.saves == 2:
                raise OSError(5, "Input/output error", str(path))
            super().save_checkpoint(checkpoint, path)

    seen: list[BaseException] = []

    class Watch(LC.Callback):
        def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
            seen.append(exception)

    trainer = LC.Trainer(
        default_root_dir=tmp_path,
        callbacks=[Watch(), ModelCheckpoint(dirpath=tmp_path / "ckpt")],
        plugins=[AsyncCheckpointIO(FailSecond())],
        **{**QUIET, "max_epochs": 2},
    )
    with pytest.raises(OSError, match="Input/output error") as raised:
        trainer.fit(_module_class(LC)())
    assert seen == [raised.value]
    # the first epoch's file stays: its removal was queued behind the failed write and skipped
    assert _files(tmp_path / "ckpt") == {"epoch=0-step=4.ckpt"}


def test_async_checkpoint_io_resolves_from_lightnings_import_path() -> None:
    from lightcycle.compat import aliases

    assert aliases.lightcycle_target("lightning.pytorch.plugins.io.async_plugin") == "lightcycle.plugins.io"
    assert aliases.lightcycle_target("lightning.pytorch.plugins") == "lightcycle.plugins"
    assert isinstance(AsyncCheckpointIO(), CheckpointIO)


def test_async_last_link_is_a_whole_copy_of_the_checkpoint_it_follows(tmp_path: Path) -> None:
    checkpoint = ModelCheckpoint(dirpath=tmp_path, save_last="link")
    trainer = LC.Trainer(callbacks=[checkpoint], plugins=[AsyncCheckpointIO()], **{**QUIET, "max_epochs": 3})
    trainer.fit(_module_class(LC)())
    assert _files(tmp_path) == {"epoch=2-step=12.ckpt", "last.ckpt"}
    assert (tmp_path / "last.ckpt").read_bytes() == (tmp_path / "epoch=2-step=12.ckpt").read_bytes()


def test_a_failed_write_is_a_note_on_the_exception_that_ends_the_run(tmp_path: Path) -> None:
    class FailAll(TorchCheckpointIO):
        def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
            raise OSError(28, "No space left on device", str(path))

    class Breaks(_module_class(LC)):  # type: ignore[misc]
        def training_step(self, batch: Any, batch_idx: int) -> Any:
            if self.current_epoch == 1 and batch_idx == 1:
                raise RuntimeError("the run's own failure")
            return super().training_step(batch, batch_idx)

    trainer = LC.Trainer(
        callbacks=[ModelCheckpoint(dirpath=tmp_path)],
        plugins=[AsyncCheckpointIO(FailAll())],
        **{**QUIET, "max_epochs": 3},
    )
    with pytest.raises(RuntimeError, match="the run's own failure") as raised:
        trainer.fit(Breaks())
    notes = "\n".join(getattr(raised.value, "__notes__", []))
    assert "No space left on device" in notes


def test_save_checkpoint_after_fit_returns_with_the_file_written(tmp_path: Path) -> None:
    trainer = LC.Trainer(plugins=[AsyncCheckpointIO()], **{**kit.quiet(), "max_epochs": 1})
    trainer.fit(_module_class(LC)())
    trainer.save_checkpoint(tmp_path / "final.ckpt")
    assert torch.load(tmp_path / "final.ckpt", weights_only=False)["global_step"] == trainer.global_step


def test_async_checkpoint_io_copies_and_pickles_without_its_thread(tmp_path: Path) -> None:
    import copy
    import pickle

    plugin = AsyncCheckpointIO()
    plugin.save_checkpoint({"w": torch.ones(1)}, tmp_path / "a.ckpt")
    for clone in (copy.deepcopy(plugin), pickle.loads(pickle.dumps(plugin))):
        clone.save_checkpoint({"w": torch.zeros(1)}, tmp_path / "b.ckpt")
        clone.teardown()
        assert torch.equal(torch.load(tmp_path / "b.ckpt")["w"], torch.zeros(1))
    plugin.teardown()
    assert torch.equal(torch.load(tmp_path / "a.ckpt")["w"], torch.ones(1))


def test_a_removal_queued_behind_a_failed_save_never_runs_however_the_threads_interleave(tmp_path: Path) -> None:
    """The error is cleared only once the queue has drained (was: a removal ran in ~15% of runs)."""
    import sys

    class Failing(TorchCheckpointIO):
        def __init__(self) -> None:
            self.gate = threading.Event()
            self.removed: list[Any] = []

        def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
            self.gate.wait()
            raise OSError(28, "No space left on device", str(path))

        def remove_checkpoint(self, path: Any) -> None:
            self.removed.append(path)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible
    try:
        for _ in range(200):
            base = Failing()
            plugin = AsyncCheckpointIO(base)
            plugin.save_checkpoint({}, tmp_path / "new_best.ckpt")
            plugin.remove_checkpoint(tmp_path / "old_best.ckpt")  # must be skipped
            base.gate.set()
            with pytest.raises(OSError, match="No space"):
                while True:
                    plugin.raise_error()  # what the next save or removal does first
            plugin.teardown()
            assert base.removed == []
    finally:
        sys.setswitchinterval(interval)


def test_teardown_releases_the_base_plugin_even_when_a_write_failed(tmp_path: Path) -> None:
    released: list[bool] = []

    class Failing(TorchCheckpointIO):
        def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
            raise OSError(5, "Input/output error", str(path))

        def teardown(self) -> None:
            released.append(True)

    plugin = AsyncCheckpointIO(Failing())
    plugin.save_checkpoint({}, tmp_path / "a.ckpt")
    with pytest.raises(OSError, match="Input/output error"):
        plugin.teardown()
    assert released == [True]


def test_a_failing_logger_does_not_skip_draining_the_writes(tmp_path: Path) -> None:
    from lightcycle.loggers import CSVLogger

    class Failing(TorchCheckpointIO):
        def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
            raise OSError(28, "No space left on device", str(path))

    class BadFinalize(CSVLogger):
        def finalize(self, status: str) -> None:
            raise ValueError("finalize failed")

    class Breaks(_module_class(LC)):  # type: ignore[misc]
        def training_step(self, batch: Any, batch_idx: int) -> Any:
            if self.current_epoch == 1:
                raise RuntimeError("the run's own failure")
            return super().training_step(batch, batch_idx)

    trainer = LC.Trainer(
        callbacks=[ModelCheckpoint(dirpath=tmp_path / "ckpt")],
        plugins=[AsyncCheckpointIO(Failing())],
        **{**QUIET, "max_epochs": 3, "logger": BadFinalize(tmp_path)},
    )
    with pytest.raises(RuntimeError, match="the run's own failure") as raised:
        trainer.fit(Breaks())
    notes = "\n".join(getattr(raised.value, "__notes__", []))
    assert "finalize failed" in notes and "No space left on device" in notes


def test_strategy_load_checkpoint_reads_through_the_plugin(tmp_path: Path) -> None:
    trainer = LC.Trainer(**{**kit.quiet(), "max_epochs": 1})
    trainer.fit(_module_class(LC)())
    trainer.save_checkpoint(tmp_path / "a.ckpt")
    loaded = trainer.strategy.load_checkpoint(tmp_path / "a.ckpt", weights_only=False)
    assert loaded["global_step"] == trainer.global_step
