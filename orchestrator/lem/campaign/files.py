"""Atomic replacement of a file without fsync, for files that are cheap to write again.

``spec.json`` is written before every attempt of a run and read by its container moments
later: a reader must never see half of it (temp file, then ``os.replace``), but it need not
survive a power cut, and an fsync per run would cost milliseconds each on many disks. Files
that must survive (the manifest, results) go through ``lem_harness.fileio``.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def replace_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (no fsync)."""
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
