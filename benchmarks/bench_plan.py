"""`lem campaign plan` on a campaign of 10,000 configurations x 3 cycles: wall time.

    .venv/bin/python benchmarks/bench_plan.py [--side 100] [--repeat 3]

Writes a campaign whose grid is ``side x side`` configurations (pytorch, ``seed`` x
``max_output_tokens``; 100 x 100 = 10,000) into a temp directory, then runs
``python -m lem campaign plan FILE`` (text and ``--json``) in a fresh process each time:
the full path a user takes (YAML loading, validation of every expanded configuration,
hashing, planning, printing 30,000 rows). Target: < 5 s.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_S = 5.0

CAMPAIGN = """\
schema_version: "3.0.0"
campaign_name: bench-plan
model: Qwen/Qwen2.5-0.5B
dataset: {{source: ai_energy_score}}
num_samples: 100
base:
  gpus: [0]
  warmup: {{mode: fixed, min_prompts: 5, max_prompts: 20}}
grid:
  backends: [pytorch]
  axes:
    seed: {seeds}
    max_output_tokens: {tokens}
execution:
  cycles: 3
  structure: shuffled
  warmup_prompts: 5
"""


def write_campaign(directory: Path, side: int) -> Path:
    path = directory / "campaign.yaml"
    values = list(range(1, side + 1))
    path.write_text(CAMPAIGN.format(seeds=values, tokens=values))
    return path


def child_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed_plan(path: Path, *extra: str) -> tuple[float, float, str]:
    """(wall seconds, CPU seconds of the child, stdout) of one ``lem campaign plan`` process."""
    start, cpu = time.perf_counter(), child_cpu_s()
    result = subprocess.run(
        [sys.executable, "-m", "lem", "campaign", "plan", *extra, str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed, used = time.perf_counter() - start, child_cpu_s() - cpu
    if result.returncode != 0:
        raise SystemExit(f"lem campaign plan failed:\n{result.stdout}{result.stderr}")
    return elapsed, used, result.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=100, help="axis length (configurations = side^2)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = write_campaign(Path(tmp), args.side)
        for label, extra in (("text", ()), ("json", ("--json",))):
            times, cpus = [], []
            for _ in range(args.repeat):
                elapsed, cpu, out = timed_plan(path, *extra)
                times.append(elapsed)
                cpus.append(cpu)
            rows = out.count("\n") if label == "text" else out.count('"run_id"')
            best, median = min(times), statistics.median(times)
            verdict = "PASS" if median < TARGET_S else "FAIL"
            print(
                f"plan ({label}): {args.side**2:,} configurations x 3 cycles, {rows:,} output rows: "
                f"median {median:.2f} s wall ({statistics.median(cpus):.2f} s CPU), best {best:.2f} s over "
                f"{args.repeat} runs -> {verdict} (< {TARGET_S:g} s)"
            )


if __name__ == "__main__":
    main()
