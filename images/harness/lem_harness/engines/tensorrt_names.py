"""Argument names of the pinned TensorRT-LLM release (1.0.0) that lem maps onto or passes through.

Pure data: no tensorrt_llm import (it cannot be installed on the development machines, and CI
has no network, so no test can read the release's source). Each table names the source file and
class its names come from. Line numbers are not given: the v1.0.0 tag itself could not be
brought onto the development machine (the repository snapshot is over the fetch limit; PyPI holds
only a stub sdist). The names were read instead from stored 1.0-era versions of the files (the
ones that still import ``tensorrt_llm.lora_manager`` and ``auto_parallel``, as the v1.0.0
documentation's source pages show 1.0.0 does): ``tensorrt_llm/llmapi/llm_args.py`` (``BaseLlmArgs``,
``TrtLlmArgs``, ``CalibConfig``, ``validate_speculative_config``), ``tensorrt_llm/builder.py``
(``BuildConfig``, a dataclass), ``tensorrt_llm/llmapi/llm_utils.py`` (``ModelLoader``: which
quantisations build from a Hugging Face checkpoint), ``tensorrt_llm/models/modeling_utils.py``
(``QuantConfig``) and ``tensorrt_llm/quantization/mode.py`` (``QuantAlgo``). What is not in those
files is marked where it is used.

``tensorrt.extra_build_args`` may name any key of ``BUILD_CONFIG_FIELDS`` that lem does not set
itself (``LEM_BUILD_FIELDS``); ``tensorrt.extra_runtime_args`` any of ``RUNTIME_PASSTHROUGH``.
"""

from __future__ import annotations

# tensorrt_llm/builder.py, class BuildConfig (dataclass fields). auto_parallel_config: 1.0.0's
# builder.py imports AutoParallelConfig (its documentation's source page); later releases drop it.
BUILD_CONFIG_FIELDS: frozenset[str] = frozenset(
    {
        "max_input_len",
        "max_seq_len",
        "opt_batch_size",
        "max_batch_size",
        "max_beam_width",
        "max_num_tokens",
        "opt_num_tokens",
        "max_prompt_embedding_table_size",
        "kv_cache_type",
        "gather_context_logits",
        "gather_generation_logits",
        "strongly_typed",
        "force_num_profiles",
        "profiling_verbosity",
        "enable_debug_output",
        "max_draft_len",
        "speculative_decoding_mode",
        "use_refit",
        "input_timing_cache",
        "output_timing_cache",
        "lora_config",
        "auto_parallel_config",
        "weight_sparsity",
        "weight_streaming",
        "plugin_config",
        "use_strip_plan",
        "max_encoder_input_len",
        "dry_run",
        "visualize_network",
        "monitor_memory",
        "use_mrope",
    }
)

# BuildConfig fields lem sets from its own keys (the key to use instead), or must not pass
# through (an engine that is not built, a debug dump instead of an engine).
LEM_BUILD_FIELDS: dict[str, str] = {
    "max_batch_size": "tensorrt.max_batch_size",
    "max_input_len": "tensorrt.max_input_len",
    "max_seq_len": "tensorrt.max_seq_len or tensorrt.max_output_len",
    "max_num_tokens": "tensorrt.max_num_tokens",
    "strongly_typed": "tensorrt.strongly_typed",
    "plugin_config": "tensorrt.kv_cache_type, tensorrt.enable_chunked_context, tensorrt.multiple_profiles",
    "kv_cache_type": "tensorrt.kv_cache_type",
    "lora_config": "adapter",
    "max_draft_len": "tensorrt.num_draft_tokens",
    "speculative_decoding_mode": "tensorrt.draft_model",
    "dry_run": "nothing: a dry run builds no engine to measure",
    "visualize_network": "nothing: it dumps the network instead of building an engine",
}

# tensorrt_llm/plugin/plugin.py, class PluginConfig: the plugin fields lem sets (set as attributes)
PLUGIN_FIELDS: frozenset[str] = frozenset({"paged_kv_cache", "use_paged_context_fmha", "multiple_profiles"})

