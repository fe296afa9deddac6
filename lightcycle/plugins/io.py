"""Checkpoint IO plugins: how ``trainer.strategy`` writes, reads and removes checkpoint files.

Lightning 2.6's interface (``lightning.pytorch.plugins.io``): :class:`CheckpointIO` is what a
custom plugin implements (``Trainer(plugins=[MyCheckpointIO()])``); :class:`TorchCheckpointIO`
is the default, and writes atomically (a temporary file, fsync, rename, folder fsync:
:mod:`lightcycle.runtime.atomic_io`); :class:`AsyncCheckpointIO` moves the writing to one
background thread.

:class:`AsyncCheckpointIO` differs from Lightning's where Lightning loses work or races:

- With the default base, the checkpoint is serialized (``torch.save`` into memory) on the
  calling thread, a snapshot taken before training goes on; the thread only writes the bytes
  (file I/O, which releases the GIL, so it overlaps with training). A custom base gets
  Lightning's snapshot (every tensor detached and cloned) and runs in the thread.
- Removals and ``save_last="link"`` copies run in the same queue, after the saves before
  them, so ``ModelCheckpoint`` never deletes or links a file that is not written yet.
- After a failed write nothing queued behind it runs (a removal behind it would delete the
  last good checkpoint); the error is raised by the next ``save_checkpoint`` or
  ``remove_checkpoint``, by :meth:`~AsyncCheckpointIO.wait`, and at the latest by
  ``teardown`` (the strategy's, before ``on_fit_end``), so it is never lost.
"""

from __future__ import annotations

import os
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import torch

from lightcycle.core.batch_transfer import apply_to_collection
from lightcycle.runtime.atomic_io import atomic_save, atomic_write, prepare_destination, remove_path, serialize

_PATH = str | os.PathLike[str]


def no_storage_options(plugin: CheckpointIO) -> TypeError:
    """Lightning's error for ``storage_options`` given to a plugin that does not take them.

    It names the plugin that refuses them: behind a wrapper (``AsyncCheckpointIO``), its base,
    whose ``save_checkpoint`` raises this in Lightning too.
    """
    refusing = _innermost(plugin)
    return TypeError(  # Lightning's message, word for word
        "`Trainer.save_checkpoint(..., storage_options=...)` with `storage_options` arg"
        f" is not supported for `{refusing.__class__.__name__}`. Please implement your custom `CheckpointIO`"
        " to define how you'd like to use `storage_options`."
    )


class CheckpointIO(ABC):
    """The interface of a checkpoint IO plugin: save, load and remove checkpoint files.

    Subclass it and pass an instance as ``Trainer(plugins=[...])`` to store checkpoints
    elsewhere (an object store, another format). Only rank 0 calls ``save_checkpoint`` and
    ``remove_checkpoint``.
    """

    @abstractmethod
    def save_checkpoint(self, checkpoint: dict[str, Any], path: _PATH, storage_options: Any | None = None) -> None:
        """Write ``checkpoint`` to ``path``.

        Args:
            checkpoint: the checkpoint dict (module and trainer state).
            path: where to write it.
            storage_options: ``Trainer.save_checkpoint(storage_options=...)``, for the plugin.
        """

    @abstractmethod
    def load_checkpoint(
        self, path: _PATH, map_location: Any | None = None, weights_only: bool | None = None
    ) -> dict[str, Any]:
        """Read the checkpoint at ``path``.

        Args:
            path: the checkpoint.
            map_location: as for :func:`torch.load`.
            weights_only: as for :func:`torch.load`.

        Returns:
            The checkpoint dict.
        """

    @abstractmethod
    def remove_checkpoint(self, path: _PATH) -> None:
        """Delete the checkpoint at ``path``.

        Args:
            path: the checkpoint.
        """

    def teardown(self) -> None:  # noqa: B027 - an optional hook, a no-op unless overridden (Lightning's)
        """At the end of a run (the strategy's teardown): release what the plugin holds."""


