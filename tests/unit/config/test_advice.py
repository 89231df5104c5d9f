"""validate_config: each piece of advice fires on its own trigger, with its code and severity."""

from __future__ import annotations

from typing import Any

import pytest

from lem.config import CampaignConfig, ExperimentConfig, validate_config
from lem_harness.experiment import CURRENT_SCHEMA_VERSION


def experiment(**data: Any) -> ExperimentConfig:
    return ExperimentConfig.model_validate(
        {"schema_version": CURRENT_SCHEMA_VERSION, "model_name": "m", **data}
    )


def codes(cfg: ExperimentConfig | CampaignConfig) -> list[tuple[str, str, str]]:
    return [(w.code, w.severity, w.param) for w in validate_config(cfg)]


def test_a_plain_experiment_gets_no_advice() -> None:
    assert validate_config(experiment()) == []


def test_schema_notices_come_from_loading_not_from_advice() -> None:
    # The schema version is judged once, where a file is read (lem.config.loader.schema_notices).
    assert validate_config(ExperimentConfig(model_name="m")) == []
    assert codes(experiment(schema_version="2.1.0")) == []


def test_prompt_source_conflicts_say_which_wins() -> None:
    both = experiment(num_input_prompts=50, dataset={"name": "ai_energy_score", "sample_size": 100})
    [warning] = validate_config(both)
    assert (warning.code, warning.param) == ("PROMPT_COUNT_CONFLICT", "num_input_prompts")
    assert "num_input_prompts wins (50 prompts are measured)" in warning.message
    assert both.prompt_count == 50
    two_sources = experiment(dataset={"name": "ai_energy_score"}, prompts={"type": "synthetic"})
    assert codes(two_sources) == [("PROMPTS_IGNORED", "warning", "prompts")]
    assert two_sources.prompt_source == two_sources.dataset
    assert experiment(prompts={"type": "synthetic", "sample_size": 7}).prompt_count == 7
    assert experiment().prompt_count == 100


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"decoder": {"preset": "deterministic", "temperature": 0.7, "top_k": 5}},
         ("SAMPLING_KEYS_IGNORED", "warning", "decoder.temperature")),
        ({"max_output_tokens": 8192}, ("LONG_OUTPUT", "warning", "max_output_tokens")),
        ({"traffic_simulation": {"enabled": True, "target_qps": 100.5}},
         ("HIGH_QPS", "warning", "traffic_simulation.target_qps")),
        ({"pytorch": {"attn_implementation": "flash_attention_2"}},
         ("FLASH_ATTENTION_2", "warning", "pytorch.attn_implementation")),
        ({"baseline": {"duration_seconds": 10}}, ("SHORT_BASELINE", "warning", "baseline.duration_seconds")),
        ({"baseline": {"enabled": False}}, ("BASELINE_DISABLED", "warning", "baseline.enabled")),
        ({"warmup": {"enabled": False}}, ("WARMUP_DISABLED", "warning", "warmup.enabled")),
        ({"warmup": {"min_prompts": 2, "max_prompts": 3, "window_size": 5}},
         ("WARMUP_CANNOT_CONVERGE", "warning", "warmup.max_prompts")),
        ({"timeseries": {"enabled": False}}, ("TIMESERIES_DISABLED", "info", "timeseries.enabled")),
        ({"measurement": {"device": "simulated"}}, ("SIMULATED_DEVICE", "warning", "measurement.device")),
        ({"pytorch": {"batch_size": 64}, "dataset": {"name": "ai_energy_score", "sample_size": 10}},
         ("BATCH_LARGER_THAN_DATASET", "info", "pytorch.batch_size")),
    ],
)  # fmt: skip
def test_shared_advice(data: dict[str, Any], expected: tuple[str, str, str]) -> None:
    assert codes(experiment(**data)) == [expected]


def test_sampling_keys_count_when_sampling_is_on() -> None:
    assert codes(experiment(decoder={"preset": "deterministic", "do_sample": True, "temperature": 0.7})) == []
    assert codes(experiment(decoder={"preset": "standard", "temperature": 0.7})) == []


