"""Issue 15's vLLM keys: speculative decoding, offload, executor, attention, load format,
quantisation, logprobs, LoRA adapters and ``vllm.extra`` (pinned: vLLM 0.32)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from pydantic import ValidationError

from lem_harness.backend_sections import VLLMSpeculativeConfig
from lem_harness.engines.adapters import adapter_rank
from lem_harness.engines.base import BatchResult, Generation, SpeculativeCounts
from lem_harness.engines.vllm import VLLMEngine, resolve_adapter
from lem_harness.engines.vllm_args import (
    llm_kwargs,
    lora_rank_arg,
    sampling_kwargs,
    spec_counts,
    speculative_config,
)
from lem_harness.experiment import ExperimentConfig, with_absolute_paths
from lem_harness.metrics import inference_metrics, speculative_metrics

BASE_KWARGS = {
    "model": "org/model",
    "dtype": "float16",
    "seed": 42,
    "max_num_seqs": 256,
    "gpu_memory_utilization": 0.9,
    "tensor_parallel_size": 1,
    "pipeline_parallel_size": 1,
    "enforce_eager": False,
    "kv_cache_dtype": "auto",
}


def config(**fields: Any) -> ExperimentConfig:
    return ExperimentConfig.model_validate({"model_name": "org/model", "backend": "vllm", **fields})


def refusal(**fields: Any) -> str:
    with pytest.raises(ValidationError) as info:
        config(**fields)
    return str(info.value)


# --------------------------------------------------------------------------- mapping


def test_defaults_pass_none_of_the_new_arguments() -> None:
    cfg = config()
    assert llm_kwargs(cfg) == BASE_KWARGS
    assert "logprobs" not in sampling_kwargs(cfg)


def test_offload_executor_attention_load_format_and_quantization_map_to_engine_args() -> None:
    cfg = config(
        vllm={
            "cpu_offload_gb": 4,
            "distributed_backend": "mp",
            "attention": {"backend": "FLASHINFER"},
            "load_format": "safetensors",
            "quantization": "gptq_marlin",
        }
    )
    assert llm_kwargs(cfg) == {
        **BASE_KWARGS,
        "quantization": "gptq_marlin",
        "cpu_offload_gb": 4.0,
        "distributed_executor_backend": "mp",
        "attention_backend": "FLASHINFER",
        "load_format": "safetensors",
    }


def test_logprobs_go_to_sampling_params() -> None:
    assert sampling_kwargs(config(vllm={"logprobs": 5}))["logprobs"] == 5


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({}, {"method": "ngram", "num_speculative_tokens": 5}),
        (
            {"method": "ngram", "num_tokens": 3, "prompt_lookup_min": 2, "prompt_lookup_max": 4},
            {"method": "ngram", "num_speculative_tokens": 3, "prompt_lookup_min": 2, "prompt_lookup_max": 4},
        ),
        (
            {"method": "draft_model", "model": "org/small", "num_tokens": 4, "draft_tp_size": 1},
            {
                "method": "draft_model",
                "num_speculative_tokens": 4,
                "model": "org/small",
                "draft_tensor_parallel_size": 1,
            },
        ),
        (
            {"method": "eagle3", "model": "org/eagle3-head"},
            {"method": "eagle3", "num_speculative_tokens": 5, "model": "org/eagle3-head"},
        ),
    ],
)
def test_speculative_maps_to_speculative_config(spec: dict[str, Any], expected: dict[str, Any]) -> None:
    assert speculative_config(VLLMSpeculativeConfig.model_validate(spec)) == expected
    assert llm_kwargs(config(vllm={"speculative": spec}))["speculative_config"] == expected


def test_extra_is_passed_to_llm_as_given() -> None:
    kwargs = llm_kwargs(config(vllm={"extra": {"kv_offloading_size": 2.5, "disable_sliding_window": True}}))
    assert kwargs == {**BASE_KWARGS, "kv_offloading_size": 2.5, "disable_sliding_window": True}


def test_an_adapter_enables_lora() -> None:
    assert llm_kwargs(config(adapter="org/lora"))["enable_lora"] is True


@pytest.mark.parametrize(("rank", "arg"), [(1, 1), (2, 8), (8, 8), (9, 16), (64, 64), (300, 320), (512, 512)])
def test_lora_rank_rounds_up_to_an_allowed_max_lora_rank(rank: int, arg: int) -> None:
    assert lora_rank_arg(rank) == arg


def test_a_rank_above_vllms_largest_is_refused() -> None:
    with pytest.raises(ValueError, match=r"rank 513 exceeds vLLM 0.32's largest max_lora_rank \(512\)"):
        lora_rank_arg(513)


def test_adapter_rank_reads_r_from_the_peft_config() -> None:
    assert adapter_rank({"peft_type": "LORA", "r": 16}, "org/lora") == 16
    with pytest.raises(ValueError, match="peft_type='PREFIX_TUNING', r=None"):
        adapter_rank({"peft_type": "PREFIX_TUNING"}, "org/prefix")
    with pytest.raises(ValueError, match="r=0"):
        adapter_rank({"peft_type": "LORA", "r": 0}, "x")


def test_a_local_adapter_resolves_to_its_directory(tmp_path: Path) -> None:
    (tmp_path / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 8}))
    assert resolve_adapter(str(tmp_path)) == tmp_path
    with pytest.raises(FileNotFoundError, match=r"no adapter_config\.json"):
        resolve_adapter(str(tmp_path / "missing"))


def test_a_relative_adapter_path_is_made_absolute(tmp_path: Path) -> None:
    cfg = with_absolute_paths(config(adapter="./lora"), tmp_path)
    assert cfg.adapter == str(tmp_path / "lora")
    assert with_absolute_paths(config(adapter="org/lora"), tmp_path).adapter == "org/lora"


# --------------------------------------------------------------------------- validation


def test_swap_space_is_refused_with_the_reason() -> None:
    message = refusal(vllm={"swap_space": 4})
    assert "vllm.swap_space" in message
    assert "vLLM 0.32 has no CPU swap space" in message
    assert "kv_offloading_size" in message


@pytest.mark.parametrize(
    ("method", "hint"),
    [
        ("bitsandbytes", "no bitsandbytes support"),
        ("marlin", "gptq_marlin or awq_marlin"),
        ("squeezellm", "SqueezeLLM"),
    ],
)
def test_quantization_methods_vllm_dropped_are_refused(method: str, hint: str) -> None:
    assert hint in refusal(vllm={"quantization": method})


def test_an_unknown_quantization_lists_the_choices() -> None:
    assert "'awq_marlin'" in refusal(vllm={"quantization": "int3"})


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"model": "org/small"}, "speculative.model is for method draft_model, eagle or eagle3"),
        ({"draft_tp_size": 2}, "speculative.draft_tp_size is for a draft model"),
        (
            {"prompt_lookup_min": 5, "prompt_lookup_max": 2},
            "prompt_lookup_min (5) must be <= prompt_lookup_max (2)",
        ),
        ({"method": "eagle"}, "speculative.method eagle needs speculative.model"),
        (
            {"method": "draft_model", "model": "m", "prompt_lookup_max": 3},
            "prompt_lookup_max is for method ngram",
        ),
        ({"method": "medusa", "model": "m"}, "'ngram', 'draft_model', 'eagle' or 'eagle3'"),
        ({"num_tokens": 0}, "greater than or equal to 1"),
    ],
)
def test_speculative_is_validated(spec: dict[str, Any], message: str) -> None:
    assert message in refusal(vllm={"speculative": spec})


@pytest.mark.parametrize(
    ("vllm", "message"),
    [
        ({"logprobs": 21}, "less than or equal to 20"),
        ({"logprobs": 0}, "greater than or equal to 1"),
        ({"cpu_offload_gb": -1}, "greater than or equal to 0"),
        ({"distributed_backend": "nccl"}, "'mp' or 'ray'"),
        ({"attention": {"backend": "FLASH_ATTENTION"}}, "'FLASH_ATTN'"),
        ({"attention": {"flash_version": 3}}, "Extra inputs are not permitted"),
        ({"load_format": "gguf"}, "'dummy'"),
    ],
)
def test_new_fields_are_bounded(vllm: dict[str, Any], message: str) -> None:
    assert message in refusal(vllm=vllm)


def test_an_extra_typo_is_an_error_naming_the_closest_engine_argument() -> None:
    message = refusal(vllm={"extra": {"kv_offloading_siz": 2}})
    assert "vllm.extra" in message
    assert (
        "'kv_offloading_siz' is not an engine argument of vLLM 0.32 (did you mean 'kv_offloading_size'?)"
        in message
    )


def test_an_extra_key_lem_sets_names_the_lem_key() -> None:
    message = refusal(vllm={"extra": {"max_num_seqs": 8}})
    assert "'max_num_seqs' is set by lem from vllm.max_num_seqs: set it there, not in vllm.extra" in message
    assert "from adapter" in refusal(vllm={"extra": {"enable_lora": True}})
    assert "always false" in refusal(vllm={"extra": {"disable_log_stats": True}})


def test_an_extra_key_far_from_every_argument_has_no_hint() -> None:
    message = refusal(vllm={"extra": {"zzzzzz": 1}})
    assert "'zzzzzz' is not an engine argument of vLLM 0.32; vllm.extra takes" in message


# --------------------------------------------------------------------------- acceptance rate


def metric(name: str, value: int) -> SimpleNamespace:
    return SimpleNamespace(name=name, value=value)


def test_spec_counts_sum_the_counters_over_label_sets() -> None:
    metrics = [
        metric("vllm:spec_decode_num_drafts", 10),
        metric("vllm:spec_decode_num_draft_tokens", 30),
        metric("vllm:spec_decode_num_accepted_tokens", 12),
        metric("vllm:spec_decode_num_accepted_tokens", 3),  # a second engine's label set
        metric("vllm:num_requests_running", 4),
    ]
    assert spec_counts(metrics) == SpeculativeCounts(drafts=10, draft_tokens=30, accepted_tokens=15)
    assert spec_counts([metric("vllm:num_requests_running", 4)]) is None


def batch(spec: SpeculativeCounts | None) -> BatchResult:
    return BatchResult(
        generations=[Generation(input_tokens=4, output_tokens=8)], latency_s=1.0, speculative=spec
    )


def test_acceptance_rate_is_accepted_over_draft_tokens_of_the_measured_batches() -> None:
    batches = [batch(SpeculativeCounts(4, 12, 9)), batch(SpeculativeCounts(6, 18, 6)), batch(None)]
    spec = speculative_metrics(batches)
    assert spec is not None
    assert (spec.num_drafts, spec.draft_tokens, spec.accepted_tokens) == (10, 30, 15)
    assert spec.acceptance_rate == pytest.approx(0.5)
    assert spec.mean_acceptance_length == pytest.approx(2.5)  # 1 + 15 / 10
    assert inference_metrics(batches, 3.0).speculative == spec


def test_no_speculative_metrics_without_speculation_or_drafts() -> None:
    assert speculative_metrics([batch(None)]) is None
    empty = speculative_metrics([batch(SpeculativeCounts(0, 0, 0))])
    assert empty is not None
    assert (empty.acceptance_rate, empty.mean_acceptance_length) == (None, None)


class _CountingLLM:
    """``LLM.get_metrics`` and ``generate`` of an engine whose counters grow by 3 drafts per call."""

    def __init__(self) -> None:
        self.calls = 0
        self.lora: object = "unset"

    def get_metrics(self) -> list[SimpleNamespace]:
        d = 3 * self.calls
        return [
            metric("vllm:spec_decode_num_drafts", d),
            metric("vllm:spec_decode_num_draft_tokens", 3 * d),
            metric("vllm:spec_decode_num_accepted_tokens", 2 * d),
        ]

    def generate(self, prompts: list[Any], params: Any, use_tqdm: bool, lora_request: object) -> list[Any]:
        self.calls += 1
        self.lora = lora_request
        stats = SimpleNamespace(first_token_ts=0.0)
        return [
            SimpleNamespace(
                prompt_token_ids=p["prompt_token_ids"],
                outputs=[SimpleNamespace(token_ids=[1, 2])],
                metrics=stats,
            )
            for p in prompts
        ]


def test_each_batch_reports_only_its_own_drafts() -> None:
    engine = VLLMEngine(config(vllm={"speculative": {"num_tokens": 3}}))
    llm = _CountingLLM()
    engine._llm, engine._params = llm, object()
    first, second = engine.generate([[1, 2]]), engine.generate([[3, 4]])
    assert first.speculative == second.speculative == SpeculativeCounts(3, 9, 6)
    assert llm.lora is None


def test_no_counters_are_read_without_speculation() -> None:
    engine = VLLMEngine(config())
    engine._llm, engine._params = _CountingLLM(), object()
    assert engine.generate([[1, 2]]).speculative is None


def test_effective_args_read_speculation_lora_and_enum_backends() -> None:
    from enum import Enum

    from lem_harness.engines.vllm_args import effective_args

    class Backend(Enum):
        CPU_ATTN = 1

    vllm_config = SimpleNamespace(
        attention_config=SimpleNamespace(backend=Backend.CPU_ATTN),
        lora_config=SimpleNamespace(max_lora_rank=8),
        speculative_config=SimpleNamespace(method="ngram", num_speculative_tokens=3),
        load_config=SimpleNamespace(load_format="auto"),
        parallel_config=SimpleNamespace(distributed_executor_backend="uni"),
    )
    assert effective_args(vllm_config) == {
        "attention_backend": "CPU_ATTN",
        "max_lora_rank": 8,
        "speculative_method": "ngram",
        "num_speculative_tokens": 3,
        "load_format": "auto",
        "distributed_executor_backend": "uni",
    }
    assert "max_lora_rank" not in effective_args(SimpleNamespace(lora_config=None))
