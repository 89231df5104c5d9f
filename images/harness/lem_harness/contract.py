"""Host <-> container contract: ``RunSpec`` in, ``RunResult`` out (pydantic only).

Both files travel as JSON on mounted volumes. ``CONTRACT_VERSION`` is bumped on any
incompatible change; readers reject a major version they do not know. Every stored
field carries its SI unit in its name.
"""

from __future__ import annotations

import hashlib
import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from lem_harness.experiment import ExperimentConfig

CONTRACT_VERSION = "2.0.0"
SPEC_FILE = "spec.json"
RESULT_FILE = "result.json"
TIMELINE_FILE = "timeline.csv"
OUTPUTS_FILE = "outputs.jsonl"  # save_outputs: one line per measured prompt, in prompt order
STATUS_FILE = "status.json"  # the run's live progress (lem_harness.status), rewritten atomically

# Columns of the power timeline CSV, one row per GPU per sample.
TIMELINE_COLUMNS: tuple[str, ...] = (
    "t_s",  # seconds since the run's time origin (monotonic clock)
    "unix_time_s",
    "phase",  # baseline | load | warmup | measure | idle
    "gpu_index",
    "gpu_uuid",
    "power_w",
    "temperature_c",
    "sm_clock_mhz",
    "memory_used_bytes",
    "utilization_pct",
    "throttle_reasons",  # NVML clocks-event reasons bitmask (int)
)


class ContractModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


# Sections added to the schema after configurations were first hashed: left out of the canonical
# form while at their defaults, so a configuration that does not use them keeps its id (and an
# existing campaign still resumes).
HASH_WHEN_SET = ("traffic_simulation",)


