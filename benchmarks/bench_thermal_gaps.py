"""Thermal gaps vs fixed gaps on a campaign that starts cool: idle time and start-temperature spread.

    .venv/bin/python benchmarks/bench_thermal_gaps.py [--configs 4] [--cycles 3] [--run-s 60]
        [--tau-s 15 30 60] [--drift-c 0 4] [--tolerance-c 3 1 0.5]

The campaign executor's own ``GapWaiter`` (lem.campaign.gaps) waits out every gap on a fake
clock: ``gap_mode: fixed``; ``gap_mode: thermal`` with the idle band alone
(``end_when_settled: false``); and thermal with the band or the settled rule (the default).
Thermal defaults otherwise: 15 W, 10 s minimum, 2 s polls, the configured gap as the cap. The
GPU is the simulated device's first-order thermal model (``ThermalModel``: 34 °C idle at
90 W, 70 °C at 450 W, time constant ``--tau-s``); each run holds 450 W for ``--run-s``
seconds, gaps idle at 90 W. Interleaved order, ``config_gap_seconds`` 60 between
configurations and ``cycle_gap_seconds`` 300 between cycles (the schema's defaults). With
``--drift-c`` the idle temperature rises by that much right after the thermal gaps took their
idle reference (a room that warms up: the reference is stale).

Figures: total idle (gap) time, and the spread (max − min) of the GPU temperature at the start
of each run. Target: >= 50 % less idle time than fixed gaps at an equal or smaller spread
(equal: within 0.01 °C; NVML reports whole degrees). "best at fixed spread" is what no rule
can beat: every gap ends the moment the GPU is no warmer than the warmest start fixed gaps gave
(checked every 0.1 s), so any rule with a smaller idle time has a larger spread.
"""

from __future__ import annotations

import argparse
import sys
import threading
from dataclasses import dataclass, replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "orchestrator"), str(REPO / "images" / "harness")]

from lem.campaign.clock import FakeClock  # noqa: E402
from lem.campaign.gaps import GapWaiter, GpuReading  # noqa: E402
from lem.config.campaign import ExecutionConfig  # noqa: E402
from lem_harness.devices.simulated import ThermalModel  # noqa: E402

IDLE_W, LOAD_W = 90.0, 450.0
UUID = "GPU-SIMULATED-0"
SAME_C = 0.01  # spreads this close are equal


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

    def saved(self, fixed: Outcome) -> float:
        return 1.0 - self.idle_s / fixed.idle_s

    def meets_target(self, fixed: Outcome) -> bool:
        return self.saved(fixed) >= 0.5 and self.spread_c <= fixed.spread_c + SAME_C


class OracleWaiter:
    """The shortest gap any rule could take at fixed gaps' spread: it ends the moment the GPU is
    no warmer than ``target_c`` (the warmest start fixed gaps gave), checked every 0.1 s."""

    def __init__(self, clock: ThermalClock, target_c: float) -> None:
        self.clock, self.target_c = clock, target_c

    def wait(self, seconds: float) -> float:
        waited = 0.0
        while waited < seconds and self.clock.sync().temperature_c > self.target_c:
            self.clock.sleep(0.1)
            waited += 0.1
        return waited


@dataclass(frozen=True)
class Scenario:
    configs: int
    cycles: int
    run_s: float
    model: ThermalModel
    drift_c: float = 0.0  # the idle temperature rises this much once the campaign has started


