#!/usr/bin/env python3
"""GPU self-check of the harness (``make gpu-check``): one NVIDIA GPU, no network, no Docker, < 4 min.

Builds a randomly initialised model of Qwen2.5-0.5B's shape from
``configs/gpu_check/qwen2_5_0_5b_config.json`` (bf16, with a tiny trained tokenizer), then
runs ``python -m lem_harness run`` directly at two batch sizes: 10 s idle baseline, 10 Hz
power sampling, NVML energy counter. Prints, per run: counter vs integrated energy and
their discrepancy, idle power, idle-adjusted energy, J per output token, tokens/s,
throttle flags and sample coverage; writes every run and ``summary.json`` under ``--out``.

Exit 0 when every run is ok and has a counter reading, a counter-vs-integral discrepancy
within 10 % and a sample coverage of at least 75 %; 1 otherwise; 2 when there is no GPU.
``--cpu-smoke`` runs the same script on CPU with a tiny model and the simulated device (a
check of the script itself, not of any GPU).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "images" / "harness")]

from lem_harness.contract import RESULT_FILE, RunResult, RunSpec, config_hash  # noqa: E402
from lem_harness.experiment import ExperimentConfig  # noqa: E402
from lem_harness.fileio import atomic_write_json  # noqa: E402

MODEL_CONFIG = REPO / "configs" / "gpu_check" / "qwen2_5_0_5b_config.json"
MAX_DISCREPANCY_PCT = 10.0
MIN_COVERAGE = 0.75


@dataclass(frozen=True)
class Plan:
    batch_sizes: tuple[int, ...]
    prompts: int
    input_tokens: int
    output_tokens: int
    baseline_s: float
    rate_hz: float
    device: str  # nvml | simulated
    precision: str


GPU_PLAN = Plan(
    (4, 16),
    prompts=96,
    input_tokens=128,
    output_tokens=96,
    baseline_s=10.0,
    rate_hz=10.0,
    device="nvml",
    precision="bfloat16",
)
CPU_SMOKE_PLAN = Plan(  # windows of ~1-2 s on a laptop core: long enough for 10 Hz coverage
    (2, 8),
    prompts=32,
    input_tokens=16,
    output_tokens=64,
    baseline_s=2.0,
    rate_hz=10.0,
    device="simulated",
    precision="float32",
)


def build_gpu_model(out: Path) -> Path:
    """Random Qwen2.5-0.5B-shaped weights (bf16, initialised on CPU so this process holds no CUDA context)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, GenerationConfig

    from tests.support.tiny_model import build_tokenizer

    tokenizer = build_tokenizer()
    fields = json.loads(MODEL_CONFIG.read_text())
    fields.update(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    config = AutoConfig.for_model(**fields)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)  # type: ignore[no-untyped-call]
    model.generation_config = GenerationConfig(  # type: ignore[no-untyped-call]
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def build_smoke_model(out: Path) -> Path:
    from tests.support.tiny_model import build_tiny_model

    return build_tiny_model(out)


def backend_section(backend: str, batch_size: int, plan: Plan) -> dict[str, Any]:
    if backend == "vllm":
        return {
            "max_num_seqs": batch_size,
            "max_model_len": plan.input_tokens + plan.output_tokens,
            "gpu_memory_utilization": 0.5,
            "enforce_eager": True,
        }
    return {"batch_size": batch_size}


def make_spec(
    model_dir: Path, batch_size: int, plan: Plan, cache_dir: Path, backend: str = "pytorch"
) -> RunSpec:
    name = f"gpu-check-{'' if backend == 'pytorch' else backend + '-'}bs{batch_size}"
    config = ExperimentConfig.model_validate(
        {
            "config_name": name,
            "model_name": str(model_dir),
            "backend": backend,
            "gpus": [0],
            "max_input_tokens": plan.input_tokens,
            "max_output_tokens": plan.output_tokens,
            "min_output_tokens": plan.output_tokens,  # fixed-length outputs: equal work at every batch size
            "fp_precision": plan.precision,
            "prompts": {"type": "synthetic", "sample_size": plan.prompts, "input_len": plan.input_tokens},
            "warmup": {"mode": "fixed", "min_prompts": 0, "max_prompts": 2 * batch_size},
            "baseline": {"method": "fresh", "duration_seconds": plan.baseline_s},
            "timeseries": {"sample_rate_hz": plan.rate_hz},
            "measurement": {"device": plan.device},
            backend: backend_section(backend, batch_size, plan),
        }
    )
    return RunSpec(
        run_id=name,
        config_id=config_hash(config),
        config_name=config.config_name or "gpu-check",
        config=config,
        baseline_cache_dir=str(cache_dir),
    )


def run_harness(spec: RunSpec, run_dir: Path, timeout_s: float) -> RunResult:
    run_dir.mkdir(parents=True, exist_ok=True)
    spec_path = run_dir / "spec.json"
    atomic_write_json(spec_path, spec)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO / "images" / "harness")}
    command = [sys.executable, "-m", "lem_harness", "run", "--spec", str(spec_path), "--out", str(run_dir)]
    with (run_dir / "harness.log").open("w") as log:
        subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, env=env, timeout=timeout_s, check=False)
    return RunResult.model_validate_json((run_dir / RESULT_FILE).read_text())


