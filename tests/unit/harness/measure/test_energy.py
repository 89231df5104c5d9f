"""Energy windows with the simulated device, scripted devices and a fake clock."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from lem_harness.devices.base import DeviceSample
from lem_harness.devices.rapl import RaplReader
from lem_harness.devices.simulated import SimulatedDevices
from lem_harness.measure.energy import EnergyMeter, WindowEnergy
from lem_harness.measure.sampler import Sampler

from .fakes import FakeClock, ScriptedDevices

ORIGIN = 100.0
PERIOD = 0.1


def tick_until(
    sampler: Sampler, clock: FakeClock, until: float, skip: tuple[float, float] | None = None
) -> None:
    """Tick at every multiple of 0.1 s after the clock's time up to ``until`` (inclusive), then stop there."""
    k = round((clock() - ORIGIN) / PERIOD) + 1
    while ORIGIN + k / 10 <= until + 1e-12:
        t = ORIGIN + k / 10
        clock.set(t)
        if skip is None or not skip[0] <= t < skip[1]:
            sampler.tick()
        k += 1
    clock.set(until)


def rig(devices_clock: FakeClock, devices: SimulatedDevices | ScriptedDevices) -> tuple[Sampler, EnergyMeter]:
    sampler = Sampler(devices, 1 / PERIOD, clock=devices_clock, origin_s=ORIGIN)
    sampler.tick()  # t = 0
    return sampler, EnergyMeter(devices, sampler, clock=devices_clock)


def simulated(clock: FakeClock, **kwargs: float) -> SimulatedDevices:
    return SimulatedDevices(2, clock=clock, origin_s=ORIGIN, **kwargs)  # type: ignore[arg-type]


def test_counter_energy_is_the_exact_integral_of_the_curve() -> None:
    clock = FakeClock(ORIGIN)
    devices = simulated(clock)
    sampler, meter = rig(clock, devices)
    tick_until(sampler, clock, 100.33)
    meter.begin("measure")
    tick_until(sampler, clock, 112.58)
    window = meter.end("measure")
    assert window.name == "measure"
    assert window.start_s == pytest.approx(0.33)
    assert window.end_s == pytest.approx(12.58)
    assert window.duration_s == pytest.approx(12.25)
    assert window.counter_energy_j is not None
    for gpu, uuid in enumerate(devices.uuids()):
        expected = devices.energy_between(100.33, 112.58, gpu)
        assert window.counter_energy_j[uuid] == pytest.approx(expected, rel=1e-12)
    assert window.counter_total_j == pytest.approx(devices.energy_between(100.33, 112.58, None), rel=1e-12)
    assert window.gross_energy_j == window.counter_total_j
    assert window.warnings == []
    # the sampled integral agrees closely on the smooth curve (trapezoid at 10 Hz)
    assert window.counter_vs_integral_pct is not None
    assert abs(window.counter_vs_integral_pct) < 0.05


def test_trapezoid_is_exact_on_a_linear_curve() -> None:
    clock = FakeClock(ORIGIN)
    devices = simulated(clock, amplitude_w=0.0, ramp_w_per_s=3.0)
    sampler, meter = rig(clock, devices)
    tick_until(sampler, clock, 100.25)
    meter.begin("w")  # between two ticks: the edge samples close the gaps
    tick_until(sampler, clock, 105.05)
    window = meter.end("w")
    assert window.integrated_energy_j is not None
    for gpu, uuid in enumerate(devices.uuids()):
        assert window.integrated_energy_j[uuid] == pytest.approx(
            devices.energy_between(100.25, 105.05, gpu), rel=1e-12
        )
    assert window.counter_vs_integral_pct == pytest.approx(0.0, abs=1e-9)


def test_coverage_counts_ticks_against_the_duration() -> None:
    clock = FakeClock(ORIGIN)
    sampler, meter = rig(clock, simulated(clock))
    tick_until(sampler, clock, 100.05)
    meter.begin("full")
    tick_until(sampler, clock, 110.05)
    full = meter.end("full")
    assert (full.sample_count, full.expected_samples, full.coverage) == (100, 100, 1.0)


def test_coverage_shows_missing_ticks() -> None:
    clock = FakeClock(ORIGIN)
    sampler, meter = rig(clock, simulated(clock))
    tick_until(sampler, clock, 100.05)
    meter.begin("gappy")
    tick_until(sampler, clock, 110.05, skip=(103.0, 108.0))  # 5 s without samples
    gappy = meter.end("gappy")
    assert (gappy.sample_count, gappy.expected_samples) == (50, 100)
    assert gappy.coverage == 0.5


