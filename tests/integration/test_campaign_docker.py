"""Whole campaigns through ``lem campaign run`` on a real Docker engine, in the PyTorch CPU image.

The tiny model is mounted read-only into each run's fresh container, the simulated device
stands in for the GPU, results are read back from the run directories the containers wrote
through their mounts. Also: a container killed mid-run, then ``--resume``; Ctrl-C of the
command mid-campaign.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from lem.runtime.spec import LABEL_CAMPAIGN, LABEL_RUN
from lem_harness.contract import RunResult

pytestmark = pytest.mark.docker

REPO = Path(__file__).resolve().parents[2]


def campaign_yaml(name: str, model: Path, batch_sizes: list[int], baseline_s: float = 1.0) -> str:
    return f"""\
campaign_name: {name}
model: {model}
prompts: {{type: synthetic, sample_size: 4, input_len: 8}}
base:
  fp_precision: float32
  max_output_tokens: 4
  measurement: {{device: simulated}}
  baseline: {{method: fresh, duration_seconds: {baseline_s}}}
  warmup: {{enabled: false}}
  timeseries: {{sample_rate_hz: 10}}
grid:
  backends: [pytorch]
  axes:
    pytorch.batch_size: {batch_sizes}
execution: {{cycles: 2, config_gap_seconds: 0, cycle_gap_seconds: 0, timeout_seconds: 600}}
"""


class Campaign:
    """A campaign file next to a copy of the tiny model, and the command that runs it."""

    def __init__(
        self, tmp_path: Path, model_dir: Path, name: str, batch_sizes: list[int], baseline_s: float
    ) -> None:
        self.tmp_path = tmp_path
        self.name = name
        model = tmp_path / "model"
        if not model.exists():
            subprocess.run(["cp", "-r", str(model_dir), str(model)], check=True)
        self.file = tmp_path / "campaign.yaml"
        self.file.write_text(campaign_yaml(name, model, batch_sizes, baseline_s))
        self.results = tmp_path / "results"
        self.dir = self.results / name

    def argv(self, *extra: str) -> list[str]:
        return [
            sys.executable,
            "-m",
            "lem",
            "campaign",
            "run",
            str(self.file),
            "--flavour",
            "cpu",
            "--quiet",
            "--results-dir",
            str(self.results),
            *extra,
        ]

    def env(self) -> dict[str, str]:
        return {**os.environ, "LEM_STATE_DIR": str(self.tmp_path / "state"), "COLUMNS": "200"}

    def run(self, *extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.argv(*extra),
            capture_output=True,
            text=True,
            env=self.env(),
            cwd=self.tmp_path,
            timeout=900,
            check=False,
        )

    def start(self, *extra: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.argv(*extra),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self.env(),
            cwd=self.tmp_path,
        )

    def manifest(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.dir / "manifest.json").read_text())
        return data

    def wait_until_running(self, run_id: str, text: str = "prompts:", timeout_s: float = 300.0) -> None:
        """Block until ``run_id``'s container.log shows ``text`` (its harness got that far)."""
        log = self.dir / run_id / "container.log"
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if log.exists() and text in log.read_text(errors="replace"):
                return
            time.sleep(0.1)
        raise AssertionError(f"{text!r} never appeared in {log}")


def containers(client: Any, campaign_id: str, run_id: str | None = None) -> list[Any]:
    labels = [f"{LABEL_CAMPAIGN}={campaign_id}"] + ([f"{LABEL_RUN}={run_id}"] if run_id else [])
    return list(client.containers.list(all=True, filters={"label": labels}))


