"""Helpers of the fault-injection suite (marker ``faults``, run in CI, never skipped there)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

from lem.runtime.process import start_ticks
from lem_harness.fileio import is_temp_name
from tests.faults import events

REPO = Path(__file__).resolve().parents[2]
WAIT_S = 120.0  # upper bound for an event that must come; never a pause the test relies on


def wait_for(condition, what: str, proc=None) -> None:  # type: ignore[no-untyped-def]
    """Poll ``condition`` until true; fail (with the output) if it never comes or ``proc`` ends."""
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"process ended (rc {proc.returncode}) before {what}:\n{output(proc)}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def spawn(argv: list[str], log: Path, **kwargs: object) -> subprocess.Popen[bytes]:
    """Start ``argv`` with its output appended to ``log`` (read by ``output``)."""
    with log.open("ab") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, **kwargs)  # type: ignore[call-overload]
    proc.log = log  # type: ignore[attr-defined]
    return proc  # type: ignore[no-any-return]


def output(proc: subprocess.Popen[bytes]) -> str:
    log = getattr(proc, "log", None)
    return Path(log).read_text(errors="replace")[-4000:] if log else ""


def kill_and_reap(proc: subprocess.Popen[bytes], sig: signal.Signals) -> int:
    proc.send_signal(sig)
    return proc.wait(timeout=WAIT_S)


def gone(pid: int) -> bool:
    return start_ticks(pid) is None  # exited (a zombie waiting for init counts as gone)


def temp_leftovers(root: Path) -> list[str]:
    """Temporary files and attempt records left anywhere under ``root``."""
    found = []
    for directory, dirs, files in os.walk(root):
        for name in files + dirs:
            if is_temp_name(name) or name == ".attempt-process" or name.startswith("lem-local-"):
                found.append(os.path.join(directory, name))
    return found


def completions(log: Path) -> Counter[tuple[str, str]]:
    """(run id, outcome) → how many times a process finished it so."""
    return Counter((e[1], e[3]) for e in events.read(log) if e[0] == "end")


def overlaps(log: Path) -> list[list[str]]:
    return [e for e in events.read(log) if e[0] == "overlap"]
