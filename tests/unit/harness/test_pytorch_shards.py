"""Data-parallel bookkeeping: GPU groups, CUDA_VISIBLE_DEVICES and CPUs per process, batch shards
and merging results back into batch order."""

from __future__ import annotations

import pytest

from lem_harness.engines.base import BatchResult, Generation
from lem_harness.engines.pytorch_shards import (
    gpu_groups,
    merge_shards,
    shard_batch,
    split_evenly,
    worker_cpus,
    worker_visible_devices,
)


def test_split_evenly() -> None:
    assert split_evenly(7, 3) == [range(0, 3), range(3, 5), range(5, 7)]
    assert split_evenly(6, 2) == [range(0, 3), range(3, 6)]
    assert split_evenly(1, 3) == [range(0, 1), range(1, 1), range(1, 1)]


def test_gpu_groups_and_visible_devices() -> None:
    assert gpu_groups((4, 5, 6, 7), 2) == [(4, 5), (6, 7)]
    assert gpu_groups((4, 5, 6), 2) == [(4, 5), (6,)]
    # the runner narrowed CUDA to the measured GPUs: each worker gets its entries of that list
    assert worker_visible_devices("4,5,6,7", (4, 5, 6, 7), 4) == ["4", "5", "6", "7"]
    assert worker_visible_devices("GPU-a, GPU-b", (0, 1), 2) == ["GPU-a", "GPU-b"]
    assert worker_visible_devices(None, (2, 3, 9), 2) == ["0,1", "2"]
    with pytest.raises(ValueError, match="lists 1 device"):
        worker_visible_devices("3", (0, 1), 2)


def test_worker_cpus() -> None:
    assert worker_cpus([3, 0, 2, 1, 4], 2) == [[0, 1, 2], [3, 4]]
    assert worker_cpus([0], 2) == [[0], [0]]  # fewer CPUs than processes: both share it


def test_shards_merge_back_in_batch_order() -> None:
    shards = shard_batch(5, 2)
    assert shards == [range(0, 3), range(3, 5)]
    first = BatchResult([Generation(10, 1), Generation(11, 2), Generation(12, 3)], latency_s=0.5)
    second = BatchResult([Generation(13, 4), Generation(14, 5)], latency_s=0.9)
    merged = merge_shards(5, shards, [first, second], wall_s=1.25)
    assert [(g.input_tokens, g.output_tokens) for g in merged.generations] == [
        (10, 1),
        (11, 2),
        (12, 3),
        (13, 4),
        (14, 5),
    ]
    assert merged.latency_s == 1.25


def test_a_short_shard_result_is_an_error() -> None:
    with pytest.raises(ValueError, match="returned 1 results for 2 prompts"):
        merge_shards(2, [range(0, 2)], [BatchResult([Generation(1, 1)], latency_s=0.1)], wall_s=0.1)
