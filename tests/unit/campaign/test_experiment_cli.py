"""``lem experiment FILE`` through CliRunner, with the fake runtime injected as the context object."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from lem.cli import main
from lem.cli.experiment_cmd import experiment
from lem_harness.experiment import WarmupConfig
from tests.support.fake_runtime import FAIL
from tests.unit.campaign.helpers import Cli
from tests.unit.campaign.test_run_cli import CAMPAIGN_YAML

EXPERIMENT_YAML = """\
schema_version: "3.0.0"
config_name: tiny
model_name: org/tiny-model
backend: pytorch
max_output_tokens: 4
prompts: {type: synthetic, sample_size: 4, input_len: 8}
measurement: {device: simulated}
pytorch: {batch_size: 2}
"""


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path, EXPERIMENT_YAML, "exp.yaml")


def test_one_run_through_the_campaign_machinery(cli: Cli) -> None:
    result = cli.invoke(command=experiment)
    assert result.exit_code == 0, result.output
    assert cli.asked == ["docker"]
    assert [c.run_id for c in cli.runtime.calls] == ["tiny-c01"]
    campaign_dir = cli.results / "tiny"
    manifest = json.loads((campaign_dir / "manifest.json").read_text())
    assert manifest["campaign_name"] == "tiny"
    assert [(r["run_id"], r["status"]) for r in manifest["runs"]] == [("tiny-c01", "done")]
    result_json = json.loads((campaign_dir / "tiny-c01" / "result.json").read_text())
    assert (result_json["config_name"], result_json["config"]["pytorch"]["batch_size"]) == ("tiny", 2)
    assert "campaign tiny: 1 runs — 1 done, 0 failed, 0 interrupted, 0 pending" in result.stdout
    assert "Campaign tiny: 1 configurations, 1 valid runs" in result.stdout
    assert "0.5 (n=1)" in result.stdout  # the fake's 0.5 J/token
    assert f"results: {campaign_dir}" in result.stdout


def test_cycles_run_back_to_back_with_no_gap(cli: Cli) -> None:
    start = cli.clock.monotonic()
    result = cli.invoke("--cycles", "3", "--runtime", "local", command=experiment)
    assert result.exit_code == 0, result.output
    assert cli.asked == ["local"]
    assert [c.run_id for c in cli.runtime.calls] == ["tiny-c01", "tiny-c02", "tiny-c03"]
    assert cli.clock.monotonic() - start == 30.0  # three 10 s runs, no waiting between them
    assert cli.clock.sleeps == []
    assert "Campaign tiny: 1 configurations, 3 valid runs" in result.stdout


def test_a_failed_run_says_how_to_continue_with_the_same_cycles(cli: Cli) -> None:
    cli.runtime.script["tiny-c02"] = [FAIL]
    result = cli.invoke("--cycles", "3", "--fail-fast", command=experiment)
    assert result.exit_code == 1
    assert len(cli.runtime.calls) == 2
    assert f"to continue: lem experiment {cli.file} --cycles 3 --resume" in result.stdout
    cli.runtime.script.clear()
    again = cli.invoke("--cycles", "3", "--resume", command=experiment)
    assert again.exit_code == 0, again.output
    assert [c.run_id for c in cli.runtime.calls][2:] == ["tiny-c02", "tiny-c03"]


def test_existing_results_need_resume(cli: Cli) -> None:
    assert cli.invoke(command=experiment).exit_code == 0
    again = cli.invoke(command=experiment)
    assert again.exit_code == 1
    assert "already holds this campaign (1 of 1 runs done): pass --resume" in again.output


def test_dry_run_prints_the_plan_and_the_resolved_configuration(cli: Cli) -> None:
    result = cli.invoke("--dry-run", "--cycles", "2", command=experiment)
    assert result.exit_code == 0, result.output
    assert cli.asked == [] and not cli.results.exists()
    out = result.stdout
    heading, _, rest = out.partition("\n")
    assert heading.startswith("resolved configuration (tiny, config id ")
    resolved = yaml.safe_load(rest.split("\n\ncampaign 'tiny'")[0])
    assert resolved["config_name"] == "tiny" and resolved["backend"] == "pytorch"
    assert resolved["pytorch"]["batch_size"] == 2 and resolved["pytorch"]["use_cache"] is True  # a default
    assert resolved["warmup"]["max_prompts"] == WarmupConfig.model_fields["max_prompts"].default
    assert resolved["vllm"] is None
    assert "campaign 'tiny': 1 configuration(s) x 2 cycle(s) = 2 runs, interleaved" in out
    assert "tiny-c02" in out and "total gap time: 0 s (0 s over 1 gaps)" in out
    assert f"results would go to {cli.results / 'tiny'}" in out


def test_a_campaign_file_is_a_usage_error(tmp_path: Path) -> None:
    cli = Cli(tmp_path, CAMPAIGN_YAML)
    result = cli.invoke(command=experiment)
    assert result.exit_code == 2
    assert "is a campaign file, not an experiment: run it with `lem campaign run" in result.output
    assert cli.asked == []


def test_an_invalid_experiment_lists_its_problems_with_lines(tmp_path: Path) -> None:
    text = EXPERIMENT_YAML.replace("max_output_tokens: 4", "max_output_tokens: 0").replace(
        "pytorch: {batch_size: 2}", "pytorch: {batchsize: 2}"
    )
    cli = Cli(tmp_path, text, "exp.yaml")
    result = cli.invoke(command=experiment)
    assert result.exit_code == 1
    assert f"{cli.file} is not a valid experiment:" in result.output
    assert f"{cli.file}:5: max_output_tokens:" in result.output
    assert f"{cli.file}:8: pytorch.batchsize:" in result.output
    assert "Traceback" not in result.output and cli.asked == []


def test_unreadable_yaml_is_one_message(tmp_path: Path) -> None:
    cli = Cli(tmp_path, "name: [unclosed\n", "exp.yaml")
    result = cli.invoke(command=experiment)
    assert result.exit_code == 1
    assert (
        f"{cli.file} is not a valid campaign or experiment:" in result.output
        and "Traceback" not in result.output
    )


@pytest.mark.parametrize("bad", ["0", "1001", "x"])
def test_cycles_out_of_range_is_a_usage_error(cli: Cli, bad: str) -> None:
    result = cli.invoke("--cycles", bad, command=experiment)
    assert result.exit_code == 2 and "Invalid value for '--cycles'" in result.output


def test_help_documents_every_option_and_the_exit_codes() -> None:
    result = CliRunner().invoke(main, ["experiment", "--help"])
    assert result.exit_code == 0
    for option in (
        "--cycles",
        "--resume",
        "--runtime",
        "--fail-fast",
        "--quiet",
        "--results-dir",
        "--dry-run",
        "--flavour",
    ):
        assert option in result.output
    assert "Exit codes:" in result.output and "130" in result.output
    assert "no gaps" in result.output


def test_an_older_spelling_runs_with_one_notice_per_key(tmp_path: Path) -> None:
    text = EXPERIMENT_YAML.replace("config_name: tiny", "name: tiny")
    cli = Cli(tmp_path, text, "exp.yaml")
    result = cli.invoke("--dry-run", command=experiment)
    assert result.exit_code == 0, result.output
    notices = [line for line in result.stderr.splitlines() if "DEPRECATED_KEY" in line]
    assert notices == [
        "warning [DEPRECATED_KEY] name: 'name' is an older spelling of 'config_name' (line 2); it still "
        f"works: `lem config migrate {cli.file} --write` updates the file [in {cli.file}]"
    ]
    assert f"results would go to {cli.results / 'tiny'}" in result.stdout
