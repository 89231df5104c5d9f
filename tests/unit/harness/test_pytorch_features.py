"""The PyTorch engine's schema 3.0.0 features, run for real on CPU with the tiny model: sorted
batching, beam search, assisted generation, LoRA adapters, cache implementation, n-gram blocking,
``pytorch.extra``, and the bitsandbytes refusal without CUDA."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lem_harness.engines.base import EngineUnavailableError
from lem_harness.engines.batching import output_length
from lem_harness.engines.pytorch import PyTorchEngine
from lem_harness.experiment import ExperimentConfig
from tests.support.tiny_model import build_tiny_adapter, build_tiny_model

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

PROMPTS = [[10, 11, 12, 13, 14, 15], [20, 21]]


def _engine(model: Path, **changes: Any) -> PyTorchEngine:
    data: dict[str, Any] = {"model_name": str(model), "fp_precision": "float32", "max_output_tokens": 6}
    data.update(changes)
    engine = PyTorchEngine(ExperimentConfig.model_validate(data))
    engine.load()
    return engine


def _ids(engine: PyTorchEngine, prompt: list[int]) -> list[int]:
    """The tokens the engine's own model and generation settings produce for one prompt."""
    with torch.inference_mode():
        out = engine._model.generate(
            input_ids=torch.tensor([prompt]),
            attention_mask=torch.ones((1, len(prompt)), dtype=torch.long),
            generation_config=engine._gen_config,
            **({"assistant_model": engine._assistant} if engine._assistant is not None else {}),
        )
    return [int(t) for t in out[0, len(prompt) :]]


def test_sorted_batching_plans(tiny_model_dir: Path) -> None:
    prompts = [[1] * n for n in (3, 8, 5, 8, 1)]
    sorted_static = PyTorchEngine(
        ExperimentConfig(model_name="m", pytorch={"batch_size": 2, "batching_strategy": "sorted_static"})  # type: ignore[arg-type]
    )
    sorted_dynamic = PyTorchEngine(
        ExperimentConfig.model_validate(
            {
                "model_name": "m",
                "pytorch": {
                    "batch_size": 4,
                    "batching_strategy": "sorted_dynamic",
                    "max_tokens_per_batch": 16,
                },
            }
        )
    )
    assert sorted_static.plan_batches(prompts) == [[1, 3], [2, 0], [4]]
    assert sorted_dynamic.plan_batches(prompts) == [[1, 3], [2, 0, 4]]


def test_beam_search_counts_the_returned_sequence_only(tiny_model_dir: Path) -> None:
    engine = _engine(
        tiny_model_dir,
        max_output_tokens=5,
        min_output_tokens=5,
        pytorch={"batch_size": 2, "beam_search": {"num_beams": 3}},
    )
    assert (engine._gen_config.num_beams, engine._gen_config.num_return_sequences) == (3, 1)
    batch = engine.generate(PROMPTS)
    assert [(g.input_tokens, g.output_tokens) for g in batch.generations] == [(6, 5), (2, 5)]  # not 3 x 5


def test_beam_search_counts_the_winning_beam_up_to_its_eos(tmp_path: Path) -> None:
    # eos_scale 3: this model ends some outputs early, so the count is not just max_output_tokens
    model = build_tiny_model(tmp_path / "eos", eos_scale=3.0)
    beams = _engine(model, max_output_tokens=8, pytorch={"beam_search": {"num_beams": 4}})
    counted = [g.output_tokens for g in beams.generate([[p] for p in range(30, 40)]).generations]
    assert counted == [output_length(_ids(beams, [p]), beams._eos_ids) for p in range(30, 40)]
    assert counted == [3, 6, 8, 8, 1, 2, 8, 8, 8, 8]


