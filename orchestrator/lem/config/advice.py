"""``validate_config``: advice about a valid configuration.

Severity ``info`` is worth knowing, ``warning`` is likely to hurt the measurement,
``error`` is a combination the engine is known to refuse (``lem config validate``
fails on it). The checks are small functions, one concern each.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

from lem.config.campaign import CampaignConfig
from lem.config.errors import ConfigWarning, Severity
from lem_harness.backend_sections import TensorRTConfig, VLLMConfig
from lem_harness.engines.tensorrt_args import (
    required_compute_capability,
    tensorrt_section,
    unsupported_settings,
)
from lem_harness.experiment import ExperimentConfig

LONG_OUTPUT_TOKENS = 4_096
HIGH_QPS = 100.0
MIN_BASELINE_S = 30.0
SHORT_GAP_S = 10.0

_Check = Callable[[ExperimentConfig], Iterator[ConfigWarning]]


def validate_config(cfg: ExperimentConfig | CampaignConfig) -> list[ConfigWarning]:
    """Advice about one experiment, or about a campaign's own settings (not its expansion)."""
    if isinstance(cfg, CampaignConfig):
        return list(campaign_advice(cfg))
    out: list[ConfigWarning] = []
    for check in _EXPERIMENT_CHECKS:
        out.extend(check(cfg))
    return out


def _w(param: str, severity: Severity, code: str, message: str) -> ConfigWarning:
    return ConfigWarning(param=param, message=message, severity=severity, code=code)


# --------------------------------------------------------------------------- shared settings


def _sampling(cfg: ExperimentConfig) -> Iterator[ConfigWarning]:
    resolved = cfg.decoder.resolved()
    if resolved["do_sample"]:
        return
    given = [k for k in ("temperature", "top_p", "top_k") if getattr(cfg.decoder, k) is not None]
    if given:
        yield _w(
            "decoder." + given[0],
            "warning",
            "SAMPLING_KEYS_IGNORED",
            f"decoder.{', decoder.'.join(given)} ignored: preset '{cfg.decoder.preset}' decodes greedily "
            "(do_sample false); set decoder.do_sample: true or choose a sampling preset",
        )


def _prompt_source(cfg: ExperimentConfig) -> Iterator[ConfigWarning]:
    """``dataset`` wins over ``prompts``; ``num_input_prompts`` wins over ``sample_size``."""
    if cfg.dataset is not None and cfg.prompts is not None:
        yield _w(
            "prompts",
            "warning",
            "PROMPTS_IGNORED",
            "both dataset and prompts are given: dataset takes precedence and prompts is ignored; keep one",
        )
    sample_size = cfg.prompt_source.sample_size
    if cfg.num_input_prompts is not None and sample_size is not None and sample_size != cfg.num_input_prompts:
        section = "dataset" if cfg.dataset is not None else "prompts"
        yield _w(
            "num_input_prompts",
            "warning",
            "PROMPT_COUNT_CONFLICT",
            f"num_input_prompts ({cfg.num_input_prompts}) and {section}.sample_size ({sample_size}) "
            f"disagree: num_input_prompts wins ({cfg.num_input_prompts} prompts are measured); keep one",
        )


def _long_output(cfg: ExperimentConfig) -> Iterator[ConfigWarning]:
    if cfg.max_output_tokens > LONG_OUTPUT_TOKENS:
        yield _w(
            "max_output_tokens",
            "warning",
            "LONG_OUTPUT",
            f"{cfg.max_output_tokens} output tokens per prompt makes each run long and KV-cache heavy; "
            "make sure the model's context fits max_input_tokens + max_output_tokens",
        )


def _traffic(cfg: ExperimentConfig) -> Iterator[ConfigWarning]:
    traffic = cfg.traffic_simulation
    if traffic.enabled and traffic.target_qps > HIGH_QPS:
        yield _w(
            "traffic_simulation.target_qps",
            "warning",
            "HIGH_QPS",
            f"{traffic.target_qps:g} requests per second arrive faster than most engines serve them: "
            "the window is then close to all prompts at once, with queueing delay growing through it",
        )


def _baseline(cfg: ExperimentConfig) -> Iterator[ConfigWarning]:
    if not cfg.baseline.enabled:
        yield _w(
            "baseline.enabled",
            "warning",
            "BASELINE_DISABLED",
            "no idle baseline: results carry gross energy only (no idle-adjusted energy)",
        )
    elif cfg.baseline.duration_seconds < MIN_BASELINE_S:
        yield _w(
            "baseline.duration_seconds",
            "warning",
            "SHORT_BASELINE",
            f"{cfg.baseline.duration_seconds:g} s of idle baseline is below the {MIN_BASELINE_S:g} s the "
            "methodology asks for; the idle power median will be noisy",
        )


