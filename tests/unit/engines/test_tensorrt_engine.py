"""The TensorRT-LLM engine's framework-free parts: where engines are cached, request metrics."""

from __future__ import annotations

import json
import sys
from datetime import timedelta
from pathlib import Path
from types import ModuleType, SimpleNamespace

import pytest

from lem_harness.engines import tensorrt
from lem_harness.engines.tensorrt import TensorRTEngine, engine_cache_root, perf_generation
from lem_harness.engines.tensorrt_args import build_llm_kwargs, runtime_llm_kwargs
from lem_harness.experiment import ExperimentConfig


def config(**section: object) -> ExperimentConfig:
    return ExperimentConfig.model_validate({"model_name": "m", "backend": "tensorrt", "tensorrt": section})


def test_cache_root_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tensorrt, "CONTAINER_CACHE_DIR", tmp_path / "volume")
    monkeypatch.setattr(tensorrt, "USER_CACHE_DIR", tmp_path / "home-cache")
    assert engine_cache_root(config(engine_cache_dir="/cfg/dir"), {"LEM_ENGINE_CACHE_DIR": "/env"}) == Path(
        "/cfg/dir"
    )
    assert engine_cache_root(config(), {"LEM_ENGINE_CACHE_DIR": "/env"}) == Path("/env")
    assert engine_cache_root(config(), {}) == tmp_path / "home-cache"
    (tmp_path / "volume").mkdir()
    assert engine_cache_root(config(), {}) == tmp_path / "volume"


def test_explicit_cache_dir_wins(tmp_path: Path) -> None:
    assert TensorRTEngine(config(engine_cache_dir="/ignored"), cache_dir=tmp_path).cache_root == tmp_path


def timing(arrival: float, first: float, last: float) -> SimpleNamespace:
    return SimpleNamespace(
        arrival_time=timedelta(seconds=arrival),
        first_token_time=timedelta(seconds=first),
        last_token_time=timedelta(seconds=last),
    )


def test_perf_generation_uses_request_perf_metrics() -> None:
    completion = SimpleNamespace(
        token_ids=[5, 6, 7], request_perf_metrics=SimpleNamespace(timing_metrics=timing(100.0, 100.2, 101.5))
    )
    gen = perf_generation(SimpleNamespace(prompt_token_ids=[1, 2], outputs=[completion]))
    assert (gen.input_tokens, gen.output_tokens) == (2, 3)
    assert gen.latency_s == pytest.approx(1.5)
    assert gen.output_ids == (5, 6, 7)


def test_perf_generation_without_metrics() -> None:
    completion = SimpleNamespace(token_ids=[5], request_perf_metrics=None)
    gen = perf_generation(SimpleNamespace(prompt_token_ids=[1], outputs=[completion]))
    assert (gen.output_tokens, gen.latency_s) == (1, None)


def test_one_batch_of_every_prompt(tmp_path: Path) -> None:
    engine = TensorRTEngine(config(), cache_dir=tmp_path)
    assert engine.plan_batches([[1], [2]]) == [[0, 1]]
    assert engine.plan_batches([]) == []


# ------------------------------------------------------------------ issue 15: what reaches TensorRT-LLM


class Recorded:
    """A stand-in for a TensorRT-LLM config class: keeps the keyword arguments it was made with."""

    def __init__(self, **kwargs: object) -> None:
        self.kwargs = kwargs
        self.plugin_config = SimpleNamespace()


def fake_llmapi(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    llmapi = ModuleType("tensorrt_llm.llmapi")
    for name in ("BuildConfig", "CalibConfig", "KvCacheConfig", "QuantConfig"):
        setattr(llmapi, name, type(name, (Recorded,), {}))
    llmapi.QuantAlgo = {"FP8": "QuantAlgo.FP8", "W8A16": "QuantAlgo.W8A16"}  # type: ignore[attr-defined]
    lora_manager = ModuleType("tensorrt_llm.lora_manager")
    lora_manager.LoraConfig = type("LoraConfig", (Recorded,), {})  # type: ignore[attr-defined]
    request = ModuleType("tensorrt_llm.executor.request")
    request.LoRARequest = lambda *args: ("LoRARequest", *args)  # type: ignore[attr-defined]
    package = ModuleType("tensorrt_llm")
    package.llmapi = llmapi  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "tensorrt_llm", package)
    monkeypatch.setitem(sys.modules, "tensorrt_llm.llmapi", llmapi)
    monkeypatch.setitem(sys.modules, "tensorrt_llm.lora_manager", lora_manager)
    monkeypatch.setitem(sys.modules, "tensorrt_llm.executor", ModuleType("tensorrt_llm.executor"))
    monkeypatch.setitem(sys.modules, "tensorrt_llm.executor.request", request)
    return llmapi


