"""ExperimentConfig → TensorRT-LLM LLM API arguments (pure; no tensorrt_llm import).

Pinned against TensorRT-LLM 1.0.0 (``nvcr.io/nvidia/tensorrt-llm/release:1.0.0``) and its
TensorRT-engine LLM API, ``tensorrt_llm._tensorrt_engine.LLM`` (in 1.0 the top-level
``tensorrt_llm.LLM`` is the PyTorch flow, which builds no engine). The engine is built
once from the Hugging Face checkpoint (``build_llm_kwargs``), saved to the engine cache,
and every run loads the saved engine (``runtime_llm_kwargs``). Nested settings are plain
dicts here; ``engines/tensorrt.py`` turns them into ``BuildConfig``, ``KvCacheConfig`` and
``QuantConfig`` objects.

TensorRT-LLM 1.0.0's ``BuildConfig`` has no field for TensorRT's builder optimisation
level: engines build at TensorRT's default, 3. ``tensorrt.builder_opt_level`` must be 3;
any other value is refused (``unsupported_settings``) rather than silently ignored.
"""

from __future__ import annotations

from typing import Any

from lem_harness.experiment import ExperimentConfig, TensorRTConfig

TRT_LLM_VERSION = "1.0.0"
TENSORRT_DEFAULT_OPT_LEVEL = 3

# config value → tensorrt_llm.quantization.QuantAlgo member name
QUANT_ALGOS: dict[str, str] = {
    "fp8": "FP8",
    "int8_sq": "W8A8_SQ_PER_CHANNEL",
    "int4_awq": "W4A16_AWQ",
}

# The oldest GPU architecture (compute capability) that runs each setting.
MIN_COMPUTE_CAPABILITY: dict[str, tuple[int, int]] = {
    "fp8": (8, 9),  # Ada / Hopper and newer
    "int8_sq": (8, 0),
    "int4_awq": (8, 0),
    "bfloat16": (8, 0),
}


def tensorrt_section(config: ExperimentConfig) -> TensorRTConfig:
    section = config.backend_section()
    if not isinstance(section, TensorRTConfig):
        raise ValueError(f"backend is '{config.backend}', not 'tensorrt'")
    return section


def unsupported_settings(config: ExperimentConfig) -> list[str]:
    """Settings the pinned release cannot honour, each with what to change."""
    section = tensorrt_section(config)
    problems: list[str] = []
    if section.builder_opt_level != TENSORRT_DEFAULT_OPT_LEVEL:
        problems.append(
            f"tensorrt.builder_opt_level {section.builder_opt_level}: TensorRT-LLM {TRT_LLM_VERSION}'s "
            f"LLM API builds at TensorRT's default level {TENSORRT_DEFAULT_OPT_LEVEL}, no other; "
            f"set it to {TENSORRT_DEFAULT_OPT_LEVEL}"
        )
    paged = section.kv_cache_type == "paged"
    if section.enable_chunked_context and not paged:
        problems.append(
            "tensorrt.enable_chunked_context needs the paged KV cache (paged context FMHA): "
            "set tensorrt.kv_cache_type to paged"
        )
    if section.enable_kv_cache_reuse and not paged:
        problems.append("tensorrt.enable_kv_cache_reuse needs tensorrt.kv_cache_type: paged")
    max_input = section.max_input_len or config.max_input_tokens
    max_seq = max_seq_len(config)
    if max_input >= max_seq:
        problems.append(
            f"tensorrt.max_seq_len ({max_seq}) must exceed max_input_len ({max_input}) "
            "to leave room for output tokens"
        )
    return problems


def max_seq_len(config: ExperimentConfig) -> int:
    """Longest prompt + output sequence the engine accepts (default: the config's own limits)."""
    section = tensorrt_section(config)
    return section.max_seq_len or config.max_input_tokens + config.max_output_tokens


def build_config_kwargs(config: ExperimentConfig) -> dict[str, Any]:
    """``BuildConfig`` fields (engine-time limits and plugins)."""
    section = tensorrt_section(config)
    kwargs: dict[str, Any] = {
        "max_batch_size": section.max_batch_size,
        "max_input_len": section.max_input_len or config.max_input_tokens,
        "max_seq_len": max_seq_len(config),
        "plugin_config": {
            "paged_kv_cache": section.kv_cache_type == "paged",
            "use_paged_context_fmha": section.enable_chunked_context,
        },
    }
    if section.max_num_tokens is not None:
        kwargs["max_num_tokens"] = section.max_num_tokens
    return kwargs


