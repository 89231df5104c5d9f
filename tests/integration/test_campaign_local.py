"""A whole campaign through the command line and the local runtime: the real harness on the tiny
model with the simulated device, 2 configurations x 2 cycles, gaps 0."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lem_harness.contract import RunResult, RunSpec

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
RUN_IDS = ["pytorch-bs1-c01", "pytorch-bs2-c01", "pytorch-bs1-c02", "pytorch-bs2-c02"]


def campaign_yaml(model: Path) -> str:
    return f"""\
campaign_name: local-demo
model: {model}
prompts: {{type: synthetic, sample_size: 4, input_len: 8}}
base:
  fp_precision: float32
  max_output_tokens: 4
  measurement: {{device: simulated}}
  baseline: {{method: cache, duration_seconds: 1}}
  warmup: {{enabled: false}}
  timeseries: {{sample_rate_hz: 10}}
grid:
  backends: [pytorch]
  axes:
    pytorch.batch_size: [1, 2]
execution: {{cycles: 2, config_gap_seconds: 0, cycle_gap_seconds: 0, timeout_seconds: 600}}
"""


@pytest.fixture
def campaign_file(tmp_path: Path, tiny_model_dir: Path) -> Path:
    model = tmp_path / "model"  # inside the campaign's directory: an allowed input root
    shutil.copytree(tiny_model_dir, model)
    path = tmp_path / "campaign.yaml"
    path.write_text(campaign_yaml(model))
    return path


def lem(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "HOME": str(tmp_path / "home"),  # the local runtime's volumes and the live-campaign registry
        "HF_HUB_OFFLINE": "1",
        "COLUMNS": "200",
    }
    env.pop("HF_HOME", None)
    return subprocess.run(
        [sys.executable, "-m", "lem", "campaign", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=900,
        check=False,
    )


def test_a_local_campaign_leaves_a_complete_results_tree_and_a_summary(
    tmp_path: Path, campaign_file: Path
) -> None:
    results = tmp_path / "results"
    done = lem(tmp_path, str(campaign_file), "--runtime", "local", "--quiet", "--results-dir", str(results))
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]

    campaign_dir = results / "local-demo"
    manifest = json.loads((campaign_dir / "manifest.json").read_text())
    assert [r["run_id"] for r in manifest["runs"]] == RUN_IDS
    assert [(r["status"], r["attempts"], r["outcome"]) for r in manifest["runs"]] == [("done", 1, "ok")] * 4
    assert [r["result_path"] for r in manifest["runs"]] == [f"{r}/result.json" for r in RUN_IDS]
    assert [r["gap_waited_s"] for r in manifest["runs"]] == [0.0] * 4
    assert not (campaign_dir / "manifest.json.journal").exists()

    for run_id in RUN_IDS:
        run_dir = campaign_dir / run_id
        assert sorted(p.name for p in run_dir.iterdir()) == [
            "container.log",
            "result.json",
            "spec.json",
            "status.json",  # the live view's last word: phase "writing"
            "timeline.csv",
        ]
        spec = RunSpec.model_validate_json((run_dir / "spec.json").read_text())
        result = RunResult.model_validate_json((run_dir / "result.json").read_text())
        assert (result.status, result.run_id, result.cycle) == ("ok", run_id, spec.cycle)
        assert result.campaign_id == manifest["campaign_id"] == spec.campaign_id
        assert result.config_id == spec.config_id
        assert result.energy is not None and result.energy.energy_source == "simulated"
        assert result.metrics is not None and result.metrics.output_tokens > 0
        assert len((run_dir / "timeline.csv").read_text().splitlines()) > 1

    out = done.stdout
    assert "campaign local-demo: 4 runs — 4 done, 0 failed, 0 interrupted, 0 pending" in out
    assert "Campaign local-demo" in out  # the per-configuration table
    assert "pytorch-bs1" in out and "pytorch-bs2" in out
    assert f"results: {campaign_dir}" in out
    assert "run 4/4: pytorch-bs2 cycle 2" in done.stderr

    again = lem(
        tmp_path,
        str(campaign_file),
        "--runtime",
        "local",
        "--quiet",
        "--results-dir",
        str(results),
        "--resume",
    )
    assert again.returncode == 0, again.stderr[-2000:]
    assert "campaign: 4 runs, 4 already done, 0 to run" in again.stderr
