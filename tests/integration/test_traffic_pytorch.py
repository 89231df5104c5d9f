"""Traffic simulation for real: the harness as a subprocess on the tiny random model (CPU, simulated GPU).

The schedule is exact (it is computed, not measured); what the clock decides is checked by the
relations that must hold whatever the machine's speed: the window holds the whole schedule, a
static batch's first request waits at least one arrival gap, the rates and per-request energy
follow from the window.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lem_harness.contract import RunResult
from lem_harness.experiment import TrafficSimulationConfig
from lem_harness.traffic import arrival_offsets
from tests.integration.test_harness_pytorch import _run_harness

pytestmark = pytest.mark.slow

PROMPTS = 8


def _traffic_run(model: Path, tmp_path: Path, traffic: dict[str, Any], pytorch: dict[str, Any]) -> RunResult:
    result, _ = _run_harness(
        tmp_path,
        model_name=str(model),
        max_input_tokens=32,
        max_output_tokens=6,
        min_output_tokens=6,
        prompts={"type": "synthetic", "sample_size": PROMPTS, "input_len": 16},
        baseline={"method": "fresh", "duration_seconds": 1.0, "ready_duration_seconds": 1.0},
        warmup={"mode": "fixed", "min_prompts": 0, "max_prompts": 2},
        traffic_simulation={"enabled": True, **traffic},
        pytorch=pytorch,
    )
    assert result.status == "ok", result.error
    return result


def test_constant_arrivals_in_static_batches(tiny_model_dir: Path, tmp_path: Path) -> None:
    result = _traffic_run(
        tiny_model_dir, tmp_path, {"mode": "constant", "target_qps": 4.0}, {"batch_size": 2}
    )
    t, m, e = result.traffic, result.metrics, result.energy
    assert t is not None and m is not None and e is not None
    assert (t.mode, t.requests, t.target_qps, t.offered_qps, t.schedule_span_s) == (
        "constant",
        PROMPTS,
        4.0,
        4.0,
        1.75,
    )
    assert (m.num_prompts, m.num_batches, m.output_tokens) == (PROMPTS, 4, PROMPTS * 6)
    assert e.window_duration_s is not None and e.window_duration_s > 1.75  # the last arrival is inside
    assert t.achieved_qps == pytest.approx(PROMPTS / e.window_duration_s, rel=1e-12)
    # the first of each pair waits for the second (0.25 s later) at least
    assert t.queue_delay_max_s >= 0.25 - 1e-6
    assert t.queue_delay_p50_s >= 0.0
    assert e.gross_energy_j is not None
    assert t.energy_per_request_j == pytest.approx(e.gross_energy_j / PROMPTS, rel=1e-12)


def test_poisson_arrivals_in_dynamic_batches_follow_the_seed(tiny_model_dir: Path, tmp_path: Path) -> None:
    traffic = {"mode": "poisson", "target_qps": 8.0, "seed": 5}
    result = _traffic_run(
        tiny_model_dir, tmp_path, traffic, {"batch_size": 4, "batching_strategy": "dynamic"}
    )
    t, m, e = result.traffic, result.metrics, result.energy
    assert t is not None and m is not None and e is not None
    offsets = arrival_offsets(PROMPTS, TrafficSimulationConfig(enabled=True, **traffic), 5)
    assert (t.seed, t.schedule_span_s) == (5, offsets[-1])
    assert t.offered_qps == pytest.approx((PROMPTS - 1) / offsets[-1], rel=1e-12)
    assert m.output_tokens == PROMPTS * 6
    assert PROMPTS / 4 <= m.num_batches <= PROMPTS  # what had arrived, 4 at most per batch
    assert e.window_duration_s is not None and e.window_duration_s > offsets[-1]
    assert t.achieved_qps == pytest.approx(PROMPTS / e.window_duration_s, rel=1e-12)