def _warmup(cfg: ExperimentConfig) -> Iterator[ConfigWarning]:
    w = cfg.warmup
    if not w.enabled:
        yield _w(
            "warmup.enabled",
            "warning",
            "WARMUP_DISABLED",
            "no warmup: the first batches (allocation, kernel selection, compilation) are measured",
        )
    elif w.mode == "convergence" and w.max_prompts < w.window_size:
        yield _w(
            "warmup.max_prompts",
            "warning",
            "WARMUP_CANNOT_CONVERGE",
            f"warmup.max_prompts ({w.max_prompts}) is below warmup.window_size ({w.window_size}): the CV "
            "window never fills, so warmup always stops unconverged",
        )


def _instruments(cfg: ExperimentConfig) -> Iterator[ConfigWarning]:
    if not cfg.timeseries.enabled:
        yield _w(
            "timeseries.enabled",
            "info",
            "TIMESERIES_DISABLED",
            "no power timeline: no counter-vs-integral cross-check and no sample-coverage flag",
        )
    if cfg.measurement.device == "simulated":
        yield _w(
            "measurement.device",
            "warning",
            "SIMULATED_DEVICE",
            "energy comes from a simulated device (tests and demos only): energy_source: simulated",
        )


# --------------------------------------------------------------------------- backends


def _pytorch(cfg: ExperimentConfig) -> Iterator[ConfigWarning]:
    if cfg.pytorch is None:
        return
    if cfg.pytorch.attn_implementation == "flash_attention_2":
        yield _w(
            "pytorch.attn_implementation",
            "warning",
            "FLASH_ATTENTION_2",
            "flash_attention_2 needs the flash-attn package in the pytorch image and an Ampere or newer GPU "
            "(fp16/bf16 only); the run fails at load time without them",
        )
    if cfg.pytorch.batch_size > cfg.prompt_count:
        yield _w(
            "pytorch.batch_size",
            "info",
            "BATCH_LARGER_THAN_DATASET",
            f"batch_size {cfg.pytorch.batch_size} exceeds the {cfg.prompt_count} prompts: every "
            "batch is a single partial batch",
        )


def _vllm(cfg: ExperimentConfig) -> Iterator[ConfigWarning]:
    if cfg.vllm is not None:
        yield from _vllm_cache(cfg.vllm)
        yield from _vllm_quantization(cfg.vllm, cfg.model_name)
        yield from _vllm_scheduler(cfg.vllm)


def _vllm_cache(v: VLLMConfig) -> Iterator[ConfigWarning]:
    if v.block_size is not None and v.block_size > 32:
        yield _w(
            "vllm.block_size",
            "warning",
            "VLLM_BLOCK_SIZE",
            f"block_size {v.block_size}: vLLM's CUDA paged-attention kernels take block sizes up to 32 "
            "(64 and 128 are for other accelerators); use 16 or 32",
        )
    elif v.block_size == 8:
        yield _w(
            "vllm.block_size",
            "info",
            "VLLM_BLOCK_SIZE",
            "block_size 8: FlashAttention-based backends need a multiple of 16, so vLLM may fall back to a "
            "slower attention backend",
        )
    if v.kv_cache_dtype != "auto":
        yield _w(
            "vllm.kv_cache_dtype",
            "info",
            "VLLM_FP8_KV_CACHE",
            f"{v.kv_cache_dtype} KV cache halves KV memory (more sequences in flight, different energy) "
            "and may change outputs slightly; fast fp8 needs compute capability 8.9+ (Ada, Hopper)",
        )


_PREQUANTIZED = {
    "awq": "AWQ",
    "awq_marlin": "AWQ",
    "gptq": "GPTQ",
    "gptq_marlin": "GPTQ",
    "compressed-tensors": "llm-compressor (compressed-tensors)",
    "fbgemm_fp8": "FBGEMM fp8",
    "modelopt": "NVIDIA ModelOpt",
}


def _vllm_quantization(v: VLLMConfig, model: str) -> Iterator[ConfigWarning]:
    method = v.quantization
    if method is None:
        return
    if method in _PREQUANTIZED:
        named = method.split("-")[0].split("_")[0] in model.lower()
        yield _w(
            "vllm.quantization",
            "info" if named else "warning",
            "VLLM_QUANTIZED_CHECKPOINT",
            f"quantization '{method}' needs a checkpoint already quantized with {_PREQUANTIZED[method]}; "
            f"make sure '{model}' is one (vLLM reads the scheme from the checkpoint's config)",
        )
    else:  # fp8
        yield _w(
            "vllm.quantization",
            "info",
            "VLLM_FP8_ONLINE",
            "fp8 quantizes a 16-bit checkpoint when it loads; W8A8 kernels need compute capability 8.9+ "
            "(Ada, Hopper), older GPUs fall back to weight-only fp8 (Marlin)",
        )


