"""Campaigns through a real Slurm cluster (one node, two GRES GPUs): lanes as jobs, merged manifests.

Every test synchronises on files and job states with bounded polling, never on sleeps: runs that
must be caught mid-way read their prompts from a named pipe and block until the test writes it
(or forever, for the scancel and time-limit cases).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lem_harness.contract import RunResult
from tests.integration.slurm_support import SlurmCampaign, feed, job_state, require_cluster, wait_for

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

BASE = """\
model: MODEL
base:
  fp_precision: float32
  max_output_tokens: 4
  measurement: {device: simulated}
  baseline: {method: cache, duration_seconds: 1}
  warmup: {enabled: false}
  timeseries: {sample_rate_hz: 10}
"""

TWO_BY_TWO = f"""\
campaign_name: slurm-2x2
prompts: {{type: synthetic, sample_size: 4, input_len: 8}}
{BASE}grid:
  backends: [pytorch]
  axes:
    pytorch.batch_size: [1, 2]
execution: {{cycles: 2, config_gap_seconds: 0, cycle_gap_seconds: 0, timeout_seconds: 600}}
slurm: {{launcher: LAUNCHER, max_nodes: 2, pin_configs: true, poll_interval_seconds: 1, setup_minutes: 5}}
"""

# Two configurations, one cycle, each reading its prompts from its own named pipe.
BLOCKING = f"""\
campaign_name: slurm-fifo
prompts: {{type: file, path: a.fifo, sample_size: 2}}
{BASE}grid:
  backends: [pytorch]
  axes:
    prompts.path: [a.fifo, b.fifo]
