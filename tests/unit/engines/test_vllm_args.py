"""ExperimentConfig → vllm.LLM / SamplingParams keyword arguments (pinned: vLLM 0.32)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from lem_harness.engines.vllm_args import (
    effective_args,
    fixed_length,
    llm_kwargs,
    sampling_kwargs,
    token_prompts,
)
from lem_harness.experiment import ExperimentConfig


def config(**fields: Any) -> ExperimentConfig:
    return ExperimentConfig.model_validate({"model_name": "org/model", "backend": "vllm", **fields})


def test_defaults_leave_chunked_prefill_prefix_caching_and_block_size_to_the_engine() -> None:
    kwargs = llm_kwargs(config())
    assert kwargs == {
        "model": "org/model",
        "dtype": "float16",
        "seed": 42,
        "max_num_seqs": 256,
        "gpu_memory_utilization": 0.9,
        "tensor_parallel_size": 1,
        "pipeline_parallel_size": 1,
        "enforce_eager": False,
        "kv_cache_dtype": "auto",
    }
    assert {"enable_chunked_prefill", "enable_prefix_caching", "block_size"}.isdisjoint(kwargs)


def test_explicit_false_is_passed() -> None:
    kwargs = llm_kwargs(config(vllm={"enable_chunked_prefill": False, "enable_prefix_caching": False}))
    assert (kwargs["enable_chunked_prefill"], kwargs["enable_prefix_caching"]) == (False, False)


def test_effective_args_read_what_the_engine_resolved() -> None:
    vllm_config = SimpleNamespace(
        cache_config=SimpleNamespace(
            enable_prefix_caching=True, block_size=16, gpu_memory_utilization=0.9, cache_dtype="auto"
        ),
        scheduler_config=SimpleNamespace(
            enable_chunked_prefill=True, max_num_batched_tokens=8192, max_num_seqs=256
        ),
        model_config=SimpleNamespace(max_model_len=2048, dtype="torch.float16", enforce_eager=False),
        parallel_config=SimpleNamespace(tensor_parallel_size=1, pipeline_parallel_size=1),
    )
    assert effective_args(vllm_config) == {
        "enable_prefix_caching": True,
        "block_size": 16,
        "gpu_memory_utilization": 0.9,
        "kv_cache_dtype": "auto",
        "enable_chunked_prefill": True,
        "max_num_batched_tokens": 8192,
        "max_num_seqs": 256,
        "max_model_len": 2048,
        "dtype": "torch.float16",
        "enforce_eager": False,
        "tensor_parallel_size": 1,
        "pipeline_parallel_size": 1,
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


def test_fixed_length_ignores_eos_without_min_tokens_like_vllms_benchmark() -> None:
    cfg = config(max_output_tokens=32, min_output_tokens=32)
    kwargs = sampling_kwargs(cfg)
    assert fixed_length(cfg)
    assert (kwargs["max_tokens"], kwargs["min_tokens"], kwargs["ignore_eos"]) == (32, 0, True)


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