def _vllm_scheduler(v: VLLMConfig) -> Iterator[ConfigWarning]:
    tokens = v.max_num_batched_tokens
    if tokens is None:
        return
    if tokens < v.max_num_seqs:
        yield _w(
            "vllm.max_num_batched_tokens",
            "warning",
            "VLLM_BATCHED_TOKENS",
            f"max_num_batched_tokens ({tokens}) is below max_num_seqs ({v.max_num_seqs}); vLLM refuses this",
        )
    if v.max_model_len is not None and tokens < v.max_model_len and v.enable_chunked_prefill is False:
        yield _w(
            "vllm.max_num_batched_tokens",
            "warning",
            "VLLM_BATCHED_TOKENS",
            f"max_num_batched_tokens ({tokens}) is below max_model_len ({v.max_model_len}) without "
            "chunked prefill; vLLM refuses this: raise it or set vllm.enable_chunked_prefill: true",
        )


def _tensorrt(cfg: ExperimentConfig) -> Iterator[ConfigWarning]:
    if cfg.backend != "tensorrt":
        return
    # the section's defaults when the file omits it (a top-level adapter is checked too)
    t = tensorrt_section(cfg)
    for what, (major, minor) in required_compute_capability(cfg):
        yield _w(
            what.split()[0],
            "warning",
            "TRT_QUANTIZATION_GPU" if what.startswith("tensorrt.quantization") else "TRT_PRECISION_GPU",
            f"{what} needs a GPU of compute capability {major}.{minor}+; the container checks the "
            "GPU before building and fails with a clear error on an older one",
        )
    for problem in unsupported_settings(cfg):  # what the pinned TensorRT-LLM release refuses
        key = re.match(r"tensorrt\.\w+|adapter\b", problem)
        yield _w(key.group(0) if key else "tensorrt", "error", "TRT_UNSUPPORTED", problem)
    yield from _tensorrt_limits(cfg, t)


def _tensorrt_limits(cfg: ExperimentConfig, t: TensorRTConfig) -> Iterator[ConfigWarning]:
    needed = cfg.max_input_tokens + cfg.max_output_tokens
    if t.max_input_len is not None and t.max_input_len < cfg.max_input_tokens:
        yield _w(
            "tensorrt.max_input_len",
            "error",
            "TRT_INPUT_LIMIT",
            f"max_input_len ({t.max_input_len}) is below max_input_tokens ({cfg.max_input_tokens}): the "
            "engine would reject the longest prompts; raise it or leave it unset",
        )
    if t.max_seq_len is not None and t.max_seq_len < needed:
        yield _w(
            "tensorrt.max_seq_len",
            "error",
            "TRT_SEQ_LIMIT",
            f"max_seq_len ({t.max_seq_len}) is below max_input_tokens + max_output_tokens ({needed})",
        )


_EXPERIMENT_CHECKS: tuple[_Check, ...] = (
    _sampling,
    _prompt_source,
    _long_output,
    _traffic,
    _baseline,
    _warmup,
    _instruments,
    _pytorch,
    _vllm,
    _tensorrt,
)


# --------------------------------------------------------------------------- campaign


def campaign_advice(c: CampaignConfig) -> Iterator[ConfigWarning]:
    e = c.execution
    if e.cycles < 3:
        yield _w(
            "execution.cycles",
            "warning",
            "FEW_CYCLES",
            f"{e.cycles} cycle(s): a 95 % interval across cycles needs at least 3 (2 gives a very wide one)",
        )
    if e.gap_mode == "fixed" and e.config_gap_seconds < SHORT_GAP_S:
        yield _w(
            "execution.config_gap_seconds",
            "warning",
            "SHORT_GAP",
            f"{e.config_gap_seconds:g} s between experiments: GPU heat from one run carries into the next",
        )
    if e.structure == "grouped":
        yield _w(
            "execution.structure",
            "info",
            "GROUPED_ORDER",
            "grouped runs each configuration's cycles back to back, so slow drift (temperature, clocks) "
            "is confounded with the configuration; interleaved or shuffled spreads it",
        )
    if e.warmup_prompts == 0:
        yield _w("execution.warmup_prompts", "warning", "WARMUP_DISABLED", "warmup_prompts 0 runs no warmup")
    if c.cold_start.drop_page_cache:
        yield _w(
            "cold_start.drop_page_cache",
            "info",
            "PAGE_CACHE_NEEDS_ROOT",
            "dropping the page cache needs root on the host (/proc/sys/vm/drop_caches); skipped otherwise",
        )
    if e.gap_mode == "thermal":
        yield _w(
            "execution.gap_mode",
            "info",
            "THERMAL_GAPS",
            "thermal gaps read GPU temperatures through NVML on the host; without NVML: fixed gaps",
        )
