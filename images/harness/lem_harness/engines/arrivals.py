"""Serving requests as they arrive (``traffic_simulation``), framework-free; clock and sleep injected.

Arrival ``i`` happens at ``origin + offsets[i]``, ``origin`` being the clock when the loop
starts; offsets ascend (``lem_harness.traffic.arrival_offsets``), so requests arrive in
prompt order and are served first come, first served. Every time returned is in seconds
since ``origin``.

- ``serve_in_batches`` (engines that run one batch at a time: PyTorch): a batch is formed
  only from requests that have arrived. ``static``: wait until ``batch_size`` requests are
  waiting (or every remaining request has arrived: the last batch); ``dynamic``: take what
  is waiting, up to ``batch_size`` and, with a budget, ``max_tokens_per_batch`` padded input
  tokens (a longer prompt runs alone). While no batch can form, the loop sleeps until the
  arrival that completes one. A request's processing starts when its batch starts.
- ``serve_open_loop`` (engines with their own scheduler: vLLM's ``add_request`` / ``step``):
  every arrived request is submitted at once; while the engine has work it steps, otherwise
  the loop sleeps until the next arrival. It returns when each request was submitted.
- ``submit_on_schedule`` (engines that schedule in the background: TensorRT-LLM's
  ``generate_async``): the open loop with nothing to step, each request handed over at its
  arrival; the caller then waits for the results.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from lem_harness.engines.base import BatchResult

Clock = Callable[[], float]
Sleep = Callable[[float], None]


@dataclass(frozen=True)
class Served:
    """What a traffic run produced: the batches, and when each request's processing started."""

    batches: list[BatchResult]
    starts_s: list[float]  # per request, in prompt order, seconds since the loop's origin


@dataclass(frozen=True)
class BatchPolicy:
    """How a batch forms from the waiting requests (``pytorch.batching_strategy``)."""

    strategy: str  # static | dynamic
    batch_size: int
    max_tokens_per_batch: int | None = None

    def take(self, lengths: Sequence[int], taken: int, arrived: int) -> list[int]:
        """The next batch among requests ``taken .. arrived - 1``; empty while none can form yet."""
        waiting = arrived - taken
        if waiting <= 0:
            return []
        if self.strategy == "static":
            if waiting < self.batch_size and arrived < len(lengths):
                return []  # wait for a full batch, unless every request has arrived (the last batch)
            return list(range(taken, min(taken + self.batch_size, arrived)))
        return self._within_budget(lengths, taken, min(arrived, taken + self.batch_size))

    def _within_budget(self, lengths: Sequence[int], first: int, end: int) -> list[int]:
        batch = [first]
        longest = lengths[first]
        for index in range(first + 1, end):
            longest = max(longest, lengths[index])
            budget = self.max_tokens_per_batch
            if budget is not None and (len(batch) + 1) * longest > budget:
                break
            batch.append(index)
        return batch

    def awaited(self, count: int, taken: int) -> int:
        """The request whose arrival lets the next batch form."""
        if self.strategy == "static":
            return min(taken + self.batch_size, count) - 1
        return taken


def serve_in_batches(  # noqa: PLR0917
    offsets: Sequence[float],
    lengths: Sequence[int],
    policy: BatchPolicy,
    run_batch: Callable[[list[int]], BatchResult],
    clock: Clock,
    sleep: Sleep,
) -> Served:
    """Run batches of arrived requests until every request is served."""
    origin = clock()
    starts = [0.0] * len(offsets)
    batches: list[BatchResult] = []
    taken = 0
    while taken < len(offsets):
        elapsed = clock() - origin
        batch = policy.take(lengths, taken, bisect.bisect_right(offsets, elapsed))
        if not batch:
            sleep(max(0.0, offsets[policy.awaited(len(offsets), taken)] - elapsed))
            continue
        batches.append(run_batch(batch))
        for index in batch:
            starts[index] = elapsed
        taken += len(batch)
    return Served(batches=batches, starts_s=starts)


def serve_open_loop(  # noqa: PLR0917
    offsets: Sequence[float],
    submit: Callable[[int], None],
    step: Callable[[], None],
    busy: Callable[[], bool],
    clock: Clock,
    sleep: Sleep,
) -> list[float]:
    """Submit each request at its arrival and step the engine until all are done; submit times."""
    origin = clock()
    submitted: list[float] = []
    while len(submitted) < len(offsets) or busy():
        elapsed = clock() - origin
        while len(submitted) < len(offsets) and offsets[len(submitted)] <= elapsed:
            submit(len(submitted))
            submitted.append(elapsed)
        if busy():
            step()
        elif len(submitted) < len(offsets):
            sleep(max(0.0, offsets[len(submitted)] - elapsed))
    return submitted


def submit_on_schedule(
    offsets: Sequence[float], submit: Callable[[int], None], clock: Clock, sleep: Sleep
) -> list[float]:
    """Hand each request over at its arrival (the engine works in the background); submit times."""
    return serve_open_loop(offsets, submit, lambda: None, lambda: False, clock, sleep)


def served_plan(batches: Sequence[BatchResult]) -> list[list[int]]:
    """The prompt indices of each served batch: every loop here serves in prompt (arrival) order."""
    plan: list[list[int]] = []
    start = 0
    for batch in batches:
        plan.append(list(range(start, start + len(batch.generations))))
        start += len(batch.generations)
    return plan
