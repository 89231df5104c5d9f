"""Experiment configuration schema (pydantic only; shared by host and harness).

Every model is closed (unknown keys are errors) and every number is bounded. The
host adds YAML loading, "did you mean" messages and advisory warnings on top of
these models (``lem.config``); the harness receives a validated instance inside
its ``RunSpec``.
"""

from __future__ import annotations

import difflib
import re
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, field_validator, model_validator

from lem_harness.transformers_names import CACHE_IMPLEMENTATIONS, TRANSFORMERS_VERSION, extra_key_problem
from lem_harness.vllm_pinned import VLLM_ENGINE_ARGS, VLLM_MANAGED_ARGS, VLLM_QUANTIZATION_GONE

CURRENT_SCHEMA_VERSION = "3.0.0"

Backend = Literal["pytorch", "vllm", "tensorrt"]
BACKENDS: tuple[Backend, ...] = ("pytorch", "vllm", "tensorrt")
Precision = Literal["float32", "float16", "bfloat16"]
DecoderPreset = Literal["deterministic", "standard", "creative", "factual"]

# Sampling settings of each decoder preset; explicit keys in ``decoder`` override them.
DECODER_PRESETS: dict[str, dict[str, Any]] = {
    "deterministic": {"do_sample": False, "temperature": 0.0, "top_p": 1.0, "top_k": 0},
    "standard": {"do_sample": True, "temperature": 1.0, "top_p": 0.95, "top_k": 50},
    "creative": {"do_sample": True, "temperature": 1.2, "top_p": 0.95, "top_k": 0},
    "factual": {"do_sample": True, "temperature": 0.3, "top_p": 0.9, "top_k": 40},
}


