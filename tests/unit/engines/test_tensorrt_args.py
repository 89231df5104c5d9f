"""ExperimentConfig → TensorRT-LLM 1.0.0 LLM API arguments."""

from __future__ import annotations

from typing import Any

import pytest

from lem_harness.engines.adapters import adapter_rank
from lem_harness.engines.tensorrt_args import (
    build_llm_kwargs,
    build_params,
    lora_request_args,
    prefill_kwargs,
    required_compute_capability,
    runtime_llm_kwargs,
    sampling_kwargs,
    unsupported_settings,
)
from lem_harness.engines.tensorrt_names import (
    BUILD_CONFIG_FIELDS,
    CALIB_FIELDS,
    LEM_BUILD_FIELDS,
    LEM_RUNTIME_FIELDS,
    PLUGIN_FIELDS,
    RUNTIME_PASSTHROUGH,
)
from lem_harness.experiment import ExperimentConfig


def config(**fields: Any) -> ExperimentConfig:
    return ExperimentConfig.model_validate({"model_name": "org/model", "backend": "tensorrt", **fields})


def test_defaults_build_an_engine_sized_by_the_config_limits() -> None:
    cfg = config(max_input_tokens=512, max_output_tokens=128)
    assert build_llm_kwargs(cfg) == {
        "model": "org/model",
        "dtype": "float16",
        "tensor_parallel_size": 1,
        "pipeline_parallel_size": 1,
        "build_config": {
            "max_batch_size": 8,
            "max_input_len": 512,
            "max_seq_len": 640,
            "strongly_typed": True,
            "plugin_config": {
                "paged_kv_cache": True,
                "use_paged_context_fmha": False,
                "multiple_profiles": False,
            },
        },
        "kv_cache_config": {"free_gpu_memory_fraction": 0.9, "enable_block_reuse": False},
    }


def test_every_tensorrt_field_maps_onto_its_engine_argument() -> None:
    cfg = config(
        gpus=[0, 1, 2, 3],
        fp_precision="bfloat16",
        tensorrt={
            "max_batch_size": 64,
            "max_input_len": 1024,
            "max_seq_len": 2048,
            "max_num_tokens": 8192,
            "tp_size": 2,
            "pp_size": 2,
            "quantization": "int4_awq",
            "kv_cache_type": "paged",
            "enable_chunked_context": True,
            "enable_kv_cache_reuse": True,
            "gpu_memory_utilization": 0.75,
        },
    )
    assert build_llm_kwargs(cfg) == {
        "model": "org/model",
        "dtype": "bfloat16",
        "tensor_parallel_size": 2,
        "pipeline_parallel_size": 2,
        "build_config": {
            "max_batch_size": 64,
            "max_input_len": 1024,
            "max_seq_len": 2048,
            "max_num_tokens": 8192,
            "strongly_typed": True,
            "plugin_config": {
                "paged_kv_cache": True,
                "use_paged_context_fmha": True,
                "multiple_profiles": False,
            },
        },
        "kv_cache_config": {"free_gpu_memory_fraction": 0.75, "enable_block_reuse": True},
        "quant_config": {"quant_algo": "W4A16_AWQ"},
        "calib_config": {
            "calib_batches": 512,
            "calib_batch_size": 1,
            "calib_max_seq_length": 2048,
            "random_seed": 42,
        },
    }
    assert runtime_llm_kwargs(cfg, "/cache/abc") == {
        "model": "/cache/abc",
        "tokenizer": "org/model",
        "tensor_parallel_size": 2,
        "pipeline_parallel_size": 2,
        "kv_cache_config": {"free_gpu_memory_fraction": 0.75, "enable_block_reuse": True},
        "enable_chunked_prefill": True,
    }


@pytest.mark.parametrize(("quantization", "algo"), [("fp8", "FP8"), ("int8_sq", "W8A8_SQ_PER_CHANNEL")])
def test_quantisation_algorithms(quantization: str, algo: str) -> None:
    kwargs = build_llm_kwargs(config(tensorrt={"quantization": quantization}))
    assert kwargs["quant_config"] == {"quant_algo": algo}


