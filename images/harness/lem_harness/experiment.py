"""Experiment configuration schema (pydantic only; shared by host and harness).

Every model is closed (unknown keys are errors) and every number is bounded. The
host adds YAML loading, "did you mean" messages and advisory warnings on top of
these models (``lem.config``); the harness receives a validated instance inside
its ``RunSpec``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, StrictFloat, StrictInt, field_validator, model_validator

from lem_harness.backend_sections import (
    BACKEND_SECTIONS,
    COMPILE_MODES,
    PyTorchConfig,
    TensorRTConfig,
    VLLMConfig,
)
from lem_harness.prompt_sources import (
    DEFAULT_PROMPT_COUNT,
    DatasetConfig,
    FilePrompts,
    HubPrompts,
    PromptsConfig,
    PromptSource,
)
from lem_harness.schema_base import BACKENDS, HUB_ID, Backend, Precision, StrictModel, is_local_path

CURRENT_SCHEMA_VERSION = "3.0.0"

DecoderPreset = Literal["deterministic", "standard", "creative", "factual"]

# Sampling settings of each decoder preset; explicit keys in ``decoder`` override them.
DECODER_PRESETS: dict[str, dict[str, Any]] = {
    "deterministic": {"do_sample": False, "temperature": 0.0, "top_p": 1.0, "top_k": 0},
    "standard": {"do_sample": True, "temperature": 1.0, "top_p": 0.95, "top_k": 50},
    "creative": {"do_sample": True, "temperature": 1.2, "top_p": 0.95, "top_k": 0},
    "factual": {"do_sample": True, "temperature": 0.3, "top_p": 0.9, "top_k": 40},
}


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
        if value is not None and not is_local_path(value) and not re.fullmatch(HUB_ID, value):
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