def test_window_shorter_than_a_period_has_no_coverage() -> None:
    clock = FakeClock(ORIGIN)
    _, meter = rig(clock, simulated(clock))
    meter.begin("blink")
    clock.set(100.04)
    blink = meter.end("blink")
    assert blink.expected_samples == 0
    assert blink.coverage is None
    assert blink.integrated_energy_j is not None  # the two edge samples still integrate


def test_throttle_reasons_are_or_ed_over_the_window_only() -> None:
    clock = FakeClock(ORIGIN)

    def reasons(t: float) -> int:
        if t < 101.0:
            return 0x1  # before the window: gpu_idle
        return {102.0: 0x4, 103.5: 0x20}.get(round(t, 6), 0)

    sampler, meter = rig(clock, ScriptedDevices(clock, reasons=reasons, counters_j=[10.0, 20.0]))
    tick_until(sampler, clock, 101.0)
    meter.begin("w")
    tick_until(sampler, clock, 104.0)
    window = meter.end("w")
    assert window.throttle_reasons_seen == 0x24
    assert window.counter_energy_j == {"GPU-FAKE-0": 10.0}


def test_counter_reset_inside_the_window_falls_back_to_the_integral() -> None:
    clock = FakeClock(ORIGIN)
    devices = ScriptedDevices(clock, power_w=lambda t: 200.0, counters_j=[5_000.0, 12.0])
    sampler, meter = rig(clock, devices)
    meter.begin("w")
    tick_until(sampler, clock, 110.0)
    window = meter.end("w")
    assert window.counter_energy_j is None
    assert window.integrated_energy_j == pytest.approx({"GPU-FAKE-0": 2000.0}, rel=1e-12)
    assert window.gross_energy_j == pytest.approx(2000.0, rel=1e-12)
    assert window.counter_vs_integral_pct is None
    assert "went backwards" in window.warnings[0]


def test_negative_delta_across_nested_windows_is_a_reset_too() -> None:
    clock = FakeClock(ORIGIN)
    # outer begin 100, inner begin 150, reset, inner end 10 (raises), outer end 20 (no raise, delta < 0)
    devices = ScriptedDevices(clock, counters_j=[100.0, 150.0, 10.0, 20.0])
    sampler, meter = rig(clock, devices)
    meter.begin("outer")
    meter.begin("inner")
    tick_until(sampler, clock, 101.0)
    inner = meter.end("inner")
    outer = meter.end("outer")
    assert inner.counter_energy_j is None
    assert outer.counter_energy_j is None
    assert "reset" in outer.warnings[0]


def test_counter_that_did_not_move_is_unusable() -> None:
    clock = FakeClock(ORIGIN)
    _, meter = rig(clock, ScriptedDevices(clock, counters_j=[7.0, 7.0]))
    meter.begin("w")
    clock.set(100.03)
    window = meter.end("w")
    assert window.counter_energy_j is None
    assert "shorter than the counter's update period" in window.warnings[0]


def test_gpu_without_counter_uses_the_integral_silently() -> None:
    clock = FakeClock(ORIGIN)
    devices = SimulatedDevices(1, clock=clock, origin_s=ORIGIN, amplitude_w=0.0, has_counter=False)
    sampler, meter = rig(clock, devices)
    meter.begin("w")
    tick_until(sampler, clock, 110.0)
    window = meter.end("w")
    assert window.counter_energy_j is None
    assert window.gross_energy_j == pytest.approx(600.0, rel=1e-12)
    assert window.warnings == []


def test_failed_edge_sample_holds_the_nearest_timeline_value() -> None:
    clock = FakeClock(ORIGIN)
    devices = ScriptedDevices(clock, power_w=lambda t: 100.0)
    sampler, meter = rig(clock, devices)
    tick_until(sampler, clock, 100.05)
    devices.fail_sample = True
    meter.begin("w")
    devices.fail_sample = False
    tick_until(sampler, clock, 101.05)
    window = meter.end("w")
    assert window.integrated_energy_j == pytest.approx({"GPU-FAKE-0": 100.0}, rel=1e-12)
    assert "edge power sample failed" in window.warnings[0]


def test_no_devices_measures_nothing_but_time() -> None:
    clock = FakeClock(ORIGIN)
    meter = EnergyMeter(None, None, clock=clock)
    meter.begin("w")
    clock.set(112.0)
    window = meter.end("w")
    assert window.duration_s == 12.0
    assert window.counter_energy_j is None
    assert window.integrated_energy_j is None
    assert window.gross_energy_j is None
    assert window.coverage is None
    assert window.cpu_energy_j is None
    assert window.throttle_reasons_seen == 0