class StrictModel(BaseModel):
    """Base of every config model: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


# --------------------------------------------------------------------------- dataset


@dataclass(frozen=True)
class BuiltinDataset:
    """A built-in dataset name: where its prompts live on the hub and how a row becomes a prompt.

    ``extract`` names how a row becomes one prompt text (``lem_harness.datasets.extract``):
    ``column`` reads ``column``; ``alpaca`` joins instruction and input; ``sharegpt`` takes the
    first human turn of ``conversations``; ``mmlu`` writes the question, its lettered choices
    and ``Answer:``. ``files``: the data files to read when the repository is not laid out in
    splits (ShareGPT is one JSON file).
    """

    repo_id: str
    split: str
    column: str | None = None
    subset: str | None = None
    extract: Literal["column", "alpaca", "sharegpt", "mmlu"] = "column"
    files: tuple[str, ...] = ()


_AI_ENERGY_SCORE = BuiltinDataset("AIEnergyScore/text_generation", "train", column="text")
# Built-in dataset names (schema 3.0.0 aliases).
BUILTIN_DATASETS: dict[str, BuiltinDataset] = {
    "ai_energy_score": _AI_ENERGY_SCORE,
    "ai-energy-score": _AI_ENERGY_SCORE,
    "alpaca": BuiltinDataset("tatsu-lab/alpaca", "train", extract="alpaca"),
    "sharegpt": BuiltinDataset(
        "anon8231489123/ShareGPT_Vicuna_unfiltered",
        "train",
        extract="sharegpt",
        files=("ShareGPT_V3_unfiltered_cleaned_split.json",),
    ),
    "gsm8k": BuiltinDataset("openai/gsm8k", "train", column="question", subset="main"),
    "mmlu": BuiltinDataset("cais/mmlu", "test", subset="all", extract="mmlu"),
}
DEFAULT_DATASET = "ai_energy_score"
DEFAULT_PROMPT_COUNT = 100
# A hub dataset without a built-in or configured column: the first of these its rows hold.
AUTO_COLUMNS: tuple[str, ...] = ("text", "prompt", "question", "instruction", "input", "content")
_HUB_ID = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}$"


def _check_dataset_name(name: str) -> str:
    if name not in BUILTIN_DATASETS and not re.fullmatch(_HUB_ID, name):
        names = ", ".join(sorted(BUILTIN_DATASETS))
        raise ValueError(
            f"{name!r} is neither a built-in dataset ({names}) nor a hub id "
            "like 'org/dataset'; for a local file use prompts: {type: file, path: ...}"
        )
    return name


def _check_layout(name: str, selection: HubSelection) -> None:
    builtin = BUILTIN_DATASETS.get(name)
    if builtin is not None and builtin.files and (selection.split or selection.subset):
        raise ValueError(
            f"dataset {name!r} is one file ({', '.join(builtin.files)}) without splits or "
            "subsets: remove split / subset"
        )


class HubSelection(StrictModel):
    """What to read from a hub dataset and which rows to use (shared by ``dataset`` and
    ``prompts: {type: huggingface}``)."""

    split: str | None = Field(None, min_length=1, max_length=100)
    subset: str | None = Field(None, min_length=1, max_length=200)
    column: str | None = Field(None, min_length=1, max_length=200)
    sample_size: StrictInt | None = Field(None, ge=1, le=1_000_000)
    # None: a seeded sample kept in dataset order; false: the first rows; true: seeded shuffle.
    shuffle: bool | None = None
    seed: StrictInt | None = Field(None, ge=0, le=2**32 - 1)

    @model_validator(mode="after")
    def _seed_needs_a_draw(self) -> HubSelection:
        if self.shuffle is False and self.seed is not None:
            raise ValueError(
                "seed is given but shuffle is false (the first rows are used, nothing is drawn): "
                "remove seed or set shuffle: true"
            )
        return self


class DatasetConfig(HubSelection):
    """A Hugging Face hub dataset: a built-in name (``ai_energy_score``, ``alpaca``, ...) or a
    hub id ``org/name``.

    Read through the Hugging Face cache; ``split``, ``subset`` and ``column`` default to the
    built-in dataset's own. ``sample_size`` prompts are drawn (seeded).
    """

    name: str = Field(DEFAULT_DATASET, min_length=1, max_length=200)

    @field_validator("name")
    @classmethod
    def _known(cls, name: str) -> str:
        return _check_dataset_name(name)

    @model_validator(mode="after")
    def _builtin_layout(self) -> DatasetConfig:
        _check_layout(self.name, self)
        return self

    @property
    def builtin(self) -> BuiltinDataset | None:
        return BUILTIN_DATASETS.get(self.name)

    @property
    def repo_id(self) -> str:
        return self.builtin.repo_id if self.builtin is not None else self.name

    @property
    def resolved_split(self) -> str:
        default = self.builtin.split if self.builtin is not None else "train"
        return self.split or default

    @property
    def resolved_subset(self) -> str | None:
        return self.subset or (self.builtin.subset if self.builtin is not None else None)

    @property
    def resolved_column(self) -> str | None:
        """The column read; None: the built-in's extraction, or the first of ``AUTO_COLUMNS``."""
        if self.column is not None:
            return self.column
        return self.builtin.column if self.builtin is not None else None


class HubPrompts(HubSelection):
    """``prompts: {type: huggingface, dataset: ...}``: the schema 3.0.0 spelling of ``dataset``."""

    type: Literal["huggingface"]
    dataset: str = Field(min_length=1, max_length=200)

    @field_validator("dataset")
    @classmethod
    def _known(cls, name: str) -> str:
        return _check_dataset_name(name)

    @model_validator(mode="after")
    def _builtin_layout(self) -> HubPrompts:
        _check_layout(self.dataset, self)
        return self

    def as_dataset(self) -> DatasetConfig:
        return DatasetConfig(name=self.dataset, **self.model_dump(exclude={"type", "dataset"}))


class FilePrompts(StrictModel):
    """A local JSON-lines file, one prompt per line under ``field``."""

    type: Literal["file"]
    path: str = Field(min_length=1, max_length=4_096)
    field: str = Field("prompt", min_length=1, max_length=200)
    sample_size: StrictInt | None = Field(None, ge=1, le=1_000_000)


