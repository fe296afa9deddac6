"""Writing checkpoint files so that a failure never damages the previous one.

A file is written to a temporary file in the destination folder, flushed, fsynced, renamed
over the destination, and the folder is fsynced (so the rename survives a power loss). A
link or copy (``save_last="link"``) is replaced the same way. The temporary file is created
with mode ``0o666`` less the umask, as ``open()`` (and so Lightning's ``torch.save``) creates
files, not ``mkstemp``'s ``0o600``. A failed write (a full disk, an I/O error) raises an
``OSError`` that names the file and the reason, and leaves the previous file in place.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import secrets
import shutil
from collections.abc import Callable
from typing import Any, BinaryIO

import torch

from lightcycle.runtime.checkpoint_format import checked_path

_MODE = 0o666  # less the umask, applied by the kernel


def _create_temporary(folder: str) -> tuple[int, str]:
    """A new ``.tmp-*.ckpt`` file in ``folder``: its descriptor and path."""
    while True:
        tmp = os.path.join(folder, f".tmp-{secrets.token_hex(8)}.ckpt")
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), _MODE), tmp
        except FileExistsError:  # pragma: no cover - 64 random bits collided
            continue


def fsync_folder(folder: str) -> None:
    """Make the renames in ``folder`` durable (where the platform has directory descriptors)."""
    try:
        dir_fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class _RecordingWriter:
    """A file that remembers the ``OSError`` of a failed write: ``torch.save`` turns it into a
    ``RuntimeError`` ("unexpected pos") that has lost the reason and the file name."""

    __slots__ = ("error", "fh")

    def __init__(self, fh: BinaryIO) -> None:
        self.fh = fh
        self.error: OSError | None = None

    def write(self, data: Any) -> int:
        try:
            return self.fh.write(data)
        except OSError as err:
            self.error = err
            raise

    def flush(self) -> None:
        self.fh.flush()

    def __getattr__(self, name: str) -> Any:  # tell, seek, ... of the file
        return getattr(self.fh, name)


def _write_error(err: OSError, path: str) -> OSError:
    reason = os.strerror(err.errno) if err.errno else str(err)
    hint = "; free some space or save to another folder" if err.errno in (errno.ENOSPC, errno.EDQUOT) else ""
    return OSError(
        err.errno, f"{reason} while writing a checkpoint (the previous file at this path is intact{hint})", path
    )


def _check_destination(path: str) -> str:
    if os.path.isdir(path):
        raise IsADirectoryError(
            errno.EISDIR,
            "the checkpoint path is a folder; pass a file path inside it (e.g. its 'last.ckpt')",
            path,
        )
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    return folder


def prepare_destination(path: str | os.PathLike[str]) -> tuple[str, str]:
    """Check a checkpoint destination and create its folder, before anything is written.

    Args:
        path: the destination file.

    Returns:
        The path as a ``str`` and its folder.

    Raises:
        TypeError: ``path`` is not a str or ``os.PathLike``.
        IsADirectoryError: ``path`` is a folder.
    """
    path = checked_path(path, "filepath")
    return path, _check_destination(path)


def _write_atomically(path: str, folder: str, write: Callable[[BinaryIO], None]) -> None:
    """``write`` into a temporary file of ``folder``, fsync it, rename it over ``path``, fsync ``folder``."""
    fd, tmp = _create_temporary(folder)
    try:
        try:
            with os.fdopen(fd, "wb") as fh:
                write(fh)
                fh.flush()
                os.fsync(fh.fileno())
        # (closing the file flushes again: its OSError, not the first one, may be what arrives here)
        except OSError as err:
            raise _write_error(err, path) from err
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_folder(folder)


def atomic_save(obj: Any, path: str | os.PathLike[str]) -> None:
    """``torch.save`` to ``path`` via a temporary file in the same folder and a rename.

    A failure at any point (including a crash of the process) leaves the previous file at
    ``path`` untouched; the temporary file is removed when Python can still do so.

    Args:
        obj: what to save.
        path: the destination; its folder is created if missing.

    Raises:
        TypeError: ``path`` is not a str or ``os.PathLike``.
        IsADirectoryError: ``path`` is a folder.
        OSError: the write failed (e.g. "No space left on device"), naming the file.
    """
    path, folder = prepare_destination(path)

    def write(fh: BinaryIO) -> None:
        writer = _RecordingWriter(fh)
        try:
            torch.save(obj, writer)  # a file-like object: write, flush, and the file's other methods
        except RuntimeError as err:
            if writer.error is None:
                raise
            raise writer.error from err  # the write's OSError, named by _write_atomically

    _write_atomically(path, folder, write)


def serialize(obj: Any) -> memoryview:
    """``torch.save`` into memory: the bytes of a checkpoint file, a snapshot of ``obj`` now.

    Args:
        obj: what to save.

    Returns:
        The file's bytes (a view of the buffer, not a copy).
    """
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getbuffer()


def atomic_write(data: bytes | memoryview, path: str, folder: str) -> None:
    """Write ``data`` (from :func:`serialize`) to ``path`` as :func:`atomic_save` writes a file.

    Args:
        data: the file's bytes.
        path: the destination (checked by :func:`prepare_destination`).
        folder: its folder.

    Raises:
        OSError: the write failed, naming the file; the previous file at ``path`` stays.
    """

    def write(fh: BinaryIO) -> None:
        fh.write(data)

    _write_atomically(path, folder, write)


def remove_path(path: str | os.PathLike[str]) -> None:
    """Delete a checkpoint file, or a checkpoint folder with its contents, if it exists."""
    path = os.fspath(path)
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.remove(path)


def atomic_link(source: str, path: str) -> None:
    """Make ``path`` a whole copy of ``source``: a hard link, else a copy, renamed into place,
    then the folder fsynced (never a symbolic link that could dangle).

    Args:
        source: an existing checkpoint file.
        path: the link to (re)place; its folder is created if missing.

    Raises:
        OSError: the copy failed, naming the file; the previous file at ``path`` stays.
    """
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = _create_temporary(folder)
    os.close(fd)
    try:
        os.unlink(tmp)
        try:
            os.link(source, tmp)
        except OSError:  # no hard links here (another file system, FAT, ...): a copy
            try:
                shutil.copyfile(source, tmp)
                with open(tmp, "rb+") as fh:
                    os.fsync(fh.fileno())
            except OSError as err:
                raise _write_error(err, path) from err
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_folder(folder)
