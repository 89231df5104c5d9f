"""`lem config validate` on 1,000 files, and the time to reject each bad config.

    .venv/bin/python benchmarks/bench_validate.py [--files 1000] [--repeat 3]

1. Writes ``--files`` experiment files (the four backends' examples with varied batch sizes,
   token counts and precisions) into a temp directory and runs ``python -m lem config
   validate DIR`` once per repeat: one process for all files.
2. Runs ``python -m lem config validate FILE`` on every file of ``tests/data/bad_configs``
   (and a generated 10 MB file), one process each, and reports the slowest rejection.
   Target from the issue: each rejected within 2 s.
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

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "configs" / "examples"
BAD = REPO / "tests" / "data" / "bad_configs"
REJECT_TARGET_S = 2.0


def write_files(directory: Path, count: int) -> None:
    sources = [(EXAMPLES / f"{b}_example.yaml").read_text() for b in ("pytorch", "vllm", "tensorrt")]
    for i in range(count):
        text = sources[i % 3]
        text = text.replace("max_output_tokens: 128", f"max_output_tokens: {16 + i % 200}")
        text = text.replace("seed: 42", f"seed: {i}")
        (directory / f"exp_{i:04d}.yaml").write_text(text)


def child_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def validate(*paths: Path) -> tuple[float, float, subprocess.CompletedProcess[str]]:
    """(wall seconds, CPU seconds of the child, result) of one ``lem config validate`` process."""
    start, cpu = time.perf_counter(), child_cpu_s()
    result = subprocess.run(
        [sys.executable, "-m", "lem", "config", "validate", *map(str, paths)],
        capture_output=True,
        text=True,
        check=False,
    )
    return time.perf_counter() - start, child_cpu_s() - cpu, result


def bench_many(count: int, repeat: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        write_files(Path(tmp), count)
        times, cpus = [], []
        for _ in range(repeat):
            elapsed, cpu, result = validate(Path(tmp))
            if result.returncode != 0:
                raise SystemExit(result.stdout[-2000:])
            times.append(elapsed)
            cpus.append(cpu)
        median = statistics.median(times)
        print(
            f"validate {count:,} files in one process: median {median:.2f} s wall "
            f"({statistics.median(cpus):.2f} s CPU), best {min(times):.2f} s, "
            f"{1000 * median / count:.2f} ms per file, over {repeat} runs"
        )


def bench_rejections() -> None:
    files = sorted(p for p in BAD.glob("*.yaml") if p.name != "expected.yaml")
    with tempfile.TemporaryDirectory() as tmp:
        huge = Path(tmp) / "huge.yaml"
        huge.write_bytes(b"key: value\n" * (10 * 1024 * 1024 // 11 + 1))
        timings = []
        for path in [*files, huge]:
            elapsed, cpu, result = validate(path)
            if result.returncode != 1 or "Traceback" in result.stdout + result.stderr:
                raise SystemExit(f"{path} not rejected cleanly:\n{result.stdout}{result.stderr}")
            timings.append((elapsed, cpu, path.name))
    timings.sort()
    slowest, slowest_cpu, name = timings[-1]
    verdict = "PASS" if slowest < REJECT_TARGET_S else "FAIL"
    print(
        f"reject {len(timings)} bad configs, one process each: "
        f"median {statistics.median(t[0] for t in timings):.2f} s "
        f"wall ({statistics.median(t[1] for t in timings):.2f} s CPU), slowest {slowest:.2f} s wall "
        f"({slowest_cpu:.2f} s CPU, {name}) -> {verdict} (< {REJECT_TARGET_S:g} s each)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    bench_many(args.files, args.repeat)
    bench_rejections()


if __name__ == "__main__":
    main()
