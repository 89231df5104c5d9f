"""The backend sections of an experiment: ``pytorch``, ``vllm`` and ``tensorrt``, each closed
and checked against the pinned library's own argument names."""

from __future__ import annotations

import difflib
import typing
from typing import Any, Literal

from pydantic import Field, StrictFloat, StrictInt, field_validator, model_validator

from lem_harness.schema_base import StrictModel
from lem_harness.transformers_names import CACHE_IMPLEMENTATIONS, TRANSFORMERS_VERSION, extra_key_problem
from lem_harness.vllm_pinned import VLLM_ENGINE_ARGS, VLLM_MANAGED_ARGS, VLLM_QUANTIZATION_GONE

# --------------------------------------------------------------------------- backend sections


CompileMode = Literal["default", "reduce-overhead", "max-autotune"]
CompileBackend = Literal["inductor", "cudagraphs", "eager", "aot_eager", "onnxrt"]
TorchCompile = Literal[False, True] | CompileMode | CompileBackend
COMPILE_MODES: tuple[str, ...] = typing.get_args(CompileMode)


class BeamSearchConfig(StrictModel):
    """Beam search: ``num_beams`` hypotheses per prompt, the best one returned (and counted)."""

    enabled: bool = True
    num_beams: StrictInt = Field(4, ge=2, le=16)
    length_penalty: StrictFloat = Field(1.0, ge=-10.0, le=10.0)
    early_stopping: bool | Literal["never"] = False
    no_repeat_ngram_size: StrictInt | None = Field(None, ge=1, le=1_024)


class AssistedGenerationConfig(StrictModel):
    """Assisted (speculative) generation: a small draft ``model`` proposes ``num_tokens`` tokens
    per step, the main model verifies them; only accepted tokens are output (and counted)."""

    model: str = Field(min_length=1, max_length=1_000)
    num_tokens: StrictInt = Field(5, ge=1, le=10)


class PyTorchConfig(StrictModel):
    batch_size: StrictInt = Field(1, ge=1, le=4_096)
    batching_strategy: Literal["static", "dynamic", "sorted_static", "sorted_dynamic"] = "static"
    max_tokens_per_batch: StrictInt | None = Field(None, ge=1, le=10_000_000)
    # Data parallelism: this many processes, each with its own model copy on its group of gpus.
    num_processes: StrictInt = Field(1, ge=1, le=64)
    attn_implementation: Literal["sdpa", "eager", "flash_attention_2"] = "sdpa"
    # false | true | a mode (default, reduce-overhead, max-autotune) | a backend name (inductor, ...)
    torch_compile: TorchCompile = False
    torch_compile_backend: CompileBackend | None = None
    use_cache: bool = True
    low_cpu_mem_usage: bool = True
    # bitsandbytes quantisation at load (CUDA only); the bnb_4bit_* options apply to load_in_4bit.
    load_in_4bit: bool = False
    load_in_8bit: bool = False
    bnb_4bit_compute_dtype: Literal["float16", "bfloat16", "float32"] | None = None
    bnb_4bit_quant_type: Literal["nf4", "fp4"] | None = None
    bnb_4bit_use_double_quant: bool | None = None
    cache_implementation: str | None = Field(None, min_length=1, max_length=100)
    min_p: StrictFloat | None = Field(None, gt=0.0, le=1.0)
    no_repeat_ngram_size: StrictInt | None = Field(None, ge=1, le=1_024)
    beam_search: BeamSearchConfig | None = None
    assisted_generation: AssistedGenerationConfig | None = None
    # More GenerationConfig fields for generate(), each checked against the pinned Transformers.
    extra: dict[str, Any] = Field(default_factory=dict)

    @field_validator("cache_implementation")
    @classmethod
    def _cache(cls, value: str | None) -> str | None:
        if value is not None and value not in CACHE_IMPLEMENTATIONS:
            near = difflib.get_close_matches(value, CACHE_IMPLEMENTATIONS, n=1)
            hint = f"did you mean '{near[0]}'? " if near else ""
            raise ValueError(
                f"{value!r} is not a cache implementation of Transformers {TRANSFORMERS_VERSION}: "
                f"{hint}choose one of {', '.join(CACHE_IMPLEMENTATIONS)}"
            )
        return value

    @field_validator("extra")
    @classmethod
    def _extra(cls, value: dict[str, Any]) -> dict[str, Any]:
        problems = [p for p in (extra_key_problem(str(k)) for k in value) if p is not None]
        if problems:
            raise ValueError("; ".join(problems))
        return value

    @model_validator(mode="after")
    def _combinations(self) -> PyTorchConfig:
        if self.load_in_4bit and self.load_in_8bit:
            raise ValueError(
                "pytorch.load_in_4bit must not be combined with pytorch.load_in_8bit (they are mutually "
                "exclusive): set one"
            )
        options = [k for k in BNB_4BIT_OPTIONS if getattr(self, k) is not None]
        if options and not self.load_in_4bit:
            raise ValueError(
                f"pytorch.{options[0]} is a 4-bit option: set pytorch.load_in_4bit: true or remove it"
            )
        beams = self.beam_search is not None and self.beam_search.enabled
        if beams and self.assisted_generation is not None:
            raise ValueError(
                "pytorch.beam_search must not be combined with pytorch.assisted_generation (Transformers' "
                "assisted generation decodes one hypothesis): keep one"
            )
        if self.assisted_generation is not None and self.batch_size != 1:
            raise ValueError(
                f"pytorch.assisted_generation is for pytorch.batch_size 1 only (Transformers verifies draft "
                f"tokens for one prompt at a time), not {self.batch_size}"
            )
        inner = self.beam_search.no_repeat_ngram_size if self.beam_search is not None else None
        if None not in (inner, self.no_repeat_ngram_size) and inner != self.no_repeat_ngram_size:
            raise ValueError(
                "pytorch.no_repeat_ngram_size must equal pytorch.beam_search.no_repeat_ngram_size when both "
                "are given: keep one"
            )
        return self

    @property
    def resolved_no_repeat_ngram_size(self) -> int | None:
        inner = self.beam_search.no_repeat_ngram_size if self.beam_search is not None else None
        return self.no_repeat_ngram_size if self.no_repeat_ngram_size is not None else inner


