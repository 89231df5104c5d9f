"""The CPUs the harness may use: affinity capped by a cgroup quota (v2 and v1 files)."""

from __future__ import annotations

import os
from pathlib import Path

from lem_harness.cpus import quota_cpus, read_quota, usable_cpus


def test_quota_in_cpus_rounds_up_and_max_means_none() -> None:
    assert quota_cpus("200000", "100000") == 2
    assert quota_cpus("150000", "100000") == 2  # 1.5 CPUs: two threads, each throttled a little
    assert quota_cpus("50000", "100000") == 1
    assert quota_cpus("max", "100000") is None
    assert quota_cpus("-1", "100000") is None
    assert quota_cpus("junk", "100000") is None


def test_cgroup_v2_cpu_max(tmp_path: Path) -> None:
    (tmp_path / "cpu.max").write_text("300000 100000\n")
    assert read_quota(tmp_path) == 3
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert read_quota(tmp_path) is None


def test_cgroup_v1_cfs_files(tmp_path: Path) -> None:
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("400000\n")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert read_quota(tmp_path) == 4
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")
    assert read_quota(tmp_path) is None


def test_usable_is_the_smaller_of_affinity_and_quota(tmp_path: Path) -> None:
    assert usable_cpus(affinity=16, quota=2) == 2
    assert usable_cpus(affinity=2, quota=8) == 2
    (tmp_path / "cpu.max").write_text("100000 100000\n")
    assert usable_cpus(affinity=16, root=tmp_path) == 1
    assert usable_cpus(root=tmp_path / "none") == len(os.sched_getaffinity(0))
