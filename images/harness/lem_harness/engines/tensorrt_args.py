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
any other value is refused (``unsupported_settings``) rather than silently ignored. Nor has it
a ``max_output_len``: ``tensorrt.max_output_len`` sets ``max_seq_len = max_input_len +
max_output_len``. The argument names lem uses or lets through are in ``tensorrt_names``.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Mapping
from typing import Any

from lem_harness.backend_sections import TensorRTCalibration, TensorRTConfig
from lem_harness.engines.tensorrt_names import (
    BUILD_CONFIG_FIELDS,
    CALIB_FIELDS,
    CALIBRATED,
    LEM_BUILD_FIELDS,
    LEM_RUNTIME_FIELDS,
    QUANT_ALGOS,
    REFUSED_QUANTISATIONS,
    RUNTIME_PASSTHROUGH,
)
from lem_harness.experiment import ExperimentConfig
from lem_harness.schema_base import is_local_path

TRT_LLM_VERSION = "1.0.0"
TENSORRT_DEFAULT_OPT_LEVEL = 3
LORA_NAME = "adapter"  # LoRARequest(lora_name, lora_int_id, lora_path) of the config's one adapter
LORA_ID = 1

# Settings that only shape an engine lem builds: a prebuilt tensorrt.engine_path would ignore them.
BUILD_ONLY_KEYS: tuple[str, ...] = (
    "max_batch_size",
    "max_input_len",
    "max_output_len",
    "max_seq_len",
    "max_num_tokens",
    "builder_opt_level",
    "strongly_typed",
    "multiple_profiles",
    "quantization",
    "calibration",
    "kv_cache_type",
    "force_rebuild",
    "engine_cache_dir",
    "extra_build_args",
)

