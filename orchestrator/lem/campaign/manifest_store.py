"""How the manifest reaches the disk: a journal line per change at once, a whole snapshot soon after.

Rewriting the whole ``manifest.json`` after each of a campaign's changes costs O(runs) bytes
per change, O(runs²) per campaign: a 1,000-run campaign would write gigabytes. Instead:

- every save appends the changed runs to ``manifest.json.journal`` at once (one short JSON
  line each, numbered), so a lem process that dies loses nothing;
- a background thread rewrites ``manifest.json`` whole and atomically (temp file, fsync,
  ``os.replace``, through ``lem_harness.fileio.atomic_write_text``) as soon as there is a
  change, but at most once every ``interval_s`` — so ``manifest.json`` is never more than
  that far behind, and is always a complete, valid file;
- ``close`` writes the final snapshot and removes the journal.

Loading reads the snapshot and replays the journal lines numbered after it (a torn last line
is ignored): the state after a crash is the state of the last save.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from lem_harness.fileio import open_text_nofollow, read_bytes_nofollow

SNAPSHOT_INTERVAL_S = 0.5
JOURNAL_SUFFIX = ".journal"

SnapshotWriter = Callable[[Path, str], None]


class JournalError(Exception):
    """A journal line that is not the last one cannot be read."""


def journal_path(path: Path) -> Path:
    return path.with_name(path.name + JOURNAL_SUFFIX)


def journal_line(seq: int, run_json: str) -> str:
    return f'{{"seq":{seq},"run":{run_json}}}\n'


def read_journal(path: Path, after_seq: int) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(seq, run)`` of every journal line numbered after ``after_seq``; a torn last line is skipped."""
    try:
        lines = read_bytes_nofollow(path).decode("utf-8").split("\n")
    except FileNotFoundError:
        return
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            seq, run = int(record["seq"]), record["run"]
        except (ValueError, KeyError, TypeError) as e:
            if number == len(lines):  # written while the process died
                return
            raise JournalError(f"{path}:{number}: unreadable journal line ({e})") from e
        if seq > after_seq:
            yield seq, run


class ManifestStore:
    """Journal appends on the caller's thread, snapshots on a background thread."""

    def __init__(
        self,
        path: Path,
        render: Callable[[], str],
        writer: SnapshotWriter,
        interval_s: float = SNAPSHOT_INTERVAL_S,
    ) -> None:
        self.path = path
        self.journal = journal_path(path)
        self.interval_s = interval_s
        self._render = render
        self._writer = writer
        self._wake = threading.Event()
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None
        self._handle: IO[str] | None = None
        self._last = 0.0
        self.snapshots = 0
        self.error: BaseException | None = None

    @property
    def started(self) -> bool:
        return self._thread is not None

    def start(self) -> None:
        """Write the first snapshot now, start an empty journal, start the snapshot thread."""
        self._snapshot()
        self._handle = open_text_nofollow(self.journal)
        self._thread = threading.Thread(target=self._loop, name="lem-manifest", daemon=True)
        self._thread.start()

    def append(self, lines: Sequence[str]) -> None:
        """Journal these lines (flushed to the OS: a dying process loses nothing) and wake the thread."""
        self._raise_thread_error()
        if self._handle is None:
            raise RuntimeError("the manifest store is not started")
        self._handle.write("".join(lines))
        self._handle.flush()
        self._wake.set()

    def close(self) -> None:
        """Stop the thread, write the final snapshot, remove the journal. Idempotent."""
        if self._thread is None:
            return
        self._closing.set()
        self._wake.set()
        self._thread.join()
        self._thread = None
        try:
            self._raise_thread_error()
            self._snapshot()
        finally:
            if self._handle is not None:
                self._handle.close()
                self._handle = None
        self.journal.unlink(missing_ok=True)  # only once the final snapshot holds everything

    def _loop(self) -> None:
        while True:
            self._wake.wait()
            if self._closing.is_set():
                return
            delay = self._last + self.interval_s - time.monotonic()
            if delay > 0 and self._closing.wait(delay):
                return
            self._wake.clear()
            try:
                self._snapshot()
            except BaseException as e:  # reported on the caller's next append or close
                self.error = e
                return

    def _snapshot(self) -> None:
        self._writer(self.path, self._render())
        self._last = time.monotonic()
        self.snapshots += 1

    def _raise_thread_error(self) -> None:
        if self.error is not None:
            error, self.error = self.error, None
            raise error
