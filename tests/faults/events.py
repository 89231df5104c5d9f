"""The fault suite's event log: one line per event, appended with O_APPEND (atomic per line).

``start <run_id> <pid>``, ``end <run_id> <pid> <ok|failed|interrupted>``, ``overlap <run_id> <pid>``
(a second process found the run's measuring lock taken), ``sigterm <run_id> <pid>``.
A run directory's ``.measuring`` file is flock'ed for as long as a process "measures" there.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

MEASURING = ".measuring"


def log(path: str | Path, *fields: object) -> None:
    line = (" ".join(str(f) for f in fields) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def publish(path: Path, text: str) -> None:
    """Create ``path`` with ``text`` whole (write beside it, then rename): a reader that sees the
    file exists sees all of it."""
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(text)
    os.replace(tmp, path)


def read(path: str | Path) -> list[list[str]]:
    try:
        return [line.split() for line in Path(path).read_text().splitlines() if line.strip()]
    except FileNotFoundError:
        return []


def begin_measuring(events: str | Path, run_dir: Path, run_id: str) -> int:
    """Take the run's measuring lock (logging ``overlap`` if another process holds it) and log ``start``."""
    fd = os.open(run_dir / MEASURING, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        log(events, "overlap", run_id, os.getpid())
        fcntl.flock(fd, fcntl.LOCK_EX)
    log(events, "start", run_id, os.getpid())
    return fd
