"""The PyTorch section's generation, quantisation and passthrough keys, and ``adapter``, as the host
reports them (file, line, key, what to do)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lem.config.errors import ConfigError
from lem.config.loader import experiment_from_document
from lem.config.yaml_source import parse_yaml
from lem_harness.experiment import ExperimentConfig, with_absolute_paths


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        experiment_from_document(parse_yaml("model_name: m\n" + text, "f.yaml"))
    return [str(p) for p in caught.value.problems]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "pytorch:\n  load_in_4bit: true\n  load_in_8bit: true\n",
            "f.yaml:3: pytorch.load_in_4bit: must not be combined with pytorch.load_in_8bit (they are "
            "mutually "
            "exclusive): set one",
        ),
        (
            "pytorch:\n  load_in_8bit: true\n  bnb_4bit_quant_type: nf4\n",
            "f.yaml:4: pytorch.bnb_4bit_quant_type: is a 4-bit option: set pytorch.load_in_4bit: true or "
            "remove it",
        ),
        (
            "pytorch:\n  cache_implementation: statc\n",
            "f.yaml:3: pytorch.cache_implementation: 'statc' is not a cache implementation of Transformers "
            "5.24.0: "
            "did you mean 'static'? choose one of static, offloaded_static, sliding_window, hybrid, "
            "hybrid_chunked, "
            "offloaded_hybrid, offloaded_hybrid_chunked, dynamic, offloaded, quantized",
        ),
        (
            "pytorch:\n  min_p: 0.1\n",
            "f.yaml:3: pytorch.min_p: is a sampling filter, but this decoder is greedy: set "
            "decoder.do_sample: "
            "true (or a sampling preset) or remove pytorch.min_p",
        ),
        (
            "pytorch:\n  min_p: 1.5\n",
            "f.yaml:3: pytorch.min_p: must be <= 1.0 (got 1.5)",
        ),
        (
            "streaming: true\npytorch:\n  beam_search:\n    num_beams: 2\n",
            "f.yaml:2: streaming: must be false with pytorch.beam_search: Transformers streams no beam "
            "search (the "
            "winning beam is known only at the end); set streaming: false or disable beam_search",
        ),
        (
            "pytorch:\n  beam_search: {num_beams: 17}\n",
            "f.yaml:3: pytorch.beam_search.num_beams: must be <= 16 (got 17)",
        ),
        (
            "pytorch:\n  batch_size: 2\n  assisted_generation:\n    model: org/draft\n",
            "f.yaml:4: pytorch.assisted_generation: is for pytorch.batch_size 1 only (Transformers verifies "
            "draft "
            "tokens for one prompt at a time), not 2",
        ),
        (
            "pytorch:\n  beam_search: {num_beams: 2}\n  assisted_generation: {model: org/draft}\n",
            "f.yaml:3: pytorch.beam_search: must not be combined with pytorch.assisted_generation "
            "(Transformers' "
            "assisted generation decodes one hypothesis): keep one",
        ),
        (
            "pytorch:\n  no_repeat_ngram_size: 2\n  beam_search: {num_beams: 2, no_repeat_ngram_size: 3}\n",
            "f.yaml:3: pytorch.no_repeat_ngram_size: must equal pytorch.beam_search.no_repeat_ngram_size "
            "when both "
            "are given: keep one",
        ),
        (
            "pytorch:\n  extra:\n    typicl_p: 0.9\n",
            "f.yaml:4: pytorch.extra.typicl_p: is not a generation setting of Transformers 5.24.0; did you "
            "mean "
            "'typical_p'? (keys are GenerationConfig fields)",
        ),
        (
            "pytorch:\n  extra:\n    num_beams: 2\n",
            "f.yaml:4: pytorch.extra.num_beams: is set by lem: use pytorch.beam_search.num_beams",
        ),
        (
            "adapter: my-adapter\n",
            "f.yaml:2: adapter: 'my-adapter' is neither a hub id like 'org/adapter' nor a local path (start "
            "it "
            "with ./, ../, / or ~)",
        ),
    ],
)
def test_bad_values_are_reported_at_their_line(text: str, expected: str) -> None:
    assert problems(text) == [expected]


def test_an_adapter_on_another_backend_is_refused_not_ignored() -> None:
    assert problems("backend: vllm\nadapter: org/lora\n") == [
        "f.yaml:3: adapter: is applied by the pytorch and tensorrt backends only here, not vllm"
    ]


def test_valid_settings_validate() -> None:
    config = ExperimentConfig.model_validate(
        {
            "model_name": "m",
            "adapter": "org/lora",
            "decoder": {"preset": "standard"},
            "pytorch": {
                "batching_strategy": "sorted_static",
                "load_in_4bit": True,
                "bnb_4bit_compute_dtype": "bfloat16",
                "bnb_4bit_quant_type": "nf4",
                "bnb_4bit_use_double_quant": True,
                "cache_implementation": "static",
                "min_p": 0.05,
                "beam_search": {"num_beams": 2, "no_repeat_ngram_size": 3},
                "extra": {"typical_p": 0.9},
            },
        }
    )
    assert config.pytorch is not None and config.pytorch.resolved_no_repeat_ngram_size == 3
    assert config.pytorch.beam_search is not None and config.pytorch.beam_search.early_stopping is False


def test_local_adapter_and_draft_paths_are_made_absolute(tmp_path: Path) -> None:
    config = ExperimentConfig.model_validate(
        {
            "model_name": "org/m",
            "adapter": "./lora",
            "pytorch": {"assisted_generation": {"model": "../draft"}},
        }
    )
    moved = with_absolute_paths(config, tmp_path / "configs")
    assert moved.adapter == str(tmp_path / "configs" / "lora")
    assert moved.pytorch is not None and moved.pytorch.assisted_generation is not None
    assert moved.pytorch.assisted_generation.model == str(tmp_path / "draft")
    assert moved.pytorch.assisted_generation.num_tokens == 5
