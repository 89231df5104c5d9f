"""Atomic replacement of a file without fsync, for files that are cheap to write again.

``spec.json`` is written before every attempt of a run and read by its container moments
later: a reader must never see half of it, but it need not survive a power cut, and an
fsync per run would cost milliseconds each on many disks. Files that must survive (the
manifest, results) are written durably.
"""

from __future__ import annotations

from pathlib import Path

from lem_harness.fileio import atomic_write_text


def replace_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (no fsync)."""
    atomic_write_text(path, text, durable=False)
