"""One experiment file as a campaign of one configuration (``lem.campaign.single``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lem.campaign.expand import expand_campaign
from lem.campaign.plan import plan_campaign
from lem.campaign.single import campaign_for_experiment, experiment_campaign_name, runnable_campaign
from lem.config.errors import ConfigError
from lem.config.loader import read_document
from lem.config.yaml_source import YamlDocument

EXPERIMENT_YAML = """\
config_name: tiny run
model_name: org/tiny-model
backend: pytorch
max_output_tokens: 4
prompts: {type: synthetic, sample_size: 4, input_len: 8}
measurement: {device: simulated}
pytorch: {batch_size: 2}
"""


def write(tmp_path: Path, text: str = EXPERIMENT_YAML, name: str = "exp.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_the_campaign_is_named_after_the_experiment_and_runs_it_once_without_gaps(tmp_path: Path) -> None:
    document = read_document(write(tmp_path))
    campaign = campaign_for_experiment(document)
    assert campaign.campaign_name == "tiny_run"
    assert [e.file for e in campaign.experiments] == ["exp.yaml"] and campaign.grid is None
    execution = campaign.execution
    assert (execution.cycles, execution.config_gap_seconds, execution.cycle_gap_seconds) == (1, 0.0, 0.0)
    assert campaign.source is not None and campaign.source.file == document.file


@pytest.mark.parametrize(
    ("data", "file", "expected"),
    [
        ({"config_name": "cpu-demo"}, "cfg/cpu_demo.yaml", "cpu-demo"),
        ({}, "cfg/cpu_demo.yaml", "cpu_demo"),  # no name: the file stem
        ({"config_name": ""}, "cfg/my exp.yaml", "my_exp"),
        ({"config_name": "../a b/c"}, "x.yaml", "a_b_c"),  # path-safe
        ({"config_name": 7}, "x.yaml", "7"),
        ({"config_name": "x" * 150}, "x.yaml", "x" * 100),  # a campaign name has at most 100 characters
        ({"config_name": "___"}, "x.yaml", "config"),
    ],
)
def test_campaign_names(data: dict[str, object], file: str, expected: str) -> None:
    assert experiment_campaign_name(YamlDocument(file=file, data=data)) == expected


def test_cycles_run_back_to_back(tmp_path: Path) -> None:
    path = write(tmp_path)
    campaign = campaign_for_experiment(read_document(path), cycles=3)
    expansion = expand_campaign(campaign, tmp_path)
    runs = plan_campaign(campaign, expansion)
    assert [r.run_id for r in runs] == ["tiny_run-c01", "tiny_run-c02", "tiny_run-c03"]
    assert [r.gap_before_s for r in runs] == [0.0, 0.0, 0.0]
    (config,) = expansion.configs
    assert config.name == "tiny_run" and config.config.config_name == "tiny_run"
    assert config.config.pytorch is not None and config.config.pytorch.batch_size == 2
    assert config.axis_values == {"experiment": "exp.yaml"}


def test_an_invalid_experiment_names_its_own_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, EXPERIMENT_YAML.replace("max_output_tokens: 4", "max_output_tokens: -4"))
    campaign = campaign_for_experiment(read_document(path))
    with pytest.raises(ConfigError) as caught:
        expand_campaign(campaign, tmp_path)
    (problem,) = caught.value.problems
    assert (problem.file, problem.line, problem.key) == (str(path), 4, "max_output_tokens")


def test_a_missing_required_key_names_the_experiment_file(tmp_path: Path) -> None:
    path = write(tmp_path, EXPERIMENT_YAML.replace("model_name: org/tiny-model\n", ""))
    with pytest.raises(ConfigError) as caught:
        expand_campaign(campaign_for_experiment(read_document(path)), tmp_path)
    assert [(p.file, p.key) for p in caught.value.problems] == [(str(path), "model_name")]


def test_runnable_campaign_takes_either_kind(tmp_path: Path) -> None:
    experiment = runnable_campaign(read_document(write(tmp_path)), cycles=2)
    assert (experiment.campaign_name, experiment.execution.cycles) == ("tiny_run", 2)
    campaign_file = write(
        tmp_path,
        "campaign_name: grid\nmodel: org/m\ngrid: {backends: [pytorch]}\nexecution: {cycles: 4}\n",
        "campaign.yaml",
    )
    campaign = runnable_campaign(read_document(campaign_file), cycles=2)
    assert (campaign.campaign_name, campaign.execution.cycles) == ("grid", 4)  # a campaign keeps its own


def test_an_older_spelling_of_the_name_still_names_the_campaign(tmp_path: Path) -> None:
    text = EXPERIMENT_YAML.replace("config_name: tiny run", "name: older").replace("model_name:", "model:")
    document = read_document(write(tmp_path, text))
    assert [w.code for w in document.notices].count("DEPRECATED_KEY") == 2
    campaign = campaign_for_experiment(document)
    assert campaign.campaign_name == "older"
    (config,) = expand_campaign(campaign, tmp_path).configs
    assert (config.name, config.config.model_name) == ("older", "org/tiny-model")
