"""Atomic output files for exports, plots and reports (text through the project's one writer)."""

from __future__ import annotations

import os
from pathlib import Path

from lem_harness.fileio import atomic_write_bytes


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
    return write_bytes(path, text.encode("utf-8"))


def write_bytes(path: Path, data: bytes) -> Path:
    """Write ``data`` atomically through the project's one writer (readable by others)."""
    try:
        atomic_write_bytes(path, data)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from exc
    return path
