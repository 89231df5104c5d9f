"""Validity flags: conditions that make a result less trustworthy, stated, never hidden.

A flagged run is kept; the flag tells its readers why to be careful.
"""

from __future__ import annotations

from dataclasses import dataclass

from lem_harness.contract import BaselineMetrics, EnergyMetrics, Flag, WarmupMetrics, WindowActivity
from lem_harness.measure import throttle_reason_names, throttling_reasons

MIN_WINDOW_S = 10.0
MAX_DISCREPANCY_PCT = 10.0
MIN_COVERAGE = 0.75
STALE_BASELINE_DELTA_C = 5.0
MAX_STEAL_PCT = 5.0  # hypervisor steal above this: other guests took CPU time
MAX_OTHER_CPU_PCT = 25.0  # other processes used more than this share of the host's CPU capacity


@dataclass(frozen=True)
class FlagInputs:
    device_kind: str | None  # None: no energy sensor
    energy: EnergyMetrics
    throttle_reasons_seen: int
    baseline: BaselineMetrics | None
    current_temperature_c: dict[str, float]  # per GPU uuid, read when the cached baseline was taken up
    warmup: WarmupMetrics | None
    activity: WindowActivity | None = None


def _window(inputs: FlagInputs) -> list[Flag]:
    seconds = inputs.energy.window_duration_s
    if seconds is None or seconds >= MIN_WINDOW_S:
        return []
    return [
        Flag(
            code="SHORT_WINDOW",
            message=f"measured window {seconds:.2f} s is shorter than {MIN_WINDOW_S:.0f} s: "
            "energy counters update too slowly for a precise figure; use more prompts or tokens",
        )
    ]


def _throttle(inputs: FlagInputs) -> list[Flag]:
    # power cap, HW slowdown, thermal, power brake — not GPU idle or clock settings
    mask = throttling_reasons(inputs.throttle_reasons_seen)
    if not mask:
        return []
    names = ", ".join(throttle_reason_names(mask))
    return [Flag(code="THROTTLING", message=f"clock throttling seen in the measured window: {names}")]


def _energy(inputs: FlagInputs) -> list[Flag]:
    out: list[Flag] = []
    pct = inputs.energy.counter_vs_integral_pct
    if pct is not None and abs(pct) > MAX_DISCREPANCY_PCT:
        out.append(
            Flag(
                code="ENERGY_DISCREPANCY",
                message=f"power integral differs from the energy counter by {pct:+.1f} % "
                f"(limit {MAX_DISCREPANCY_PCT:.0f} %)",
            )
        )
    coverage = inputs.energy.sample_coverage
    if coverage is not None and coverage < MIN_COVERAGE:
        out.append(
            Flag(
                code="LOW_SAMPLE_COVERAGE",
                message=f"only {coverage:.0%} of the expected power samples arrived "
                f"(minimum {MIN_COVERAGE:.0%})",
            )
        )
    return out


def _baseline(inputs: FlagInputs) -> list[Flag]:
    base = inputs.baseline
    if base is None or not base.from_cache:
        return []
    age = "of unknown age" if base.age_s is None else f"{base.age_s:.0f} s old"
    out = [Flag(code="BASELINE_FROM_CACHE", message=f"idle baseline reused from the cache, {age}")]
    # Age alone never makes it stale here: the cache refuses entries older than the TTL.
    reasons = []
    for uuid, then in sorted(base.idle_temperature_c.items()):
        now = inputs.current_temperature_c.get(uuid)
        if now is not None and abs(now - then) > STALE_BASELINE_DELTA_C:
            reasons.append(f"{uuid} is at {now:.0f} °C, it idled at {then:.0f} °C")
    if reasons:
        out.append(
            Flag(code="STALE_BASELINE", message="cached idle baseline may not hold: " + "; ".join(reasons))
        )
    return out


def _adjusted(inputs: FlagInputs) -> list[Flag]:
    e = inputs.energy
    if e.adjusted_energy_j is None or e.adjusted_energy_j >= 0:
        return []
    return [
        Flag(
            code="ADJUSTED_NEGATIVE",
            message=f"idle-adjusted energy is negative ({e.adjusted_energy_j:.1f} J): "
            f"the {e.idle_power_kind} idle power ({e.idle_power_w:.1f} W) exceeds the window's average power "
            f"({e.avg_power_w or 0.0:.1f} W); the idle baseline does not describe this window. Statistics "
            "leave this run's adjusted figures out",
        )
    ]


def _activity(inputs: FlagInputs) -> list[Flag]:
    a = inputs.activity
    if a is None:
        return []
    out: list[Flag] = []
    shared = {uuid: n for uuid, n in a.gpu_other_processes.items() if n > 0}
    if shared:
        listed = ", ".join(f"{uuid}: {n}" for uuid, n in sorted(shared.items()))
        out.append(
            Flag(
                code="GPU_SHARED",
                message=f"other compute processes ran on the measured GPUs during the window ({listed}): "
                "their energy is in the counter",
            )
        )
    reasons = []
    if a.cpu_steal_pct is not None and a.cpu_steal_pct > MAX_STEAL_PCT:
        reasons.append(f"CPU steal {a.cpu_steal_pct:.0f} % (limit {MAX_STEAL_PCT:.0f} %)")
    if a.host_cpu_other_pct is not None and a.host_cpu_other_pct > MAX_OTHER_CPU_PCT:
        reasons.append(
            f"other processes used {a.host_cpu_other_pct:.0f} % of the host's CPU "
            f"(limit {MAX_OTHER_CPU_PCT:.0f} %)"
        )
    if reasons:
        load = "" if a.load_avg_1m is None else f"; load average {a.load_avg_1m:.2f}"
        out.append(
            Flag(
                code="HOST_BUSY", message="the host was busy during the window: " + "; ".join(reasons) + load
            )
        )
    return out


def _source(inputs: FlagInputs) -> list[Flag]:
    if inputs.device_kind is None:
        return [Flag(code="NO_ENERGY_SENSOR", message="no energy sensor: energy fields are null")]
    if inputs.energy.gross_energy_j is None:
        return [
            Flag(
                code="ENERGY_UNAVAILABLE",
                message=f"the {inputs.device_kind} sensor is present but gave no usable energy for the "
                "window (no counter delta and no power samples); see the warnings",
            )
        ]
    if inputs.device_kind == "simulated":
        return [
            Flag(
                code="SIMULATED_ENERGY", message="energy comes from a simulated device (tests and demos only)"
            )
        ]
    return []


def _warmup(inputs: FlagInputs) -> list[Flag]:
    w = inputs.warmup
    if w is None or w.mode != "convergence" or w.converged:
        return []
    cv = "n/a" if w.final_cv is None else f"{w.final_cv:.3f}"
    why = "timed out" if w.timed_out else "reached max_prompts"
    return [
        Flag(
            code="WARMUP_NOT_CONVERGED",
            message=f"warmup {why} after {w.prompts} prompts without converging (final CV {cv})",
        )
    ]


def validity_flags(inputs: FlagInputs) -> list[Flag]:
    """Every flag that applies, in a fixed order."""
    return [
        *_source(inputs),
        *_window(inputs),
        *_throttle(inputs),
        *_energy(inputs),
        *_adjusted(inputs),
        *_baseline(inputs),
        *_warmup(inputs),
        *_activity(inputs),
    ]
