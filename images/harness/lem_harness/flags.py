"""Validity flags: conditions that make a result less trustworthy, stated, never hidden.

A flagged run is kept; the flag tells its readers why to be careful.
"""

from __future__ import annotations

from dataclasses import dataclass

from lem_harness.contract import BaselineMetrics, EnergyMetrics, Flag, WarmupMetrics
from lem_harness.measure import throttle_reason_names, throttling_reasons

MIN_WINDOW_S = 10.0
MAX_DISCREPANCY_PCT = 10.0
MIN_COVERAGE = 0.75
STALE_BASELINE_DELTA_C = 5.0


@dataclass(frozen=True)
class FlagInputs:
    device_kind: str | None  # None: no energy sensor
    energy: EnergyMetrics
    throttle_reasons_seen: int
    baseline: BaselineMetrics | None
    baseline_ttl_s: float
    current_temperature_c: dict[str, float]  # per GPU uuid, read when the cached baseline was taken up
    warmup: WarmupMetrics | None


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
    reasons = []
    if base.age_s is not None and base.age_s > inputs.baseline_ttl_s:
        reasons.append(f"older than baseline.cache_ttl_seconds ({inputs.baseline_ttl_s:.0f} s)")
    for uuid, then in sorted(base.idle_temperature_c.items()):
        now = inputs.current_temperature_c.get(uuid)
        if now is not None and abs(now - then) > STALE_BASELINE_DELTA_C:
            reasons.append(f"{uuid} is at {now:.0f} °C, it idled at {then:.0f} °C")
    if reasons:
        out.append(
            Flag(code="STALE_BASELINE", message="cached idle baseline may not hold: " + "; ".join(reasons))
        )
    return out


def _source(inputs: FlagInputs) -> list[Flag]:
    if inputs.device_kind is None:
        return [Flag(code="NO_ENERGY_SENSOR", message="no energy sensor: energy fields are null")]
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
        *_baseline(inputs),
        *_warmup(inputs),
    ]