def simulate(
    scenario: Scenario,
    mode: str,
    tolerance_c: float = 3.0,
    *,
    settled: bool = True,
    warmest: bool = False,
    oracle_c: float | None = None,
) -> Outcome:
    model = scenario.model
    gpu = Gpu(model, model.steady_c(IDLE_W))  # the campaign starts cool: the GPU at its idle temperature
    clock = ThermalClock(gpu)
    thermal = {
        "temperature_tolerance_c": tolerance_c,
        "end_when_settled": settled,
        "end_at_warmest_start": warmest,
    }
    execution = ExecutionConfig.model_validate(
        {"cycles": scenario.cycles, "gap_mode": mode, "thermal": thermal}
    )
    waiter = GapWaiter(execution, clock, threading.Event(), probe=Probe(clock), warn=print)
    oracle = OracleWaiter(clock, oracle_c) if oracle_c is not None else None
    gpu.model = replace(model, ambient_c=model.ambient_c + scenario.drift_c)  # calibrated before the drift
    idle, starts = 0.0, []
    for cycle in range(scenario.cycles):
        for config in range(scenario.configs):
            gap = execution.cycle_gap_seconds if config == 0 else execution.config_gap_seconds
            gap = gap if cycle or config else 0.0  # the executor reads the first run's start too
            idle += oracle.wait(gap) if oracle is not None else waiter.wait(gap).waited_s
            starts.append(clock.sync().temperature_c)
            gpu.power_w = LOAD_W
            clock.sleep(scenario.run_s)
            clock.sync().power_w = IDLE_W
    return Outcome(idle, starts)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--configs", type=int, default=4)
    parser.add_argument("--cycles", type=int, default=3)
    parser.add_argument("--run-s", type=float, default=60.0)
    parser.add_argument("--tau-s", type=float, nargs="+", default=[15.0, 30.0, 60.0])
    parser.add_argument("--drift-c", type=float, nargs="+", default=[0.0, 4.0])
    parser.add_argument("--tolerance-c", type=float, nargs="+", default=[3.0, 1.0, 0.5])
    parser.add_argument(
        "--shapes",
        type=int,
        nargs="+",
        default=None,
        help="instead: one row per τ and campaign size (this many configurations), drift 0",
    )
    args = parser.parse_args()
    if args.shapes:
        return shapes(args)
    print(
        "| τ s | drift °C | tol. °C | fixed idle s | fixed spread °C | band: idle s, saved, spread °C "
        "| band or settled: idle s, saved, spread °C | … or warmest start: idle s, saved, spread °C "
        "| best at fixed spread: idle s, saved, spread °C |"
    )
    print("|---:|---:|---:|---:|---:|---|---|---|---|")
    met = []
    for tau in args.tau_s:
        for drift in args.drift_c:
            scenario = Scenario(args.configs, args.cycles, args.run_s, ThermalModel(tau_s=tau), drift)
            fixed = simulate(scenario, "fixed")
            best = simulate(scenario, "fixed", oracle_c=max(fixed.start_temperatures_c))
            for tolerance in args.tolerance_c:
                band = simulate(scenario, "thermal", tolerance, settled=False)
                either = simulate(scenario, "thermal", tolerance, settled=True)
                matched = simulate(scenario, "thermal", tolerance, settled=True, warmest=True)
                met += [band.meets_target(fixed), either.meets_target(fixed), matched.meets_target(fixed)]
                print(
                    f"| {tau:.0f} | {drift:g} | {tolerance:g} | {fixed.idle_s:.0f} | {fixed.spread_c:.2f} "
                    f"| {_cell(band, fixed)} | {_cell(either, fixed)} | {_cell(matched, fixed)} "
                    f"| {best.idle_s:.0f}, {best.saved(fixed):.0%}, {best.spread_c:.2f} |"
                )
    print(f"\ntarget (>= 50 % idle saved at <= fixed spread) met in {sum(met)} of {len(met)} rule runs")
    return 0


def shapes(args: argparse.Namespace) -> int:
    """Idle time saved at fixed gaps' spread against campaign size, with the bound.

    With interleaved runs that heat alike, ``n`` configurations × ``c`` cycles have
    ``(n − 1)·c`` configuration gaps ``g`` and ``c − 1`` cycle gaps ``G``; a run may start no
    warmer than after a configuration gap only after about ``g`` of cooling, so at most
    ``(c − 1)(G − g) / ((n − 1)·c·g + (c − 1)·G)`` of the idle time can go.
    """
    print(
        "| τ s | configs × cycles | fixed idle s | fixed spread °C | bound "
        "| best at fixed spread: saved, spread °C "
        + "".join(f"| warmest start, {t:g} °C: idle s, saved, spread °C " for t in args.tolerance_c)
        + "|"
    )
    print("|---:|---|---:|---:|---:|---:|" + "---|" * len(args.tolerance_c))
    g, big_g, c = 60.0, 300.0, args.cycles
    for tau in args.tau_s:
        for n in args.shapes:
            scenario = Scenario(n, c, args.run_s, ThermalModel(tau_s=tau))
            fixed = simulate(scenario, "fixed")
            best = simulate(scenario, "fixed", oracle_c=max(fixed.start_temperatures_c))
            bound = (c - 1) * (big_g - g) / ((n - 1) * c * g + (c - 1) * big_g)
            cells = "".join(
                f"| {_cell(simulate(scenario, 'thermal', t, warmest=True), fixed)} " for t in args.tolerance_c
            )
            print(
                f"| {tau:.0f} | {n} × {c} | {fixed.idle_s:.0f} | {fixed.spread_c:.2f} | {bound:.0%} "
                f"| {best.saved(fixed):.0%}, {best.spread_c:.2f} {cells}|"
            )
    return 0


def _cell(outcome: Outcome, fixed: Outcome) -> str:
    mark = " ✓" if outcome.meets_target(fixed) else ""
    return f"{outcome.idle_s:.0f}, {outcome.saved(fixed):.0%}, {outcome.spread_c:.2f}{mark}"


if __name__ == "__main__":
    raise SystemExit(main())