@pytest.mark.parametrize(
    ("vllm", "expected"),
    [
        ({"block_size": 64}, [("VLLM_BLOCK_SIZE", "warning", "vllm.block_size")]),
        ({"block_size": 8}, [("VLLM_BLOCK_SIZE", "info", "vllm.block_size")]),
        ({"kv_cache_dtype": "fp8"}, [("VLLM_FP8_KV_CACHE", "info", "vllm.kv_cache_dtype")]),
        ({"quantization": "awq"}, [("VLLM_QUANTIZED_CHECKPOINT", "warning", "vllm.quantization")]),
        ({"quantization": "fp8"}, [("VLLM_FP8_ONLINE", "info", "vllm.quantization")]),
        ({"quantization": "gptq_marlin"}, [("VLLM_QUANTIZED_CHECKPOINT", "warning", "vllm.quantization")]),
        ({"quantization": "modelopt"}, [("VLLM_QUANTIZED_CHECKPOINT", "warning", "vllm.quantization")]),
        ({"max_num_seqs": 64, "max_num_batched_tokens": 32},
         [("VLLM_BATCHED_TOKENS", "warning", "vllm.max_num_batched_tokens")]),
        ({"max_model_len": 2048, "max_num_batched_tokens": 1024, "enable_chunked_prefill": False},
         [("VLLM_BATCHED_TOKENS", "warning", "vllm.max_num_batched_tokens")]),
        ({"max_model_len": 2048, "max_num_batched_tokens": 1024}, []),  # vLLM 0.32 chunks by default
        ({"max_model_len": 2048, "max_num_batched_tokens": 1024, "enable_chunked_prefill": True}, []),
    ],
)  # fmt: skip
def test_vllm_advice(vllm: dict[str, Any], expected: list[tuple[str, str, str]]) -> None:
    assert codes(experiment(backend="vllm", vllm=vllm)) == expected


def test_a_named_awq_checkpoint_only_gets_info() -> None:
    cfg = experiment(model_name="Qwen/Qwen2.5-7B-Instruct-AWQ", backend="vllm", vllm={"quantization": "awq"})
    assert codes(cfg) == [("VLLM_QUANTIZED_CHECKPOINT", "info", "vllm.quantization")]


@pytest.mark.parametrize(
    ("tensorrt", "expected"),
    [
        ({"quantization": "fp8"}, [("TRT_QUANTIZATION_GPU", "warning", "tensorrt.quantization")]),
        ({"max_input_len": 256}, [("TRT_INPUT_LIMIT", "error", "tensorrt.max_input_len")]),
        ({"max_seq_len": 600}, [("TRT_SEQ_LIMIT", "error", "tensorrt.max_seq_len")]),
        ({"kv_cache_type": "continuous", "enable_chunked_context": True},
         [("TRT_UNSUPPORTED", "error", "tensorrt.enable_chunked_context")]),
        ({"builder_opt_level": 5}, [("TRT_UNSUPPORTED", "error", "tensorrt.builder_opt_level")]),
        ({"max_input_len": 512, "max_seq_len": 640}, []),
    ],
)  # fmt: skip
def test_tensorrt_advice(tensorrt: dict[str, Any], expected: list[tuple[str, str, str]]) -> None:
    assert codes(experiment(backend="tensorrt", tensorrt=tensorrt)) == expected


def test_fp8_needs_compute_capability_8_9() -> None:
    (warning,) = validate_config(experiment(backend="tensorrt", tensorrt={"quantization": "fp8"}))
    assert "compute capability 8.9+" in warning.message


def campaign(**data: Any) -> CampaignConfig:
    base = {"schema_version": "3.0.0", "campaign_name": "c", "grid": {"backends": ["pytorch"]}}
    return CampaignConfig.model_validate({**base, **data})


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"execution": {"cycles": 1}}, ("FEW_CYCLES", "warning", "execution.cycles")),
        ({"execution": {"config_gap_seconds": 2}}, ("SHORT_GAP", "warning", "execution.config_gap_seconds")),
        ({"execution": {"structure": "grouped"}}, ("GROUPED_ORDER", "info", "execution.structure")),
        ({"execution": {"warmup_prompts": 0}}, ("WARMUP_DISABLED", "warning", "execution.warmup_prompts")),
        (
            {"cold_start": {"drop_page_cache": True}},
            ("PAGE_CACHE_NEEDS_ROOT", "info", "cold_start.drop_page_cache"),
        ),
        ({"execution": {"gap_mode": "thermal"}}, ("THERMAL_GAPS", "info", "execution.gap_mode")),
    ],
)  # fmt: skip
def test_campaign_advice(data: dict[str, Any], expected: tuple[str, str, str]) -> None:
    assert codes(campaign(**data)) == [expected]