# The oldest GPU architecture (compute capability) that runs each setting.
MIN_COMPUTE_CAPABILITY: dict[str, tuple[int, int]] = {
    "fp8": (8, 9),  # Ada / Hopper and newer
    "int8_sq": (8, 0),
    "int4_awq": (8, 0),
    "int8_weight_only": (8, 0),
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
    problems += _length_problems(config, section)
    problems += _engine_path_problems(section)
    problems += _quantisation_problems(section)
    problems += _speculative_problems(section)
    problems += _passthrough_problems(section)
    if config.adapter is not None and not is_local_path(config.adapter):
        problems.append(
            f"adapter {config.adapter!r}: TensorRT-LLM {TRT_LLM_VERSION}'s LoRARequest reads a local "
            "directory and downloads nothing; download the adapter and give its path (./, ../, / or ~)"
        )
    return problems


def _length_problems(config: ExperimentConfig, section: TensorRTConfig) -> list[str]:
    if section.max_output_len is None:
        return []
    if section.max_seq_len is not None:
        return [
            "tensorrt.max_output_len and tensorrt.max_seq_len both set the engine's sequence limit "
            "(max_seq_len = max_input_len + max_output_len): keep one"
        ]
    if section.max_output_len < config.max_output_tokens:
        return [
            f"tensorrt.max_output_len ({section.max_output_len}) is below max_output_tokens "
            f"({config.max_output_tokens}): the engine would cut every output short; "
            "raise it or leave it unset"
        ]
    return []


def _engine_path_problems(section: TensorRTConfig) -> list[str]:
    """A prebuilt engine is loaded as built: every setting that only shapes a build is refused."""
    if section.engine_path is None:
        return []
    ignored = [key for key in BUILD_ONLY_KEYS if key in section.model_fields_set]
    if not ignored:
        return []
    keys = ", ".join(f"tensorrt.{key}" for key in ignored)
    return [
        f"tensorrt.engine_path loads a prebuilt engine, which would ignore {keys} (they shape an engine "
        "lem builds): remove them, or remove engine_path to build from model_name"
    ]


def _quantisation_problems(section: TensorRTConfig) -> list[str]:
    refused = REFUSED_QUANTISATIONS.get(section.quantization)
    if refused is not None:
        return [f"tensorrt.quantization {section.quantization}: {refused}"]
    if section.calibration is None or section.quantization in CALIBRATED:
        return []
    calibrated = ", ".join(sorted(CALIBRATED))
    return [
        f"tensorrt.calibration is only used by the quantisations TensorRT-LLM calibrates ({calibrated}); "
        f"with tensorrt.quantization {section.quantization} it would be ignored: remove it"
    ]


def _speculative_problems(section: TensorRTConfig) -> list[str]:
    if section.draft_model is None:
        return []
    return [
        f"tensorrt.draft_model: TensorRT-LLM {TRT_LLM_VERSION}'s LLM API runs a draft model "
        "(DraftTargetDecodingConfig) only on its PyTorch backend, not on the TensorRT engines lem "
        "builds; remove tensorrt.draft_model (and num_draft_tokens), or measure draft-model "
        "speculative decoding with backend: vllm"
    ]


def _passthrough_problems(section: TensorRTConfig) -> list[str]:
    problems = [
        *_unknown_keys("extra_build_args", section.extra_build_args, BUILD_CONFIG_FIELDS, LEM_BUILD_FIELDS),
        *_unknown_keys(
            "extra_runtime_args", section.extra_runtime_args, RUNTIME_PASSTHROUGH, LEM_RUNTIME_FIELDS
        ),
    ]
    for key, value in section.extra_build_args.items():
        if isinstance(value, (dict, list)):
            problems.append(
                f"tensorrt.extra_build_args.{key}: only plain values (number, string, true/false, null) "
                "pass through to BuildConfig"
            )
    return problems


def _unknown_keys(
    what: str, given: Mapping[str, Any], allowed: Collection[str], owned: Mapping[str, str]
) -> list[str]:
    """Each key of ``given`` the pinned release lacks (with a "did you mean") or lem sets itself."""
    problems: list[str] = []
    for key in given:
        if key in owned:
            problems.append(f"tensorrt.{what}.{key} is set by lem: use {owned[key]}")
        elif key not in allowed:
            close = difflib.get_close_matches(key, sorted(allowed), n=1)
            hint = (
                f"did you mean '{close[0]}'?" if close else f"the accepted keys: {', '.join(sorted(allowed))}"
            )
            problems.append(
                f"tensorrt.{what}.{key} is not an argument of TensorRT-LLM {TRT_LLM_VERSION}: {hint}"
            )
    return problems


def max_seq_len(config: ExperimentConfig) -> int:
    """Longest prompt + output sequence the engine accepts (default: the config's own limits)."""
    section = tensorrt_section(config)
    if section.max_seq_len is not None:
        return section.max_seq_len
    if section.max_output_len is not None:
        return (section.max_input_len or config.max_input_tokens) + section.max_output_len
    return config.max_input_tokens + config.max_output_tokens


def build_config_kwargs(config: ExperimentConfig) -> dict[str, Any]:
    """``BuildConfig`` fields (engine-time limits and plugins)."""
    section = tensorrt_section(config)
    kwargs: dict[str, Any] = {
        "max_batch_size": section.max_batch_size,
        "max_input_len": section.max_input_len or config.max_input_tokens,
        "max_seq_len": max_seq_len(config),
        "strongly_typed": section.strongly_typed,
        "plugin_config": {
            "paged_kv_cache": section.kv_cache_type == "paged",
            "use_paged_context_fmha": section.enable_chunked_context,
            "multiple_profiles": section.multiple_profiles,
        },
    }
    if section.max_num_tokens is not None:
        kwargs["max_num_tokens"] = section.max_num_tokens
    return {**kwargs, **section.extra_build_args}


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
    if section.quantization not in QUANT_ALGOS:  # none, or refused (unsupported_settings)
        return None
    return {"quant_algo": QUANT_ALGOS[section.quantization]}


def calib_kwargs(config: ExperimentConfig) -> dict[str, Any] | None:
    """``CalibConfig`` fields for a calibrated quantisation (None otherwise): one sample per
    calibration batch, seeded with the config's random_seed."""
    section = tensorrt_section(config)
    if section.quantization not in CALIBRATED:
        return None
    calibration = section.calibration or TensorRTCalibration()
    kwargs: dict[str, Any] = {
        CALIB_FIELDS["num_samples"]: calibration.num_samples,
        "calib_batch_size": 1,
        CALIB_FIELDS["max_length"]: calibration.max_length,
        "random_seed": config.random_seed,
    }
    if calibration.dataset is not None:
        kwargs[CALIB_FIELDS["dataset"]] = calibration.dataset
    return kwargs


def lora_kwargs(config: ExperimentConfig, lora_rank: int | None) -> dict[str, Any] | None:
    """``LoraConfig`` fields (tensorrt_llm.lora_manager) of the config's adapter, or None without one.

    The TensorRT flow needs them twice: in ``BuildConfig.lora_config`` (the engine's LoRA modules are
    read from the adapter directory) and as the LLM's ``lora_config`` with ``enable_lora``.
    """
    if config.adapter is None:
        return None
    if lora_rank is None:
        raise ValueError("a LoRA adapter needs its rank (adapter_rank of its adapter_config.json)")
    return {"lora_dir": [config.adapter], "max_lora_rank": lora_rank}


def lora_request_args(config: ExperimentConfig) -> tuple[str, int, str] | None:
    """``LoRARequest(lora_name, lora_int_id, lora_path)`` for every request, or None without an adapter."""
    return None if config.adapter is None else (LORA_NAME, LORA_ID, config.adapter)


def build_params(config: ExperimentConfig, lora_rank: int | None = None) -> dict[str, Any]:
    """Everything that shapes the built engine (the cache key's build part); JSON-serialisable."""
    section = tensorrt_section(config)
    build_config = build_config_kwargs(config)
    lora = lora_kwargs(config, lora_rank)
    if lora is not None:
        build_config["lora_config"] = lora
    return {
        "dtype": config.fp_precision,
        "tensor_parallel_size": section.tp_size,
        "pipeline_parallel_size": section.pp_size,
        "build_config": build_config,
        "quant_config": quant_kwargs(config),
        "calib_config": calib_kwargs(config),
        "lora_config": lora,
        "builder_opt_level": section.builder_opt_level,
    }


def build_llm_kwargs(config: ExperimentConfig, lora_rank: int | None = None) -> dict[str, Any]:
    """``LLM(...)`` arguments that build the engine from the Hugging Face checkpoint."""
    params = build_params(config, lora_rank)
    kwargs: dict[str, Any] = {
        "model": config.model_name,
        "dtype": params["dtype"],
        "tensor_parallel_size": params["tensor_parallel_size"],
        "pipeline_parallel_size": params["pipeline_parallel_size"],
        "build_config": params["build_config"],
        "kv_cache_config": kv_cache_kwargs(config),
    }
    for key in ("quant_config", "calib_config", "lora_config"):
        if params[key] is not None:
            kwargs[key] = params[key]
    if params["lora_config"] is not None:
        kwargs["enable_lora"] = True  # sets the LoRA plugin for the TensorRT build
    return kwargs


def runtime_llm_kwargs(
    config: ExperimentConfig, engine_dir: str, lora_rank: int | None = None
) -> dict[str, Any]:
    """``LLM(...)`` arguments that load a built engine directory for inference, with
    ``tensorrt.extra_runtime_args`` (checked by ``unsupported_settings``) laid over them."""
    section = tensorrt_section(config)
    kwargs: dict[str, Any] = {
        "model": engine_dir,
        "tokenizer": config.model_name,
        "tensor_parallel_size": section.tp_size,
        "pipeline_parallel_size": section.pp_size,
        "kv_cache_config": kv_cache_kwargs(config),
        "enable_chunked_prefill": section.enable_chunked_context,
    }
    lora = lora_kwargs(config, lora_rank)
    if lora is not None:
        kwargs["enable_lora"] = True
        kwargs["lora_config"] = lora
    return {**kwargs, **section.extra_runtime_args}


def sampling_kwargs(config: ExperimentConfig, eos_ids: Collection[int] = ()) -> dict[str, Any]:
    """``tensorrt_llm.SamplingParams`` fields.

    Greedy is ``top_k=1``. Fixed-length mode (``min_output_tokens == max_output_tokens``)
    sets ``min_tokens = max_tokens`` and ``ignore_eos``. Otherwise every EOS id of the
    model's generation config goes into ``stop_token_ids``: the LLM API stops on the
    tokenizer's single ``eos_token_id`` by default, while vLLM and Transformers stop on
    every id the generation config lists (Llama 3 lists three). Per-request timing
    metrics are requested; output is not detokenised.
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
    if eos_ids and not fixed:
        kwargs["stop_token_ids"] = sorted(eos_ids)
    if decoder["do_sample"]:
        kwargs["temperature"] = float(decoder["temperature"])
        kwargs["top_p"] = float(decoder["top_p"])
        kwargs["top_k"] = int(decoder["top_k"])  # 0 = no top-k limit
    else:
        kwargs["top_k"] = 1
    return kwargs


def prefill_kwargs(sampling: dict[str, Any]) -> dict[str, Any]:
    """``sampling`` changed to exactly one output token (the prefill-only pass of phase_split)."""
    out = {key: value for key, value in sampling.items() if key not in ("min_tokens", "stop_token_ids")}
    return {**out, "max_tokens": 1, "ignore_eos": True}


def required_compute_capability(config: ExperimentConfig) -> list[tuple[str, tuple[int, int]]]:
    """``(what, minimum compute capability)`` for each GPU-dependent setting of this config."""
    section = tensorrt_section(config)
    needs: list[tuple[str, tuple[int, int]]] = []
    if section.quantization in MIN_COMPUTE_CAPABILITY:
        needed = MIN_COMPUTE_CAPABILITY[section.quantization]
        needs.append((f"tensorrt.quantization {section.quantization}", needed))
    if config.fp_precision == "bfloat16":
        needs.append(("fp_precision bfloat16", MIN_COMPUTE_CAPABILITY["bfloat16"]))
    return needs
