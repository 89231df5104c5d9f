"""Validity flags: each condition raises its flag, and only then."""

from __future__ import annotations

from lem_harness.contract import BaselineMetrics, EnergyMetrics, WarmupMetrics, WindowActivity
from lem_harness.flags import FlagInputs, validity_flags

CLEAN_ENERGY = EnergyMetrics(
    energy_source="nvml_counter",
    gross_energy_j=1000.0,
    integrated_energy_j=1050.0,
    counter_vs_integral_pct=5.0,
    window_duration_s=30.0,
    sample_coverage=0.98,
)
CONVERGED = WarmupMetrics(
    mode="convergence", iterations=6, prompts=6, duration_s=3.0, final_cv=0.01, converged=True
)


def _inputs(**changes: object) -> FlagInputs:
    base: dict[str, object] = {
        "device_kind": "nvml",
        "energy": CLEAN_ENERGY,
        "throttle_reasons_seen": 0,
        "baseline": BaselineMetrics(idle_power_w=60.0, from_cache=False),
        "current_temperature_c": {},
        "warmup": CONVERGED,
    }
    base.update(changes)
    return FlagInputs(**base)  # type: ignore[arg-type]


def _codes(**changes: object) -> list[str]:
    return [flag.code for flag in validity_flags(_inputs(**changes))]


def _energy(**changes: object) -> EnergyMetrics:
    return CLEAN_ENERGY.model_copy(update=changes)


def test_a_clean_run_has_no_flags() -> None:
    assert _codes() == []


def test_short_window() -> None:
    assert _codes(energy=_energy(window_duration_s=9.99)) == ["SHORT_WINDOW"]
    assert _codes(energy=_energy(window_duration_s=10.0)) == []


def test_throttling_names_the_reasons_and_ignores_idle_and_clock_settings() -> None:
    flags = validity_flags(_inputs(throttle_reasons_seen=0x1 | 0x4 | 0x40))
    assert [f.code for f in flags] == ["THROTTLING"]
    assert "sw_power_cap" in flags[0].message and "hw_thermal_slowdown" in flags[0].message
    assert "gpu_idle" not in flags[0].message
    assert _codes(throttle_reasons_seen=0x1 | 0x2 | 0x10 | 0x100) == []


def test_counter_vs_integral_discrepancy_over_ten_percent() -> None:
    assert _codes(energy=_energy(counter_vs_integral_pct=-10.5)) == ["ENERGY_DISCREPANCY"]
    assert _codes(energy=_energy(counter_vs_integral_pct=10.0)) == []


def test_low_sample_coverage() -> None:
    assert _codes(energy=_energy(sample_coverage=0.74)) == ["LOW_SAMPLE_COVERAGE"]
    assert _codes(energy=_energy(sample_coverage=0.75)) == []


def test_baseline_from_cache_reports_its_age() -> None:
    flags = validity_flags(
        _inputs(baseline=BaselineMetrics(idle_power_w=60.0, from_cache=True, age_s=1234.0))
    )
    assert [f.code for f in flags] == ["BASELINE_FROM_CACHE"]
    assert "1234 s old" in flags[0].message


def test_stale_baseline_by_temperature_drift_only() -> None:
    # the cache refuses entries older than the TTL, so age alone never reaches the flags
    old = BaselineMetrics(idle_power_w=60.0, from_cache=True, age_s=4000.0)
    assert _codes(baseline=old) == ["BASELINE_FROM_CACHE"]
    cached = BaselineMetrics(
        idle_power_w=60.0, from_cache=True, age_s=10.0, idle_temperature_c={"GPU-a": 35.0}
    )
    assert _codes(baseline=cached, current_temperature_c={"GPU-a": 41.0}) == [
        "BASELINE_FROM_CACHE",
        "STALE_BASELINE",
    ]
    assert _codes(baseline=cached, current_temperature_c={"GPU-a": 40.0}) == ["BASELINE_FROM_CACHE"]


def test_no_sensor_and_simulated_device() -> None:
    none = EnergyMetrics(energy_source="none", window_duration_s=30.0)
    assert _codes(device_kind=None, energy=none) == ["NO_ENERGY_SENSOR"]
    assert _codes(device_kind="simulated") == ["SIMULATED_ENERGY"]


def test_warmup_not_converged_says_why() -> None:
    timed_out = WarmupMetrics(
        mode="convergence",
        iterations=3,
        prompts=3,
        duration_s=120.0,
        final_cv=0.2,
        converged=False,
        timed_out=True,
    )
    flags = validity_flags(_inputs(warmup=timed_out))
    assert [f.code for f in flags] == ["WARMUP_NOT_CONVERGED"]
    assert "timed out" in flags[0].message and "0.200" in flags[0].message
    fixed = WarmupMetrics(mode="fixed", iterations=3, prompts=3, duration_s=1.0)
    assert _codes(warmup=fixed) == []


def test_negative_adjusted_energy_is_flagged_with_the_idle_kind() -> None:
    negative = _energy(adjusted_energy_j=-120.0, idle_power_w=40.0, idle_power_kind="ready", avg_power_w=36.0)
    flags = validity_flags(_inputs(energy=negative))
    assert [f.code for f in flags] == ["ADJUSTED_NEGATIVE"]
    assert "-120.0 J" in flags[0].message and "ready idle power (40.0 W)" in flags[0].message
    assert _codes(energy=_energy(adjusted_energy_j=0.0)) == []


def test_a_present_sensor_without_usable_energy_is_flagged_not_silent() -> None:
    empty = EnergyMetrics(energy_source="none", window_duration_s=30.0)
    assert _codes(device_kind="nvml", energy=empty) == ["ENERGY_UNAVAILABLE"]


def test_other_gpu_processes_flag_gpu_shared() -> None:
    activity = WindowActivity(gpu_other_processes={"GPU-a": 0, "GPU-b": 2})
    flags = validity_flags(_inputs(activity=activity))
    assert [f.code for f in flags] == ["GPU_SHARED"]
    assert "GPU-b: 2" in flags[0].message and "GPU-a" not in flags[0].message
    assert _codes(activity=WindowActivity(gpu_other_processes={"GPU-a": 0})) == []


def test_host_busy_on_steal_or_other_cpu_load() -> None:
    assert _codes(activity=WindowActivity(cpu_steal_pct=5.1)) == ["HOST_BUSY"]
    assert _codes(activity=WindowActivity(host_cpu_other_pct=25.1, load_avg_1m=3.0)) == ["HOST_BUSY"]
    assert _codes(activity=WindowActivity(cpu_steal_pct=5.0, host_cpu_other_pct=25.0)) == []
    flags = validity_flags(_inputs(activity=WindowActivity(cpu_steal_pct=12.0, load_avg_1m=9.5)))
    assert "CPU steal 12 %" in flags[0].message and "load average 9.50" in flags[0].message
