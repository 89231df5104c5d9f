"""A run's output stream → its ``container.log`` (secrets masked) + the last lines in memory."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from lem_harness.fileio import open_text_nofollow

MASK = "***"
DEFAULT_TAIL_LINES = 20


class LogSink:
    """Accepts byte chunks (any split), writes whole lines to ``path``, keeps a tail.

    Thread-safe: the stream thread feeds while the supervisor may add ``note`` lines.
    """

    def __init__(
        self, path: str | Path | None, secrets: Sequence[str] = (), tail_lines: int = DEFAULT_TAIL_LINES
    ):
        self._secrets = tuple(s for s in secrets if s)
        self._tail: deque[str] = deque(maxlen=tail_lines)
        self._partial = ""
        self._lock = threading.Lock()
        self._file: IO[str] | None = None
        if path is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).unlink(missing_ok=True)  # a link an earlier container planted goes, unfollowed
            self._file = open_text_nofollow(path)  # and one planted meanwhile is refused

    def feed(self, chunk: bytes | str) -> None:
        text = chunk.decode("utf-8", errors="replace") if isinstance(chunk, bytes) else chunk
        with self._lock:
            lines = (self._partial + text).split("\n")
            self._partial = lines.pop()
            for line in lines:
                self._emit(line)

    def note(self, message: str) -> None:
        """A line from lem itself (prefixed so that it is never mistaken for harness output)."""
        with self._lock:
            self._emit(f"[lem] {message}")

    def close(self) -> None:
        """Flush a trailing partial line and close the file (idempotent)."""
        with self._lock:
            if self._partial:
                self._emit(self._partial)
                self._partial = ""
            if self._file is not None:
                self._file.close()
                self._file = None

    def tail(self) -> list[str]:
        with self._lock:
            return list(self._tail)

    def mask(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        return text

    def _emit(self, line: str) -> None:
        line = self.mask(line.rstrip("\r"))
        self._tail.append(line)
        if self._file is not None:
            self._file.write(line + "\n")
            self._file.flush()
