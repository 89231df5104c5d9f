"""``lem campaign run`` through CliRunner, with a fake runtime injected as the context object."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from lem.campaign.clock import FakeClock
from lem.cli import main
from lem.cli.campaign_cmd import campaign
from lem.cli.run_cmd import RunDeps
from lem.runtime.errors import RuntimeUnavailable
from lem.runtime.spec import ContainerSpec
from tests.support.fake_runtime import FAIL, FakeRuntime, Play
from tests.unit.campaign.helpers import RUN_IDS, no_nvml

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


class Cli:
    def __init__(self, tmp_path: Path, yaml_text: str = CAMPAIGN_YAML) -> None:
        self.tmp_path = tmp_path
        self.file = tmp_path / "campaign.yaml"
        self.file.write_text(yaml_text)
        self.clock = FakeClock()
        self.runtime = FakeRuntime(clock=self.clock.advance)
        self.asked: list[str] = []
        self.results = tmp_path / "results"

    def deps(self) -> RunDeps:
        def factory(name: str) -> FakeRuntime:
            self.asked.append(name)
            return self.runtime

        return RunDeps(
            runtime_factory=factory,
            clock=self.clock,
            probe_factory=no_nvml,
            inventory=lambda indices: ({}, None),
            registry=self.tmp_path / "live",
            host_env={},
        )

    def invoke(self, *args: str, subcommand: bool = False) -> Result:
        argv = [
            *(["run"] if subcommand else []),
            str(self.file),
            "--quiet",
            "--results-dir",
            str(self.results),
            *args,
        ]
        return CliRunner().invoke(campaign, argv, obj=self.deps(), catch_exceptions=False)


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path)


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


def test_daemon_mode_is_refused_with_what_to_do(tmp_path: Path) -> None:
    cli = Cli(tmp_path, CAMPAIGN_YAML + "daemon: {enabled: true, interval: 24h}\n")
    result = cli.invoke()
    assert result.exit_code == 2
    assert "daemon mode (daemon.enabled: true) is not implemented" in result.output
    assert "cron or a systemd timer" in result.output


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
    ):
        assert option in result.output