class TorchCheckpointIO(CheckpointIO):
    """The default plugin: :func:`torch.save` written atomically, :func:`torch.load`, file removal."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: _PATH, storage_options: Any | None = None) -> None:
        """Write ``checkpoint`` to ``path`` atomically (its folder is created).

        Args:
            checkpoint: the checkpoint dict.
            path: the destination file.
            storage_options: must be ``None``.

        Raises:
            TypeError: ``storage_options`` was given (Lightning's message).
            OSError: the write failed, naming the file; the previous file stays.
        """
        if storage_options is not None:
            raise no_storage_options(self)
        atomic_save(checkpoint, path)

    def load_checkpoint(
        self, path: _PATH, map_location: Any | None = None, weights_only: bool | None = None
    ) -> dict[str, Any]:
        """:func:`torch.load` of ``path`` (storages on their saved device unless ``map_location``).

        Raises:
            FileNotFoundError: no file at ``path``.
        """
        if not os.path.exists(path):
            raise FileNotFoundError(f"Checkpoint file not found: {path}")
        loaded: dict[str, Any] = torch.load(path, map_location=map_location, weights_only=weights_only)
        return loaded

    def remove_checkpoint(self, path: _PATH) -> None:
        """Delete the file (or checkpoint folder) at ``path`` if it exists."""
        remove_path(path)


class _WrappingCheckpointIO(CheckpointIO):
    """A plugin that hands the work to a base plugin (the strategy's default when none is given).

    Args:
        checkpoint_io: the base plugin.
    """

    def __init__(self, checkpoint_io: CheckpointIO | None = None) -> None:
        if isinstance(checkpoint_io, _WrappingCheckpointIO):
            raise TypeError(f"{type(self).__name__}(checkpoint_io=...) takes a base plugin, not another wrapper")
        self._checkpoint_io = checkpoint_io

    @property
    def checkpoint_io(self) -> CheckpointIO | None:
        """The base plugin (set by the strategy to its default when ``None``)."""
        return self._checkpoint_io

    @checkpoint_io.setter
    def checkpoint_io(self, checkpoint_io: CheckpointIO) -> None:
        if self._checkpoint_io is None:
            self._checkpoint_io = checkpoint_io

    def _base(self) -> CheckpointIO:
        if self._checkpoint_io is None:
            self._checkpoint_io = TorchCheckpointIO()
        return self._checkpoint_io

    def save_checkpoint(self, checkpoint: dict[str, Any], path: _PATH, storage_options: Any | None = None) -> None:
        """The base plugin's ``save_checkpoint``."""
        self._base().save_checkpoint(checkpoint, path, storage_options=storage_options)

    def load_checkpoint(
        self, path: _PATH, map_location: Any | None = None, weights_only: bool | None = None
    ) -> dict[str, Any]:
        """The base plugin's ``load_checkpoint``."""
        return self._base().load_checkpoint(path, map_location=map_location, weights_only=weights_only)

    def remove_checkpoint(self, path: _PATH) -> None:
        """The base plugin's ``remove_checkpoint``."""
        self._base().remove_checkpoint(path)

    def teardown(self) -> None:
        """The base plugin's ``teardown``."""
        self._base().teardown()


def _clone(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.detach().clone()


class AsyncCheckpointIO(_WrappingCheckpointIO):
    """Writes checkpoints in one background thread, in order (Lightning's ``AsyncCheckpointIO``).

    ``Trainer(plugins=[AsyncCheckpointIO()])``: ``save_checkpoint`` returns once the
    checkpoint is snapshotted; the file appears when the thread has written it. The queue is
    drained, and a failed write raised, at the next save or removal, by :meth:`wait`, by
    ``load_checkpoint``, and by :meth:`teardown` (the strategy's, before ``on_fit_end``, and
    on the way out of a failed run, where the error is added to the run's exception as a
    note). See the module docstring for how this differs from Lightning's.

    Args:
        checkpoint_io: the base plugin (default: the strategy's, :class:`TorchCheckpointIO`).
    """

    def __init__(self, checkpoint_io: CheckpointIO | None = None) -> None:
        super().__init__(checkpoint_io)
        self._executor: ThreadPoolExecutor | None = None
        self._last: Future[None] | None = None
        self._error: BaseException | None = None
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        """Copies and pickles (a config holding the plugin) carry no thread, queue or lock."""
        state = self.__dict__.copy()
        state.update(_executor=None, _last=None, _error=None)
        del state["_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def _submit(self, fn: Callable[..., None], *args: Any, **kwargs: Any) -> None:
        self.raise_error()
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lightcycle-checkpoint")

        def task() -> None:
            with self._lock:
                if self._error is not None:
                    return  # behind a failed write: its removal or link would lose the last good file
            try:
                fn(*args, **kwargs)
            except BaseException as err:  # kept and raised on the caller's thread, never dropped
                with self._lock:
                    if self._error is None:
                        self._error = err

        self._last = self._executor.submit(task)

    def raise_error(self) -> None:
        """Raise the error of a failed background write, once (the queue behind it was skipped).

        The error is cleared only after the queue has drained: the tasks behind the failure
        skip themselves while it is set, so clearing it earlier would let a removal queued
        behind a failed save run (and delete the last good checkpoint).
        """
        with self._lock:
            failed = self._error is not None
        if not failed:
            return
        last = self._last
        if last is not None:
            last.result()  # (returns at once: what is left skips itself)
        with self._lock:
            err, self._error = self._error, None
        if err is not None:
            raise err

    def run_after_writes(self, fn: Callable[..., None], *args: Any) -> None:
        """Queue ``fn(*args)`` behind the writes queued so far (a link to a checkpoint just saved).

        Args:
            fn: what to run.
            *args: its arguments.
        """
        self._submit(fn, *args)

    def save_checkpoint(self, checkpoint: dict[str, Any], path: _PATH, storage_options: Any | None = None) -> None:
        """Snapshot ``checkpoint`` now and write it to ``path`` in the background.

        Raises:
            TypeError: ``storage_options`` with the default base plugin, or a bad ``path``.
            IsADirectoryError: ``path`` is a folder.
            BaseException: the error of an earlier background write.
        """
        base = self._base()
        if type(base) is TorchCheckpointIO:
            if storage_options is not None:
                raise no_storage_options(self)
            dest, folder = prepare_destination(path)
            data = serialize(checkpoint)  # the snapshot: pickled on this thread, before training goes on
            self._submit(atomic_write, data, dest, folder)
            return
        snapshot = apply_to_collection(checkpoint, lambda x: isinstance(x, torch.Tensor), _clone)
        self._submit(base.save_checkpoint, snapshot, path, storage_options=storage_options)

    def remove_checkpoint(self, path: _PATH) -> None:
        """Remove ``path`` in the background, after the writes queued before."""
        self._submit(self._base().remove_checkpoint, path)

    def load_checkpoint(
        self, path: _PATH, map_location: Any | None = None, weights_only: bool | None = None
    ) -> dict[str, Any]:
        """Wait for the queued writes, then the base plugin's ``load_checkpoint``."""
        self.wait()
        return self._base().load_checkpoint(path, map_location=map_location, weights_only=weights_only)

    def wait(self) -> None:
        """Block until every queued write has finished; raise the error of a failed one."""
        last = self._last
        if last is not None:
            last.result()  # (the task keeps its errors: this only waits)
        self.raise_error()

    def teardown(self) -> None:
        """Finish the queue and stop the thread (a later run starts another); raise a failed write's error."""
        executor, self._executor, self._last = self._executor, None, None
        if executor is not None:
            executor.shutdown(wait=True)
        try:
            self.raise_error()
        finally:
            self._base().teardown()  # a custom base (a client, a pool) is released either way


def run_after_writes(plugin: CheckpointIO, fn: Callable[..., None], *args: Any) -> None:
    """Run ``fn(*args)`` once the checkpoints ``plugin`` was asked to save are written: now,
    or queued behind them for an :class:`AsyncCheckpointIO`."""
    if isinstance(plugin, AsyncCheckpointIO):
        plugin.run_after_writes(fn, *args)
    else:
        fn(*args)


def _innermost(plugin: CheckpointIO) -> CheckpointIO:
    """The plugin that does the work, below any wrappers."""
    while isinstance(plugin, _WrappingCheckpointIO):
        plugin = plugin._base()
    return plugin


def accepts_storage_options(plugin: CheckpointIO) -> bool:
    """Whether ``plugin`` takes ``storage_options`` (the default plugin refuses them)."""
    return type(_innermost(plugin)).save_checkpoint is not TorchCheckpointIO.save_checkpoint


def reads_files_itself(plugin: CheckpointIO) -> bool:
    """Whether ``plugin`` reads checkpoints its own way (a custom ``load_checkpoint``), so that a
    resume must go through it rather than lightcycle's checked file reader."""
    return type(_innermost(plugin)).load_checkpoint is not TorchCheckpointIO.load_checkpoint


__all__ = ["AsyncCheckpointIO", "CheckpointIO", "TorchCheckpointIO"]
