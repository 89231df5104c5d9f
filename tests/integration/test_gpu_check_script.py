"""`make gpu-check`'s script, run in its CPU smoke mode (tiny model, simulated device).

On a GPU host the same code path runs the Qwen2.5-0.5B-shaped model on NVML; here it proves the
script builds specs the harness accepts, reads the results and judges them.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_cpu_smoke_runs_both_batch_sizes_without_problems(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "gpu_check.py"), "--cpu-smoke", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["problems"] == []
    assert summary["mode"] == "cpu-smoke"
    assert {name: step["status"] for name, step in summary["steps"].items()} == {
        "nvml": "ok",
        "idle": "ok",
        "burn": "ok",
        "model": "ok",
    }
    assert summary["steps"]["nvml"]["capabilities"] == {"skipped": "simulated device: no NVML to probe"}
    burn = summary["steps"]["burn"]
    assert burn["matmuls"] > 0 and abs(burn["counter_vs_integral_pct"]) < 1.0
    assert [row["run_id"] for row in summary["runs"]] == ["gpu-check-bs2", "gpu-check-bs8"]
    for row in summary["runs"]:
        assert (tmp_path / row["run_id"] / "result.json").is_file()