def test_build_params_change_with_anything_that_shapes_the_engine() -> None:
    base = build_params(config())
    assert build_params(config()) == base
    assert build_params(config(tensorrt={"max_batch_size": 16})) != base
    assert build_params(config(fp_precision="bfloat16")) != base
    assert build_params(config(tensorrt={"quantization": "fp8"})) != base
    # runtime-only settings do not force a rebuild
    assert build_params(config(tensorrt={"gpu_memory_utilization": 0.5, "force_rebuild": True})) == base


def test_greedy_sampling_is_top_k_one() -> None:
    assert sampling_kwargs(config(max_output_tokens=50)) == {
        "max_tokens": 50,
        "ignore_eos": False,
        "repetition_penalty": 1.0,
        "seed": 42,
        "detokenize": False,
        "return_perf_metrics": True,
        "top_k": 1,
    }


def test_fixed_length_and_sampling_settings() -> None:
    kwargs = sampling_kwargs(
        config(
            max_output_tokens=20,
            min_output_tokens=20,
            random_seed=3,
            decoder={"preset": "factual", "top_k": 7},
        )
    )
    assert kwargs == {
        "max_tokens": 20,
        "min_tokens": 20,
        "ignore_eos": True,
        "repetition_penalty": 1.0,
        "seed": 3,
        "detokenize": False,
        "return_perf_metrics": True,
        "temperature": 0.3,
        "top_p": 0.9,
        "top_k": 7,
    }


def test_supported_defaults_have_no_problems() -> None:
    assert unsupported_settings(config()) == []


def test_unsupported_settings_say_what_to_change() -> None:
    cfg = config(
        max_input_tokens=100,
        tensorrt={
            "builder_opt_level": 5,
            "kv_cache_type": "continuous",
            "enable_chunked_context": True,
            "enable_kv_cache_reuse": True,
            "max_seq_len": 100,
        },
    )
    problems = unsupported_settings(cfg)
    assert len(problems) == 4
    assert "builder_opt_level 5" in problems[0] and "set it to 3" in problems[0]
    assert "set tensorrt.kv_cache_type to paged" in problems[1]
    assert "enable_kv_cache_reuse needs tensorrt.kv_cache_type: paged" in problems[2]
    assert "max_seq_len (100) must exceed max_input_len (100)" in problems[3]


def test_required_compute_capability() -> None:
    assert required_compute_capability(config()) == []
    assert required_compute_capability(config(fp_precision="bfloat16", tensorrt={"quantization": "fp8"})) == [
        ("tensorrt.quantization fp8", (8, 9)),
        ("fp_precision bfloat16", (8, 0)),
    ]


def test_other_backend_is_refused() -> None:
    with pytest.raises(ValueError, match="not 'tensorrt'"):
        build_params(ExperimentConfig(model_name="m", backend="vllm"))


def test_every_eos_id_stops_a_request_like_the_other_engines() -> None:
    # Llama 3 lists three EOS ids; the LLM API alone stops on the tokenizer's one
    kwargs = sampling_kwargs(config(max_output_tokens=50), eos_ids={128009, 128001, 128008})
    assert kwargs["stop_token_ids"] == [128001, 128008, 128009]
    fixed = sampling_kwargs(config(max_output_tokens=50, min_output_tokens=50), eos_ids={2})
    assert "stop_token_ids" not in fixed and fixed["ignore_eos"] is True


def test_prefill_pass_makes_exactly_one_token() -> None:
    full = sampling_kwargs(config(max_output_tokens=50, min_output_tokens=10), eos_ids={2})
    assert prefill_kwargs(full) == {
        **{k: v for k, v in full.items() if k not in ("min_tokens", "stop_token_ids")},
        "max_tokens": 1,
        "ignore_eos": True,
    }


# --------------------------------------------------------------------------- issue 15


def test_new_build_keys_map_onto_build_config() -> None:
    cfg = config(
        max_input_tokens=256,
        max_output_tokens=64,
        tensorrt={
            "max_input_len": 300,
            "max_output_len": 100,
            "strongly_typed": False,
            "multiple_profiles": True,
            "extra_build_args": {"opt_num_tokens": 512, "weight_streaming": True},
        },
    )
    assert build_llm_kwargs(cfg)["build_config"] == {
        "max_batch_size": 8,
        "max_input_len": 300,
        "max_seq_len": 400,  # max_input_len + max_output_len: 1.0.0's BuildConfig has no max_output_len
        "strongly_typed": False,
        "plugin_config": {"paged_kv_cache": True, "use_paged_context_fmha": False, "multiple_profiles": True},
        "opt_num_tokens": 512,
        "weight_streaming": True,
    }
    assert unsupported_settings(cfg) == []


