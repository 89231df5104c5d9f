"""Warmup before the measured window: a fixed prompt count, or run until latency settles.

``fixed`` runs exactly ``max_prompts`` prompts. ``convergence`` stops after the first
step at which the coefficient of variation of the last ``window_size`` step latencies
is at most ``target_cv`` — never before ``min_prompts`` prompts have run — and
otherwise at ``max_prompts`` prompts or ``timeout_seconds``, whichever comes first.
The decision (``stop_reason``) is a pure function of the latencies seen so far.

A *step* is one ``generate`` call. In ``fixed`` mode the steps are the engine's own
batches. In ``convergence`` mode a step holds at most ``max_prompts // window_size``
prompts (``step_cap``) and never more than the engine's largest batch, so that the
prompt budget always allows ``window_size`` steps:
a continuous-batching engine (vLLM, TensorRT-LLM) plans one batch of every prompt, and a
PyTorch batch of 5 or more would otherwise leave fewer than ``window_size`` latencies
inside the default budget, so the CV could never be computed and every run would carry
``WARMUP_NOT_CONVERGED``. Steps within a run have one size (the last may be trimmed).

The warmup prompts are disjoint from the measured ones (``disjoint_prompts``): same
length distribution, different tokens, no shared leading cache block, so that prefix
caching (vLLM) or KV block reuse (TensorRT-LLM) cannot give the measured window hits
that exist only because warmup ran the same prompts.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence, Set
from dataclasses import dataclass
from typing import Literal

from lem_harness.contract import WarmupMetrics
from lem_harness.engines.base import Engine
from lem_harness.experiment import WarmupConfig
from lem_harness.measure import coefficient_of_variation

StopReason = Literal["converged", "max_prompts", "timeout"]


@dataclass(frozen=True)
class WarmupOutcome:
    iterations: int
    prompts: int
    latencies_s: tuple[float, ...]
    final_cv: float | None
    reason: StopReason | None  # None: the batches ran out before any stop condition


def rolling_cv(latencies: Sequence[float], window_size: int) -> float | None:
    """CV of the last ``window_size`` latencies; None until that many exist."""
    if len(latencies) < window_size:
        return None
    return coefficient_of_variation(list(latencies[-window_size:]))


def stop_reason(
    cfg: WarmupConfig, latencies: Sequence[float], prompts_done: int, elapsed_s: float
) -> StopReason | None:
    """Why warmup stops after the batches seen so far, or None to run another batch."""
    if cfg.mode == "convergence" and prompts_done >= cfg.min_prompts:
        cv = rolling_cv(latencies, cfg.window_size)
        if cv is not None and cv <= cfg.target_cv:
            return "converged"
    if prompts_done >= cfg.max_prompts:
        return "max_prompts"
    if cfg.mode == "convergence" and elapsed_s >= cfg.timeout_seconds:
        return "timeout"
    return None


CACHE_BLOCK_TOKENS = 16  # vLLM's default KV block: prefix caching matches whole blocks
MAX_REDRAWS = 100


def step_cap(cfg: WarmupConfig) -> int | None:
    """Most prompts per warmup step: ``max_prompts // window_size`` in convergence mode, else no cap."""
    if cfg.mode != "convergence":
        return None
    return max(1, cfg.max_prompts // cfg.window_size)


def warmup_plan(plan: Sequence[Sequence[int]], cfg: WarmupConfig) -> list[list[int]]:
    """The engine's batches (fixed mode), or its prompt order cut into equal steps of the engine's
    largest batch or ``step_cap`` prompts, whichever is smaller (the last step may be shorter)."""
    cap = step_cap(cfg)
    if cap is None:
        return [list(batch) for batch in plan if batch]
    size = min(cap, max((len(batch) for batch in plan), default=1))
    order = [index for batch in plan for index in batch]
    return [order[i : i + size] for i in range(0, len(order), size)]


def _lead(prompt: Sequence[int]) -> tuple[int, ...]:
    return tuple(prompt[:CACHE_BLOCK_TOKENS])


def disjoint_prompts(
    measured: Sequence[Sequence[int]], count: int, vocab_size: int, special_ids: Set[int], seed: int
) -> list[list[int]]:
    """``count`` seeded random prompts whose lengths cycle through the measured prompts' lengths,
    none starting with the same leading block (``CACHE_BLOCK_TOKENS``) as a measured prompt."""
    allowed = [i for i in range(vocab_size) if i not in special_ids]
    if not allowed or not measured:
        return [list(p) for p in measured[:count]]
    rng = random.Random(f"lem-warmup-{seed}")
    taken = {_lead(p) for p in measured}
    out: list[list[int]] = []
    for i in range(count):
        length = len(measured[i % len(measured)])
        prompt = [allowed[rng.randrange(len(allowed))] for _ in range(length)]
        for _ in range(MAX_REDRAWS):
            if _lead(prompt) not in taken:
                break
            prompt = [allowed[rng.randrange(len(allowed))] for _ in range(length)]
        out.append(prompt)
    return out


def warmup_batches(plan: Sequence[Sequence[int]], max_prompts: int) -> Iterator[list[int]]:
    """The engine's batches in order, cycled, the last one trimmed so exactly ``max_prompts`` run."""
    if max_prompts <= 0 or not any(plan):
        return
    left = max_prompts
    while True:
        for batch in plan:
            if not batch:
                continue
            take = list(batch[:left])
            left -= len(take)
            yield take
            if left == 0:
                return


def simulate(cfg: WarmupConfig, plan: Sequence[Sequence[int]], latencies: Sequence[float]) -> WarmupOutcome:
    """The outcome if the steps of ``plan`` took ``latencies`` (elapsed = their running sum)."""
    seen: list[float] = []
    prompts = 0
    reason: StopReason | None = None
    steps = warmup_batches(warmup_plan(plan, cfg), cfg.max_prompts)
    for batch, latency in zip(steps, latencies, strict=False):
        seen.append(latency)
        prompts += len(batch)
        reason = stop_reason(cfg, seen, prompts, sum(seen))
        if reason is not None:
            break
    return WarmupOutcome(len(seen), prompts, tuple(seen), rolling_cv(seen, cfg.window_size), reason)


def run_warmup(
    engine: Engine,
    prompts: Sequence[Sequence[int]],
    plan: Sequence[Sequence[int]],
    cfg: WarmupConfig,
    clock: Callable[[], float],
    *,
    on_batch: Callable[[int, float | None], object] | None = None,
) -> WarmupMetrics:
    """Run warmup steps on ``engine`` until ``stop_reason`` says stop; record what happened.

    ``prompts`` are the warmup prompts and ``plan`` the engine's batches of them;
    ``on_batch(steps so far, rolling CV so far)`` follows each step (the live view).
    """
    if not cfg.enabled or cfg.max_prompts == 0:
        return WarmupMetrics(mode="disabled", iterations=0, prompts=0, duration_s=0.0)
    start = clock()
    seen: list[float] = []
    done = 0
    reason: StopReason | None = None
    for batch in warmup_batches(warmup_plan(plan, cfg), cfg.max_prompts):
        seen.append(engine.generate([prompts[i] for i in batch]).latency_s)
        done += len(batch)
        if on_batch is not None:
            on_batch(len(seen), rolling_cv(seen, cfg.window_size))
        reason = stop_reason(cfg, seen, done, clock() - start)
        if reason is not None:
            break
    return to_metrics(
        cfg,
        WarmupOutcome(len(seen), done, tuple(seen), rolling_cv(seen, cfg.window_size), reason),
        clock() - start,
    )


def to_metrics(cfg: WarmupConfig, outcome: WarmupOutcome, duration_s: float) -> WarmupMetrics:
    convergence = cfg.mode == "convergence"
    return WarmupMetrics(
        mode=cfg.mode,
        iterations=outcome.iterations,
        prompts=outcome.prompts,
        duration_s=duration_s,
        final_cv=outcome.final_cv,
        converged=(outcome.reason == "converged") if convergence else None,
        timed_out=outcome.reason == "timeout",
        step_prompts=step_cap(cfg),
    )
