"""The PyTorch engine on the tiny model (CPU): padding, token counts, streaming, settings, errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lem_harness.engines.base import EngineUnavailableError
from lem_harness.engines.pytorch import PyTorchEngine, resolve_model
from lem_harness.experiment import ExperimentConfig

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")


def _engine(model: Path, **changes: Any) -> PyTorchEngine:
    data: dict[str, Any] = {"model_name": str(model), "fp_precision": "float32", "max_output_tokens": 6}
    data.update(changes)
    return PyTorchEngine(ExperimentConfig.model_validate(data))


@pytest.fixture(scope="module")
def loaded(tiny_model_dir: Path) -> PyTorchEngine:
    engine = _engine(tiny_model_dir, pytorch={"batch_size": 2})
    engine.load()
    return engine


def test_the_tokenizer_loads_before_the_model(tiny_model_dir: Path) -> None:
    engine = _engine(tiny_model_dir)
    tokenizer = engine.load_tokenizer()
    ids = tokenizer.encode(["energy per token", "a"])
    assert len(ids) == 2 and all(isinstance(i, int) for i in ids[0])
    assert tokenizer.vocab_size == 512
    assert tokenizer.special_ids == frozenset({0, 1, 2, 3})


def test_left_padded_batches_generate_what_each_prompt_generates_alone(loaded: PyTorchEngine) -> None:
    prompts = [[10, 11, 12, 13, 14, 15], [20, 21]]
    together = loaded.generate(prompts)
    alone = [loaded.generate([p]) for p in prompts]
    assert [g.output_tokens for g in together.generations] == [a.generations[0].output_tokens for a in alone]
    assert [g.input_tokens for g in together.generations] == [6, 2]
    assert together.latency_s > 0


def test_min_equal_to_max_output_tokens_gives_fixed_length_outputs(tiny_model_dir: Path) -> None:
    engine = _engine(tiny_model_dir, max_output_tokens=9, min_output_tokens=9)
    engine.load()
    result = engine.generate([[5, 6, 7], [8, 9, 10, 11, 12]])
    assert [g.output_tokens for g in result.generations] == [9, 9]


def test_streaming_times_every_token(tiny_model_dir: Path) -> None:
    engine = _engine(tiny_model_dir, streaming=True, max_output_tokens=5, min_output_tokens=5)
    engine.load()
    result = engine.generate([[5, 6, 7], [8, 9]])
    for gen in result.generations:
        assert gen.ttft_s is not None and gen.latency_s is not None
        assert len(gen.itl_s) == 4  # 5 tokens, 4 gaps
        assert 0 < gen.ttft_s <= gen.latency_s <= result.latency_s
        assert gen.latency_s == pytest.approx(gen.ttft_s + sum(gen.itl_s), rel=1e-9)


def test_plan_batches_static_and_dynamic(tiny_model_dir: Path) -> None:
    prompts = [[1] * n for n in (3, 8, 5, 8, 1)]
    static = _engine(tiny_model_dir, pytorch={"batch_size": 2})
    dynamic = _engine(tiny_model_dir, pytorch={"batch_size": 2, "batching_strategy": "dynamic"})
    assert static.plan_batches(prompts) == [[0, 1], [2, 3], [4]]
    assert dynamic.plan_batches(prompts) == [[1, 3], [2, 0], [4]]


def test_decoder_presets_become_generation_settings(tiny_model_dir: Path) -> None:
    greedy = _engine(tiny_model_dir)
    greedy.load()
    assert greedy._gen_config.do_sample is False
    creative = _engine(tiny_model_dir, decoder={"preset": "creative", "top_k": 7})
    creative.load()
    cfg = creative._gen_config
    assert (cfg.do_sample, cfg.temperature, cfg.top_p, cfg.top_k) == (True, 1.2, 0.95, 7)
    assert creative.generate([[5, 6]]).generations[0].output_tokens >= 1


def test_flash_attention_without_the_package_is_a_clear_error(
    tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("lem_harness.engines.pytorch.importlib.util.find_spec", lambda name: None)
    engine = _engine(tiny_model_dir, pytorch={"attn_implementation": "flash_attention_2"})
    with pytest.raises(EngineUnavailableError, match="flash-attn package"):
        engine.load()


def test_a_dtype_the_cpu_cannot_run_falls_back_to_float32_with_a_note(
    tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(PyTorchEngine, "_cpu_supports", staticmethod(lambda torch_mod, dtype: False))
    engine = _engine(tiny_model_dir, fp_precision="float16")
    engine.load()
    assert engine._model.dtype == torch.float32
    assert engine.notes() == [
        "fp_precision float16 is not supported by this CPU build of torch: ran in float32 instead"
    ]


def test_float16_runs_on_cpu_where_torch_supports_it(tiny_model_dir: Path) -> None:
    engine = _engine(tiny_model_dir, fp_precision="float16")
    engine.load()
    assert engine._model.dtype == torch.float16 and engine.notes() == []
    assert engine.generate([[5, 6, 7]]).generations[0].output_tokens >= 1


def test_close_is_idempotent_and_versions_name_the_framework(tiny_model_dir: Path) -> None:
    engine = _engine(tiny_model_dir)
    engine.load()
    engine.close()
    engine.close()
    versions = engine.versions()
    assert versions["torch"] == torch.__version__ and "transformers" in versions
    assert engine.peak_memory_bytes() is None  # CPU


def test_model_references(tmp_path: Path) -> None:
    gguf = tmp_path / "m.Q4.gguf"
    gguf.write_bytes(b"GGUF")
    assert resolve_model(str(gguf)) == (str(tmp_path), "m.Q4.gguf")
    assert resolve_model("org/name") == ("org/name", None)
    with pytest.raises(FileNotFoundError, match="not installed"):
        resolve_model("package:no_such_package_here/x.gguf")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        resolve_model(str(tmp_path / "missing.gguf"))


def test_torch_compile_wraps_the_forward_with_the_configured_backend(tiny_model_dir: Path) -> None:
    engine = _engine(
        tiny_model_dir,
        max_output_tokens=3,
        min_output_tokens=3,
        pytorch={"torch_compile": "default", "torch_compile_backend": "eager"},
    )
    engine.load()
    assert hasattr(engine._model.forward, "_torchdynamo_orig_callable")  # a torch.compile wrapper
    assert [g.output_tokens for g in engine.generate([[5, 6, 7]]).generations] == [3]


def test_prefill_pass_generates_exactly_one_token_per_prompt(loaded: PyTorchEngine) -> None:
    batch = loaded.generate_prefill([[10, 11, 12, 13, 14, 15], [20, 21]])
    assert [(g.input_tokens, g.output_tokens) for g in batch.generations] == [(6, 1), (2, 1)]


def test_synchronize_waits_on_every_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 3)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: calls.append(device))
    engine = PyTorchEngine(ExperimentConfig(model_name="m", gpus=(0, 1, 2)))
    engine._device = "cuda"
    engine.synchronize()
    assert calls == [0, 1, 2]


def test_the_model_never_loads_beside_the_gpus_being_measured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)  # CUDA was not narrowed to gpus: [1]
    engine = PyTorchEngine(ExperimentConfig(model_name="m", gpus=(1,)))
    with pytest.raises(EngineUnavailableError, match="sees 4 CUDA device"):
        engine._check_visible_gpus(torch)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    engine._check_visible_gpus(torch)


def test_generated_ids_are_returned_and_decode_to_text(tiny_model_dir: Path) -> None:
    engine = _engine(tiny_model_dir, max_output_tokens=4, min_output_tokens=4, save_outputs=True)
    tokenizer = engine.load_tokenizer()
    engine.load()
    prompts = [[5, 6, 7], [8, 9]]
    alone = [engine.generate([p]).generations[0].output_ids for p in prompts]
    together = engine.generate(prompts).generations
    assert [g.output_ids for g in together] == alone  # left padding changes nothing
    assert all(len(ids) == 4 and all(isinstance(i, int) for i in ids) for ids in alone)
    texts = [tokenizer.decode(ids) for ids in alone]
    assert all(isinstance(t, str) for t in texts)
    assert tokenizer.decode(tokenizer.encode(["energy"])[0]).strip() == "energy"