def kv_cache_kwargs(config: ExperimentConfig) -> dict[str, Any]:
    """``KvCacheConfig`` fields (runtime)."""
    section = tensorrt_section(config)
    return {
        "free_gpu_memory_fraction": section.gpu_memory_utilization,
        "enable_block_reuse": section.enable_kv_cache_reuse,
    }


def quant_kwargs(config: ExperimentConfig) -> dict[str, Any] | None:
    """``QuantConfig`` fields, or None for an unquantised engine."""
    section = tensorrt_section(config)
    if section.quantization == "none":
        return None
    return {"quant_algo": QUANT_ALGOS[section.quantization]}


def build_params(config: ExperimentConfig) -> dict[str, Any]:
    """Everything that shapes the built engine (the cache key's build part); JSON-serialisable."""
    section = tensorrt_section(config)
    return {
        "dtype": config.fp_precision,
        "tensor_parallel_size": section.tp_size,
        "pipeline_parallel_size": section.pp_size,
        "build_config": build_config_kwargs(config),
        "quant_config": quant_kwargs(config),
        "builder_opt_level": section.builder_opt_level,
    }


def build_llm_kwargs(config: ExperimentConfig) -> dict[str, Any]:
    """``LLM(...)`` arguments that build the engine from the Hugging Face checkpoint."""
    params = build_params(config)
    kwargs: dict[str, Any] = {
        "model": config.model_name,
        "dtype": params["dtype"],
        "tensor_parallel_size": params["tensor_parallel_size"],
        "pipeline_parallel_size": params["pipeline_parallel_size"],
        "build_config": params["build_config"],
        "kv_cache_config": kv_cache_kwargs(config),
    }
    if params["quant_config"] is not None:
        kwargs["quant_config"] = params["quant_config"]
    return kwargs


def runtime_llm_kwargs(config: ExperimentConfig, engine_dir: str) -> dict[str, Any]:
    """``LLM(...)`` arguments that load a built engine directory for inference."""
    section = tensorrt_section(config)
    return {
        "model": engine_dir,
        "tokenizer": config.model_name,
        "tensor_parallel_size": section.tp_size,
        "pipeline_parallel_size": section.pp_size,
        "kv_cache_config": kv_cache_kwargs(config),
        "enable_chunked_prefill": section.enable_chunked_context,
    }


def sampling_kwargs(config: ExperimentConfig) -> dict[str, Any]:
    """``tensorrt_llm.SamplingParams`` fields.

    Greedy is ``top_k=1``. Fixed-length mode (``min_output_tokens == max_output_tokens``)
    sets ``min_tokens = max_tokens`` and ``ignore_eos``. Per-request timing metrics are
    requested; output is not detokenised.
    """
    decoder = config.decoder.resolved()
    fixed = config.min_output_tokens == config.max_output_tokens
    kwargs: dict[str, Any] = {
        "max_tokens": config.max_output_tokens,
        "ignore_eos": fixed,
        "repetition_penalty": float(decoder["repetition_penalty"]),
        "seed": config.random_seed,
        "detokenize": False,
        "return_perf_metrics": True,
    }
    if config.min_output_tokens > 0:
        kwargs["min_tokens"] = config.min_output_tokens
    if decoder["do_sample"]:
        kwargs["temperature"] = float(decoder["temperature"])
        kwargs["top_p"] = float(decoder["top_p"])
        kwargs["top_k"] = int(decoder["top_k"])  # 0 = no top-k limit
    else:
        kwargs["top_k"] = 1
    return kwargs


def required_compute_capability(config: ExperimentConfig) -> list[tuple[str, tuple[int, int]]]:
    """``(what, minimum compute capability)`` for each GPU-dependent setting of this config."""
    section = tensorrt_section(config)
    needs: list[tuple[str, tuple[int, int]]] = []
    if section.quantization != "none":
        needed = MIN_COMPUTE_CAPABILITY[section.quantization]
        needs.append((f"tensorrt.quantization {section.quantization}", needed))
    if config.fp_precision == "bfloat16":
        needs.append(("fp_precision bfloat16", MIN_COMPUTE_CAPABILITY["bfloat16"]))
    return needs