def test_window_names_are_checked() -> None:
    meter = EnergyMeter(None, None, clock=FakeClock())
    meter.begin("w")
    with pytest.raises(ValueError, match="already open"):
        meter.begin("w")
    with pytest.raises(ValueError, match=r"'x' is not open \(open: \['w'\]\)"):
        meter.end("x")


def test_cpu_energy_from_rapl_sees_wraps_through_the_sampler(tmp_path: Path) -> None:
    zone = tmp_path / "intel-rapl:0"
    zone.mkdir()
    (zone / "name").write_text("package-0")
    (zone / "max_energy_range_uj").write_text("1000000000")
    energy = zone / "energy_uj"
    energy.write_text("999000000")
    clock = FakeClock(ORIGIN)
    devices = simulated(clock)
    sampler = Sampler(devices, 10.0, clock=clock, origin_s=ORIGIN)
    meter = EnergyMeter(devices, sampler, clock=clock, rapl=RaplReader(tmp_path))
    meter.begin("w")  # 999 J
    for raw in ("500000000", "400000000"):  # two wraps, each seen by a tick
        energy.write_text(raw)
        clock.set(clock() + 0.1)
        sampler.tick()
    energy.write_text("450000000")
    window = meter.end("w")
    assert window.cpu_energy_j == 1451.0  # 1 + 500 + 900 + 50


def test_unavailable_rapl_gives_no_cpu_energy(tmp_path: Path) -> None:
    meter = EnergyMeter(None, None, clock=FakeClock(), rapl=RaplReader(tmp_path / "none"))
    assert meter.rapl is None
    meter.begin("w")
    assert meter.end("w").cpu_energy_j is None


def test_window_totals_and_discrepancy() -> None:
    window = WindowEnergy(
        name="w",
        start_s=0.0,
        end_s=10.0,
        duration_s=10.0,
        counter_energy_j={"a": 600.0, "b": 400.0},
        integrated_energy_j={"a": 640.0, "b": 410.0},
        sample_count=100,
        expected_samples=100,
        coverage=1.0,
        cpu_energy_j=None,
        throttle_reasons_seen=0,
    )
    assert window.counter_total_j == 1000.0
    assert window.integrated_total_j == 1050.0
    assert window.gross_energy_j == 1000.0
    assert window.counter_vs_integral_pct == 5.0


def test_gpu_without_power_readings_has_no_integral_and_zero_coverage() -> None:
    clock = FakeClock(ORIGIN)
    sampler, meter = rig(clock, ScriptedDevices(clock, power_w=lambda t: None, counters_j=[1.0, 9.0]))
    meter.begin("w")
    tick_until(sampler, clock, 102.0)
    window = meter.end("w")
    assert window.integrated_energy_j is None
    assert window.coverage == 0.0
    assert window.gross_energy_j == 8.0  # the counter still measures
    assert "no power samples of GPU-FAKE-0" in window.warnings[0]


class _SilentSecondGpu(SimulatedDevices):
    """GPU 1 never reports power (a failed sensor); GPU 0 follows the curve."""

    def sample(self) -> list[DeviceSample]:
        return [s if s.gpu_index == 0 else replace(s, power_w=None) for s in super().sample()]


def test_one_gpu_without_samples_keeps_the_other_gpus_integrals() -> None:
    clock = FakeClock(ORIGIN)
    devices = _SilentSecondGpu(2, clock=clock, origin_s=ORIGIN, amplitude_w=0.0, ramp_w_per_s=3.0)
    sampler, meter = rig(clock, devices)
    meter.begin("w")
    tick_until(sampler, clock, 104.0)
    window = meter.end("w")
    gpu0, gpu1 = devices.uuids()
    assert window.integrated_energy_j is not None
    assert window.integrated_energy_j[gpu0] == pytest.approx(
        devices.energy_between(100.0, 104.0, 0), rel=1e-12
    )
    assert gpu1 not in window.integrated_energy_j
    assert any(f"no power samples of {gpu1}" in w for w in window.warnings)
    # a sum over one of two GPUs is not the window's energy: no total, no cross-check, counter headline
    assert window.integrated_total_j is None
    assert window.counter_vs_integral_pct is None
    assert window.gross_energy_j == pytest.approx(devices.energy_between(100.0, 104.0, None), rel=1e-12)
