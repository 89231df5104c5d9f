"""Field problems and cross-field problems in one pass; strict numbers."""

from __future__ import annotations

from typing import Any

import pytest

from lem.config.campaign import CampaignConfig
from lem.config.crossfield import validate_fully
from lem.config.errors import ConfigError
from lem.config.loader import campaign_from_document, experiment_from_document
from lem.config.translate import Located
from lem.config.yaml_source import parse_yaml
from lem_harness.experiment import ExperimentConfig


def problems(text: str, campaign: bool = False) -> list[str]:
    document = parse_yaml(text, "f.yaml")
    with pytest.raises(ConfigError) as caught:
        (campaign_from_document if campaign else experiment_from_document)(document)
    return [str(p) for p in caught.value.problems]


def test_valid_data_is_validated_once_and_untouched() -> None:
    outcome = validate_fully(ExperimentConfig, {"model_name": "m"})
    assert outcome.instance is not None and outcome.instance.model_name == "m"
    assert outcome.problems == () and outcome.removed == ()


def test_a_field_error_no_longer_hides_the_cross_field_rules() -> None:
    text = (
        "model_name: m\nfp_precision: float64\nmax_output_tokens: 64\nmin_output_tokens: 128\n"
        "warmup:\n  min_prompts: 30\n  max_prompts: 10\n  target_cv: yes\n"
    )
    assert problems(text) == [
        "f.yaml:2: fp_precision: 'float64' is not allowed; choose one of 'float32', 'float16' or 'bfloat16'; "
        "did you mean 'float16'?",
        "f.yaml:4: min_output_tokens: must be <= max_output_tokens",
        "f.yaml:6: warmup.min_prompts: must be <= warmup.max_prompts",
        "f.yaml:8: warmup.target_cv: must be a number, not the boolean true (YAML reads "
        "yes/no/on/off/true/false as booleans)",
    ]


def test_a_rule_that_names_a_bad_value_is_not_reported_against_its_default() -> None:
    # max_output_tokens is invalid: comparing min_output_tokens (200) with its default (128) would blame
    # a value the user never wrote, so that rule's problem is left out.
    outcome = validate_fully(
        ExperimentConfig, {"model_name": "m", "max_output_tokens": True, "min_output_tokens": 200}
    )
    assert [p.key for p in outcome.problems] == ["max_output_tokens"]
    assert outcome.removed == (("max_output_tokens",),)
    assert outcome.repaired is None  # the rule still fails on the defaults


def test_backend_rule_is_dropped_when_backend_itself_is_bad() -> None:
    outcome = validate_fully(
        ExperimentConfig, {"model_name": "m", "backend": "vlm", "vllm": {"max_num_seqs": 8}}
    )
    assert [p.key for p in outcome.problems] == ["backend"]


def test_missing_model_gets_a_stand_in_so_the_other_rules_run() -> None:
    outcome = validate_fully(ExperimentConfig, {"gpus": [0, 0]})
    assert outcome.problems == (
        Located(("model_name",), "missing required key 'model_name'"),
        Located(("gpus",), "gpus lists a GPU twice: [0, 0]; list each id once"),
    )


def test_bad_list_items_take_the_whole_list_out_once() -> None:
    data: dict[str, Any] = {
        "model_name": "m",
        "gpus": [-1] * 1_000,
        "max_output_tokens": 8,
        "min_output_tokens": 9,
    }
    outcome = validate_fully(ExperimentConfig, data)
    assert len(outcome.problems) == 1_000 + 2  # each item, the list's length (at most 64), the rule
    assert outcome.problems[0] == Located(("gpus", 0), "must be >= 0 (got -1)")
    assert outcome.problems[1_000].path == ("gpus",)
    assert outcome.problems[-1] == Located(("min_output_tokens",), "must be <= max_output_tokens")
    assert outcome.removed == (("gpus",),)
    assert data["gpus"] == [-1] * 1_000  # the caller's data is not changed


def test_campaign_checks_run_beside_campaign_field_errors() -> None:
    text = (
        "campaign_name: c\nmodel: m\nexecution:\n  cycles: 0\nbase:\n  max_output_tokenz: 64\n"
        "grid:\n  backends: [pytorch]\n  axes:\n    batchsize: [1, 2]\n"
    )
    assert problems(text, campaign=True) == [
        "f.yaml:4: execution.cycles: must be >= 1 (got 0)",
        "f.yaml:6: base.max_output_tokenz: unknown key 'max_output_tokenz'; "
        "did you mean 'max_output_tokens'?",
        "f.yaml:10: grid.axes.batchsize: unknown axis 'batchsize'; did you mean 'batch_size'?",
    ]


def test_campaign_checks_on_a_removed_section_are_left_out() -> None:
    outcome = validate_fully(
        CampaignConfig, {"campaign_name": "c", "grid": {"backends": ["pytorch", "pytorch"], "axes": {}}}
    )
    assert [p.key for p in outcome.problems] == ["grid.backends"]  # not also "needs a grid or experiments"
    assert outcome.concerns_removed(("grid", "axes", "x"))


@pytest.mark.parametrize(
    ("data", "key", "message"),
    [
        ({"max_output_tokens": True}, "max_output_tokens",
         "must be a whole number, not the boolean true (YAML reads yes/no/on/off/true/false as booleans)"),
        ({"max_output_tokens": "12"}, "max_output_tokens",
         "must be a whole number, not the text '12'; remove the quotes"),
        ({"max_output_tokens": 12.5}, "max_output_tokens", "must be a whole number, not a number 12.5"),
        ({"gpus": [0, False]}, "gpus[1]",
         "must be a whole number, not the boolean false (YAML reads yes/no/on/off/true/false as booleans)"),
        ({"decoder": {"temperature": "hot"}}, "decoder.temperature", "must be a number, not the text 'hot'"),
        ({"baseline": {"duration_seconds": False}}, "baseline.duration_seconds",
         "must be a number, not the boolean false (YAML reads yes/no/on/off/true/false as booleans)"),
    ],
)  # fmt: skip
def test_numbers_are_strict(data: dict[str, Any], key: str, message: str) -> None:
    outcome = validate_fully(ExperimentConfig, {"model_name": "m", **data})
    assert [(p.key, p.message) for p in outcome.problems] == [(key, message)]


def test_floats_still_take_whole_numbers_and_campaign_numbers_are_strict() -> None:
    config = ExperimentConfig.model_validate({"model_name": "m", "baseline": {"duration_seconds": 60}})
    assert config.baseline.duration_seconds == 60.0
    execution = {"cycles": "3", "config_gap_seconds": True}
    data = {"campaign_name": "c", "grid": {"backends": ["pytorch"]}, "execution": execution}
    outcome = validate_fully(CampaignConfig, data)
    assert [p.key for p in outcome.problems] == ["execution.cycles", "execution.config_gap_seconds"]


def test_many_field_errors_beside_many_campaign_check_problems_stay_linear() -> None:
    # 3,000 unknown top-level keys (taken out) and 3,000 unknown base keys (checked on the repaired
    # campaign): each base problem is tested against the removed set in constant time.
    top = "".join(f"top_{i:05d}: 1\n" for i in range(3_000))
    base = "".join(f"  key_{i:05d}: 1\n" for i in range(3_000))
    found = problems(f"campaign_name: c\nmodel: m\ngrid:\n  backends: [pytorch]\n{top}base:\n{base}", True)
    assert len(found) == 6_000
    assert found[0].startswith("f.yaml:5: top_00000: unknown key 'top_00000'")
    assert found[-1] == "f.yaml:6005: base.key_02999: unknown key 'key_02999'"  # past the hint budget