def test_build_arguments_become_the_release_config_objects(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_llmapi(monkeypatch)
    cfg = ExperimentConfig.model_validate(
        {
            "model_name": "org/model",
            "backend": "tensorrt",
            "max_input_tokens": 100,
            "max_output_tokens": 20,
            "random_seed": 5,
            "tensorrt": {
                "quantization": "fp8",
                "calibration": {"num_samples": 64, "max_length": 256, "dataset": "cnn_dailymail"},
                "multiple_profiles": True,
                "strongly_typed": False,
                "max_output_len": 30,
                "extra_build_args": {"opt_num_tokens": 32},
            },
        }
    )
    out = tensorrt._api_objects(build_llm_kwargs(cfg))
    assert out["build_config"].kwargs == {
        "max_batch_size": 8,
        "max_input_len": 100,
        "max_seq_len": 130,
        "strongly_typed": False,
        "opt_num_tokens": 32,
    }
    assert vars(out["build_config"].plugin_config) == {
        "paged_kv_cache": True,
        "use_paged_context_fmha": False,
        "multiple_profiles": True,
    }
    assert out["quant_config"].kwargs == {"quant_algo": "QuantAlgo.FP8"}
    assert out["calib_config"].kwargs == {
        "calib_batches": 64,
        "calib_batch_size": 1,
        "calib_max_seq_length": 256,
        "random_seed": 5,
        "calib_dataset": "cnn_dailymail",
    }
    assert out["kv_cache_config"].kwargs == {"free_gpu_memory_fraction": 0.9, "enable_block_reuse": False}
    assert (out["model"], out["dtype"], out["tensor_parallel_size"]) == ("org/model", "float16", 1)


def test_runtime_arguments_pass_the_extra_args_untouched(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_llmapi(monkeypatch)
    cfg = config(
        extra_runtime_args={"scheduler_config": {"capacity_scheduler_policy": "GUARANTEED_NO_EVICT"}}
    )
    out = tensorrt._api_objects(runtime_llm_kwargs(cfg, "/cache/e"))
    assert out["scheduler_config"] == {
        "capacity_scheduler_policy": "GUARANTEED_NO_EVICT"
    }  # pydantic in TrtLlmArgs
    assert out["kv_cache_config"].kwargs == {"free_gpu_memory_fraction": 0.9, "enable_block_reuse": False}
    assert set(out) == {
        "model",
        "tokenizer",
        "tensor_parallel_size",
        "pipeline_parallel_size",
        "kv_cache_config",
        "enable_chunked_prefill",
        "scheduler_config",
    }


def test_prebuilt_engine_is_neither_built_nor_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(
        sys.modules, "tensorrt_llm", None
    )  # importing TensorRT-LLM would fail: build must not
    engine_dir = tmp_path / "engine"
    engine = TensorRTEngine(config(engine_path=str(engine_dir)), cache_dir=tmp_path / "cache")
    info = engine.build()
    assert (info.built, info.engine_cache_hit, info.notes) == (False, None, [f"prebuilt engine {engine_dir}"])
    assert engine._engine_dir == engine_dir
    assert not (tmp_path / "cache").exists()


def test_unsupported_settings_stop_the_engine(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"tensorrt\.draft_model"):
        TensorRTEngine(config(draft_model="org/small"), cache_dir=tmp_path)


def adapter_dir(tmp_path: Path, rank: object = 8) -> Path:
    path = tmp_path / "adapter"
    path.mkdir()
    (path / "adapter_config.json").write_text(json.dumps({"r": rank, "target_modules": ["q_proj", "v_proj"]}))
    return path


def lora_config(adapter: Path) -> ExperimentConfig:
    return ExperimentConfig.model_validate(
        {"model_name": "org/model", "backend": "tensorrt", "adapter": str(adapter)}
    )


def test_lora_adapter_builds_and_loads_with_the_release_lora_objects(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_llmapi(monkeypatch)
    adapter = adapter_dir(tmp_path, rank=16)
    engine = TensorRTEngine(lora_config(adapter), cache_dir=tmp_path / "cache")
    assert engine._lora_rank() == 16  # the adapter's own rank is the engine's max_lora_rank
    built = tensorrt._api_objects(build_llm_kwargs(engine.config, engine._lora_rank()))
    assert built["enable_lora"] is True
    assert built["lora_config"].kwargs == {"lora_dir": [str(adapter)], "max_lora_rank": 16}
    assert built["build_config"].kwargs["lora_config"].kwargs == {
        "lora_dir": [str(adapter)],
        "max_lora_rank": 16,
    }
    loaded = tensorrt._api_objects(runtime_llm_kwargs(engine.config, "/cache/e", engine._lora_rank()))
    assert (loaded["enable_lora"], loaded["lora_config"].kwargs) == (
        True,
        {"lora_dir": [str(adapter)], "max_lora_rank": 16},
    )
    assert tensorrt._lora_request(engine.config) == ("LoRARequest", "adapter", 1, str(adapter))
    assert tensorrt._lora_request(config()) is None


def test_every_request_carries_the_lora_request(tmp_path: Path) -> None:
    calls: list[dict[str, object]] = []

    class FakeLLM:
        def generate(self, prompts: list[list[int]], **kwargs: object) -> list[SimpleNamespace]:
            calls.append(kwargs)
            done = SimpleNamespace(token_ids=[9, 9], request_perf_metrics=None)
            return [SimpleNamespace(prompt_token_ids=p, outputs=[done]) for p in prompts]

    engine = TensorRTEngine(lora_config(adapter_dir(tmp_path)), cache_dir=tmp_path / "cache")
    engine._llm, engine._params, engine._prefill_params = FakeLLM(), "params", "prefill"
    engine._lora_request = "the-lora-request"
    result = engine.generate([[1, 2], [3]])
    engine.generate_prefill([[1, 2]])
    assert [g.output_tokens for g in result.generations] == [2, 2]
    assert calls == [
        {"sampling_params": "params", "use_tqdm": False, "lora_request": "the-lora-request"},
        {"sampling_params": "prefill", "use_tqdm": False, "lora_request": "the-lora-request"},
    ]


def test_an_adapter_without_a_rank_is_a_clear_error(tmp_path: Path) -> None:
    engine = TensorRTEngine(lora_config(adapter_dir(tmp_path, rank=None)), cache_dir=tmp_path / "cache")
    with pytest.raises(ValueError, match="no positive integer LoRA rank 'r' \\(got None\\)"):
        engine._lora_rank()
