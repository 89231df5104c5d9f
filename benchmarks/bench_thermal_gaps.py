"""Thermal gaps vs fixed gaps on a campaign that starts cool: idle time and start-temperature spread.

    .venv/bin/python benchmarks/bench_thermal_gaps.py [--configs 4] [--cycles 3] [--run-s 60]

The campaign executor's own ``GapWaiter`` (lem.campaign.gaps) waits out every gap, once with
``gap_mode: fixed`` and once with ``gap_mode: thermal`` (its defaults: 3 °C tolerance, 15 W,
10 s minimum, 2 s polls, the configured gap as the cap), on a fake clock. The GPU is the
simulated device's first-order thermal model (``ThermalModel``: 34 °C idle at 90 W, 70 °C at
450 W, time constant ``--tau-s``); each run holds 450 W for ``--run-s`` seconds, gaps idle at
90 W. Interleaved order, ``config_gap_seconds`` 60 between configurations and
``cycle_gap_seconds`` 300 between cycles (the schema's defaults). Figures: total idle (gap)
time, and the spread (max − min) of the GPU temperature at the start of each run.
Target: thermal gating saves >= 50 % of the idle time at an equal or smaller spread.
"""

from __future__ import annotations

import argparse
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "orchestrator"), str(REPO / "images" / "harness")]

from lem.campaign.clock import FakeClock  # noqa: E402
from lem.campaign.gaps import GapWaiter, GpuReading  # noqa: E402
from lem.config.campaign import ExecutionConfig  # noqa: E402
from lem_harness.devices.simulated import ThermalModel  # noqa: E402

IDLE_W, LOAD_W = 90.0, 450.0
UUID = "GPU-SIMULATED-0"


@dataclass
class Gpu:
    """The thermal state, advanced whenever the fake clock moves."""

    model: ThermalModel
    temperature_c: float
    power_w: float = IDLE_W

    def run_for(self, seconds: float) -> None:
        self.temperature_c = self.model.after(self.temperature_c, self.power_w, seconds)


class ThermalClock(FakeClock):
    """A fake clock that heats or cools the GPU by however much time has passed (``sync``)."""

    def __init__(self, gpu: Gpu) -> None:
        super().__init__()
        self.gpu = gpu
        self._synced = self.monotonic()

    def sync(self) -> Gpu:
        self.gpu.run_for(self.monotonic() - self._synced)
        self._synced = self.monotonic()
        return self.gpu


class Probe:
    def __init__(self, clock: ThermalClock) -> None:
        self.clock = clock

    def read(self) -> list[GpuReading]:
        gpu = self.clock.sync()
        return [GpuReading(UUID, gpu.temperature_c, gpu.power_w)]

    def close(self) -> None:
        return None


@dataclass(frozen=True)
class Outcome:
    idle_s: float
    start_temperatures_c: list[float]

    @property
    def spread_c(self) -> float:
        return max(self.start_temperatures_c) - min(self.start_temperatures_c)


def simulate(  # noqa: PLR0917
    mode: str, configs: int, cycles: int, run_s: float, model: ThermalModel, tolerance_c: float = 3.0
) -> Outcome:
    gpu = Gpu(model, model.steady_c(IDLE_W))  # the campaign starts cool: the GPU at its idle temperature
    clock = ThermalClock(gpu)
    execution = ExecutionConfig.model_validate(
        {"cycles": cycles, "gap_mode": mode, "thermal": {"temperature_tolerance_c": tolerance_c}}
    )
    waiter = GapWaiter(execution, clock, threading.Event(), probe=Probe(clock), warn=print)
    idle, starts = 0.0, []
    for cycle in range(cycles):
        for config in range(configs):
            if cycle or config:
                gap = execution.cycle_gap_seconds if config == 0 else execution.config_gap_seconds
                idle += waiter.wait(gap).waited_s
            starts.append(clock.sync().temperature_c)
            gpu.power_w = LOAD_W
            clock.sleep(run_s)
            clock.sync().power_w = IDLE_W
    return Outcome(idle, starts)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--configs", type=int, default=4)
    parser.add_argument("--cycles", type=int, default=3)
    parser.add_argument("--run-s", type=float, default=60.0)
    parser.add_argument("--tau-s", type=float, nargs="+", default=[15.0, 30.0, 60.0])
    parser.add_argument("--tolerance-c", type=float, nargs="+", default=[3.0, 1.0, 0.5])
    args = parser.parse_args()
    print("| tau s | tolerance °C | fixed idle s | thermal idle s | idle saved | fixed spread °C "
          "| thermal spread °C | verdict |")  # fmt: skip
    print("|---:|---:|---:|---:|---:|---:|---:|---|")
    verdicts = []
    for tau in args.tau_s:
        model = ThermalModel(tau_s=tau)
        fixed = simulate("fixed", args.configs, args.cycles, args.run_s, model)
        for tolerance in args.tolerance_c:
            thermal = simulate("thermal", args.configs, args.cycles, args.run_s, model, tolerance)
            saved = 1.0 - thermal.idle_s / fixed.idle_s
            ok = saved >= 0.5 and thermal.spread_c <= fixed.spread_c + 1e-9
            verdicts.append(ok)
            print(
                f"| {tau:.0f} | {tolerance:g} | {fixed.idle_s:.0f} | {thermal.idle_s:.0f} | {saved:.0%} | "
                f"{fixed.spread_c:.2f} | {thermal.spread_c:.2f} | {'PASS' if ok else 'FAIL'} |"
            )
    return 0 if all(verdicts) else 1


if __name__ == "__main__":
    raise SystemExit(main())
