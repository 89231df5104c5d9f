"""Cold starts: every run gets a fresh container; where permitted, the host's page cache is dropped.

Dropping the page cache (``sync`` then ``3`` into ``/proc/sys/vm/drop_caches``: page cache,
dentries and inodes) makes the next model load read the weights from disk, so load time and
load energy are measured cold. It needs root and a writable ``/proc/sys/vm/drop_caches``;
where either is missing the campaign says so once and runs without dropping.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

DROP_CACHES = Path("/proc/sys/vm/drop_caches")
_NOT_PERMITTED = (
    "cold_start.drop_page_cache: {why}, so the page cache is not dropped and model loads may be "
    "served from memory (run lem as root on the host to drop it)"
)


class PageCacheDropper:
    """Drops the page cache before each run when asked and permitted."""

    def __init__(
        self,
        enabled: bool,
        warn: Callable[[str], None],
        path: Path = DROP_CACHES,
        euid: Callable[[], int] = os.geteuid,
        sync: Callable[[], None] = os.sync,
    ) -> None:
        self._path = path
        self._sync = sync
        self._warn = warn
        self.active = False
        if enabled:
            why = self._refusal(euid())
            if why is None:
                self.active = True
            else:
                warn(_NOT_PERMITTED.format(why=why))

    def _refusal(self, uid: int) -> str | None:
        if uid != 0:
            return f"lem runs as uid {uid}, not root"
        if not os.access(self._path, os.W_OK):
            return f"{self._path} is not writable here"
        return None

    def drop(self) -> bool:
        """Drop the cache; whether it was dropped. A failure is reported once and ends dropping."""
        if not self.active:
            return False
        try:
            self._sync()
            self._path.write_text("3\n", encoding="ascii")
        except OSError as e:
            self.active = False
            self._warn(_NOT_PERMITTED.format(why=f"writing {self._path} failed ({e.strerror or e})"))
            return False
        return True