class SyntheticPrompts(StrictModel):
    """Seeded synthetic prompts with exact token lengths."""

    type: Literal["synthetic"]
    sample_size: StrictInt | None = Field(None, ge=1, le=1_000_000)
    input_len_distribution: Literal["fixed", "uniform", "normal"] = "fixed"
    input_len: StrictInt = Field(512, ge=1, le=131_072)
    input_len_min: StrictInt = Field(16, ge=1, le=131_072)
    input_len_max: StrictInt = Field(1024, ge=1, le=131_072)
    input_len_std: StrictFloat = Field(64.0, ge=0, le=65_536)

    @model_validator(mode="after")
    def _range(self) -> SyntheticPrompts:
        if self.input_len_min > self.input_len_max:
            raise ValueError("prompts.input_len_min must be <= prompts.input_len_max")
        return self


PromptsConfig = Annotated[FilePrompts | SyntheticPrompts | HubPrompts, Field(discriminator="type")]
PromptSource = DatasetConfig | FilePrompts | SyntheticPrompts

# Keys of schema 3.0.0 that lem refuses, with the reason and what to write instead.
REFUSED_KEYS: dict[str, str] = {
    "streaming_warmup_requests": (
        "streaming_warmup_requests is not supported: lem's warmup already sends its requests through "
        "the same (streaming) path before the measured window, and TTFT / ITL statistics cover measured "
        "requests only, so nothing needs excluding. For exactly N warmup requests write "
        "warmup: {mode: fixed, max_prompts: N}"
    ),
}
MetadataValue = Annotated[str, Field(max_length=1_000)] | StrictInt | StrictFloat | bool
_METADATA_KEY = r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$"


# --------------------------------------------------------------------------- common sections