def test_max_output_len_without_max_input_len_adds_to_max_input_tokens() -> None:
    cfg = config(max_input_tokens=256, max_output_tokens=64, tensorrt={"max_output_len": 64})
    assert build_params(cfg)["build_config"]["max_seq_len"] == 320


def test_max_output_len_problems() -> None:
    both = config(max_output_tokens=64, tensorrt={"max_output_len": 64, "max_seq_len": 2000})
    assert unsupported_settings(both) == [
        "tensorrt.max_output_len and tensorrt.max_seq_len both set the engine's sequence limit "
        "(max_seq_len = max_input_len + max_output_len): keep one"
    ]
    short = config(max_output_tokens=64, tensorrt={"max_output_len": 32})
    assert unsupported_settings(short) == [
        "tensorrt.max_output_len (32) is below max_output_tokens (64): the engine would cut every "
        "output short; raise it or leave it unset"
    ]


def test_int8_weight_only_needs_no_calibration() -> None:
    cfg = config(tensorrt={"quantization": "int8_weight_only"})
    kwargs = build_llm_kwargs(cfg)
    assert kwargs["quant_config"] == {"quant_algo": "W8A16"}
    assert "calib_config" not in kwargs
    assert required_compute_capability(cfg) == [("tensorrt.quantization int8_weight_only", (8, 0))]
    assert unsupported_settings(cfg) == []


def test_int4_gptq_is_refused_with_the_way_to_run_it() -> None:
    cfg = config(tensorrt={"quantization": "int4_gptq", "calibration": {"num_samples": 64}})
    assert unsupported_settings(cfg) == [
        "tensorrt.quantization int4_gptq: TensorRT-LLM 1.0.0's LLM API cannot build an int4 GPTQ engine "
        "(it neither quantises to GPTQ nor reads a GPTQ checkpoint's quantization_config); build the engine "
        "with TensorRT-LLM's convert_checkpoint.py --weight_only_precision int4_gptq and trtllm-build, then "
        "give its directory as tensorrt.engine_path (without tensorrt.quantization)"
    ]
    assert "quant_config" not in build_llm_kwargs(cfg)
    assert required_compute_capability(cfg) == []


def test_calibration_maps_onto_calib_config() -> None:
    cfg = config(
        random_seed=7,
        tensorrt={
            "quantization": "int8_sq",
            "calibration": {"dataset": "/data/calib", "num_samples": 128, "max_length": 1024},
        },
    )
    assert build_llm_kwargs(cfg)["calib_config"] == {
        "calib_batches": 128,
        "calib_batch_size": 1,
        "calib_max_seq_length": 1024,
        "random_seed": 7,
        "calib_dataset": "/data/calib",
    }
    assert build_params(cfg)["calib_config"] == build_llm_kwargs(cfg)["calib_config"]
    assert unsupported_settings(cfg) == []


def test_calibrated_quantisation_without_calibration_uses_the_defaults() -> None:
    # dataset left to TensorRT-LLM's own default; 512 samples of at most 2048 tokens (schema 3.0.0's defaults)
    assert build_llm_kwargs(config(tensorrt={"quantization": "fp8"}))["calib_config"] == {
        "calib_batches": 512,
        "calib_batch_size": 1,
        "calib_max_seq_length": 2048,
        "random_seed": 42,
    }
    assert build_params(config())["calib_config"] is None
    assert build_params(config(tensorrt={"quantization": "fp8", "calibration": {"num_samples": 64}})) != (
        build_params(config(tensorrt={"quantization": "fp8"}))
    )


@pytest.mark.parametrize("quantization", ["none", "int8_weight_only"])
def test_calibration_that_would_be_ignored_is_refused(quantization: str) -> None:
    cfg = config(tensorrt={"quantization": quantization, "calibration": {"num_samples": 64}})
    assert unsupported_settings(cfg) == [
        "tensorrt.calibration is only used by the quantisations TensorRT-LLM calibrates (fp8, int4_awq, "
        f"int8_sq); with tensorrt.quantization {quantization} it would be ignored: remove it"
    ]


