"""The harness on a real NVIDIA GPU: NVML counter energy, power timeline, CUDA inference (marker gpu).

Skipped where torch sees no CUDA GPU. Uses the tiny test model in bf16 with a 2 s baseline:
it checks the plumbing (counter read at the window edges, sampler, synchronise, peak
memory), not the GPU's figures (``make gpu-check`` does that with a realistic model).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lem_harness.contract import RunResult, RunSpec, config_hash
from lem_harness.experiment import ExperimentConfig

pytestmark = pytest.mark.gpu

REPO = Path(__file__).resolve().parents[2]


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


@pytest.mark.skipif(not _cuda_available(), reason="needs an NVIDIA GPU visible to a CUDA build of torch")
def test_a_cuda_run_reads_the_nvml_counter_and_samples_power(tiny_model_dir: Path, tmp_path: Path) -> None:
    cfg = ExperimentConfig.model_validate(
        {
            "model_name": str(tiny_model_dir),
            "fp_precision": "bfloat16",
            "max_input_tokens": 64,
            "max_output_tokens": 64,
            "min_output_tokens": 64,
            "prompts": {"type": "synthetic", "sample_size": 64, "input_len": 64},
            "measurement": {"device": "nvml"},
            "baseline": {"method": "fresh", "duration_seconds": 2.0},
            "timeseries": {"sample_rate_hz": 10.0},
            "warmup": {"mode": "fixed", "min_prompts": 0, "max_prompts": 4},
            "pytorch": {"batch_size": 4},
        }
    )
    spec = RunSpec(run_id="gpu-smoke", config_id=config_hash(cfg), config_name="gpu-smoke", config=cfg)
    (tmp_path / "spec.json").write_text(spec.model_dump_json())
    env = {**os.environ, "PYTHONPATH": str(REPO / "images" / "harness"), "HF_HUB_OFFLINE": "1"}
    env.pop("LEM_SIMULATED_DEVICE", None)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "lem_harness",
            "run",
            "--spec",
            str(tmp_path / "spec.json"),
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = RunResult.model_validate_json((tmp_path / "result.json").read_text())
    m, e = result.metrics, result.energy
    assert m is not None and e is not None and result.provenance is not None
    assert m.output_tokens == 64 * 64
    assert m.peak_memory_bytes is not None and m.peak_memory_bytes > 0
    assert e.energy_source == "nvml_counter"
    assert e.gross_energy_j is not None and e.gross_energy_j > 0
    assert e.idle_power_w is not None and e.idle_power_w > 0
    assert e.integrated_energy_j is not None and e.integrated_energy_j > 0
    assert result.provenance.device_kind == "nvml"
    assert all(gpu.uuid.startswith("GPU-") for gpu in result.provenance.gpus)
    assert "torch" in result.provenance.packages and result.provenance.driver_version