def test_two_configurations_two_cycles_end_to_end(
    tmp_path: Path, tiny_model_dir: Path, pytorch_cpu_image: str, campaign_id: str, docker_engine: Any
) -> None:
    campaign = Campaign(tmp_path, tiny_model_dir, campaign_id, [1, 2], baseline_s=1.0)
    done = campaign.run()
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]

    manifest = campaign.manifest()
    run_ids = [f"pytorch-bs{b}-c0{c}" for c in (1, 2) for b in (1, 2)]
    assert [r["run_id"] for r in manifest["runs"]] == run_ids
    assert [(r["status"], r["attempts"]) for r in manifest["runs"]] == [("done", 1)] * 4
    for run_id in run_ids:
        run_dir = campaign.dir / run_id
        result = RunResult.model_validate_json(
            (run_dir / "result.json").read_text()
        )  # written by the container
        assert (result.status, result.run_id, result.campaign_id) == ("ok", run_id, manifest["campaign_id"])
        assert result.provenance is not None and result.provenance.device_kind == "simulated"
        assert (run_dir / "result.json").stat().st_uid == os.getuid()
        assert (run_dir / "timeline.csv").exists()
        assert "measure:" in (run_dir / "container.log").read_text()
    assert (
        containers(docker_engine, manifest["campaign_id"]) == []
    )  # one fresh container per run, all removed
    assert f"campaign {campaign_id}: 4 runs — 4 done" in done.stdout
    assert f"Campaign {campaign_id}" in done.stdout
    assert f"results: {campaign.dir}" in done.stdout


def test_a_container_killed_mid_run_then_resume_completes_without_repeating_done_runs(
    tmp_path: Path, tiny_model_dir: Path, pytorch_cpu_image: str, campaign_id: str, docker_engine: Any
) -> None:
    campaign = Campaign(tmp_path, tiny_model_dir, campaign_id, [1], baseline_s=4.0)
    proc = campaign.start()
    campaign.wait_until_running("pytorch-bs1-c02")
    lem_campaign_id = campaign.manifest()["campaign_id"]
    for container in containers(docker_engine, lem_campaign_id, "pytorch-bs1-c02"):
        container.kill()
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 1, out[-2000:] + err[-2000:]
    first = {r["run_id"]: r for r in campaign.manifest()["runs"]}
    assert first["pytorch-bs1-c01"]["status"] == "done"
    assert (first["pytorch-bs1-c02"]["status"], first["pytorch-bs1-c02"]["outcome"]) == ("failed", "failed")
    done_result = (campaign.dir / "pytorch-bs1-c01" / "result.json").read_bytes()

    resumed = campaign.run("--resume")
    assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-3000:]
    assert "campaign: 2 runs, 1 already done, 1 to run" in resumed.stderr
    runs = {r["run_id"]: r for r in campaign.manifest()["runs"]}
    assert (runs["pytorch-bs1-c01"]["status"], runs["pytorch-bs1-c01"]["attempts"]) == ("done", 1)
    assert (runs["pytorch-bs1-c02"]["status"], runs["pytorch-bs1-c02"]["attempts"]) == ("done", 2)
    assert (campaign.dir / "pytorch-bs1-c01" / "result.json").read_bytes() == done_result  # never run again
    assert containers(docker_engine, lem_campaign_id) == []


def test_ctrl_c_mid_campaign_exits_130_with_a_consistent_manifest_and_no_container(
    tmp_path: Path, tiny_model_dir: Path, pytorch_cpu_image: str, campaign_id: str, docker_engine: Any
) -> None:
    campaign = Campaign(tmp_path, tiny_model_dir, campaign_id, [1], baseline_s=30.0)
    proc = campaign.start()
    campaign.wait_until_running("pytorch-bs1-c01")
    lem_campaign_id = campaign.manifest()["campaign_id"]
    assert len(containers(docker_engine, lem_campaign_id, "pytorch-bs1-c01")) == 1
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)

    assert proc.returncode == 130, out[-2000:] + err[-2000:]
    assert "SIGINT: stopping the running container" in err
    runs = {r["run_id"]: r for r in campaign.manifest()["runs"]}
    assert runs["pytorch-bs1-c01"]["status"] == "interrupted"
    assert runs["pytorch-bs1-c02"]["status"] == "pending"
    assert not (campaign.dir / "manifest.json.journal").exists()  # the final state was written whole
    assert containers(docker_engine, lem_campaign_id) == []  # the container was stopped and removed
    assert f"to continue: lem campaign run {campaign.file} --resume" in out
