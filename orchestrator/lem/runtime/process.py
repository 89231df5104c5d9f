"""Which process is which, host-wide: pid + start time, read from ``/proc``.

A pid alone is reused by the kernel; a pid together with the process's start time (field 22
of ``/proc/<pid>/stat``, in clock ticks since boot) names one process for the life of the
host. ``/proc/<pid>/stat`` is readable by every user, so any user can tell whether another
user's lem (or harness) is still alive. A zombie counts as dead: it runs nothing.

``ATTEMPT_FILE`` in a run directory records the local runtime's harness process of the run's
current attempt — and, inside a Slurm job, that job's id (``SLURM_JOB_ID``) — so that a resume
can refuse to start the run again while that process lives (``lem.campaign.resume_check``).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from lem_harness.fileio import atomic_write_text, read_bytes_nofollow

ATTEMPT_FILE = ".attempt-process"
_SLURM_JOB_LINE = "slurm-job "
_MACHINE_ID_FILES = ("/etc/machine-id", "/var/lib/dbus/machine-id")


@dataclass(frozen=True)
class ProcessId:
    """One process on one host: ``host`` + ``pid`` + ``start_ticks`` (+ its ``uid``)."""

    host: str
    pid: int
    start_ticks: int
    uid: int

    def label(self) -> str:
        return f"{self.host}:{self.pid}:{self.start_ticks}"

    @classmethod
    def parse(cls, text: str, uid: int = -1) -> ProcessId | None:
        """The ``label()`` form back; None when it is not one."""
        host, _, rest = text.strip().rpartition(":")
        host, _, pid = host.rpartition(":")
        try:
            return cls(host, int(pid), int(rest), uid) if host else None
        except ValueError:
            return None


def host_id() -> str:
    """This machine's id (``/etc/machine-id``), else its host name."""
    for name in _MACHINE_ID_FILES:
        try:
            text = Path(name).read_text(encoding="ascii").strip()
        except OSError:
            continue
        if text:
            return text[:32]
    return socket.gethostname()


def start_ticks(pid: int) -> int | None:
    """The start time of process ``pid`` (clock ticks after boot); None if it is gone or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2 :].split()  # after "pid (comm) "
    if len(fields) < 20 or fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def current_process() -> ProcessId:
    pid = os.getpid()
    return ProcessId(host_id(), pid, start_ticks(pid) or 0, os.getuid())


def process_of(pid: int) -> ProcessId | None:
    ticks = start_ticks(pid)
    return None if ticks is None else ProcessId(host_id(), pid, ticks, -1)


def is_alive(process: ProcessId, this_host: str | None = None) -> bool:
    """Is ``process`` still running? Only answerable on its own host (another host: assumed alive)."""
    if process.host != (this_host or host_id()):
        return True
    return start_ticks(process.pid) == process.start_ticks


@dataclass(frozen=True)
class Attempt:
    """A run's recorded harness process, and the Slurm job it ran in (None outside Slurm)."""

    process: ProcessId
    slurm_job: str | None = None


def slurm_job_id(env: Mapping[str, str] | None = None) -> str | None:
    """This process's Slurm job (``SLURM_JOB_ID``), None outside a job or when it is not a job id."""
    value = (env if env is not None else os.environ).get("SLURM_JOB_ID", "").strip()
    return value if value.isdigit() else None


def record_attempt(run_dir: Path, process: ProcessId, slurm_job: str | None = None) -> None:
    """``<host>:<pid>:<start ticks>`` on the first line; ``slurm-job <id>`` on the second inside a job."""
    job = f"{_SLURM_JOB_LINE}{slurm_job}\n" if slurm_job else ""
    atomic_write_text(run_dir / ATTEMPT_FILE, process.label() + "\n" + job, durable=False)


def clear_attempt(run_dir: Path) -> None:
    (run_dir / ATTEMPT_FILE).unlink(missing_ok=True)


def recorded_attempt(run_dir: Path) -> Attempt | None:
    """The harness process (and Slurm job) recorded for ``run_dir``'s last attempt, if any."""
    try:
        text = read_bytes_nofollow(run_dir / ATTEMPT_FILE).decode("ascii", errors="replace")
    except OSError:
        return None
    lines = text.splitlines()
    process = ProcessId.parse(lines[0]) if lines else None
    if process is None:
        return None
    jobs = [
        line.removeprefix(_SLURM_JOB_LINE).strip() for line in lines[1:] if line.startswith(_SLURM_JOB_LINE)
    ]
    return Attempt(process, jobs[0] if jobs and jobs[0].isdigit() else None)
