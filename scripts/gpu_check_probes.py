"""The probes of ``make gpu-check`` before the harness runs: NVML capabilities, idle, a matmul burn.

Each probe measures through the harness's own devices and meter (``lem_harness.devices``,
``EnergyMeter``, ``Sampler``), so the figures are what a run would record. The CUDA work
(a context held idle, a matmul burn) happens in a child process — this script's own
process never holds a CUDA context, so it does not show up beside the harness runs as
another compute process (``GPU_SHARED``) and "idle without a context" is really that.
"""

from __future__ import annotations

import itertools
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lem_harness.devices import GpuDevices
from lem_harness.measure import EnergyMeter, Sampler, WindowEnergy

SCRIPT = Path(__file__).resolve()


def capability_table(devices: GpuDevices) -> dict[str, Any]:
    """Per GPU: each NVML reading's support, call latency and value (NVML only)."""
    if devices.kind != "nvml":
        return {"skipped": f"{devices.kind} device: no NVML to probe"}
    from lem_harness.devices.nvml import NvmlDevices, probe_capabilities

    assert isinstance(devices, NvmlDevices)
    return {
        uuid: [cap.__dict__ for cap in caps] for uuid, caps in probe_capabilities(devices, repeats=20).items()
    }


def counter_update_period_s(
    devices: GpuDevices,
    duration_s: float = 2.0,
    poll_s: float = 0.002,
    clock: Callable[[], float] = time.perf_counter,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, float | None]:
    """Per GPU: the median time between changes of the energy counter, polled every ``poll_s``."""
    if not devices.supports_energy_counter():
        return dict.fromkeys(devices.uuids())
    changes: dict[str, list[float]] = {uuid: [] for uuid in devices.uuids()}
    last = devices.energy_counter_j()
    deadline = clock() + duration_s
    while clock() < deadline:
        sleep(poll_s)
        now, reading = clock(), devices.energy_counter_j()
        for uuid, value in reading.items():
            if value != last[uuid]:
                changes[uuid].append(now)
        last = reading
    return {uuid: _median_gap(times) for uuid, times in changes.items()}


def _median_gap(times: list[float]) -> float | None:
    gaps = [b - a for a, b in itertools.pairwise(times)]
    return statistics.median(gaps) if gaps else None


def window_figures(window: WindowEnergy) -> dict[str, Any]:
    gross = window.gross_energy_j
    return {
        "duration_s": window.duration_s,
        "counter_j": window.counter_total_j,
        "integral_j": window.integrated_total_j,
        "counter_vs_integral_pct": window.counter_vs_integral_pct,
        "avg_power_w": None if gross is None or window.duration_s <= 0 else gross / window.duration_s,
        "coverage": window.coverage,
        "warnings": window.warnings,
    }


class Meter:
    """A sampler and an energy meter over ``devices``, started and stopped around the probes."""

    def __init__(self, devices: GpuDevices, rate_hz: float = 10.0) -> None:
        self.sampler = Sampler(devices, rate_hz)
        self.meter = EnergyMeter(devices, self.sampler)
        self.sampler.start()

    def measure(self, name: str, body: Callable[[], None]) -> dict[str, Any]:
        self.meter.begin(name)
        body()
        return window_figures(self.meter.end(name))

    def close(self) -> None:
        self.sampler.stop()


# --------------------------------------------------------------------------- the child side


def child(kind: str, seconds: float, device: str) -> int:
    """Hold a CUDA context idle (``context``) or burn matmuls (``burn``); speak on stdout."""
    import torch

    size = 8192 if device == "cuda" else 256
    a = torch.randn(size, size, device=device, dtype=torch.bfloat16 if device == "cuda" else torch.float32)
    b = a @ a
    _sync(torch, device)
    print("ready", flush=True)
    if kind == "context":
        sys.stdin.readline()  # hold the context until told
        return 0
    sys.stdin.readline()  # the parent has opened its window
    deadline = time.monotonic() + seconds
    count = 0
    while time.monotonic() < deadline:
        b = a @ b if count % 2 else a @ a
        count += 1
        if count % 8 == 0:
            _sync(torch, device)
    _sync(torch, device)
    print(f"done {count}", flush=True)
    return 0


def _sync(torch: Any, device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


class Child:
    """A ``--child`` process of gpu_check.py, driven line by line."""

    def __init__(self, kind: str, seconds: float, device: str, env: dict[str, str], timeout_s: float) -> None:
        command = [sys.executable, str(SCRIPT.with_name("gpu_check.py")), "--child", kind,
                   "--seconds", str(seconds), "--child-device", device]  # fmt: skip
        self.proc = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
        )
        self.timeout_s = timeout_s
        self.expect("ready")

    def expect(self, word: str) -> str:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        if not line.startswith(word):
            self.proc.kill()
            raise RuntimeError(f"child said {line!r}, expected {word!r} (exit {self.proc.poll()})")
        return line

    def tell(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()

    def finish(self) -> None:
        try:
            self.proc.wait(timeout=self.timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise


def idle_with_context(meter: Meter, seconds: float, device: str, env: dict[str, str]) -> dict[str, Any]:
    child_proc = Child("context", seconds, device, env, timeout_s=60.0)
    try:
        return meter.measure("idle_context", lambda: time.sleep(seconds))
    finally:
        child_proc.tell()
        child_proc.finish()


def burn(meter: Meter, seconds: float, device: str, env: dict[str, str]) -> dict[str, Any]:
    child_proc = Child("burn", seconds, device, env, timeout_s=seconds + 60.0)
    done: list[str] = []

    def body() -> None:
        child_proc.tell()
        done.append(child_proc.expect("done"))

    figures = meter.measure("burn", body)
    child_proc.finish()
    figures["matmuls"] = int(done[0].split()[1])
    return figures
