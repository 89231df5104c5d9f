"""ExperimentConfig → vllm.LLM / SamplingParams keyword arguments (pinned: vLLM 0.32)."""

from __future__ import annotations

from typing import Any

import pytest

from lem_harness.engines.vllm_args import fixed_length, llm_kwargs, sampling_kwargs, token_prompts
from lem_harness.experiment import ExperimentConfig


def config(**fields: Any) -> ExperimentConfig:
    return ExperimentConfig.model_validate({"model_name": "org/model", "backend": "vllm", **fields})


def test_defaults_pass_every_section_field_explicitly() -> None:
    assert llm_kwargs(config()) == {
        "model": "org/model",
        "dtype": "float16",
        "seed": 42,
        "max_num_seqs": 256,
        "gpu_memory_utilization": 0.9,
        "tensor_parallel_size": 1,
        "pipeline_parallel_size": 1,
        "enable_prefix_caching": False,
        "enable_chunked_prefill": False,
        "enforce_eager": False,
        "kv_cache_dtype": "auto",
        "block_size": 16,
    }


def test_every_vllm_field_maps_onto_its_engine_argument() -> None:
    cfg = config(
        gpus=[0, 1, 2, 3],
        fp_precision="bfloat16",
        random_seed=7,
        max_input_tokens=100,
        max_output_tokens=28,
        vllm={
            "max_num_seqs": 32,
            "max_num_batched_tokens": 4096,
            "max_model_len": 128,
            "gpu_memory_utilization": 0.5,
            "tensor_parallel_size": 2,
            "pipeline_parallel_size": 2,
            "enable_prefix_caching": True,
            "enable_chunked_prefill": True,
            "enforce_eager": True,
            "kv_cache_dtype": "fp8_e5m2",
            "block_size": 32,
            "quantization": "awq",
        },
    )
    assert llm_kwargs(cfg) == {
        "model": "org/model",
        "dtype": "bfloat16",
        "seed": 7,
        "max_num_seqs": 32,
        "max_num_batched_tokens": 4096,
        "max_model_len": 128,
        "gpu_memory_utilization": 0.5,
        "tensor_parallel_size": 2,
        "pipeline_parallel_size": 2,
        "enable_prefix_caching": True,
        "enable_chunked_prefill": True,
        "enforce_eager": True,
        "kv_cache_dtype": "fp8_e5m2",
        "block_size": 32,
        "quantization": "awq",
    }


def test_other_backend_is_refused() -> None:
    with pytest.raises(ValueError, match="not 'vllm'"):
        llm_kwargs(ExperimentConfig(model_name="m", backend="pytorch"))


def test_greedy_natural_length() -> None:
    cfg = config(max_output_tokens=64, min_output_tokens=4)
    assert not fixed_length(cfg)
    assert sampling_kwargs(cfg) == {
        "n": 1,
        "max_tokens": 64,
        "min_tokens": 4,
        "ignore_eos": False,
        "repetition_penalty": 1.0,
        "detokenize": False,
        "temperature": 0.0,
        "top_p": 1.0,
        "top_k": 0,
    }


def test_fixed_length_sets_min_tokens_to_max_and_ignores_eos() -> None:
    cfg = config(max_output_tokens=32, min_output_tokens=32)
    kwargs = sampling_kwargs(cfg)
    assert fixed_length(cfg)
    assert (kwargs["max_tokens"], kwargs["min_tokens"], kwargs["ignore_eos"]) == (32, 32, True)


@pytest.mark.parametrize(
    ("decoder", "expected"),
    [
        ({"preset": "standard"}, (1.0, 0.95, 50, 1.0)),
        ({"preset": "creative"}, (1.2, 0.95, 0, 1.0)),
        ({"preset": "factual", "repetition_penalty": 1.3}, (0.3, 0.9, 40, 1.3)),
        ({"preset": "standard", "temperature": 0.7, "top_k": 5, "top_p": 0.5}, (0.7, 0.5, 5, 1.0)),
        ({"preset": "deterministic", "repetition_penalty": 1.1}, (0.0, 1.0, 0, 1.1)),
        ({"preset": "standard", "do_sample": False}, (0.0, 1.0, 0, 1.0)),
    ],
)
def test_decoder_presets_and_overrides(
    decoder: dict[str, Any], expected: tuple[float, float, int, float]
) -> None:
    kwargs = sampling_kwargs(config(decoder=decoder))
    assert (kwargs["temperature"], kwargs["top_p"], kwargs["top_k"], kwargs["repetition_penalty"]) == expected


def test_token_prompts_are_tokens_prompt_dicts() -> None:
    assert token_prompts([(1, 2, 3), [4]]) == [{"prompt_token_ids": [1, 2, 3]}, {"prompt_token_ids": [4]}]