class DecoderConfig(StrictModel):
    preset: DecoderPreset = "deterministic"
    do_sample: bool | None = None
    temperature: StrictFloat | None = Field(None, ge=0.0, le=5.0)
    top_p: StrictFloat | None = Field(None, gt=0.0, le=1.0)
    top_k: StrictInt | None = Field(None, ge=0, le=100_000)
    repetition_penalty: StrictFloat | None = Field(None, gt=0.0, le=10.0)

    def resolved(self) -> dict[str, Any]:
        """The preset's settings with every explicitly given key laid over them."""
        out: dict[str, Any] = dict(DECODER_PRESETS[self.preset])
        out["repetition_penalty"] = 1.0
        for key in ("do_sample", "temperature", "top_p", "top_k", "repetition_penalty"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        return out


class WarmupConfig(StrictModel):
    """Warmup before the measured window.

    ``fixed`` runs exactly ``max_prompts`` prompts; ``convergence`` stops once the
    coefficient of variation of the last ``window_size`` per-batch latencies is at
    most ``target_cv`` (never before ``min_prompts``, never after ``max_prompts``
    or ``timeout_seconds``).
    """

    enabled: bool = True
    mode: Literal["fixed", "convergence"] = "convergence"
    min_prompts: StrictInt = Field(5, ge=0, le=10_000)
    max_prompts: StrictInt = Field(20, ge=0, le=10_000)
    window_size: StrictInt = Field(5, ge=2, le=1_000)
    target_cv: StrictFloat = Field(0.05, gt=0.0, le=1.0)
    timeout_seconds: StrictFloat = Field(120.0, gt=0.0, le=86_400.0)

    @model_validator(mode="after")
    def _bounds(self) -> WarmupConfig:
        if self.min_prompts > self.max_prompts:
            raise ValueError("warmup.min_prompts must be <= warmup.max_prompts")
        return self


class BaselineConfig(StrictModel):
    """Deep idle (``duration_seconds`` before the model loads) and ready idle
    (``ready_duration_seconds`` after warmup, model loaded; 0 skips it). Adjusted energy
    uses the ready idle where measured."""

    enabled: bool = True
    method: Literal["fresh", "cache"] = "cache"
    duration_seconds: StrictFloat = Field(30.0, ge=1.0, le=3_600.0)
    cache_ttl_seconds: StrictFloat = Field(3_600.0, ge=0.0, le=30 * 86_400.0)
    ready_duration_seconds: StrictFloat = Field(5.0, ge=0.0, le=3_600.0)


class TimeseriesConfig(StrictModel):
    enabled: bool = True
    sample_rate_hz: StrictFloat = Field(5.0, gt=0.0, le=20.0)


class MeasurementConfig(StrictModel):
    """Which energy source to use (``simulated`` is for tests and demos only), and whether to
    also measure a prefill-only pass (one output token per prompt) to split prefill from decode."""

    device: Literal["auto", "nvml", "simulated"] = "auto"
    phase_split: bool = False


class TrafficSimulationConfig(StrictModel):
    """Requests arrive on a schedule instead of all at once (``lem_harness.traffic``): ``poisson``
    (exponential gaps, seeded) or ``constant`` (one every ``1 / target_qps`` s). ``seed`` defaults
    to ``random_seed``."""

    enabled: bool = False
    mode: Literal["poisson", "constant"] = "poisson"
    target_qps: StrictFloat = Field(1.0, gt=0.0, le=100_000.0)
    seed: StrictInt | None = Field(None, ge=0, le=2**32 - 1)


class DockerConfig(StrictModel):
    """The only container settings a config may pass (validated, no raw arguments)."""

    shm_size: str = Field("8g", pattern=r"^[1-9][0-9]{0,5}[kmg]?$")
    # private: the container's own IPC namespace with a /dev/shm of shm_size; host: the host's
    # IPC namespace (shared memory visible to and from every process on the host).
    ipc: Literal["private", "host"] = "private"
    env: tuple[Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")], ...] = ()


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


# --------------------------------------------------------------------------- experiment


class ExperimentConfig(StrictModel):
    """One experiment: a model, a workload and one backend's settings."""

    schema_version: str | None = None
    config_name: str | None = Field(None, min_length=1, max_length=200)
    model_name: str = Field(min_length=1, max_length=1_000)
    backend: Backend = "pytorch"
    gpus: tuple[Annotated[StrictInt, Field(ge=0, le=1_023)], ...] = Field((0,), min_length=1, max_length=64)
    max_input_tokens: StrictInt = Field(512, ge=1, le=1_048_576)
    max_output_tokens: StrictInt = Field(128, ge=1, le=1_048_576)
    min_output_tokens: StrictInt = Field(0, ge=0, le=1_048_576)
    num_input_prompts: StrictInt | None = Field(None, ge=1, le=1_000_000)
    fp_precision: Precision = "float16"
    random_seed: StrictInt = Field(42, ge=0, le=2**32 - 1)
    dataset: DatasetConfig | None = None
    prompts: PromptsConfig | None = None
    decoder: DecoderConfig = Field(default_factory=DecoderConfig)
    streaming: bool = False
    save_outputs: bool = False
    decode_token_to_text: bool = False
    extra_metadata: dict[Annotated[str, Field(pattern=_METADATA_KEY)], MetadataValue] = Field(
        default_factory=dict, max_length=64
    )
    warmup: WarmupConfig = Field(default_factory=WarmupConfig)
    baseline: BaselineConfig = Field(default_factory=BaselineConfig)
    timeseries: TimeseriesConfig = Field(default_factory=TimeseriesConfig)
    measurement: MeasurementConfig = Field(default_factory=MeasurementConfig)
    traffic_simulation: TrafficSimulationConfig = Field(default_factory=TrafficSimulationConfig)
    docker: DockerConfig = Field(default_factory=DockerConfig)
    pytorch: PyTorchConfig | None = None
    vllm: VLLMConfig | None = None
    tensorrt: TensorRTConfig | None = None
    # A LoRA adapter applied to model_name: a hub id ``org/name`` or a local directory.
    adapter: str | None = Field(None, min_length=1, max_length=1_000)

    @field_validator("adapter")
    @classmethod
    def _adapter(cls, value: str | None) -> str | None:
        if value is not None and not is_local_path(value) and not re.fullmatch(_HUB_ID, value):
            raise ValueError(
                f"{value!r} is neither a hub id like 'org/adapter' nor a local path (start it with ./, ../, "
                "/ or ~)"
            )
        return value

    @field_validator("extra_metadata", mode="before")
    @classmethod
    def _scalar_metadata(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        for key, item in value.items():
            if not isinstance(item, (str, int, float, bool)):
                raise ValueError(
                    f"extra_metadata.{key} must be a string, a number or true/false, not "
                    f"{type(item).__name__} {item!r}: put lists and mappings into a string"
                )
        return value

    @model_validator(mode="before")
    @classmethod
    def _dataset_shorthand(cls, data: Any) -> Any:
        refused = [key for key in REFUSED_KEYS if isinstance(data, dict) and key in data]
        if refused:
            raise ValueError(REFUSED_KEYS[refused[0]])
        if isinstance(data, dict) and isinstance(data.get("dataset"), str):
            data = {**data, "dataset": {"name": data["dataset"]}}
        return data

    @property
    def prompt_source(self) -> PromptSource:
        """Where the prompts come from: ``dataset`` (it wins over ``prompts``), else ``prompts``,
        else the default dataset (ai_energy_score)."""
        if self.dataset is not None:
            return self.dataset
        if isinstance(self.prompts, HubPrompts):
            return self.prompts.as_dataset()
        return self.prompts if self.prompts is not None else DatasetConfig()

    @property
    def prompt_count(self) -> int:
        """Prompts in the measured window: ``num_input_prompts`` wins over the source's
        ``sample_size``; 100 when neither is set."""
        if self.num_input_prompts is not None:
            return self.num_input_prompts
        sample_size = self.prompt_source.sample_size
        return sample_size if sample_size is not None else DEFAULT_PROMPT_COUNT

    @model_validator(mode="after")
    def _cross_field(self) -> ExperimentConfig:
        for other in BACKENDS:
            if other != self.backend and getattr(self, other) is not None:
                raise ValueError(
                    f"section '{other}' given but backend is '{self.backend}': "
                    f"remove '{other}' or set backend: {other}"
                )
        if self.min_output_tokens > self.max_output_tokens:
            raise ValueError("min_output_tokens must be <= max_output_tokens")
        if self.decode_token_to_text and not self.save_outputs:
            raise ValueError(
                "decode_token_to_text: true needs save_outputs: true (it decodes the saved outputs)"
            )
        if len(set(self.gpus)) != len(self.gpus):
            raise ValueError(f"gpus lists a GPU twice: {list(self.gpus)}; list each id once")
        self._check_parallelism()
        self._check_compile()
        self._check_traffic()
        self._check_pytorch_decoding()
        if self.backend == "tensorrt" and self.fp_precision == "float32":
            raise ValueError("fp_precision float32 is not supported by TensorRT-LLM: use float16 or bfloat16")
        if self.vllm is not None and self.vllm.max_model_len is not None:
            needed = self.max_input_tokens + self.max_output_tokens
            if self.vllm.max_model_len < needed:
                raise ValueError(
                    f"vllm.max_model_len ({self.vllm.max_model_len}) must be >= max_input_tokens + "
                    f"max_output_tokens ({needed})"
                )
        return self

    def _check_parallelism(self) -> None:
        """vLLM and TensorRT-LLM use exactly tp x pp GPUs; every listed GPU is measured and summed,
        so a GPU the engine leaves idle would add its idle power to the headline energy."""
        sizes: tuple[tuple[str, int], tuple[str, int]] | None = None
        if self.vllm is not None:
            sizes = (
                ("vllm.tensor_parallel_size", self.vllm.tensor_parallel_size),
                ("vllm.pipeline_parallel_size", self.vllm.pipeline_parallel_size),
            )
        if self.tensorrt is not None:
            sizes = (("tensorrt.tp_size", self.tensorrt.tp_size), ("tensorrt.pp_size", self.tensorrt.pp_size))
        if sizes is None:
            return
        (tp_key, tp), (pp_key, pp) = sizes
        n = len(self.gpus)
        if tp * pp != n:
            raise ValueError(
                f"{tp_key} x {pp_key} = {tp} x {pp} = {tp * pp} GPU(s), but gpus lists {n} "
                f"({list(self.gpus)}): the engine would use {tp * pp} and every listed GPU is measured, "
                f"so list exactly {tp * pp} GPU(s) in gpus or change {tp_key} / {pp_key}"
            )

    def _check_traffic(self) -> None:
        """Refuse what traffic simulation cannot mean (docs/configuration.md, traffic_simulation)."""
        if not self.traffic_simulation.enabled:
            return
        refusals = (
            (
                self.measurement.phase_split,
                "measurement.phase_split",
                "the prefill pass runs every prompt at once after a paced window, so decode = full - "
                "prefill would count the pacing's idle time as decode: set measurement.phase_split: false",
            ),
            (
                self.streaming,
                "streaming",
                "per-token timing under paced arrivals is not implemented: set streaming: false",
            ),
        )
        for refused, what, reason in refusals:
            if refused:
                raise ValueError(
                    f"traffic_simulation with {what}: {reason}, or set traffic_simulation.enabled: false"
                )
        strategy = self.pytorch.batching_strategy if self.pytorch is not None else "static"
        if strategy not in ("static", "dynamic"):
            raise ValueError(
                f"traffic_simulation with pytorch.batching_strategy {strategy!r}: batches form from the "
                "requests that have arrived, which cannot be sorted ahead of time: use static or dynamic"
            )

    def _check_compile(self) -> None:
        section = self.pytorch
        if section is None or section.torch_compile_backend is None:
            return
        named = section.torch_compile
        if isinstance(named, str) and named not in COMPILE_MODES and named != section.torch_compile_backend:
            raise ValueError(
                f"pytorch.torch_compile names the backend {named!r} but pytorch.torch_compile_backend is "
                f"{section.torch_compile_backend!r}; keep one"
            )

    def _check_pytorch_decoding(self) -> None:
        section = self.pytorch
        if section is None:
            return
        if section.min_p is not None and not self.decoder.resolved()["do_sample"]:
            raise ValueError(
                "pytorch.min_p is a sampling filter, but this decoder is greedy: set decoder.do_sample: true "
                "(or a sampling preset) or remove pytorch.min_p"
            )
        if section.num_processes > len(self.gpus):
            raise ValueError(
                f"pytorch.num_processes must be <= the number of gpus ({len(self.gpus)}): each process runs "
                f"on its own GPU(s); list more gpus or lower it to {len(self.gpus)}"
            )
        if self.streaming and section.beam_search is not None and section.beam_search.enabled:
            raise ValueError(
                "streaming must be false with pytorch.beam_search: Transformers streams no beam search (the "
                "winning beam is known only at the end); set streaming: false or disable beam_search"
            )

    def backend_section(self) -> StrictModel:
        """This backend's section, or its defaults when the file omits it."""
        section = getattr(self, self.backend)
        return section if section is not None else BACKEND_SECTIONS[self.backend]()


def is_local_path(value: str) -> bool:
    """A ``model_name`` / ``prompts.path`` string that names a file-system path rather than a hub id."""
    return value.startswith(("/", "./", "../", "~"))


def with_absolute_paths(config: ExperimentConfig, directory: Path) -> ExperimentConfig:
    """``config`` with its local model and prompt-file paths made absolute against ``directory``.

    A relative path means different things on the host and in a container, so paths are
    resolved against the directory of the file that gave them, once, when configs load.
    """
    update: dict[str, Any] = {}
    if is_local_path(config.model_name):
        update["model_name"] = str((directory / Path(config.model_name).expanduser()).resolve())
    if config.adapter is not None and is_local_path(config.adapter):
        update["adapter"] = str((directory / Path(config.adapter).expanduser()).resolve())
    assisted = config.pytorch.assisted_generation if config.pytorch is not None else None
    if config.pytorch is not None and assisted is not None and is_local_path(assisted.model):
        draft = str((directory / Path(assisted.model).expanduser()).resolve())
        update["pytorch"] = config.pytorch.model_copy(
            update={"assisted_generation": assisted.model_copy(update={"model": draft})}
        )
    if isinstance(config.prompts, FilePrompts) and not Path(config.prompts.path).is_absolute():
        path = str((directory / Path(config.prompts.path).expanduser()).resolve())
        update["prompts"] = config.prompts.model_copy(update={"path": path})
    engine_path = config.tensorrt.engine_path if config.tensorrt is not None else None
    if config.tensorrt is not None and engine_path is not None and not Path(engine_path).is_absolute():
        path = str((directory / Path(engine_path).expanduser()).resolve())
        update["tensorrt"] = config.tensorrt.model_copy(update={"engine_path": path})
    return config.model_copy(update=update) if update else config
