"""What else ran during a window: other compute processes on the measured GPUs, and host CPU load.

A window's energy and latency are only the workload's when nothing else competed for the
GPU or the host. ``ActivityProbe.snapshot()`` is taken at both window edges;
``window_activity(start, end)`` turns two snapshots into what the result records:

- ``gpu_other_processes``: per GPU, the most compute processes NVML listed at either edge
  that are not this process or its descendants. Inside a container without the host's
  PID namespace NVML reports host PIDs, which never match ours; then the count is the
  processes listed beyond the size of our own process tree.
- ``cpu_steal_pct``: CPU time the hypervisor gave to other guests (``steal`` in
  ``/proc/stat``), as a share of all CPU time in the window.
- ``host_cpu_other_pct``: CPU time spent by processes other than this process tree, as
  a share of the host's capacity (busy jiffies − our own, over all jiffies).
- ``load_avg_1m``: ``/proc/loadavg`` at the window's end, for the reader.

``flags.py`` turns these into ``GPU_SHARED`` and ``HOST_BUSY``. Where ``/proc`` is not
readable (not Linux) the host fields are ``None``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from lem_harness.contract import WindowActivity

PROC = Path("/proc")


@dataclass(frozen=True)
class CpuTimes:
    """Host-wide jiffies from the ``cpu`` line of ``/proc/stat``."""

    total: int
    idle: int  # idle + iowait
    steal: int


@dataclass(frozen=True)
class Snapshot:
    cpu: CpuTimes | None
    own_jiffies: int | None  # this process tree's user + system time
    load_avg_1m: float | None
    gpu_processes: Mapping[str, frozenset[int]] = field(default_factory=dict)
    own_pids: frozenset[int] = frozenset()


def parse_proc_stat(text: str) -> CpuTimes:
    """The aggregate ``cpu`` line: user nice system idle iowait irq softirq steal [guest guest_nice]."""
    for line in text.splitlines():
        parts = line.split()
        if parts and parts[0] == "cpu":
            values = [int(v) for v in parts[1:]]
            values += [0] * (8 - len(values))
            # guest time is already inside user/nice: the first 8 fields are the whole
            return CpuTimes(total=sum(values[:8]), idle=values[3] + values[4], steal=values[7])
    raise ValueError("no aggregate cpu line in /proc/stat")


def parse_pid_jiffies(text: str) -> int:
    """utime + stime of one ``/proc/<pid>/stat`` line (the command may contain spaces)."""
    fields = text[text.rindex(")") + 2 :].split()
    return int(fields[11]) + int(fields[12])  # fields 14 and 15 of proc(5), counted from state


def window_activity(start: Snapshot, end: Snapshot) -> WindowActivity:
    """What two snapshots say about the span between them."""
    steal = other = None
    if start.cpu is not None and end.cpu is not None:
        total = end.cpu.total - start.cpu.total
        if total > 0:
            steal = 100.0 * (end.cpu.steal - start.cpu.steal) / total
            busy = total - (end.cpu.idle - start.cpu.idle) - (end.cpu.steal - start.cpu.steal)
            if start.own_jiffies is not None and end.own_jiffies is not None:
                own = end.own_jiffies - start.own_jiffies
                other = max(0.0, 100.0 * (busy - own) / total)
    return WindowActivity(
        cpu_steal_pct=steal,
        host_cpu_other_pct=other,
        load_avg_1m=end.load_avg_1m,
        gpu_other_processes=_other_gpu_processes(start, end),
    )


def _others(pids: Collection[int], own: Collection[int]) -> int:
    if any(pid in own for pid in pids):
        return sum(1 for pid in pids if pid not in own)
    return max(0, len(pids) - len(own))  # another PID namespace: ours cannot be told apart


def _other_gpu_processes(start: Snapshot, end: Snapshot) -> dict[str, int]:
    uuids = set(start.gpu_processes) | set(end.gpu_processes)
    return {
        uuid: max(_others(snap.gpu_processes.get(uuid, frozenset()), snap.own_pids) for snap in (start, end))
        for uuid in sorted(uuids)
    }


class ActivitySource(Protocol):
    def snapshot(self) -> Snapshot: ...


def quiet_snapshot() -> Snapshot:
    """A snapshot that says nothing (no /proc, no GPU processes): for fakes."""
    return Snapshot(cpu=None, own_jiffies=None, load_avg_1m=None)


class ActivityProbe:
    """Reads ``/proc`` (and the GPUs' compute processes, through ``gpu_processes``)."""

    def __init__(
        self,
        gpu_processes: Callable[[], Mapping[str, Collection[int]]] | None = None,
        own_pids: Callable[[], Collection[int]] | None = None,
        proc: Path = PROC,
    ) -> None:
        self._gpu_processes = gpu_processes
        self._own_pids = own_pids or _own_tree
        self._proc = proc

    def snapshot(self) -> Snapshot:
        own = frozenset(self._own_pids())
        gpus = {uuid: frozenset(pids) for uuid, pids in (self._gpu_processes or dict)().items()}
        return Snapshot(self._cpu(), self._own_jiffies(own), self._load(), gpus, own)

    def _read(self, *parts: str) -> str | None:
        try:
            return self._proc.joinpath(*parts).read_text()
        except OSError:
            return None

    def _cpu(self) -> CpuTimes | None:
        text = self._read("stat")
        try:
            return None if text is None else parse_proc_stat(text)
        except ValueError:
            return None

    def _own_jiffies(self, pids: Collection[int]) -> int | None:
        total = 0
        for pid in pids:
            text = self._read(str(pid), "stat")
            if text is None:
                if pid == os.getpid():
                    return None
                continue  # a worker that ended: its time is lost, a small overcount of "other"
            total += parse_pid_jiffies(text)
        return total

    def _load(self) -> float | None:
        text = self._read("loadavg")
        return None if not text else float(text.split()[0])


def _own_tree() -> set[int]:
    from lem_harness.engines.process_tree import descendant_pids

    return {os.getpid(), *descendant_pids()}
