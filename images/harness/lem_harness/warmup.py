"""Warmup before the measured window: a fixed prompt count, or run until latency settles.

``fixed`` runs exactly ``max_prompts`` prompts. ``convergence`` stops after the first
batch at which the coefficient of variation of the last ``window_size`` per-batch
latencies is at most ``target_cv`` — never before ``min_prompts`` prompts have run —
and otherwise at ``max_prompts`` prompts or ``timeout_seconds``, whichever comes first.
The decision (``stop_reason``) is a pure function of the latencies seen so far.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
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
    """The outcome if the batches of ``plan`` took ``latencies`` (elapsed = their running sum)."""
    seen: list[float] = []
    prompts = 0
    reason: StopReason | None = None
    for batch, latency in zip(warmup_batches(plan, cfg.max_prompts), latencies, strict=False):
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
    """Run warmup batches on ``engine`` until ``stop_reason`` says stop; record what happened.

    ``on_batch(batches so far, rolling CV so far)`` follows each batch (the live view)."""
    if not cfg.enabled or cfg.max_prompts == 0:
        return WarmupMetrics(mode="disabled", iterations=0, prompts=0, duration_s=0.0)
    start = clock()
    seen: list[float] = []
    done = 0
    reason: StopReason | None = None
    for batch in warmup_batches(plan, cfg.max_prompts):
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
    )