def test_calibration_bounds() -> None:
    with pytest.raises(ValueError, match="num_samples"):
        config(tensorrt={"quantization": "fp8", "calibration": {"num_samples": 32}})
    with pytest.raises(ValueError, match="split"):
        config(tensorrt={"quantization": "fp8", "calibration": {"split": "train"}})


def test_prebuilt_engine_is_loaded_as_built() -> None:
    cfg = config(tensorrt={"engine_path": "/engines/llama", "enable_kv_cache_reuse": True, "tp_size": 1})
    assert unsupported_settings(cfg) == []
    assert runtime_llm_kwargs(cfg, "/engines/llama") == {
        "model": "/engines/llama",
        "tokenizer": "org/model",
        "tensor_parallel_size": 1,
        "pipeline_parallel_size": 1,
        "kv_cache_config": {"free_gpu_memory_fraction": 0.9, "enable_block_reuse": True},
        "enable_chunked_prefill": False,
    }


def test_prebuilt_engine_refuses_every_build_setting_it_would_ignore() -> None:
    cfg = config(
        tensorrt={
            "engine_path": "/engines/llama",
            "max_batch_size": 8,  # even at its default: given, so the user expects it to apply
            "quantization": "fp8",
            "multiple_profiles": True,
            "extra_build_args": {"opt_num_tokens": 64},
        }
    )
    assert unsupported_settings(cfg) == [
        "tensorrt.engine_path loads a prebuilt engine, which would ignore tensorrt.max_batch_size, "
        "tensorrt.multiple_profiles, tensorrt.quantization, tensorrt.extra_build_args (they shape an "
        "engine lem builds): remove them, or remove engine_path to build from model_name"
    ]


def test_draft_model_is_refused_with_the_reason() -> None:
    problems = unsupported_settings(config(tensorrt={"draft_model": "org/small", "num_draft_tokens": 4}))
    assert len(problems) == 1
    assert problems[0].startswith("tensorrt.draft_model: TensorRT-LLM 1.0.0's LLM API runs a draft model")
    assert "only on its PyTorch backend" in problems[0] and "backend: vllm" in problems[0]


def test_extra_runtime_args_pass_through() -> None:
    cfg = config(
        tensorrt={"extra_runtime_args": {"iter_stats_max_iterations": 100, "trust_remote_code": True}}
    )
    kwargs = runtime_llm_kwargs(cfg, "/cache/abc")
    assert kwargs["iter_stats_max_iterations"] == 100 and kwargs["trust_remote_code"] is True
    assert "iter_stats_max_iterations" not in build_llm_kwargs(cfg)  # runtime only: no rebuild
    assert build_params(cfg) == build_params(config())
    assert unsupported_settings(cfg) == []


def test_passthrough_typo_is_an_error_with_did_you_mean() -> None:
    cfg = config(
        tensorrt={
            "extra_build_args": {"opt_num_token": 64},
            "extra_runtime_args": {"iter_stat_max_iterations": 5, "zzz": 1},
        }
    )
    assert unsupported_settings(cfg) == [
        "tensorrt.extra_build_args.opt_num_token is not an argument of TensorRT-LLM 1.0.0: did you mean "
        "'opt_num_tokens'?",
        "tensorrt.extra_runtime_args.iter_stat_max_iterations is not an argument of TensorRT-LLM 1.0.0: "
        "did you mean 'iter_stats_max_iterations'?",
        "tensorrt.extra_runtime_args.zzz is not an argument of TensorRT-LLM 1.0.0: the accepted keys: "
        + ", ".join(sorted(RUNTIME_PASSTHROUGH)),
    ]


def test_passthrough_of_a_key_lem_sets_names_the_lem_key() -> None:
    cfg = config(
        tensorrt={
            "extra_build_args": {"max_batch_size": 4, "auto_parallel_config": {"world_size": 2}},
            "extra_runtime_args": {"kv_cache_config": {}},
        }
    )
    assert unsupported_settings(cfg) == [
        "tensorrt.extra_build_args.max_batch_size is set by lem: use tensorrt.max_batch_size",
        "tensorrt.extra_runtime_args.kv_cache_config is set by lem: use tensorrt.gpu_memory_utilization, "
        "tensorrt.enable_kv_cache_reuse",
        "tensorrt.extra_build_args.auto_parallel_config: only plain values (number, string, true/false, "
        "null) pass through to BuildConfig",
    ]


