"""End the processes an engine started (vLLM's engine core and workers, TensorRT-LLM's MPI workers).

Engines snapshot this process's descendants before they start the framework and, on
close, after the framework's own shutdown, terminate — then kill — every descendant that
appeared since and is still alive. multiprocessing's resource tracker is left alone: it
exits with this process and frees the shared memory the workers used. ``psutil`` ships
with both frameworks' images; without it nothing is tracked.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from typing import Any

logger = logging.getLogger("lem_harness")

KILL_WAIT_S = 5.0


def descendant_pids() -> set[int]:
    """PIDs of every live descendant of this process (empty when psutil is missing)."""
    try:
        import psutil
    except ImportError:
        return set()
    return {p.pid for p in psutil.Process().children(recursive=True)}


def is_resource_tracker(proc: Any) -> bool:
    try:
        return any("resource_tracker" in part for part in proc.cmdline())
    except Exception:
        return False


def end_processes(pids: Collection[int], wait_s: float = KILL_WAIT_S) -> list[int]:
    """SIGTERM each live process of ``pids``, SIGKILL those alive after ``wait_s``; return the PIDs ended."""
    if not pids:
        return []
    import psutil

    procs = []
    for pid in pids:
        try:
            proc = psutil.Process(pid)
        except psutil.NoSuchProcess:
            continue
        if proc.status() != psutil.STATUS_ZOMBIE and not is_resource_tracker(proc):
            procs.append(proc)
    for proc in procs:
        _signal(proc, "terminate")
    _, alive = psutil.wait_procs(procs, timeout=wait_s)
    for proc in alive:
        logger.warning("engine process %d ignored SIGTERM: killing it", proc.pid)
        _signal(proc, "kill")
    psutil.wait_procs(alive, timeout=wait_s)
    return [p.pid for p in procs]


def _signal(proc: Any, how: str) -> None:
    import psutil

    try:
        getattr(proc, how)()
    except psutil.NoSuchProcess:
        return