def config_hash(config: ExperimentConfig) -> str:
    """Stable 12-hex id of a configuration's canonical form (name and schema version excluded)."""
    defaults = {key for key in HASH_WHEN_SET if getattr(config, key) == _default(key)}
    canonical = config.model_dump(mode="json", exclude={"config_name", "schema_version", *defaults})
    blob = json.dumps(canonical, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def _default(key: str) -> object:
    return ExperimentConfig.model_fields[key].get_default(call_default_factory=True)


# --------------------------------------------------------------------------- spec


class ImageInfo(ContractModel):
    name: str | None = None
    id: str | None = None
    digest: str | None = None


class RunSpec(ContractModel):
    """Everything the harness needs for one run. Never contains secrets."""

    schema_version: str = CONTRACT_VERSION
    run_id: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    campaign_id: str | None = None
    config_id: str
    config_name: str
    cycle: int = Field(1, ge=1)
    config: ExperimentConfig
    baseline_cache_dir: str | None = None  # a mounted dir that survives containers
    engine_cache_dir: str | None = None  # TensorRT-LLM engine cache (mounted volume)
    image: ImageInfo | None = None


# --------------------------------------------------------------------------- result


class ErrorInfo(ContractModel):
    type: str
    message: str


class Flag(ContractModel):
    """A validity flag: the run is kept, and its readers are told why to be careful."""

    code: Literal[
        "SHORT_WINDOW",
        "THROTTLING",
        "ENERGY_DISCREPANCY",
        "LOW_SAMPLE_COVERAGE",
        "BASELINE_FROM_CACHE",
        "STALE_BASELINE",
        "NO_ENERGY_SENSOR",
        "SIMULATED_ENERGY",
        "WARMUP_NOT_CONVERGED",
        "ADJUSTED_NEGATIVE",
        "ENERGY_UNAVAILABLE",
        "GPU_SHARED",
        "HOST_BUSY",
    ]
    message: str


class SpeculativeMetrics(ContractModel):
    """Speculative decoding over the measured window (the engine's own counters).

    ``acceptance_rate`` = accepted / draft tokens; ``mean_acceptance_length`` = 1 + accepted /
    drafts (tokens produced per target-model step, vLLM's definition).
    """

    num_drafts: int
    draft_tokens: int
    accepted_tokens: int
    acceptance_rate: float | None
    mean_acceptance_length: float | None


class InferenceMetrics(ContractModel):
    num_prompts: int
    num_batches: int
    input_tokens: int
    output_tokens: int
    duration_s: float
    output_tokens_per_s: float
    total_tokens_per_s: float
    batch_latency_p50_s: float
    batch_latency_p90_s: float
    batch_latency_p99_s: float
    request_latency_p50_s: float | None = None
    request_latency_p90_s: float | None = None
    request_latency_p99_s: float | None = None
    ttft_mean_s: float | None = None
    ttft_p50_s: float | None = None
    ttft_p99_s: float | None = None
    itl_mean_s: float | None = None
    itl_p50_s: float | None = None
    itl_p99_s: float | None = None
    peak_memory_bytes: int | None = None
    speculative: SpeculativeMetrics | None = None


class GpuEnergy(ContractModel):
    gpu_uuid: str
    counter_energy_j: float | None = None
    integrated_energy_j: float | None = None


class WindowActivity(ContractModel):
    """What else ran during a window (``measure/activity.py``); None where unreadable."""

    cpu_steal_pct: float | None = None
    host_cpu_other_pct: float | None = None  # CPU used by other processes, share of host capacity
    load_avg_1m: float | None = None
    gpu_other_processes: dict[str, int] = Field(default_factory=dict)  # per GPU UUID


EnergySource = Literal["nvml_counter", "power_integral", "simulated", "none"]


class EnergyMetrics(ContractModel):
    """Energy of the measured inference window only (not load, warmup or baseline)."""

    energy_source: EnergySource
    gross_energy_j: float | None = None
    integrated_energy_j: float | None = None  # trapezoid of the sampled power (cross-check)
    counter_vs_integral_pct: float | None = None
    idle_power_w: float | None = None
    adjusted_energy_j: float | None = None  # gross - idle_power_w * window_duration_s
    window_duration_s: float | None = None
    avg_power_w: float | None = None
    energy_per_output_token_j: float | None = None
    adjusted_energy_per_output_token_j: float | None = None
    output_tokens_per_j: float | None = None
    cpu_energy_j: float | None = None  # RAPL package energy, where readable
    sample_coverage: float | None = None  # share of expected samples received (0..1)
    idle_power_kind: Literal["ready", "deep"] | None = None  # which idle baseline adjusted_energy_j used
    power_read_failures: int = 0  # power reads that failed or fell back to the averaged field (whole run)
    activity: WindowActivity | None = None  # other GPU processes and host load during the window
    per_gpu: list[GpuEnergy] = Field(default_factory=list)


class PhaseSplitMetrics(ContractModel):
    """``measurement.phase_split``: a prefill-only pass (one output token per prompt, same prompts)
    beside the full window. Decode = full − prefill; its per-token figures divide by the output
    tokens the full window made beyond the prefill pass's one per prompt."""

    prefill_duration_s: float
    prefill_output_tokens: int
    prefill_energy_j: float | None = None
    prefill_adjusted_energy_j: float | None = None
    prefill_energy_per_input_token_j: float | None = None
    decode_duration_s: float
    decode_output_tokens: int
    decode_energy_j: float | None = None
    decode_adjusted_energy_j: float | None = None
    decode_energy_per_output_token_j: float | None = None
    decode_adjusted_energy_per_output_token_j: float | None = None
    prefill_energy: EnergyMetrics | None = None
    prefill_flags: list[Flag] = Field(default_factory=list)


class TrafficMetrics(ContractModel):
    """``traffic_simulation``: the schedule the requests arrived on and how the engine kept up
    (``lem_harness.traffic``). Queueing delay: start of a request's processing − its arrival."""

    mode: Literal["poisson", "constant"]
    seed: int
    requests: int
    target_qps: float
    offered_qps: float | None = None  # the schedule's own rate: (requests - 1) / schedule_span_s
    achieved_qps: float | None = None  # requests / measured window duration
    schedule_span_s: float  # the last arrival's offset from the window's start
    queue_delay_mean_s: float
    queue_delay_p50_s: float
    queue_delay_p90_s: float
    queue_delay_p99_s: float
    queue_delay_max_s: float
    energy_per_request_j: float | None = None  # gross energy of the window / requests
    adjusted_energy_per_request_j: float | None = None  # idle-adjusted energy / requests


class SetupMetrics(ContractModel):
    load_duration_s: float | None = None
    load_energy_j: float | None = None
    build_duration_s: float | None = None  # engine build (TensorRT-LLM)
    build_energy_j: float | None = None
    engine_cache_hit: bool | None = None


class WarmupMetrics(ContractModel):
    mode: Literal["fixed", "convergence", "disabled"]
    iterations: int
    prompts: int
    duration_s: float
    final_cv: float | None = None
    converged: bool | None = None
    timed_out: bool = False
    step_prompts: int | None = None  # most prompts per warmup step (convergence mode)
    prompts_disjoint: bool = False  # warmup prompts share no leading cache block with the measured ones
    prefix_cache_reset: bool | None = None  # None: the engine keeps no cache across requests


IdlePowerSource = Literal["nvml_counter", "sampled_median"]


class BaselineMetrics(ContractModel):
    """Deep idle (before the model loads, no CUDA context) and ready idle (model loaded, warm)."""

    idle_power_w: float | None = None
    idle_power_source: IdlePowerSource = "sampled_median"
    duration_s: float | None = None
    samples: int = 0
    from_cache: bool = False
    age_s: float | None = None
    per_gpu_idle_power_w: dict[str, float] = Field(default_factory=dict)
    idle_temperature_c: dict[str, float] = Field(default_factory=dict)
    ready_idle_power_w: float | None = None
    ready_idle_power_source: IdlePowerSource | None = None
    ready_idle_duration_s: float | None = None


class Phase(ContractModel):
    """A span of the timeline, in the timeline's ``t_s`` clock."""

    name: Literal["baseline", "load", "build", "warmup", "ready_idle", "measure", "prefill"]
    start_s: float
    end_s: float


class GpuInfo(ContractModel):
    index: int  # NVML index on this machine (inside the container)
    uuid: str
    name: str
    driver_version: str | None = None
    cuda_driver_version: str | None = None
    power_limit_w: float | None = None
    sm_clock_mhz: float | None = None
    max_sm_clock_mhz: float | None = None
    memory_clock_mhz: float | None = None
    memory_total_bytes: int | None = None
    persistence_mode: bool | None = None
    compute_capability: str | None = None
    supports_energy_counter: bool | None = None


class Provenance(ContractModel):
    harness_version: str
    python_version: str
    packages: dict[str, str] = Field(default_factory=dict)
    cuda_version: str | None = None
    driver_version: str | None = None
    gpus: list[GpuInfo] = Field(default_factory=list)
    hostname: str
    config_hash: str
    random_seed: int
    image: ImageInfo | None = None
    device_kind: str  # nvml | simulated | none
    visible_devices: str | None = None  # CUDA_VISIBLE_DEVICES / NVIDIA_VISIBLE_DEVICES as seen
    cpu_threads: int | None = None  # CPUs the harness may use (affinity, cgroup quota); CPU engines' threads
    engine_args: dict[str, str | int | float | bool | None] = Field(default_factory=dict)  # as the engine ran


class RunResult(ContractModel):
    schema_version: str = CONTRACT_VERSION
    run_id: str
    campaign_id: str | None = None
    config_id: str
    config_name: str
    cycle: int
    backend: str
    status: Literal["ok", "failed"]
    error: ErrorInfo | None = None
    started_at: str  # ISO 8601, UTC
    finished_at: str
    config: ExperimentConfig | None = None
    metrics: InferenceMetrics | None = None
    energy: EnergyMetrics | None = None
    setup: SetupMetrics = Field(default_factory=SetupMetrics)
    warmup: WarmupMetrics | None = None
    baseline: BaselineMetrics | None = None
    phases: list[Phase] = Field(default_factory=list)
    phase_split: PhaseSplitMetrics | None = None
    traffic: TrafficMetrics | None = None  # traffic_simulation runs only
    flags: list[Flag] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    timeline_file: str | None = None
    outputs_file: str | None = None  # beside result.json when save_outputs is on
    provenance: Provenance | None = None


LivePhase = Literal["starting", "baseline", "loading", "warmup", "measuring", "writing"]


class LiveStatus(ContractModel):
    """``status.json``: what a running harness is doing now (read by the host's live view)."""

    phase: LivePhase
    phase_started_unix_s: float
    updated_unix_s: float
    warmup_batches: int | None = None
    warmup_cv: float | None = None  # rolling CV of warmup batch latency so far
    batches_done: int | None = None
    batches_total: int | None = None
    output_tokens: int | None = None  # generated in the measured window so far
    power_w: float | None = None  # latest sample, summed over the run's GPUs
    temperature_c: float | None = None  # latest sample, hottest of the run's GPUs


def contract_major(version: str) -> int:
    """Major number of a contract version string; -1 when it cannot be read."""
    try:
        return int(version.split(".", 1)[0])
    except ValueError:
        return -1