def test_every_build_config_name_is_either_lems_or_passable() -> None:
    # the pinned table: what lem sets itself is a BuildConfig field too, and every other field passes
    assert set(LEM_BUILD_FIELDS) <= BUILD_CONFIG_FIELDS
    for name in sorted(BUILD_CONFIG_FIELDS - set(LEM_BUILD_FIELDS)):
        assert unsupported_settings(config(tensorrt={"extra_build_args": {name: 1}})) == [], name
    for name in sorted(LEM_BUILD_FIELDS):
        [problem] = unsupported_settings(config(tensorrt={"extra_build_args": {name: 1}}))
        assert problem == f"tensorrt.extra_build_args.{name} is set by lem: use {LEM_BUILD_FIELDS[name]}"
    for name in sorted(RUNTIME_PASSTHROUGH):
        assert unsupported_settings(config(tensorrt={"extra_runtime_args": {name: 1}})) == [], name
    assert not RUNTIME_PASSTHROUGH & set(LEM_RUNTIME_FIELDS)


def test_every_key_lem_maps_is_in_the_pinned_tables() -> None:
    cfg = config(
        tensorrt={"max_num_tokens": 64, "quantization": "fp8", "multiple_profiles": True},
    )
    kwargs = build_llm_kwargs(cfg)
    assert set(kwargs["build_config"]) - {"plugin_config"} <= BUILD_CONFIG_FIELDS
    assert set(kwargs["build_config"]["plugin_config"]) == PLUGIN_FIELDS
    assert set(kwargs) <= set(LEM_RUNTIME_FIELDS)
    assert set(kwargs["calib_config"]) == {*CALIB_FIELDS.values(), "calib_batch_size", "random_seed"} - {
        "calib_dataset"
    }
    assert set(runtime_llm_kwargs(cfg, "/e")) <= set(LEM_RUNTIME_FIELDS)


def test_lora_adapter_maps_onto_lora_config_build_and_runtime() -> None:
    cfg = config(adapter="/adapters/sql")
    lora = {"lora_dir": ["/adapters/sql"], "max_lora_rank": 16}
    kwargs = build_llm_kwargs(cfg, lora_rank=16)
    assert (kwargs["enable_lora"], kwargs["lora_config"], kwargs["build_config"]["lora_config"]) == (
        True,
        lora,
        lora,
    )
    assert build_params(cfg, lora_rank=16)["lora_config"] == lora
    assert build_params(cfg, lora_rank=16) != build_params(
        config(), lora_rank=16
    )  # a LoRA engine is another engine
    assert build_params(cfg, lora_rank=16) != build_params(cfg, lora_rank=8)
    runtime = runtime_llm_kwargs(cfg, "/cache/e", lora_rank=16)
    assert (runtime["enable_lora"], runtime["lora_config"]) == (True, lora)
    assert lora_request_args(cfg) == ("adapter", 1, "/adapters/sql")
    assert unsupported_settings(cfg) == []


def test_no_adapter_no_lora() -> None:
    assert lora_request_args(config()) is None
    assert "enable_lora" not in build_llm_kwargs(config(), lora_rank=16)
    assert "lora_config" not in runtime_llm_kwargs(config(), "/e", lora_rank=16)
    assert build_params(config())["lora_config"] is None


def test_adapter_needs_its_rank() -> None:
    with pytest.raises(ValueError, match="needs its rank"):
        build_llm_kwargs(config(adapter="/adapters/sql"))
    assert adapter_rank({"r": 8, "lora_alpha": 16}) == 8
    for bad in ({}, {"r": 0}, {"r": True}, {"r": "8"}):
        with pytest.raises(ValueError, match="no positive integer LoRA rank"):
            adapter_rank(bad)


def test_hub_adapter_is_refused_for_tensorrt() -> None:
    assert unsupported_settings(config(adapter="org/sql-lora")) == [
        "adapter 'org/sql-lora': TensorRT-LLM 1.0.0's LoRARequest reads a local directory and downloads "
        "nothing; download the adapter and give its path (./, ../, / or ~)"
    ]
