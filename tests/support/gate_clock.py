"""A clock that another process drives through files, for killing and resuming a real daemon campaign.

``GateClock(gate_dir)`` keeps wall time virtual: it starts at the time stored in
``gate_dir/base`` (written by the first process that uses the directory) and moves on only
by the waits it is asked for, so a schedule's start times do not depend on how fast the
machine runs. Every ``wait`` (a gap, a wait for the next repetition) first writes
``gate_dir/wait-<pid>-<n>.json`` and then parks until the test deletes that file (release)
or the stop event is set; once released it advances by the whole timeout. The advance is
saved in ``gate_dir/offset``, so a process started after a SIGKILL continues the same
virtual time. ``monotonic`` is the real monotonic clock plus the same offset.

From the shell: ``python -m tests.support.gate_clock GATE_DIR run FILE …`` runs ``lem campaign``
with it.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path

POLL_S = 0.02


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


class GateClock:
    def __init__(self, gate: Path) -> None:
        self.gate = gate
        gate.mkdir(parents=True, exist_ok=True)
        base = gate / "base"
        if not base.exists():
            _write(base, repr(time.time()))
        self.base = float(base.read_text())
        offset = gate / "offset"
        self.offset = float(offset.read_text()) if offset.exists() else 0.0
        self._count = 0

    def monotonic(self) -> float:
        return time.monotonic() + self.offset

    def time(self) -> float:
        return self.base + self.offset

    def sleep(self, seconds: float) -> None:
        self.wait(threading.Event(), seconds)

    def wait(self, event: threading.Event, timeout: float) -> bool:
        self._count += 1
        marker = self.gate / f"wait-{os.getpid()}-{self._count}.json"
        _write(marker, json.dumps({"pid": os.getpid(), "n": self._count, "timeout": timeout}))
        while marker.exists():
            if event.wait(POLL_S):
                marker.unlink(missing_ok=True)
                return True
        self.offset += max(timeout, 0.0)
        _write(self.gate / "offset", repr(self.offset))
        return event.is_set()


def main(argv: list[str]) -> int:
    from lem.cli import campaign  # registers the run command on the campaign group
    from lem.cli.run_cmd import RunDeps

    gate, *args = argv
    deps = RunDeps(clock=GateClock(Path(gate)))
    try:
        campaign.main(args, obj=deps, standalone_mode=True)
    except SystemExit as e:
        return int(e.code or 0)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