# tensorrt_llm/llmapi/llm_args.py: runtime arguments of the TensorRT-engine LLM
# (tensorrt_llm/_tensorrt_engine, TrtLlmArgs) a config may pass through. From BaseLlmArgs:
# tokenizer_mode .. request_stats_max_iterations, peft_cache_config, scheduler_config,
# num_postprocess_workers; from TrtLlmArgs: enable_tqdm, extended_runtime_perf_knob_config,
# batching_type, normalize_log_probs. Nested ones (scheduler_config, ...) are pydantic models
# there, so a mapping is accepted. Every other LLM argument is set by lem (LEM_RUNTIME_FIELDS)
# or changes what is built or measured.
RUNTIME_PASSTHROUGH: frozenset[str] = frozenset(
    {
        "tokenizer_mode",
        "trust_remote_code",
        "revision",
        "tokenizer_revision",
        "gpus_per_node",
        "fail_fast_on_attention_window_too_large",
        "iter_stats_max_iterations",
        "request_stats_max_iterations",
        "peft_cache_config",
        "scheduler_config",
        "num_postprocess_workers",
        "enable_tqdm",
        "extended_runtime_perf_knob_config",
        "batching_type",
        "normalize_log_probs",
    }
)

# LLM arguments lem sets from its own keys (the key to use instead).
LEM_RUNTIME_FIELDS: dict[str, str] = {
    "model": "model_name or tensorrt.engine_path",
    "tokenizer": "model_name",
    "dtype": "fp_precision",
    "tensor_parallel_size": "tensorrt.tp_size",
    "pipeline_parallel_size": "tensorrt.pp_size",
    "kv_cache_config": "tensorrt.gpu_memory_utilization, tensorrt.enable_kv_cache_reuse",
    "enable_chunked_prefill": "tensorrt.enable_chunked_context",
    "build_config": "the tensorrt build keys or tensorrt.extra_build_args",
    "quant_config": "tensorrt.quantization",
    "calib_config": "tensorrt.calibration",
    "speculative_config": "tensorrt.draft_model",
    "enable_lora": "adapter",
    "lora_config": "adapter",
    "backend": "backend",
    "max_batch_size": "tensorrt.max_batch_size",
    "max_input_len": "tensorrt.max_input_len",
    "max_seq_len": "tensorrt.max_seq_len or tensorrt.max_output_len",
    "max_num_tokens": "tensorrt.max_num_tokens",
}

# config value -> tensorrt_llm/quantization/mode.py QuantAlgo member name
QUANT_ALGOS: dict[str, str] = {
    "fp8": "FP8",
    "int8_sq": "W8A8_SQ_PER_CHANNEL",
    "int8_weight_only": "W8A16",
    "int4_awq": "W4A16_AWQ",
}

# Quantisations the LLM API calibrates while it builds (modeling_utils.py QuantConfig.
# _requires_modelopt_quantization: FP8, W4A16_AWQ, W8A8_SQ_PER_CHANNEL go through ModelOpt with
# the CalibConfig). W8A16 needs no calibration: llm_utils.py ModelLoader converts it in
# from_hugging_face.
CALIBRATED: frozenset[str] = frozenset({"fp8", "int8_sq", "int4_awq"})

# Quantisations the pinned LLM API cannot build, with the reason.
REFUSED_QUANTISATIONS: dict[str, str] = {
    # QuantAlgo.W4A16_GPTQ exists, but llm_utils.py ModelLoader._load_model_from_hf sends it (it
    # "requires calibration" and is not a ModelOpt algorithm) to the models' non-ModelOpt
    # quantize flow, which only does SmoothQuant / INT8 KV cache; and a GPTQ checkpoint's
    # quantization_config is refused there (_update_from_hf_quant_config: "Unsupported
    # quantization_config").
    "int4_gptq": (
        "TensorRT-LLM 1.0.0's LLM API cannot build an int4 GPTQ engine (it neither quantises to GPTQ "
        "nor reads a GPTQ checkpoint's quantization_config); build the engine with TensorRT-LLM's "
        "convert_checkpoint.py --weight_only_precision int4_gptq and trtllm-build, then give its "
        "directory as tensorrt.engine_path (without tensorrt.quantization)"
    ),
}

# tensorrt_llm/llmapi/llm_args.py, class CalibConfig: lem key -> field
CALIB_FIELDS: dict[str, str] = {
    "dataset": "calib_dataset",
    "num_samples": "calib_batches",  # with calib_batch_size 1: one sample per batch
    "max_length": "calib_max_seq_length",
}