def figures(result: RunResult) -> dict[str, Any]:
    m, e = result.metrics, result.energy
    return {
        "run_id": result.run_id,
        "status": result.status,
        "error": result.error.message if result.error else None,
        "batch_size": result.config.pytorch.batch_size if result.config and result.config.pytorch else None,
        "output_tokens": m.output_tokens if m else None,
        "window_s": e.window_duration_s if e else None,
        "output_tokens_per_s": m.output_tokens_per_s if m else None,
        "energy_source": e.energy_source if e else None,
        "counter_energy_j": e.gross_energy_j if e and e.energy_source != "power_integral" else None,
        "integrated_energy_j": e.integrated_energy_j if e else None,
        "counter_vs_integral_pct": e.counter_vs_integral_pct if e else None,
        "idle_power_w": e.idle_power_w if e else None,
        "adjusted_energy_j": e.adjusted_energy_j if e else None,
        "energy_per_output_token_j": e.energy_per_output_token_j if e else None,
        "adjusted_energy_per_output_token_j": e.adjusted_energy_per_output_token_j if e else None,
        "avg_power_w": e.avg_power_w if e else None,
        "sample_coverage": e.sample_coverage if e else None,
        "load_duration_s": result.setup.load_duration_s,
        "peak_memory_bytes": m.peak_memory_bytes if m else None,
        "flags": [f.code for f in result.flags],
        "throttling": [f.message for f in result.flags if f.code == "THROTTLING"],
    }


def problems(row: dict[str, Any]) -> list[str]:
    if row["status"] != "ok":
        return [f"{row['run_id']}: run failed: {row['error']}"]
    found = []
    if row["counter_energy_j"] is None:
        found.append(f"{row['run_id']}: no energy counter reading (energy_source {row['energy_source']})")
    pct = row["counter_vs_integral_pct"]
    if pct is None or abs(pct) > MAX_DISCREPANCY_PCT:
        found.append(
            f"{row['run_id']}: counter vs integral discrepancy {pct} % (limit {MAX_DISCREPANCY_PCT} %)"
        )
    coverage = row["sample_coverage"]
    if coverage is None or coverage < MIN_COVERAGE:
        found.append(f"{row['run_id']}: sample coverage {coverage} (minimum {MIN_COVERAGE})")
    return found


def _f(value: object, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def print_table(rows: list[dict[str, Any]]) -> None:
    columns = [
        ("batch", "batch_size", 0),
        ("tok/s", "output_tokens_per_s", 1),
        ("window s", "window_s", 1),
        ("counter J", "counter_energy_j", 1),
        ("integral J", "integrated_energy_j", 1),
        ("diff %", "counter_vs_integral_pct", 2),
        ("idle W", "idle_power_w", 1),
        ("avg W", "avg_power_w", 1),
        ("adj J", "adjusted_energy_j", 1),
        ("J/tok", "energy_per_output_token_j", 4),
        ("adj J/tok", "adjusted_energy_per_output_token_j", 4),
        ("coverage", "sample_coverage", 3),
    ]
    print("  ".join(f"{title:>11}" for title, _, _ in columns))
    for row in rows:
        print("  ".join(f"{_f(row[key], digits):>11}" for _, key, digits in columns))
    for row in rows:
        throttled = "; ".join(row["throttling"]) or "none"
        print(f"{row['run_id']}: flags {row['flags'] or 'none'}; throttling: {throttled}")


def gpu_name(results: list[RunResult]) -> str | None:
    for result in results:
        if result.provenance and result.provenance.gpus:
            gpu = result.provenance.gpus[0]
            return f"{gpu.name} ({gpu.uuid}), driver {result.provenance.driver_version}"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "results" / "gpu-check")
    parser.add_argument(
        "--cpu-smoke", action="store_true", help="tiny model + simulated device (script check)"
    )
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds per harness run")
    args = parser.parse_args(argv)
    plan = CPU_SMOKE_PLAN if args.cpu_smoke else GPU_PLAN
    if not args.cpu_smoke:
        import torch

        if not torch.cuda.is_available():
            print(
                "gpu_check: no CUDA GPU visible to torch (need one NVIDIA GPU and a CUDA build of torch); "
                "use --cpu-smoke to check the script itself",
                file=sys.stderr,
            )
            return 2
    out: Path = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    model_dir = (build_smoke_model if args.cpu_smoke else build_gpu_model)(out / "model")
    print(f"model built in {time.monotonic() - started:.1f} s: {model_dir}", flush=True)
    runs = [("pytorch", batch_size) for batch_size in plan.batch_sizes]
    if not args.cpu_smoke and importlib.util.find_spec("vllm") is not None:
        runs.append(("vllm", max(plan.batch_sizes)))  # the vLLM engine too, where it is installed
    results = []
    for backend, batch_size in runs:
        spec = make_spec(model_dir, batch_size, plan, out / "baseline-cache", backend)
        results.append(run_harness(spec, out / spec.run_id, args.timeout))
        print(f"{spec.run_id}: {results[-1].status} ({time.monotonic() - started:.0f} s so far)", flush=True)
    rows = [figures(r) for r in results]
    print_table(rows)
    found = [p for row in rows for p in problems(row)]
    summary = {
        "date_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "gpu": gpu_name(results),
        "plan": plan.__dict__,
        "elapsed_s": time.monotonic() - started,
        "runs": rows,
        "problems": found,
    }
    atomic_write_json(out / "summary.json", summary)
    print(f"\n{len(found)} problem(s); {summary['elapsed_s']:.0f} s; summary: {out / 'summary.json'}")
    for problem in found:
        print(f"  PROBLEM {problem}")
    return 1 if found else 0


if __name__ == "__main__":
    raise SystemExit(main())