def test_assisted_generation_outputs_what_the_main_model_outputs(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    draft = build_tiny_model(tmp_path / "draft", eos_scale=0.2)  # a different model: some drafts rejected
    assisted = _engine(
        tiny_model_dir,
        max_output_tokens=7,
        min_output_tokens=7,
        pytorch={"assisted_generation": {"model": str(draft), "num_tokens": 3}},
    )
    greedy = _engine(tiny_model_dir, max_output_tokens=7, min_output_tokens=7)
    assert assisted._assistant is not None
    draft_config = assisted._assistant.generation_config
    assert (draft_config.num_assistant_tokens, draft_config.assistant_confidence_threshold) == (3, 0.0)
    for prompt in PROMPTS:
        assert _ids(assisted, prompt) == _ids(greedy, prompt)  # greedy assisted decoding is lossless
        assert assisted.generate([prompt]).generations[0].output_tokens == 7


def test_assisted_streaming_times_accepted_tokens_together(tiny_model_dir: Path) -> None:
    # The draft is the main model itself: every drafted token is accepted, 3 + 1 per verification step.
    engine = _engine(
        tiny_model_dir,
        streaming=True,
        max_output_tokens=9,
        min_output_tokens=9,
        pytorch={"assisted_generation": {"model": str(tiny_model_dir), "num_tokens": 3}},
    )
    gen = engine.generate([PROMPTS[0]]).generations[0]
    assert gen.output_tokens == 9 and len(gen.itl_s) == 8
    # steps of 4 tokens (3 drafted and accepted + 1 from the main model), then the 9th: the tokens of
    # one step share its arrival time, so the gaps inside a step are exactly 0
    zeros = [i for i, gap in enumerate(gen.itl_s) if gap == 0.0]
    assert zeros == [0, 1, 2, 4, 5, 6]
    assert gen.ttft_s is not None and gen.latency_s is not None
    assert gen.latency_s == pytest.approx(gen.ttft_s + sum(gen.itl_s), rel=1e-9)


# peft 0.21.2 reads a property Transformers 5.24 deprecates (a FutureWarning, not an error)
@pytest.mark.filterwarnings("ignore:`is_gradient_checkpointing` is deprecated:FutureWarning")
def test_a_lora_adapter_changes_the_model(tmp_path: Path, tiny_model_dir: Path) -> None:
    adapter = build_tiny_adapter(tiny_model_dir, tmp_path / "lora")
    with_lora = _engine(tiny_model_dir, adapter=str(adapter), max_output_tokens=8)
    base = _engine(tiny_model_dir, max_output_tokens=8)
    assert type(with_lora._model).__name__ == "PeftModel"
    assert with_lora._model.peft_config["default"].r == 4
    changed = [p for p in PROMPTS if _ids(with_lora, p) != _ids(base, p)]
    assert changed == PROMPTS
    batch = with_lora.generate(PROMPTS)
    assert [g.output_tokens for g in batch.generations] == [
        output_length(_ids(with_lora, p), with_lora._eos_ids) for p in PROMPTS
    ]


def test_cache_implementation_ngram_blocking_and_extra_reach_generate(tiny_model_dir: Path) -> None:
    greedy = _engine(tiny_model_dir, max_output_tokens=12, min_output_tokens=12)
    first = _ids(greedy, PROMPTS[1])[0]
    engine = _engine(
        tiny_model_dir,
        max_output_tokens=12,
        min_output_tokens=12,
        pytorch={
            "cache_implementation": "static",
            "no_repeat_ngram_size": 1,
            "extra": {"suppress_tokens": [first]},
        },
    )
    cfg = engine._gen_config
    assert (cfg.cache_implementation, cfg.no_repeat_ngram_size, cfg.suppress_tokens) == ("static", 1, [first])
    ids = _ids(engine, PROMPTS[1])
    assert len(ids) == 12 and len(set(ids)) == 12 and first not in ids
    assert [g.output_tokens for g in engine.generate(PROMPTS).generations] == [12, 12]


def test_min_p_sampling_runs(tiny_model_dir: Path) -> None:
    engine = _engine(
        tiny_model_dir,
        decoder={"preset": "standard"},
        max_output_tokens=4,
        min_output_tokens=4,
        pytorch={"min_p": 0.2},
    )
    assert engine._gen_config.min_p == 0.2
    assert [g.output_tokens for g in engine.generate(PROMPTS).generations] == [4, 4]


@pytest.mark.parametrize("key", ["load_in_4bit", "load_in_8bit"])
def test_bitsandbytes_is_refused_without_cuda(tiny_model_dir: Path, key: str) -> None:
    engine = PyTorchEngine(
        ExperimentConfig.model_validate({"model_name": str(tiny_model_dir), "pytorch": {key: True}})
    )
    with pytest.raises(EngineUnavailableError) as caught:
        engine.load()
    assert str(caught.value) == (
        f"pytorch.{key} needs a CUDA GPU (bitsandbytes quantises on the GPU) and this process has none: "
        "run on a GPU or remove the key"
    )


def test_num_processes_must_fit_the_gpus() -> None:
    with pytest.raises(ValueError, match=r"pytorch.num_processes must be <= the number of gpus \(2\)"):
        ExperimentConfig.model_validate({"model_name": "m", "gpus": [0, 1], "pytorch": {"num_processes": 3}})


def test_two_processes_generate_what_one_does(tiny_model_dir: Path) -> None:
    changes: dict[str, Any] = {"max_output_tokens": 5, "streaming": True}
    prompts = [[10 + i] * (1 + i) for i in range(5)]
    one = _engine(tiny_model_dir, pytorch={"batch_size": 2}, **changes)
    two = _engine(tiny_model_dir, gpus=[0, 1], pytorch={"batch_size": 2, "num_processes": 2}, **changes)
    try:
        assert two._pool is not None and two._model is None
        assert two.plan_batches(prompts) == [[0, 1, 2, 3], [4]]  # 2 processes x batch_size 2
        expected = [
            g.output_tokens
            for b in one.plan_batches(prompts)
            for g in one.generate([prompts[i] for i in b]).generations
        ]
        merged = two.generate(prompts[:4])
        assert [g.input_tokens for g in merged.generations] == [1, 2, 3, 4]
        assert [g.output_tokens for g in merged.generations] + [
            two.generate([prompts[4]]).generations[0].output_tokens
        ] == expected
        assert all(g.ttft_s is not None and len(g.itl_s) == g.output_tokens - 1 for g in merged.generations)
        assert [g.output_tokens for g in two.generate_prefill(prompts[:3]).generations] == [1, 1, 1]
        assert two.peak_memory_bytes() is None  # CPU workers
    finally:
        two.close()
    assert two._pool is None
