"""Window activity from a fake /proc tree and fake NVML process lists: exact shares and counts."""

from __future__ import annotations

from pathlib import Path

import pytest

from lem_harness.measure.activity import (
    ActivityProbe,
    CpuTimes,
    Snapshot,
    parse_pid_jiffies,
    parse_proc_stat,
    window_activity,
)

STAT = "cpu  {user} 0 {system} {idle} {iowait} 0 0 {steal} 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n"
PID_STAT = "{pid} (python3 -m x) S 1 1 1 0 -1 4194560 100 0 0 0 {utime} {stime} 0 0 20 0 3 0 5 0 0\n"


def write_proc(root: Path, *, user: int, system: int, idle: int, steal: int, own: dict[int, int]) -> None:
    (root / "stat").write_text(STAT.format(user=user, system=system, idle=idle, iowait=0, steal=steal))
    (root / "loadavg").write_text("3.50 2.00 1.00 4/300 999\n")
    for pid, jiffies in own.items():
        (root / str(pid)).mkdir(exist_ok=True)
        (root / str(pid) / "stat").write_text(PID_STAT.format(pid=pid, utime=jiffies, stime=0))


def test_parsers_read_the_aggregate_line_and_a_command_with_spaces() -> None:
    assert parse_proc_stat(STAT.format(user=10, system=5, idle=80, iowait=3, steal=2)) == CpuTimes(
        total=100, idle=83, steal=2
    )
    assert parse_pid_jiffies(PID_STAT.format(pid=7, utime=40, stime=2)) == 42
    with pytest.raises(ValueError, match="no aggregate cpu line"):
        parse_proc_stat("cpu0 1 2 3\n")


def test_other_processes_cpu_share_and_steal_over_a_window(tmp_path: Path) -> None:
    probe = ActivityProbe(gpu_processes=lambda: {}, own_pids=lambda: [10, 11], proc=tmp_path)
    write_proc(tmp_path, user=1000, system=0, idle=1000, steal=0, own={10: 100, 11: 0})
    start = probe.snapshot()
    # 400 jiffies pass: 300 busy (our tree used 100 of them), 60 idle, 40 stolen
    write_proc(tmp_path, user=1300, system=0, idle=1060, steal=40, own={10: 150, 11: 50})
    activity = window_activity(start, probe.snapshot())
    assert activity.cpu_steal_pct == pytest.approx(10.0)
    assert activity.host_cpu_other_pct == pytest.approx(100.0 * (300 - 100) / 400)
    assert activity.load_avg_1m == 3.5


def test_other_gpu_processes_by_pid_or_by_count_across_pid_namespaces() -> None:
    ours = frozenset({10, 11})
    same_ns = Snapshot(None, None, None, {"GPU-a": frozenset({10, 500})}, ours)
    assert window_activity(same_ns, same_ns).gpu_other_processes == {"GPU-a": 1}
    # in a container NVML lists host PIDs: two listed, our tree has two processes, so nobody else
    other_ns = Snapshot(None, None, None, {"GPU-a": frozenset({4001, 4002})}, ours)
    assert window_activity(other_ns, other_ns).gpu_other_processes == {"GPU-a": 0}
    crowded = Snapshot(None, None, None, {"GPU-a": frozenset({4001, 4002, 4003})}, ours)
    assert window_activity(other_ns, crowded).gpu_other_processes == {"GPU-a": 1}


def test_without_proc_the_host_fields_are_none(tmp_path: Path) -> None:
    probe = ActivityProbe(own_pids=lambda: [10], proc=tmp_path / "absent")
    activity = window_activity(probe.snapshot(), probe.snapshot())
    assert (activity.cpu_steal_pct, activity.host_cpu_other_pct, activity.load_avg_1m) == (None, None, None)
