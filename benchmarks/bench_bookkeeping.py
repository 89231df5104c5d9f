"""Bookkeeping cost of a 1,000-run campaign against a fake runtime (target: under 10 s).

Everything a real campaign does except running containers: grid expansion and plan, a
container spec per run, ``spec.json`` per run, the manifest saved atomically after every
change (running, then done/failed), result.json read and validated, progress lines. The
fake runtime returns at once and writes a result the way a harness would; the fake clock
never sleeps (gaps are recorded, not waited).

    .venv/bin/python benchmarks/bench_bookkeeping.py [--configs 100] [--cycles 10] [--dir /tmp]

Prints the wall time of each phase, the manifest's final size and how often it was saved.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lem.campaign.clock import FakeClock  # noqa: E402
from lem.campaign.expand import expand_campaign  # noqa: E402
from lem.campaign.gaps import GpuProbe  # noqa: E402
from lem.campaign.launch import LaunchRequest, LaunchServices, launch_campaign  # noqa: E402
from lem.campaign.manifest import Manifest  # noqa: E402
from lem.campaign.plan import plan_campaign  # noqa: E402
from lem.campaign.progress import LogProgress  # noqa: E402
from lem.config.campaign import CampaignConfig  # noqa: E402
from lem_harness.devices.base import DeviceUnavailableError  # noqa: E402
from tests.support.fake_runtime import FAIL, FakeRuntime, Play  # noqa: E402


def campaign(configs: int, cycles: int) -> CampaignConfig:
    return CampaignConfig.model_validate(
        {
            "campaign_name": "bookkeeping",
            "model_name": "org/tiny-model",
            "prompts": {"type": "synthetic", "sample_size": 4, "input_len": 8},
            "base": {"measurement": {"device": "simulated"}, "max_output_tokens": 4},
            "grid": {"backends": ["pytorch"], "axes": {"pytorch.batch_size": list(range(1, configs + 1))}},
            "execution": {"cycles": cycles, "config_gap_seconds": 60, "cycle_gap_seconds": 300},
        }
    )


def no_nvml(uuids: Sequence[str]) -> GpuProbe:
    raise DeviceUnavailableError("no NVML in the benchmark")


class SaveCounter:
    """Counts manifest saves and remembers the manifest, to read its snapshot count at the end."""

    def __init__(self) -> None:
        self.saves = 0
        self.manifest: Manifest | None = None
        real = Manifest.save

        def counting(manifest: Manifest, now: float) -> None:
            self.saves += 1
            self.manifest = manifest
            real(manifest, now)

        Manifest.save = counting  # type: ignore[method-assign,assignment]

    @property
    def snapshots(self) -> int:
        return self.manifest.store.snapshots if self.manifest is not None else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", type=int, default=100)
    parser.add_argument("--cycles", type=int, default=10)
    parser.add_argument("--dir", type=Path, default=None, help="parent of the results (default: a temp dir)")
    args = parser.parse_args()

    t0 = time.perf_counter()
    cfg = campaign(args.configs, args.cycles)
    expansion = expand_campaign(cfg, ROOT)
    runs = plan_campaign(cfg, expansion)
    t_plan = time.perf_counter() - t0

    counter = SaveCounter()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        root = Path(tmp)
        clock = FakeClock()
        runtime = FakeRuntime(clock=clock.advance, default=Play(duration_s=0.0))
        runtime.script = {runs[i].run_id: [FAIL] for i in range(0, len(runs), 97)}  # a few failures
        fake_s = [0.0]
        real_run = runtime.run

        def timed_run(spec: Any, stop: threading.Event) -> Any:
            t = time.perf_counter()
            try:
                return real_run(spec, stop)
            finally:
                fake_s[0] += time.perf_counter() - t

        runtime.run = timed_run  # type: ignore[method-assign]
        lines: list[str] = []
        request = LaunchRequest(
            campaign=cfg,
            campaign_file=ROOT / "bench.yaml",
            expansion=expansion,
            runs=runs,
            results_root=root / "results",
            project_root=root,
        )
        services = LaunchServices(
            runtime=runtime,
            clock=clock,
            stop=threading.Event(),
            progress=LogProgress(clock, lines.append),
            probe_factory=no_nvml,
            inventory=lambda indices: ({}, None),
            registry=root / "live",
            host_env={},
        )
        t1 = time.perf_counter()
        result = launch_campaign(request, services)
        t_run = time.perf_counter() - t1
        size = (result.campaign_dir / "manifest.json").stat().st_size

    report = result.report
    print(f"runs: {report.total} ({report.done} done, {report.failed} failed), {len(lines)} progress lines")
    print(f"expand + plan:      {t_plan:7.3f} s")
    print(f"launch (all runs):  {t_run:7.3f} s   ({t_run / report.total * 1000:.2f} ms per run)")
    print(f"  of which the fake runtime (reads spec.json, writes result.json): {fake_s[0]:.3f} s")
    total = t_plan + t_run
    print(f"total bookkeeping:  {total:7.3f} s   (target < 10 s; {total - fake_s[0]:.3f} s without the fake)")
    print(
        f"manifest: {size / 1024:.0f} KiB at the end; {counter.saves} saves (journaled), "
        f"{counter.snapshots} whole-file snapshots"
    )
    return 0 if t_plan + t_run < 10.0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
