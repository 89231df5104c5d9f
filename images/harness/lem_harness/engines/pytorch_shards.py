"""Data-parallel bookkeeping for ``pytorch.num_processes`` (pure; no torch import).

Each of the N processes owns a contiguous group of the run's GPUs (CUDA ordinals 0..n-1 after the
runner narrowed CUDA to the measured GPUs) and its share of the CPUs. A batch of the run's plan is
cut into N contiguous shards, one per process, of near-equal size; the processes generate at the
same time and their results are merged back into the batch's order.
"""

from __future__ import annotations

from collections.abc import Sequence

from lem_harness.engines.base import BatchResult, Generation


def split_evenly(count: int, parts: int) -> list[range]:
    """``range(count)`` cut into ``parts`` contiguous pieces whose sizes differ by at most 1 (the
    first ones larger); pieces are empty when ``count < parts``."""
    size, extra = divmod(count, parts)
    out: list[range] = []
    start = 0
    for part in range(parts):
        stop = start + size + (1 if part < extra else 0)
        out.append(range(start, stop))
        start = stop
    return out


def gpu_groups(gpus: Sequence[int], processes: int) -> list[tuple[int, ...]]:
    """The GPUs (ids from the config) each process runs on: contiguous, near-equal groups."""
    return [tuple(gpus[i] for i in piece) for piece in split_evenly(len(gpus), processes)]


def worker_visible_devices(parent_visible: str | None, gpus: Sequence[int], processes: int) -> list[str]:
    """``CUDA_VISIBLE_DEVICES`` of each process: its group's entries of the parent's list (ids or
    UUIDs, in the measured GPUs' order), or its group's CUDA ordinals when the parent sets none."""
    entries = (
        [e.strip() for e in parent_visible.split(",")]
        if parent_visible
        else [str(i) for i in range(len(gpus))]
    )
    if len(entries) != len(gpus):
        raise ValueError(
            f"CUDA_VISIBLE_DEVICES lists {len(entries)} device(s) but gpus lists {len(gpus)}: the harness "
            "narrows CUDA to the measured GPUs before the engine starts"
        )
    return [",".join(entries[i] for i in piece) for piece in split_evenly(len(entries), processes)]


def worker_cpus(cpus: Sequence[int], processes: int) -> list[list[int]]:
    """Each process's share of the usable CPUs (all of them for each when there are fewer CPUs
    than processes, rather than a process with none)."""
    if len(cpus) < processes:
        return [list(cpus) for _ in range(processes)]
    ordered = sorted(cpus)
    return [[ordered[i] for i in piece] for piece in split_evenly(len(ordered), processes)]


def shard_batch(count: int, processes: int) -> list[range]:
    """Positions of a batch of ``count`` prompts that each process generates."""
    return split_evenly(count, processes)


def merge_shards(
    count: int, shards: Sequence[range], results: Sequence[BatchResult], wall_s: float
) -> BatchResult:
    """One batch result from the processes' results: generations back in batch order; the batch's
    latency is the wall time from sending the shards to the last result (the slowest process)."""
    merged: list[Generation | None] = [None] * count
    for piece, result in zip(shards, results, strict=True):
        if len(piece) != len(result.generations):
            raise ValueError(f"a process returned {len(result.generations)} results for {len(piece)} prompts")
        for position, generation in zip(piece, result.generations, strict=True):
            merged[position] = generation
    missing = [i for i, g in enumerate(merged) if g is None]
    if missing:
        raise ValueError(f"no result for batch positions {missing}")
    return BatchResult(generations=[g for g in merged if g is not None], latency_s=wall_s)
