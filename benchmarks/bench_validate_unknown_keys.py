"""`lem config validate` on files with tens of thousands of problems (target: under 2 s).

    .venv/bin/python benchmarks/bench_validate_unknown_keys.py [--repeat 3] [--dir /tmp]

Writes three files next to each other and runs ``python -m lem config validate FILE`` (a fresh
process, the user's full path) on each, ``--repeat`` times, plus once with ``--json``:

1. ``unknown_keys.yaml``: just under 1 MiB (the size limit) of distinct unknown top-level keys
   (``key_0000001: 1``, ...; about 75,000), each needing a "did you mean" lookup.
2. ``value_errors.yaml``: about 400 KB: ``gpus`` given as a list of 99,000 negative ids (one
   bound error per item) plus ``max_output_tokens: yes`` (a strict-integer error).
3. ``repeated_misspelling.yaml``: a campaign whose 20,000 ``experiments`` entries each misspell
   ``file`` as ``fiel`` (40,000 problems: the unknown key and the missing one; one cached suggestion).
4. ``campaign_base_keys.yaml``: just under 1 MiB of distinct unknown keys in a campaign's ``base``
   (checked by ``lem.config.campaign_checks``, not by pydantic).

Prints, per file: its size, the problems reported (the JSON count), the child's wall and CPU
time (user + sys), and checks that the text output is capped (50 lines + "... and N more").
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lem.config.yaml_source import MAX_FILE_BYTES

TARGET_S = 2.0
HEADER = 'schema_version: "3.0.0"\nmodel: Qwen/Qwen2.5-0.5B\n'


def unknown_keys(path: Path) -> None:
    lines = [HEADER]
    size, i = len(HEADER), 0
    while True:
        line = f"key_{i:07d}: 1\n"
        if size + len(line) > MAX_FILE_BYTES - 64:
            break
        lines.append(line)
        size += len(line)
        i += 1
    path.write_text("".join(lines))


def value_errors(path: Path, items: int = 99_000) -> None:
    path.write_text(HEADER + "max_output_tokens: yes\ngpus: [" + ", ".join(["-1"] * items) + "]\n")


def repeated_misspelling(path: Path, entries: int = 20_000) -> None:
    body = "".join(f"  - fiel: exp_{i:05d}.yaml\n" for i in range(entries))
    path.write_text(f'schema_version: "3.0.0"\ncampaign_name: many\nexperiments:\n{body}')


def campaign_base_keys(path: Path) -> None:
    head = "campaign_name: c\nmodel: m\ngrid:\n  backends: [pytorch]\nbase:\n"
    lines, size, i = [head], len(head), 0
    while size < MAX_FILE_BYTES - 64:
        line = f"  key_{i:07d}: 1\n"
        lines.append(line)
        size += len(line)
        i += 1
    path.write_text("".join(lines))


def child_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def validate(path: Path, *extra: str) -> tuple[float, float, subprocess.CompletedProcess[str]]:
    start, cpu = time.perf_counter(), child_cpu_s()
    result = subprocess.run(
        [sys.executable, "-m", "lem", "config", "validate", *extra, str(path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    return time.perf_counter() - start, child_cpu_s() - cpu, result


def bench(path: Path, repeat: int) -> None:
    walls, cpus = [], []
    for _ in range(repeat):
        wall, cpu, result = validate(path)
        assert result.returncode == 1, result.stdout[-2000:] + result.stderr[-2000:]
        assert "Traceback" not in result.stdout + result.stderr
        walls.append(wall)
        cpus.append(cpu)
    lines = result.stdout.splitlines()
    capped = len(lines) == 52 and "more (--json lists them all)" in lines[-1]
    json_wall, json_cpu, as_json = validate(path, "--json")
    problems = len(json.loads(as_json.stdout)[0]["problems"])
    print(
        f"{path.name}: {path.stat().st_size:,} bytes, {problems:,} problems; text: wall median "
        f"{statistics.median(walls):.2f} s (best {min(walls):.2f} s), "
        f"CPU median {statistics.median(cpus):.2f} s, "
        f"{len(lines)} lines, capped: {capped}; --json: wall {json_wall:.2f} s, CPU {json_cpu:.2f} s; "
        f"{'PASS' if statistics.median(cpus) < TARGET_S else 'FAIL'} (CPU < {TARGET_S:g} s)"
    )
    print(f"  last line: {lines[-1].strip()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        for name, write in (
            ("unknown_keys.yaml", unknown_keys),
            ("value_errors.yaml", value_errors),
            ("repeated_misspelling.yaml", repeated_misspelling),
            ("campaign_base_keys.yaml", campaign_base_keys),
        ):
            path = Path(tmp) / name
            write(path)
            bench(path, args.repeat)


if __name__ == "__main__":
    main()