BNB_4BIT_OPTIONS: tuple[str, ...] = (
    "bnb_4bit_compute_dtype",
    "bnb_4bit_quant_type",
    "bnb_4bit_use_double_quant",
)


class VLLMAttentionConfig(StrictModel):
    """``vllm.attention``: the attention backend (``auto``: vLLM picks one for the model and device)."""

    backend: Literal["auto", "FLASH_ATTN", "FLASHINFER", "TRITON_ATTN", "FLEX_ATTENTION", "CPU_ATTN"] = "auto"


class VLLMSpeculativeConfig(StrictModel):
    """``vllm.speculative``: speculative decoding (vLLM's ``speculative_config``).

    ``ngram`` drafts tokens by matching the request's own earlier tokens (no draft model);
    ``draft_model``, ``eagle`` and ``eagle3`` need ``model`` (a small LM, an EAGLE head).
    """

    method: Literal["ngram", "draft_model", "eagle", "eagle3"] = "ngram"
    num_tokens: StrictInt = Field(5, ge=1, le=32)
    model: str | None = Field(None, min_length=1, max_length=1_000)
    prompt_lookup_min: StrictInt | None = Field(None, ge=1, le=64)
    prompt_lookup_max: StrictInt | None = Field(None, ge=1, le=64)
    draft_tp_size: StrictInt | None = Field(None, ge=1, le=64)

    @model_validator(mode="after")
    def _method_fields(self) -> VLLMSpeculativeConfig:
        if self.method == "ngram":
            if self.model is not None:
                raise ValueError(
                    "speculative.model is for method draft_model, eagle or eagle3; ngram drafts from the "
                    "prompt itself: remove model or set method"
                )
            if self.draft_tp_size is not None:
                raise ValueError("speculative.draft_tp_size is for a draft model; ngram has none: remove it")
            low, high = self.prompt_lookup_min, self.prompt_lookup_max
            if low is not None and high is not None and low > high:
                raise ValueError(
                    f"speculative.prompt_lookup_min ({low}) must be <= prompt_lookup_max ({high})"
                )
            return self
        if self.model is None:
            raise ValueError(
                f"speculative.method {self.method} needs speculative.model (hub id or local path)"
            )
        for key in ("prompt_lookup_min", "prompt_lookup_max"):
            if getattr(self, key) is not None:
                raise ValueError(f"speculative.{key} is for method ngram only: remove it")
        return self


def _check_vllm_extra(extra: dict[str, Any]) -> dict[str, Any]:
    """Every ``vllm.extra`` key must be a vLLM 0.32 engine argument that lem does not set itself."""
    for key in extra:
        if key in VLLM_MANAGED_ARGS:
            raise ValueError(
                f"{key!r} is set by lem from {VLLM_MANAGED_ARGS[key]}: set it there, not in vllm.extra"
            )
        if key not in VLLM_ENGINE_ARGS:
            near = difflib.get_close_matches(key, sorted(VLLM_ENGINE_ARGS), n=1)
            hint = f" (did you mean '{near[0]}'?)" if near else ""
            raise ValueError(
                f"{key!r} is not an engine argument of vLLM 0.32{hint}; vllm.extra takes "
                "vllm.engine.arg_utils.EngineArgs fields only"
            )
    return extra