execution: {{cycles: 1, config_gap_seconds: 0, cycle_gap_seconds: 0, timeout_seconds: 600}}
slurm: {{launcher: local, max_nodes: 2, poll_interval_seconds: 1, setup_minutes: 5}}
"""
FIFO_RUNS = {"lane-00": "pytorch-a.fifo-c01", "lane-01": "pytorch-b.fifo-c01"}


@pytest.fixture
def cluster() -> None:
    require_cluster()


def make(tmp_path: Path, model: Path, text: str, name: str) -> Iterator[SlurmCampaign]:
    campaign = SlurmCampaign(tmp_path, model, text, name)
    for fifo in ("a.fifo", "b.fifo"):
        path = tmp_path / fifo
        if not path.exists():
            os.mkfifo(path)
    try:
        yield campaign
    finally:
        campaign.cancel_all()


@pytest.fixture
def local_2x2(cluster: None, tmp_path: Path, tiny_model_dir: Path) -> Iterator[SlurmCampaign]:
    yield from make(tmp_path, tiny_model_dir, TWO_BY_TWO.replace("LAUNCHER", "local"), "slurm-2x2")


@pytest.fixture
def blocking(cluster: None, tmp_path: Path, tiny_model_dir: Path) -> Iterator[SlurmCampaign]:
    yield from make(tmp_path, tiny_model_dir, BLOCKING, "slurm-fifo")


def check_two_lanes_done(c: SlurmCampaign, done: Any) -> None:
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    manifest = c.manifest()
    assert [(r["run_id"], r["status"], r["attempts"]) for r in manifest["runs"]] == [
        ("pytorch-bs1-c01", "done", 1),
        ("pytorch-bs2-c01", "done", 1),
        ("pytorch-bs1-c02", "done", 1),
        ("pytorch-bs2-c02", "done", 1),
    ]
    jobs = c.jobs()
    assert sorted(jobs) == ["lane-00", "lane-01"] and all(len(j) == 1 for j in jobs.values())
    lanes = {lane: json.loads((c.dir / "slurm" / f"{lane}.json").read_text()) for lane in jobs}
    assert [r["run_id"] for r in lanes["lane-00"]["runs"]] == ["pytorch-bs1-c01", "pytorch-bs1-c02"]
    assert [r["run_id"] for r in lanes["lane-01"]["runs"]] == ["pytorch-bs2-c01", "pytorch-bs2-c02"]
    for run in manifest["runs"]:
        result = RunResult.model_validate_json((c.dir / run["run_id"] / "result.json").read_text())
        assert result.status == "ok" and result.campaign_id == manifest["campaign_id"]
        assert result.provenance is not None and result.provenance.hostname == socket.gethostname()
    gpus = set()
    for lane in jobs:
        out = (c.dir / "slurm" / f"{lane}.out").read_text()
        assert f"lem {lane} on {socket.gethostname()}, job {jobs[lane][0]}, GPUs " in out
        gpus.add(out.split("GPUs ", 1)[1].split()[0])
    assert gpus <= {"0", "1"} and "none" not in gpus  # --gres=gpu:1 gave each job one GPU
    summary = c.lem("results", "summary", str(c.dir), "--group-by", "node")
    assert summary.returncode == 0, summary.stderr
    assert socket.gethostname() in summary.stdout


def test_a_2x2_campaign_runs_as_two_lanes_through_the_local_runtime(local_2x2: SlurmCampaign) -> None:
    check_two_lanes_done(local_2x2, local_2x2.run())


@pytest.mark.docker
def test_a_2x2_campaign_runs_as_two_lanes_through_docker(
    cluster: None, pytorch_cpu_image: str, tmp_path: Path, tiny_model_dir: Path
) -> None:
    for c in make(tmp_path, tiny_model_dir, TWO_BY_TWO.replace("LAUNCHER", "docker"), "slurm-2x2"):
        done = c.run("--flavour", "cpu")
        check_two_lanes_done(c, done)
        log = (c.dir / "pytorch-bs1-c01" / "container.log").read_text()
        assert log  # the harness ran in a container and its output was collected


def test_orchestrator_killed_then_resume_adopts_running_jobs(blocking: SlurmCampaign) -> None:
    c = blocking
    first = c.start()
    for lane, run_id in FIFO_RUNS.items():
        wait_for(lambda lane=lane: c.lane_statuses(lane) == ["running"], f"{run_id} running in {lane}")
    jobs = c.jobs()
    first.send_signal(signal.SIGKILL)
    first.communicate(timeout=30)  # closes its pipes too
    assert {job_state(j[0]) for j in jobs.values()} == {"RUNNING"}  # the jobs outlive their orchestrator

    state_file = c.dir / "slurm" / "jobs.json"
    before = state_file.stat().st_mtime_ns
    resume = c.start("--resume")
    wait_for(lambda: state_file.stat().st_mtime_ns != before, "the resumed orchestrator reconciled")
    feeders = [feed(c.tmp_path / fifo, ["Hello there", "What is energy?"]) for fifo in ("a.fifo", "b.fifo")]
    out, err = resume.communicate(timeout=600)
    for thread in feeders:
        thread.join(timeout=10)
    assert resume.returncode == 0, out[-3000:] + err[-3000:]
    for job in jobs.values():
        assert f"adopted Slurm job {job[0]} (still running)" in err
    assert "submitted" not in err
    assert c.jobs() == jobs  # nothing resubmitted
    runs = c.manifest()["runs"]
    assert [(r["run_id"], r["status"], r["attempts"]) for r in runs] == [
        ("pytorch-a.fifo-c01", "done", 1),
        ("pytorch-b.fifo-c01", "done", 1),
    ]  # nothing lost, nothing run twice


def test_detach_then_a_scancelled_job_and_a_job_at_its_time_limit(blocking: SlurmCampaign) -> None:
    """Both runs block forever; lane-00's job is scancelled, lane-01's reaches its 1-minute limit."""
    c = blocking
    limit = ("--slurm", "run_time_limit_minutes=1", "--slurm", "setup_minutes=0")
    detached = c.run("--detach", *limit)
    assert detached.returncode == 0, detached.stderr[-3000:]
    jobs = c.jobs()
    assert f"detached: Slurm jobs {jobs['lane-00'][0]}, {jobs['lane-01'][0]} keep running" in detached.stdout
    assert "#SBATCH --time=1" in (c.dir / "slurm" / "lane-01.sbatch").read_text()

    wait_for(lambda: c.lane_statuses("lane-00") == ["running"], "lane-00's run running")
    cancel = c.lem("campaign", "status", str(c.dir))
    assert cancel.returncode == 0 and f"lane-00 (job {jobs['lane-00'][0]} RUNNING on" in cancel.stdout
    subprocess.run(["scancel", jobs["lane-00"][0]], check=True)

    status = c.lem("campaign", "status", str(c.dir), "--follow", timeout_s=400)
    assert status.returncode == 0, status.stderr[-3000:]
    assert "2 runs — 0 done, 0 failed, 2 interrupted, 0 pending; jobs still active: none" in status.stdout
    assert job_state(jobs["lane-00"][0]) == "CANCELLED"
    assert job_state(jobs["lane-01"][0]) == "TIMEOUT"
    runs = {r["run_id"]: r for r in c.manifest()["runs"]}
    a, b = runs[FIFO_RUNS["lane-00"]], runs[FIFO_RUNS["lane-01"]]
    assert a["status"] == b["status"] == "interrupted"  # never done
    assert a["message"].startswith(f"Slurm job {jobs['lane-00'][0]} ended CANCELLED")
    assert b["message"].startswith(f"Slurm job {jobs['lane-01'][0]} ended TIMEOUT")
    for run_id in FIFO_RUNS.values():  # a harness stopped by SIGTERM may leave a failed result, never ok
        result = c.dir / run_id / "result.json"
        assert not result.exists() or RunResult.model_validate_json(result.read_text()).status == "failed"
