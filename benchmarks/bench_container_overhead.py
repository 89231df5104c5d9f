"""Orchestration overhead per experiment: lem's container lifecycle vs a bare ``docker run --rm IMAGE true``.

lem's side is ``DockerRuntime.run`` end to end — image check, mount preparation, create + start
(labels, mounts, env, init, security options), log streaming to ``container.log``, the wait with
its timeout, the OOM check, result validation through ``RunResult`` and the container's removal —
around a no-op harness: ``sh -c`` writing a valid ``result.json`` (so model load and measurement are
excluded, as the target asks). The bare side is the docker CLI's ``docker run --rm --entrypoint true``.
Both use the same image, interleaved, ``--repeat`` times each after one warm-up.

``--python`` also starts Python and imports the harness's contract inside the lem container
(the "harness start" part); the bare side stays ``true``.

    .venv/bin/python benchmarks/bench_container_overhead.py [--image IMG] [--repeat 20] [--python]

Target: median ratio ≤ 1.5.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from lem.campaign.plan import PlannedRun
from lem.runtime.docker import DockerRuntime
from lem.runtime.spec import ContainerSpec
from lem.runtime.spec_builder import RunPaths, build_container_spec
from lem_harness.experiment import ExperimentConfig

RUN_ID = "bench-c01"
RESULT = {
    "run_id": RUN_ID,
    "config_id": "000000000000",
    "config_name": "bench",
    "cycle": 1,
    "backend": "pytorch",
    "status": "ok",
    "started_at": "2025-01-01T00:00:00Z",
    "finished_at": "2025-01-01T00:00:00Z",
}
TARGET_RATIO = 1.5


def lem_spec(root: Path, image: str, with_python: bool, index: int) -> ContainerSpec:
    results = root / "results"
    run_dir = results / "bench" / f"{RUN_ID}-{index}"
    run_dir.mkdir(parents=True)
    (run_dir / "spec.json").write_text("{}")
    planned = PlannedRun(RUN_ID, 1, 1, "0" * 12, "bench", "pytorch", {}, 0.0, "none")
    config = ExperimentConfig(model="org/model", measurement={"device": "simulated"})
    spec = build_container_spec(
        planned, config, RunPaths(run_dir, results, root), image=image, campaign_id="bench", timeout_s=120
    )
    write = f"printf '%s' '{json.dumps(RESULT)}' > /lem/run/result.json"
    start = "python3 -c 'import lem_harness.contract' && " if with_python else ""
    return dataclasses.replace(spec, command=("sh", "-c", f"{start}{write}"), run_id=RUN_ID)


def time_lem(runtime: DockerRuntime, spec: ContainerSpec) -> float:
    started = time.perf_counter()
    outcome = runtime.run(spec, threading.Event())
    elapsed = time.perf_counter() - started
    if outcome.status != "ok":
        raise SystemExit(f"lem run failed: {outcome.status}: {outcome.message}")
    return elapsed


def time_bare(image: str) -> float:
    started = time.perf_counter()
    subprocess.run(["docker", "run", "--rm", "--entrypoint", "true", image], check=True)
    return time.perf_counter() - started


def summarise(name: str, samples: list[float]) -> str:
    ordered = sorted(samples)
    p90 = ordered[max(0, round(0.9 * len(ordered)) - 1)]
    return f"{name:<28} median {statistics.median(samples):.3f} s   p90 {p90:.3f} s   min {ordered[0]:.3f} s"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--image", default="llenergymeasure/pytorch:cpu")
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--python", action="store_true", help="include Python + harness import in lem's run")
    args = parser.parse_args(argv)

    # The image has an ENTRYPOINT (the harness); sh -c needs it cleared: a thin tag without one.
    image = f"{args.image.rsplit(':', 1)[0]}-bench-noentry:latest"
    dockerfile = f"FROM {args.image}\nENTRYPOINT []\nCMD []\n"
    subprocess.run(
        ["docker", "build", "-q", "-t", image, "-"],
        input=dockerfile.encode(),
        check=True,
        stdout=subprocess.DEVNULL,
        env={**os.environ, "DOCKER_BUILDKIT": "0"},  # the legacy builder: no buildx needed
    )
    runtime = DockerRuntime()
    lem_times: list[float] = []
    bare_times: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        time_lem(runtime, lem_spec(root, image, args.python, 0))  # warm-up
        time_bare(image)
        for i in range(1, args.repeat + 1):
            lem_times.append(time_lem(runtime, lem_spec(root, image, args.python, i)))
            bare_times.append(time_bare(image))
    subprocess.run(["docker", "rmi", image], check=True, stdout=subprocess.DEVNULL)

    ratio = statistics.median(lem_times) / statistics.median(bare_times)
    label = "lem run (+python start)" if args.python else "lem run (no-op harness)"
    print(f"image {args.image}, {args.repeat} runs each, interleaved")
    print(summarise(label, lem_times))
    print(summarise("docker run --rm IMAGE true", bare_times))
    verdict = "PASS" if ratio <= TARGET_RATIO else "FAIL"
    print(f"ratio of medians {ratio:.2f} (target ≤ {TARGET_RATIO}) → {verdict}")
    return 0 if ratio <= TARGET_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
