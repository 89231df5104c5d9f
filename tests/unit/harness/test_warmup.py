"""Warmup stop decisions on known latencies: exact stop points, bounds and records."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pytest

from lem_harness.engines.base import BatchResult, Engine, Generation, Tokenizer
from lem_harness.experiment import ExperimentConfig, WarmupConfig
from lem_harness.warmup import rolling_cv, run_warmup, simulate, stop_reason, warmup_batches

SINGLES = [[i] for i in range(100)]


def _cv(values: Sequence[float]) -> float:
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / len(values)) / mean


def test_rolling_cv_needs_a_full_window() -> None:
    assert rolling_cv([1.0, 2.0], 3) is None
    assert rolling_cv([9.0, 1.0, 2.0, 3.0], 3) == pytest.approx(_cv([1.0, 2.0, 3.0]), rel=1e-12)


def test_convergence_stops_at_the_first_batch_whose_window_cv_is_under_target() -> None:
    cfg = WarmupConfig(mode="convergence", min_prompts=3, max_prompts=20, window_size=3, target_cv=0.05)
    latencies = [1.0, 0.5, 0.52, 0.51, 0.5, 0.5, 0.5]
    # after 3 batches the window [1.0, 0.5, 0.52] has CV 0.33; after 4, [0.5, 0.52, 0.51] has CV 0.016
    outcome = simulate(cfg, SINGLES, latencies)
    assert outcome.reason == "converged"
    assert outcome.iterations == 4
    assert outcome.prompts == 4
    assert outcome.final_cv == pytest.approx(_cv([0.5, 0.52, 0.51]), rel=1e-12)


def test_convergence_never_stops_before_min_prompts() -> None:
    cfg = WarmupConfig(mode="convergence", min_prompts=5, max_prompts=20, window_size=2, target_cv=0.05)
    outcome = simulate(cfg, SINGLES, [1.0] * 20)  # CV is 0 from the second batch on
    assert (outcome.reason, outcome.iterations, outcome.final_cv) == ("converged", 5, 0.0)


def test_convergence_is_bounded_by_max_prompts() -> None:
    cfg = WarmupConfig(mode="convergence", min_prompts=0, max_prompts=7, window_size=2, target_cv=0.05)
    outcome = simulate(cfg, SINGLES, [1.0, 2.0] * 10)
    assert (outcome.reason, outcome.iterations, outcome.prompts) == ("max_prompts", 7, 7)
    assert outcome.final_cv == pytest.approx(1 / 3, rel=1e-12)  # window [1, 2]: std 0.5 / mean 1.5


def test_convergence_is_bounded_by_the_timeout() -> None:
    cfg = WarmupConfig(
        mode="convergence", min_prompts=0, max_prompts=20, window_size=5, target_cv=0.05, timeout_seconds=120
    )
    outcome = simulate(cfg, SINGLES, [50.0] * 10)  # 100 s after 2 batches, 150 s after 3
    assert (outcome.reason, outcome.iterations) == ("timeout", 3)


def test_fixed_runs_exactly_max_prompts_and_ignores_convergence() -> None:
    cfg = WarmupConfig(mode="fixed", min_prompts=0, max_prompts=11, window_size=2, target_cv=0.5)
    plan = [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert list(warmup_batches(plan, 11)) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9], [0]]
    outcome = simulate(cfg, plan, [1.0] * 10)
    assert (outcome.reason, outcome.iterations, outcome.prompts) == ("max_prompts", 4, 11)


def test_stop_reason_prefers_converged_when_max_is_reached_at_the_same_batch() -> None:
    cfg = WarmupConfig(mode="convergence", min_prompts=2, max_prompts=2, window_size=2, target_cv=0.1)
    assert stop_reason(cfg, [1.0, 1.0], prompts_done=2, elapsed_s=2.0) == "converged"
    assert stop_reason(cfg, [1.0], prompts_done=1, elapsed_s=1.0) is None


def test_warmup_batches_of_an_empty_plan_or_zero_prompts_are_empty() -> None:
    assert list(warmup_batches([], 5)) == []
    assert list(warmup_batches([[0, 1]], 0)) == []


class _Tok(Tokenizer):
    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        return [[1] for _ in texts]

    @property
    def vocab_size(self) -> int:
        return 10

    @property
    def special_ids(self) -> frozenset[int]:
        return frozenset()


class _ScriptedEngine(Engine):
    """Returns the scripted latencies in turn and advances the fake clock by each."""

    def __init__(self, latencies: list[float], now: list[float]) -> None:
        super().__init__(ExperimentConfig(model_name="m"))
        self.latencies = latencies
        self.now = now
        self.batches: list[int] = []

    def load_tokenizer(self) -> Tokenizer:
        return _Tok()

    def load(self) -> None:
        return None

    def plan_batches(self, prompts: Sequence[Sequence[int]]) -> list[list[int]]:
        return [[i] for i in range(len(prompts))]

    def generate(self, prompts: Sequence[Sequence[int]]) -> BatchResult:
        latency = self.latencies[len(self.batches)]
        self.batches.append(len(prompts))
        self.now[0] += latency
        return BatchResult([Generation(1, 1) for _ in prompts], latency)

    def synchronize(self) -> None:
        return None

    def close(self) -> None:
        return None


def test_run_warmup_records_iterations_cv_and_duration_on_a_fake_clock() -> None:
    now = [100.0]
    engine = _ScriptedEngine([0.25, 1.0, 0.5, 0.5, 0.5, 0.5], now)
    cfg = WarmupConfig(mode="convergence", min_prompts=2, max_prompts=10, window_size=3, target_cv=0.01)
    metrics = run_warmup(engine, [[1]] * 4, [[0], [1], [2], [3]], cfg, lambda: now[0])
    assert engine.batches == [1, 1, 1, 1, 1]
    assert metrics.model_dump() == {
        "mode": "convergence",
        "iterations": 5,
        "prompts": 5,
        "duration_s": 2.75,
        "final_cv": 0.0,
        "converged": True,
        "timed_out": False,
    }


def test_run_warmup_disabled_runs_nothing() -> None:
    engine = _ScriptedEngine([], [0.0])
    metrics = run_warmup(engine, [[1]], [[0]], WarmupConfig(enabled=False), lambda: 0.0)
    assert (metrics.mode, metrics.iterations, engine.batches) == ("disabled", 0, [])
