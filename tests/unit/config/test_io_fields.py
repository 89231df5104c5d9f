"""Issue 15's prompt and output keys at load time: values, defaults and the messages of bad input."""

from __future__ import annotations

import pytest

from lem.config import ConfigError
from lem.config.loader import experiment_from_document
from lem.config.yaml_source import parse_yaml
from lem_harness.experiment import ExperimentConfig
from lem_harness.prompt_sources import DatasetConfig, HubPrompts


def load(text: str) -> ExperimentConfig:
    return experiment_from_document(parse_yaml(text, "x.yaml"))


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(text)
    return [str(p) for p in info.value.problems]


def test_defaults_keep_outputs_off_and_metadata_empty() -> None:
    cfg = load("model_name: m\n")
    assert (cfg.save_outputs, cfg.decode_token_to_text, cfg.extra_metadata) == (False, False, {})


def test_outputs_metadata_and_a_huggingface_source_load() -> None:
    cfg = load(
        "model_name: m\nsave_outputs: true\ndecode_token_to_text: true\n"
        "extra_metadata: {team: green, rack: 7, ratio: 0.5, cooled: false}\n"
        "prompts: {type: huggingface, dataset: alpaca, shuffle: true, seed: 9, sample_size: 4}\n"
    )
    assert (cfg.save_outputs, cfg.decode_token_to_text) == (True, True)
    assert cfg.extra_metadata == {"team": "green", "rack": 7, "ratio": 0.5, "cooled": False}
    assert isinstance(cfg.prompts, HubPrompts)
    assert cfg.prompt_source == DatasetConfig(name="alpaca", shuffle=True, seed=9, sample_size=4)
    assert cfg.prompt_source.repo_id == "tatsu-lab/alpaca"
    assert cfg.model_dump(mode="json")["extra_metadata"] == {
        "team": "green",
        "rack": 7,
        "ratio": 0.5,
        "cooled": False,
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "model_name: m\nstreaming_warmup_requests: 5\n",
            "x.yaml:2: streaming_warmup_requests: is not supported: lem's warmup already sends its requests",
        ),
        (
            "model_name: m\ndecode_token_to_text: true\n",
            "decode_token_to_text: true needs save_outputs: true",
        ),
        (
            "model_name: m\nextra_metadata: {tags: [a, b]}\n",
            "x.yaml:2: extra_metadata.tags: must be a string, a number or true/false, not list ['a', 'b']",
        ),
        (
            "model_name: m\nextra_metadata: {'9x': 1}\n",
            "x.yaml:2: extra_metadata.9x: '9x' does not have the required form",
        ),
        (
            "model_name: m\ndataset: {name: mmlu, shuffle: false, seed: 3}\n",
            "seed is given but shuffle is false",
        ),
        ("model_name: m\ndataset: {name: sharegpt, subset: x}\n", "'sharegpt' is one file"),
        ("model_name: m\nprompts: {type: huggingface}\n", "prompts.dataset"),
    ],
)
def test_bad_values_say_what_to_do(text: str, expected: str) -> None:
    found = problems(text)
    assert any(expected in p for p in found), found


def test_metadata_is_bounded() -> None:
    many = ", ".join(f"k{i}: {i}" for i in range(65))
    assert any("extra_metadata" in p for p in problems(f"model_name: m\nextra_metadata: {{{many}}}\n"))
    long = "x" * 1001
    assert any("extra_metadata.k" in p for p in problems(f"model_name: m\nextra_metadata: {{k: {long}}}\n"))
