"""`lem results summary` over 10,000 result files: wall time and peak memory.

    .venv/bin/python benchmarks/bench_summary.py [--runs 10000] [--configs 100] [--keep DIR]

Writes a generated campaign (``--configs`` configurations x ``runs / configs`` cycles, every
result a full contract ``RunResult`` with config and provenance) into a temp directory,
then runs ``lem results summary`` on it in a fresh process (``python -m lem``), measuring
wall time and the child's peak resident memory. Targets: < 5 s and < 500 MB.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lem_harness.contract import (
    BaselineMetrics,
    EnergyMetrics,
    GpuInfo,
    InferenceMetrics,
    Phase,
    Provenance,
    RunResult,
    config_hash,
)
from lem_harness.experiment import ExperimentConfig

TIME_TARGET_S = 5.0
MEMORY_TARGET_MB = 500.0


def template(config: ExperimentConfig) -> dict[str, object]:
    gpu = GpuInfo(index=0, uuid="GPU-bench-0000", name="NVIDIA A100-SXM4-80GB", driver_version="550.54.15")
    result = RunResult(
        run_id="x",
        campaign_id="bench",
        config_id="x",
        config_name="x",
        cycle=1,
        backend="pytorch",
        status="ok",
        started_at="2025-03-01T09:00:00.000+00:00",
        finished_at="2025-03-01T09:01:00.000+00:00",
        config=config,
        metrics=InferenceMetrics(
            num_prompts=100,
            num_batches=25,
            input_tokens=25600,
            output_tokens=12800,
            duration_s=60.0,
            output_tokens_per_s=213.3,
            total_tokens_per_s=640.0,
            batch_latency_p50_s=2.4,
            batch_latency_p90_s=2.6,
            batch_latency_p99_s=2.9,
        ),
        energy=EnergyMetrics(
            energy_source="nvml_counter",
            gross_energy_j=18000.0,
            idle_power_w=60.0,
            adjusted_energy_j=14400.0,
            window_duration_s=60.0,
            avg_power_w=300.0,
            energy_per_output_token_j=1.40625,
            adjusted_energy_per_output_token_j=1.125,
            output_tokens_per_j=0.711,
        ),
        baseline=BaselineMetrics(
            idle_power_w=60.0, duration_s=30.0, samples=150, per_gpu_idle_power_w={"GPU-bench-0000": 60.0}
        ),
        phases=[Phase(name="baseline", start_s=0, end_s=30), Phase(name="measure", start_s=40, end_s=100)],
        provenance=Provenance(
            harness_version="0.1.0",
            python_version="3.11.7",
            hostname="node-01",
            packages={"torch": "2.5.1", "transformers": "4.46.3"},
            driver_version="550.54.15",
            cuda_version="12.4",
            gpus=[gpu],
            config_hash="x",
            seed=42,
            device_kind="nvml",
        ),
    )
    data: dict[str, object] = json.loads(result.model_dump_json())
    return data


def generate(root: Path, runs: int, configs: int) -> Path:
    campaign = root / "bench"
    cfgs = [
        ExperimentConfig(model="tiny/model", name=f"cfg{i:04d}", pytorch={"batch_size": 1 + i % 64})
        for i in range(configs)
    ]
    bases = [(template(c), config_hash(c)) for c in cfgs]
    for n in range(runs):
        i, cycle = n % configs, n // configs + 1
        data, cid = bases[i]
        jitter = 1.0 + ((n * 7919) % 97) / 1000.0
        run_id = f"cfg{i:04d}-c{cycle:03d}"
        data.update(run_id=run_id, config_id=cid, config_name=f"cfg{i:04d}", cycle=cycle)
        energy = data["energy"]
        assert isinstance(energy, dict)
        energy.update(gross_energy_j=18000.0 * jitter, energy_per_output_token_j=1.40625 * jitter)
        run_dir = campaign / run_id
        run_dir.mkdir(parents=True)
        (run_dir / "result.json").write_text(json.dumps(data, indent=2))
    return campaign


def measure(campaign: Path) -> tuple[float, float, float, int]:
    """Wall s, CPU s (user + sys), peak RSS (MB) and exit status of ``lem results summary`` in a child.

    The child's CPU time is the figure that does not depend on what else the machine runs.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "lem", "results", "summary", str(campaign)],
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode != 0:
        print(proc.stderr, file=sys.stderr)
    return wall, cpu, after.ru_maxrss / 1024.0, proc.returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--configs", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="generate into this directory and keep it")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        start = time.perf_counter()
        campaign = generate(root, args.runs, args.configs)
        size_mb = sum(p.stat().st_size for p in campaign.rglob("result.json")) / 1e6
        print(f"generated {args.runs} results ({size_mb:.0f} MB) in {time.perf_counter() - start:.1f} s")
        walls: list[float] = []
        peak = 0.0
        for attempt in range(1, args.repeat + 1):
            wall, cpu, peak_mb, status = measure(campaign)
            if status != 0:
                return 1
            walls.append(wall)
            peak = max(peak, peak_mb)
            print(f"run {attempt}: wall {wall:.2f} s, CPU {cpu:.2f} s, peak RSS {peak_mb:.0f} MB")
    passed = min(walls) < TIME_TARGET_S and peak < MEMORY_TARGET_MB
    print(
        f"best wall {min(walls):.2f} s (target < {TIME_TARGET_S} s), peak RSS {peak:.0f} MB "
        f"(target < {MEMORY_TARGET_MB:.0f} MB) -> {'PASS' if passed else 'FAIL'}"
    )
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
