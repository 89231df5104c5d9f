"""Sampler cost: process CPU time while the timeline sampler runs at 10 Hz.

Target: at most 1 % of one core. Runs the real sampler thread, with the main thread
asleep, and reports CPU seconds / wall seconds. ``--device simulated`` (the default)
measures the harness's own cost; ``--device nvml`` adds the NVML calls on a real GPU.

    .venv/bin/python benchmarks/bench_sampler.py [--seconds 20] [--rate-hz 10] [--gpus 1] [--device nvml]
"""

from __future__ import annotations

import argparse
import os
import platform
import time

from lem_harness.devices.base import DeviceError, GpuDevices
from lem_harness.devices.simulated import SimulatedDevices
from lem_harness.measure.sampler import Sampler


def open_devices(kind: str, gpus: int) -> GpuDevices:
    if kind == "simulated":
        return SimulatedDevices(gpus)
    from lem_harness.devices.nvml import open_nvml

    devices, _ = open_nvml(list(range(gpus)), os.environ)
    return devices


def measure(devices: GpuDevices, seconds: float, rate_hz: float) -> dict[str, float]:
    sampler = Sampler(devices, rate_hz, phase="measure")
    idle_cpu0, idle_wall0 = time.process_time(), time.monotonic()
    time.sleep(min(2.0, seconds / 10))
    idle_cpu = (time.process_time() - idle_cpu0) / (time.monotonic() - idle_wall0)
    cpu0, wall0 = time.process_time(), time.monotonic()
    sampler.start()
    time.sleep(seconds)
    sampler.stop()
    cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "core_pct": 100.0 * cpu / wall,
        "idle_core_pct": 100.0 * idle_cpu,
        "ticks": sampler.ticks,
        "expected_ticks": wall * min(rate_hz, 20.0),
        "rows": len(sampler.samples()),
        "cpu_per_tick_us": 1e6 * cpu / max(1, sampler.ticks),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rate-hz", type=float, default=10.0)
    parser.add_argument("--gpus", type=int, default=1)
    parser.add_argument("--device", choices=("simulated", "nvml"), default="simulated")
    args = parser.parse_args()
    try:
        devices = open_devices(args.device, args.gpus)
    except DeviceError as e:
        raise SystemExit(f"bench_sampler: {e}") from None
    with devices:
        result = measure(devices, args.seconds, args.rate_hz)
    machine = platform.processor() or platform.machine()
    print(f"machine: {machine}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print(f"sampler at {args.rate_hz:g} Hz, {args.gpus} {args.device} GPU(s), {result['wall_s']:.1f} s wall")
    print(f"ticks: {result['ticks']} of {result['expected_ticks']:.0f} expected; rows: {result['rows']}")
    print(
        f"process CPU: {result['cpu_s']:.4f} s = {result['core_pct']:.3f} % of one core "
        f"(idle process: {result['idle_core_pct']:.3f} %); {result['cpu_per_tick_us']:.0f} µs CPU per tick"
    )
    verdict = "PASS" if result["core_pct"] <= 1.0 else "FAIL"
    print(f"target <= 1 % of one core: {verdict}")


if __name__ == "__main__":
    main()
