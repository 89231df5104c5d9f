"""``lem campaign run`` through CliRunner, with a fake runtime injected as the context object."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from lem.cli import main
from lem.runtime.errors import RuntimeUnavailable
from lem.runtime.spec import ContainerSpec
from tests.support.fake_runtime import FAIL, Play
from tests.unit.campaign.helpers import RUN_IDS, Cli

CAMPAIGN_YAML = """\
campaign_name: demo
model: org/tiny-model
prompts: {type: synthetic, sample_size: 4, input_len: 8}
base:
  measurement: {device: simulated}
  max_output_tokens: 4
grid:
  backends: [pytorch]
  axes:
    pytorch.batch_size: [1, 2]
execution: {cycles: 2, config_gap_seconds: 0, cycle_gap_seconds: 0}
"""

EXPERIMENT_YAML = """\
config_name: tiny
model_name: org/tiny-model
backend: pytorch
max_output_tokens: 4
prompts: {type: synthetic, sample_size: 4, input_len: 8}
measurement: {device: simulated}
"""


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path, CAMPAIGN_YAML)


def test_lem_campaign_file_runs_the_campaign_and_prints_the_summary(cli: Cli) -> None:
    result = cli.invoke()
    assert result.exit_code == 0, result.output
    assert [c.run_id for c in cli.runtime.calls] == RUN_IDS
    assert cli.asked == ["docker"]
    assert "campaign demo: 4 runs — 4 done, 0 failed, 0 interrupted, 0 pending" in result.stdout
    assert "Campaign demo" in result.stdout  # the results helper's per-configuration table
    assert "pytorch-bs1" in result.stdout and "pytorch-bs2" in result.stdout
    assert f"results: {cli.results / 'demo'}" in result.stdout
    assert "run 4/4: pytorch-bs2 cycle 2" in result.stderr
    assert "--resume" not in result.stdout


def test_the_run_subcommand_and_the_local_runtime(cli: Cli) -> None:
    result = cli.invoke("--runtime", "local", subcommand=True)
    assert result.exit_code == 0, result.output
    assert cli.asked == ["local"]


def test_a_failed_run_exits_1_and_says_how_to_continue(cli: Cli) -> None:
    cli.runtime.script["pytorch-bs1-c02"] = [FAIL]
    result = cli.invoke()
    assert result.exit_code == 1
    assert "pytorch-bs1-c02: failed: harness exited 1" in result.stdout
    assert f"to continue: lem campaign run {cli.file} --resume" in result.stdout
    assert len(cli.runtime.calls) == 4


def test_fail_fast(cli: Cli) -> None:
    cli.runtime.script["pytorch-bs1-c01"] = [FAIL]
    result = cli.invoke("--fail-fast")
    assert result.exit_code == 1
    assert len(cli.runtime.calls) == 1
    assert "stopped: --fail-fast: pytorch-bs1-c01 failed" in result.stdout


def test_an_interrupted_campaign_exits_130_and_resumes(cli: Cli) -> None:
    def ctrl_c(spec: ContainerSpec, stop: threading.Event) -> None:
        if spec.run_id == "pytorch-bs2-c01":
            stop.set()

    cli.runtime.during_run = ctrl_c
    first = cli.invoke()
    assert first.exit_code == 130
    assert "1 done, 0 failed, 1 interrupted, 2 pending" in first.stdout
    cli.runtime.during_run = None
    cli.runtime.calls.clear()
    second = cli.invoke("--resume")
    assert second.exit_code == 0, second.output
    assert [c.run_id for c in cli.runtime.calls] == RUN_IDS[1:]
    assert "campaign: 4 runs, 1 already done, 3 to run" in second.stderr


def test_existing_results_need_resume(cli: Cli) -> None:
    assert cli.invoke().exit_code == 0
    again = cli.invoke()
    assert again.exit_code == 1
    assert "already holds this campaign (4 of 4 runs done): pass --resume" in again.output


def test_a_missing_image_stops_with_the_build_command(cli: Cli) -> None:
    cli.runtime.missing_images = ["llenergymeasure/pytorch:0.1.0"]
    result = cli.invoke()
    assert result.exit_code == 1
    assert "image llenergymeasure/pytorch:0.1.0 not found on this Docker engine" in result.output
    assert "build it: lem images build --backend pytorch" in result.output
    assert cli.runtime.calls == [] and not cli.results.exists()


def test_the_cpu_flavour_checks_the_cpu_image(cli: Cli) -> None:
    assert cli.invoke("--flavour", "cpu").exit_code == 0
    assert cli.runtime.checked == [["llenergymeasure/pytorch:cpu"]]
    assert {c.image for c in cli.runtime.calls} == {"llenergymeasure/pytorch:cpu"}


def test_unreachable_docker_suggests_the_local_runtime(cli: Cli) -> None:
    def unreachable(images: object) -> None:
        raise RuntimeUnavailable("connection refused")

    cli.runtime.check = unreachable  # type: ignore[method-assign]
    result = cli.invoke()
    assert result.exit_code == 1
    assert "Docker engine unreachable: connection refused" in result.output
    assert "use --runtime local" in result.output


def test_dry_run_prints_the_plan_and_runs_nothing(cli: Cli) -> None:
    result = cli.invoke("--dry-run")
    assert result.exit_code == 0, result.output
    assert "pytorch-bs2-c02" in result.stdout
    assert f"results would go to {cli.results / 'demo'}" in result.stdout
    assert cli.asked == [] and not cli.results.exists()


def test_a_bad_campaign_file_is_a_message_not_a_traceback(tmp_path: Path) -> None:
    cli = Cli(tmp_path, CAMPAIGN_YAML.replace("cycles: 2", "cycles: 0"))
    result = cli.invoke()
    assert result.exit_code == 1
    assert "is not a valid campaign" in result.output
    assert "execution.cycles" in result.output
    assert "Traceback" not in result.output


def test_group_by_adds_the_group_table(tmp_path: Path) -> None:
    cli = Cli(tmp_path, CAMPAIGN_YAML + "group_by: [pytorch.batch_size]\n")
    cli.runtime.script = {r: [Play(joules_per_token=0.5 if "bs1" in r else 0.25)] for r in RUN_IDS}
    result = cli.invoke()
    assert result.exit_code == 0, result.output
    assert "Campaign demo by pytorch.batch_size" in result.stdout


def test_the_command_is_registered_under_lem_campaign() -> None:
    result = CliRunner().invoke(main, ["campaign", "run", "--help"])
    assert result.exit_code == 0
    for option in (
        "--resume",
        "--runtime",
        "--fail-fast",
        "--quiet",
        "--results-dir",
        "--dry-run",
        "--flavour",
        "--group-by",
    ):
        assert option in result.output


def test_group_by_option_overrides_the_campaign_and_takes_the_batch_size_alias(tmp_path: Path) -> None:
    cli = Cli(tmp_path, CAMPAIGN_YAML + "group_by: [backend]\n")
    result = cli.invoke("--group-by", "batch_size")
    assert result.exit_code == 0, result.output
    assert "Campaign demo by batch_size (runs pooled across configurations)" in result.stdout
    assert "by backend" not in result.stdout


def test_group_by_batch_size_in_the_campaign_file_groups_the_final_table(tmp_path: Path) -> None:
    cli = Cli(tmp_path, CAMPAIGN_YAML + "group_by: [backend, batch_size]\n")
    cli.runtime.script = {r: [Play(joules_per_token=0.5 if "bs1" in r else 0.25)] for r in RUN_IDS}
    result = cli.invoke()
    assert result.exit_code == 0, result.output
    assert "no summary" not in result.stdout
    assert "Campaign demo by backend, batch_size" in result.stdout
    rows = [line for line in result.stdout.splitlines() if line.startswith("│ pytorch")]
    assert [row.split("│")[1:5] for row in rows][-2:] == [
        [" pytorch ", " 1          ", " 1       ", " 2 "],
        [" pytorch ", " 2          ", " 1       ", " 2 "],
    ]


@pytest.mark.parametrize(
    ("value", "hint"),
    [
        ("batch_sise", "did you mean 'batch_size'?"),
        ("backend,pytorch.batchsize", "did you mean 'pytorch.batch_size'?"),
        ("max_num_seqs", "did you mean 'vllm.max_num_seqs'?"),
        ("colour", "use batch_size, a top-level key such as backend"),
    ],
)
def test_an_unknown_group_by_key_is_a_usage_error_before_anything_runs(
    cli: Cli, value: str, hint: str
) -> None:
    result = cli.invoke("--group-by", value)
    assert result.exit_code == 2
    assert "Invalid value for '--group-by'" in result.output and hint in result.output
    assert "Traceback" not in result.output
    assert cli.asked == [] and not cli.results.exists()


def test_an_experiment_file_runs_as_a_campaign_of_one_configuration(tmp_path: Path) -> None:
    cli = Cli(tmp_path, EXPERIMENT_YAML, "exp.yaml")
    result = cli.invoke()
    assert result.exit_code == 0, result.output
    assert [c.run_id for c in cli.runtime.calls] == ["tiny-c01"]
    assert (cli.results / "tiny" / "tiny-c01" / "result.json").is_file()
    assert "campaign tiny: 1 runs — 1 done, 0 failed, 0 interrupted, 0 pending" in result.stdout


def test_campaign_plan_takes_an_experiment_file(tmp_path: Path) -> None:
    path = tmp_path / "exp.yaml"
    path.write_text(EXPERIMENT_YAML)
    result = CliRunner().invoke(main, ["campaign", "plan", str(path)])
    assert result.exit_code == 0, result.output
    assert "campaign 'tiny': 1 configuration(s) x 1 cycle(s) = 1 runs, interleaved" in result.stdout
    assert "tiny-c01" in result.stdout and "total gap time: 0 s (0 s over 0 gaps)" in result.stdout
    assert "FEW_CYCLES" not in result.output and "SHORT_GAP" not in result.output


def test_an_invalid_experiment_file_says_so(tmp_path: Path) -> None:
    cli = Cli(tmp_path, EXPERIMENT_YAML.replace("max_output_tokens: 4", "max_output_tokens: 0"), "exp.yaml")
    result = cli.invoke()
    assert result.exit_code == 1
    assert f"{cli.file} is not a valid experiment:" in result.output
    assert f"{cli.file}:4: max_output_tokens:" in result.output
