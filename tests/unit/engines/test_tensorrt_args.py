"""ExperimentConfig → TensorRT-LLM 1.0.0 LLM API arguments."""

from __future__ import annotations

from typing import Any

import pytest

from lem_harness.engines.tensorrt_args import (
    build_llm_kwargs,
    build_params,
    required_compute_capability,
    runtime_llm_kwargs,
    sampling_kwargs,
    unsupported_settings,
)
from lem_harness.experiment import ExperimentConfig


def config(**fields: Any) -> ExperimentConfig:
    return ExperimentConfig.model_validate({"model_name": "org/model", "backend": "tensorrt", **fields})


def test_defaults_build_an_engine_sized_by_the_config_limits() -> None:
    cfg = config(max_input_tokens=512, max_output_tokens=128)
    assert build_llm_kwargs(cfg) == {
        "model": "org/model",
        "dtype": "float16",
        "tensor_parallel_size": 1,
        "pipeline_parallel_size": 1,
        "build_config": {
            "max_batch_size": 8,
            "max_input_len": 512,
            "max_seq_len": 640,
            "plugin_config": {"paged_kv_cache": True, "use_paged_context_fmha": False},
        },
        "kv_cache_config": {"free_gpu_memory_fraction": 0.9, "enable_block_reuse": False},
    }


def test_every_tensorrt_field_maps_onto_its_engine_argument() -> None:
    cfg = config(
        gpus=[0, 1, 2, 3],
        fp_precision="bfloat16",
        tensorrt={
            "max_batch_size": 64,
            "max_input_len": 1024,
            "max_seq_len": 2048,
            "max_num_tokens": 8192,
            "tp_size": 2,
            "pp_size": 2,
            "quantization": "int4_awq",
            "kv_cache_type": "paged",
            "enable_chunked_context": True,
            "enable_kv_cache_reuse": True,
            "gpu_memory_utilization": 0.75,
        },
    )
    assert build_llm_kwargs(cfg) == {
        "model": "org/model",
        "dtype": "bfloat16",
        "tensor_parallel_size": 2,
        "pipeline_parallel_size": 2,
        "build_config": {
            "max_batch_size": 64,
            "max_input_len": 1024,
            "max_seq_len": 2048,
            "max_num_tokens": 8192,
            "plugin_config": {"paged_kv_cache": True, "use_paged_context_fmha": True},
        },
        "kv_cache_config": {"free_gpu_memory_fraction": 0.75, "enable_block_reuse": True},
        "quant_config": {"quant_algo": "W4A16_AWQ"},
    }
    assert runtime_llm_kwargs(cfg, "/cache/abc") == {
        "model": "/cache/abc",
        "tokenizer": "org/model",
        "tensor_parallel_size": 2,
        "pipeline_parallel_size": 2,
        "kv_cache_config": {"free_gpu_memory_fraction": 0.75, "enable_block_reuse": True},
        "enable_chunked_prefill": True,
    }


@pytest.mark.parametrize(("quantization", "algo"), [("fp8", "FP8"), ("int8_sq", "W8A8_SQ_PER_CHANNEL")])
def test_quantisation_algorithms(quantization: str, algo: str) -> None:
    kwargs = build_llm_kwargs(config(tensorrt={"quantization": quantization}))
    assert kwargs["quant_config"] == {"quant_algo": algo}


def test_build_params_change_with_anything_that_shapes_the_engine() -> None:
    base = build_params(config())
    assert build_params(config()) == base
    assert build_params(config(tensorrt={"max_batch_size": 16})) != base
    assert build_params(config(fp_precision="bfloat16")) != base
    assert build_params(config(tensorrt={"quantization": "fp8"})) != base
    # runtime-only settings do not force a rebuild
    assert build_params(config(tensorrt={"gpu_memory_utilization": 0.5, "force_rebuild": True})) == base


def test_greedy_sampling_is_top_k_one() -> None:
    assert sampling_kwargs(config(max_output_tokens=50)) == {
        "max_tokens": 50,
        "ignore_eos": False,
        "repetition_penalty": 1.0,
        "seed": 42,
        "detokenize": False,
        "return_perf_metrics": True,
        "top_k": 1,
    }


def test_fixed_length_and_sampling_settings() -> None:
    kwargs = sampling_kwargs(
        config(
            max_output_tokens=20,
            min_output_tokens=20,
            random_seed=3,
            decoder={"preset": "factual", "top_k": 7},
        )
    )
    assert kwargs == {
        "max_tokens": 20,
        "min_tokens": 20,
        "ignore_eos": True,
        "repetition_penalty": 1.0,
        "seed": 3,
        "detokenize": False,
        "return_perf_metrics": True,
        "temperature": 0.3,
        "top_p": 0.9,
        "top_k": 7,
    }


def test_supported_defaults_have_no_problems() -> None:
    assert unsupported_settings(config()) == []


def test_unsupported_settings_say_what_to_change() -> None:
    cfg = config(
        max_input_tokens=100,
        tensorrt={
            "builder_opt_level": 5,
            "kv_cache_type": "continuous",
            "enable_chunked_context": True,
            "enable_kv_cache_reuse": True,
            "max_seq_len": 100,
        },
    )
    problems = unsupported_settings(cfg)
    assert len(problems) == 4
    assert "builder_opt_level 5" in problems[0] and "set it to 3" in problems[0]
    assert "set tensorrt.kv_cache_type to paged" in problems[1]
    assert "enable_kv_cache_reuse needs tensorrt.kv_cache_type: paged" in problems[2]
    assert "max_seq_len (100) must exceed max_input_len (100)" in problems[3]


def test_required_compute_capability() -> None:
    assert required_compute_capability(config()) == []
    assert required_compute_capability(config(fp_precision="bfloat16", tensorrt={"quantization": "fp8"})) == [
        ("tensorrt.quantization fp8", (8, 9)),
        ("fp_precision bfloat16", (8, 0)),
    ]


def test_other_backend_is_refused() -> None:
    with pytest.raises(ValueError, match="not 'tensorrt'"):
        build_params(ExperimentConfig(model_name="m", backend="vllm"))
