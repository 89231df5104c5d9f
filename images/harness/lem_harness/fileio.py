"""The one atomic writer: a temp file in the target's directory, fsync, then ``os.replace``.

A reader never sees a half-written file: it sees the old content or the new, whole.
The host uses these functions too (manifest, summaries).
"""

from __future__ import annotations

import contextlib
import json
import os
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
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
    if durable:
        _fsync_dir(target.parent)


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
