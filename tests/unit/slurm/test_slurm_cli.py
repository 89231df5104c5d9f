"""``lem campaign run --runtime slurm`` (dry run, detach) and ``lem campaign status`` through CliRunner."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from click.testing import CliRunner

from lem.campaign.clock import FakeClock
from lem.campaign.expand import expand_campaign
from lem.cli.campaign_cmd import campaign
from lem.cli.run_cmd import RunDeps
from lem.config.loader import load_campaign
from tests.support.fake_slurm import FakeSlurm
from tests.unit.campaign.helpers import no_nvml
from tests.unit.campaign.test_run_cli import CAMPAIGN_YAML

SLURM_YAML = CAMPAIGN_YAML + "slurm: {launcher: local, pin_configs: true, max_nodes: 2, partition: gpu}\n"


def setup(tmp_path: Path) -> tuple[Path, FakeSlurm, RunDeps]:
    file = tmp_path / "campaign.yaml"
    file.write_text(SLURM_YAML)
    campaign = load_campaign(file)
    slurm = FakeSlurm(tmp_path, campaign, expand_campaign(campaign, tmp_path))
    deps = RunDeps(
        clock=FakeClock(),
        probe_factory=no_nvml,
        registry=tmp_path / "live",
        host_env={},
        slurm_factory=lambda: slurm,
    )
    return file, slurm, deps


def lem(deps: RunDeps, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(campaign, list(args), obj=deps, catch_exceptions=False)
    return result.exit_code, result.output


def test_dry_run_prints_every_script_and_submits_nothing(tmp_path: Path) -> None:
    file, slurm, deps = setup(tmp_path)
    results = tmp_path / "results"
    code, out = lem(deps, "run", str(file), "--runtime", "slurm", "--dry-run", "--results-dir", str(results))
    assert code == 0, out
    assert (
        "slurm: 2 lane(s), one job each, at most 2 node(s); "
        "expected wall time 2 h 00 min (runs of 1 h 00 min)" in out
    )
    assert "lane-00: 2 runs (pytorch-bs1-c01, pytorch-bs1-c02), expected 2 h 00 min, --time=130" in out
    assert f"----- {results}/demo/slurm/lane-01.sbatch -----" in out
    assert out.count("#SBATCH --partition=gpu") == 2
    assert slurm.scripts == {} and not results.exists()


def test_slurm_options_need_the_slurm_runtime(tmp_path: Path) -> None:
    file, _, deps = setup(tmp_path)
    code, out = lem(deps, "run", str(file), "--runtime", "local", "--detach")
    assert code == 2 and "--detach and --slurm go with --runtime slurm" in out


def test_detach_then_status_follows_the_jobs(tmp_path: Path) -> None:
    file, slurm, deps = setup(tmp_path)
    results = tmp_path / "results"
    code, out = lem(deps, "run", str(file), "--runtime", "slurm", "--detach", "--results-dir", str(results))
    assert code == 0, out
    assert "detached: Slurm jobs 100, 101 keep running" in out
    assert f"follow them with: lem campaign status {results / 'demo'} --follow" in out

    slurm.state["100"] = "RUNNING"
    code, out = lem(deps, "status", str(results / "demo"))
    assert code == 0, out
    assert "lane-00 (job 100 RUNNING on node1): 0/2 done" in out
    assert "lane-01 (job 101 PENDING): 0/2 done" in out
    assert "jobs still active: 100, 101" in out

    slurm.world = [lambda s: (s.start("100"), s.start("101"))]
    code, out = lem(deps, "status", str(results / "demo"), "--follow")
    assert code == 0, out
    assert "4 runs — 4 done, 0 failed, 0 interrupted, 0 pending; jobs still active: none" in out


def test_ctrl_c_cancels_the_jobs_when_no_one_can_be_asked(tmp_path: Path) -> None:
    file, slurm, deps = setup(tmp_path)

    def ctrl_c(s: FakeSlurm) -> None:
        s.state["100"] = s.state["101"] = "RUNNING"
        os.kill(os.getpid(), signal.SIGINT)  # the command's handler sets its stop event

    slurm.world = [ctrl_c]
    code, out = lem(deps, "run", str(file), "--runtime", "slurm", "--results-dir", str(tmp_path / "r"))
    assert code == 130, out
    assert slurm.cancelled == ["100", "101"]
    assert "cancelled Slurm jobs 100, 101; --resume runs what they left" in out


def test_lem_experiment_takes_the_slurm_runtime_too(tmp_path: Path) -> None:
    from lem.cli.experiment_cmd import experiment

    _, slurm, deps = setup(tmp_path)
    file = tmp_path / "experiment.yaml"
    file.write_text(
        "model: org/tiny-model\nprompts: {type: synthetic, sample_size: 4, input_len: 8}\n"
        "measurement: {device: simulated}\nmax_output_tokens: 4\n"
    )
    args = [str(file), "--runtime", "slurm", "--dry-run", "--slurm", "qos=high"]
    result = CliRunner().invoke(experiment, args, obj=deps, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "slurm: 1 lane(s), one job each" in result.output
    assert "#SBATCH --qos=high" in result.output
    assert slurm.scripts == {}
