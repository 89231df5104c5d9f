"""Atomic output files for exports, plots and reports (text through the project's one writer)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from lem_harness.fileio import atomic_write_text


class OutputError(Exception):
    """An output directory or file could not be written."""


def prepare_dir(path: Path) -> Path:
    """Create ``path`` (and parents); raise ``OutputError`` with the reason when impossible."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create the output directory {path}: {exc.strerror or exc}") from exc
    if not os.access(path, os.W_OK):
        raise OutputError(f"the output directory {path} is not writable: choose another with --out")
    return path


def write_text(path: Path, text: str) -> Path:
    try:
        atomic_write_text(path, text)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from exc
    _readable(path)
    return path


def write_bytes(path: Path, data: bytes) -> Path:
    """Write ``data`` to a temp file beside ``path``, then rename it over ``path``."""
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from exc
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _readable(path)
    return path


def _readable(path: Path) -> None:
    """Temp files are created private (0600); outputs are meant to be shared (0644)."""
    with contextlib.suppress(OSError):
        os.chmod(path, 0o644)