class VLLMConfig(StrictModel):
    max_num_seqs: StrictInt = Field(256, ge=1, le=65_536)
    max_num_batched_tokens: StrictInt | None = Field(None, ge=1, le=10_000_000)
    max_model_len: StrictInt | None = Field(None, ge=1, le=1_048_576)
    gpu_memory_utilization: StrictFloat = Field(0.9, gt=0.0, le=1.0)
    tensor_parallel_size: StrictInt = Field(1, ge=1, le=64)
    pipeline_parallel_size: StrictInt = Field(1, ge=1, le=64)
    # None: vLLM's own default for this model and GPU (the engine as deployed); the effective
    # values are recorded in the result's provenance.engine_args.
    enable_prefix_caching: bool | None = None
    enable_chunked_prefill: bool | None = None
    enforce_eager: bool = False
    kv_cache_dtype: Literal["auto", "fp8", "fp8_e4m3", "fp8_e5m2"] = "auto"
    block_size: Literal[8, 16, 32, 64, 128] | None = None
    # Checkpoints already quantised with the method (fp8 also quantises a 16-bit checkpoint at load).
    quantization: (
        Literal[
            "awq", "awq_marlin", "gptq", "gptq_marlin", "fp8", "fbgemm_fp8", "compressed-tensors", "modelopt"
        ]
        | None
    ) = None
    load_format: Literal["auto", "safetensors", "pt", "npcache", "dummy"] = "auto"
    # Schema 3.0.0's swap_space: refused (vLLM 0.32 recomputes preempted requests, it has no swap space).
    swap_space: StrictFloat | StrictInt | None = None
    cpu_offload_gb: StrictFloat | StrictInt = Field(0, ge=0, le=4_096)
    distributed_backend: Literal["mp", "ray"] | None = None
    attention: VLLMAttentionConfig = Field(default_factory=VLLMAttentionConfig)
    speculative: VLLMSpeculativeConfig | None = None
    logprobs: StrictInt | None = Field(None, ge=1, le=20)
    extra: dict[str, Any] = Field(default_factory=dict)

    @field_validator("quantization", mode="before")
    @classmethod
    def _quantization_gone(cls, value: Any) -> Any:
        if isinstance(value, str) and value in VLLM_QUANTIZATION_GONE:
            raise ValueError(f"quantization '{value}': {VLLM_QUANTIZATION_GONE[value]}")
        return value

    @field_validator("swap_space")
    @classmethod
    def _no_swap_space(cls, value: float | None) -> float | None:
        if value is not None:
            raise ValueError(
                "vLLM 0.32 has no CPU swap space (its V1 engine recomputes preempted requests instead "
                "of swapping them out): remove swap_space; to offload KV cache to CPU memory, give "
                "vLLM's kv_offloading_size (GiB) under extra"
            )
        return value

    @field_validator("extra")
    @classmethod
    def _extra_keys(cls, extra: dict[str, Any]) -> dict[str, Any]:
        return _check_vllm_extra(extra)


class TensorRTCalibration(StrictModel):
    """Calibration of the quantisations TensorRT-LLM calibrates (fp8, int8_sq, int4_awq)."""

    dataset: str | None = Field(None, min_length=1, max_length=4_096)  # None: TensorRT-LLM's own
    num_samples: StrictInt = Field(512, ge=64, le=4_096)
    max_length: StrictInt = Field(2048, ge=1, le=1_048_576)


class TensorRTConfig(StrictModel):
    """TensorRT-LLM settings. Which ones the pinned release honours, and with which others, is
    checked by ``lem_harness.engines.tensorrt_args.unsupported_settings`` (errors at validation)."""

    engine_path: str | None = Field(None, min_length=1, max_length=4_096)
    max_batch_size: StrictInt = Field(8, ge=1, le=4_096)
    max_input_len: StrictInt | None = Field(None, ge=1, le=1_048_576)
    max_output_len: StrictInt | None = Field(None, ge=1, le=1_048_576)
    max_seq_len: StrictInt | None = Field(None, ge=1, le=1_048_576)
    max_num_tokens: StrictInt | None = Field(None, ge=1, le=10_000_000)
    builder_opt_level: StrictInt = Field(3, ge=0, le=5)
    strongly_typed: bool = True
    multiple_profiles: bool = False
    tp_size: StrictInt = Field(1, ge=1, le=64)
    pp_size: StrictInt = Field(1, ge=1, le=64)
    quantization: Literal["none", "fp8", "int8_sq", "int8_weight_only", "int4_awq", "int4_gptq"] = "none"
    calibration: TensorRTCalibration | None = None
    kv_cache_type: Literal["paged", "continuous"] = "paged"
    enable_chunked_context: bool = False
    enable_kv_cache_reuse: bool = False
    gpu_memory_utilization: StrictFloat = Field(0.9, gt=0.0, le=1.0)
    draft_model: str | None = Field(None, min_length=1, max_length=1_000)
    num_draft_tokens: StrictInt = Field(5, ge=1, le=64)
    force_rebuild: bool = False
    engine_cache_dir: str | None = None
    extra_build_args: dict[str, Any] = Field(default_factory=dict)
    extra_runtime_args: dict[str, Any] = Field(default_factory=dict)


BACKEND_SECTIONS: dict[str, type[StrictModel]] = {
    "pytorch": PyTorchConfig,
    "vllm": VLLMConfig,
    "tensorrt": TensorRTConfig,
}
