"""How many CPUs this process may really use: its affinity mask, capped by a cgroup CPU quota.

``os.cpu_count()`` counts the machine's CPUs, not the ones a container (``--cpus 2``, a cgroup
``cpu.max`` quota) or a ``taskset`` lets the process run on; a CPU engine that starts one
thread per machine CPU inside a 2-CPU quota is throttled and measures far below what it could.
The usable count is ``min(len(sched_getaffinity), ceil(quota / period))``, at least 1.
cgroup v2 (``cpu.max``: ``"<quota> <period>"`` or ``"max <period>"``) and v1
(``cpu.cfs_quota_us`` / ``cpu.cfs_period_us``, ``-1`` = no quota) are both read.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


def quota_cpus(quota: str | None, period: str | None) -> int | None:
    """CPUs a quota allows (rounded up), or None when there is no quota."""
    if quota is None or period is None or quota.strip() in ("max", "-1"):
        return None
    try:
        q, p = int(quota), int(period)
    except ValueError:
        return None
    return max(1, math.ceil(q / p)) if q > 0 and p > 0 else None


def read_quota(root: Path = CGROUP_ROOT) -> int | None:
    """The cgroup CPU quota in CPUs (v2 first, then v1), or None."""
    try:
        parts = (root / "cpu.max").read_text(encoding="ascii").split()
        if len(parts) == 2:
            return quota_cpus(parts[0], parts[1])
    except OSError:
        pass
    try:
        quota = (root / "cpu" / "cpu.cfs_quota_us").read_text(encoding="ascii").strip()
        period = (root / "cpu" / "cpu.cfs_period_us").read_text(encoding="ascii").strip()
    except OSError:
        return None
    return quota_cpus(quota, period)


def affinity_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def usable_cpus(affinity: int | None = None, quota: int | None = None, root: Path = CGROUP_ROOT) -> int:
    """``min(affinity, quota)``; each read from this process when not given."""
    allowed = affinity if affinity is not None else affinity_count()
    cap = quota if quota is not None else read_quota(root)
    return max(1, min(allowed, cap) if cap is not None else allowed)
