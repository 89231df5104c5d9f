"""The one atomic writer: a temp file in the target's directory, fsync, then ``os.replace``.

A reader never sees a half-written file: it sees the old content or the new, whole.
The host uses these functions too (manifest, summaries).

Files in a run directory are written by a container as well as by lem, so lem opens them
without following symbolic links (``O_NOFOLLOW`` on the last component, every directory
on the way opened with ``O_NOFOLLOW | O_DIRECTORY`` from a trusted root): a link planted as
``container.log`` or ``result.json`` is refused (``UnsafePathError``) instead of followed out
of the tree. ``create_exclusive_text`` creates a file that must not exist yet (the manifest)
atomically and exclusively (temp file, then ``os.link``, which fails if the name exists).
Temporary files are named ``.<name>.<random>.tmp`` (``is_temp_name``) so that a sweep
can find those a killed process left.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# mkstemp creates 0600 files; results are meant to be read by others (0666 less the umask).
_FILE_MODE = 0o666 & ~_umask()


def atomic_write_bytes(path: Path | str, data: bytes, *, durable: bool = True) -> None:
    """Write ``data`` to ``path`` atomically; the parent directory must exist.

    ``durable`` also fsyncs the file and its directory, so the write survives a power cut;
    files that are cheap to write again may skip that (it costs milliseconds per file).
    """
    target = Path(path)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, _FILE_MODE)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp_name, target)
    except BaseException as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        if isinstance(e, OSError) and e.filename is None:  # a failed write: say which file
            raise OSError(e.errno, e.strerror, str(target)) from e
        raise
    if durable:
        _fsync_dir(target.parent)


def create_exclusive_text(path: Path | str, text: str) -> None:
    """Create ``path`` with ``text``, whole and durable; ``FileExistsError`` if the name exists."""
    target = Path(path)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, _FILE_MODE)
        with os.fdopen(fd, "wb") as handle:
            handle.write(text.encode("utf-8"))
            handle.flush()
            os.fsync(handle.fileno())
        os.link(tmp_name, target)  # atomic, and refuses an existing name (symlinks included)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
    _fsync_dir(target.parent)


_TEMP_NAME = re.compile(r"^\..+\.[A-Za-z0-9_]{8}\.tmp$")


def is_temp_name(name: str) -> bool:
    """A temporary file name this module creates (``.<target>.<8 random chars>.tmp``)."""
    return _TEMP_NAME.match(name) is not None


class UnsafePathError(OSError):
    """A path in a results tree is a symbolic link, or leaves the tree."""


def open_beneath(root: Path | str, relative: str, flags: int, mode: int = 0o666) -> int:
    """``os.open`` of ``root/relative`` following no symbolic link below ``root``; returns the fd.

    ``relative`` must stay inside ``root`` (no ``..``, not absolute). ``UnsafePathError``
    names the path when a component is a link or not what it should be.
    """
    parts = [p for p in relative.split("/") if p not in ("", ".")]
    if not parts or relative.startswith("/") or ".." in parts:
        raise UnsafePathError(errno.EPERM, "path leaves the results tree", os.path.join(root, relative))
    where = os.path.join(root, relative)
    dir_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for part in parts[:-1]:
            next_fd = _open_component(dir_fd, part, os.O_RDONLY | os.O_DIRECTORY, 0, where=where)
            os.close(dir_fd)
            dir_fd = next_fd
        return _open_component(dir_fd, parts[-1], flags, mode, where=where)
    finally:
        os.close(dir_fd)


def _open_component(dir_fd: int, name: str, flags: int, mode: int, *, where: str) -> int:
    try:
        return os.open(name, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=dir_fd)
    except OSError as e:
        if e.errno in (errno.ELOOP, errno.ENOTDIR):
            raise UnsafePathError(
                e.errno, f"{name} is a symbolic link or not a directory; refusing to follow it", where
            ) from e
        raise


def read_bytes_nofollow(path: Path | str) -> bytes:
    """The bytes of ``path``, refusing a symbolic link as its last component (``UnsafePathError``)."""
    target = Path(path)
    fd = open_beneath(target.parent, target.name, os.O_RDONLY)
    with os.fdopen(fd, "rb") as handle:
        return handle.read()


def open_text_nofollow(path: Path | str, *, append: bool = False) -> Any:
    """``path`` opened for writing text (truncated, or appended to), never through a symbolic link."""
    target = Path(path)
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC)
    fd = open_beneath(target.parent, target.name, flags, _FILE_MODE)
    return os.fdopen(fd, "a" if append else "w", encoding="utf-8")


def atomic_write_text(path: Path | str, text: str, *, durable: bool = True) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically; the parent directory must exist."""
    atomic_write_bytes(path, text.encode("utf-8"), durable=durable)


def atomic_write_json(path: Path | str, obj: BaseModel | Mapping[str, Any] | Sequence[Any]) -> None:
    """Write a pydantic model or plain JSON data atomically, indented.

    A model's non-finite floats become ``null`` (pydantic's JSON rule), so a result is always
    writable; plain data with NaN or infinity is refused (``ValueError``), as JSON has neither.
    """
    if isinstance(obj, BaseModel):
        text = obj.model_dump_json(indent=2)
    else:
        text = json.dumps(obj, indent=2, allow_nan=False)
    atomic_write_text(path, text + "\n")


def _fsync_dir(directory: Path) -> None:
    """Make the rename durable where the platform allows opening a directory."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)
