"""Gaps between runs: fixed sleeps and thermal gaps, driven by a fake clock and a scripted probe."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from unittest import mock

import pytest

from lem.campaign.clock import FakeClock
from lem.campaign.gaps import GapWaiter, GpuReading, NvmlProbe, open_gap_waiter
from lem.campaign.hostgpus import host_gpu_inventory
from lem.config.campaign import ExecutionConfig, ThermalGapConfig
from lem_harness.contract import BaselineMetrics, GpuInfo
from lem_harness.devices.base import DeviceError, DeviceSample, DeviceUnavailableError

UUID = "GPU-aaaa"
UUID2 = "GPU-bbbb"


class ScriptedProbe:
    """Returns one scripted reading list per call (the last repeats) and logs when it was read."""

    def __init__(self, clock: FakeClock, script: Sequence[Sequence[GpuReading]]) -> None:
        self.clock = clock
        self.script = list(script)
        self.read_at: list[float] = []
        self.closed = False

    def read(self) -> list[GpuReading]:
        self.read_at.append(self.clock.monotonic() - 1_000.0)
        return list(self.script.pop(0) if len(self.script) > 1 else self.script[0])

    def close(self) -> None:
        self.closed = True


def temps(*values: float, power_w: float | None = 60.0) -> list[list[GpuReading]]:
    return [[GpuReading(UUID, t, power_w)] for t in values]


def thermal(**overrides: float | bool) -> ExecutionConfig:
    settings = {"min_gap_seconds": 10.0, "poll_interval_seconds": 2.0, **overrides}
    return ExecutionConfig(
        gap_mode="thermal", config_gap_seconds=60, cycle_gap_seconds=300, thermal=ThermalGapConfig(**settings)
    )


def waiter(
    execution: ExecutionConfig,
    probe: ScriptedProbe | None,
    clock: FakeClock,
    warnings: list[str] | None = None,
    stop: threading.Event | None = None,
) -> GapWaiter:
    sink = warnings if warnings is not None else []
    return GapWaiter(execution, clock, stop or threading.Event(), probe=probe, warn=sink.append)


# --------------------------------------------------------------------------- fixed


def test_fixed_gap_sleeps_exactly_the_configured_time() -> None:
    clock = FakeClock()
    gaps = waiter(ExecutionConfig(gap_mode="fixed"), None, clock)
    record = gaps.wait(60.0)
    assert record.waited_s == 60.0
    assert record.ended_by == "fixed"
    assert record.start_temperature_c is None
    assert clock.sleeps == [60.0]


def test_fixed_gap_records_the_temperature_when_a_probe_is_there() -> None:
    clock = FakeClock()
    probe = ScriptedProbe(clock, temps(40.0, 52.5))
    record = waiter(ExecutionConfig(gap_mode="fixed"), probe, clock).wait(30.0)
    assert (record.waited_s, record.ended_by, record.start_temperature_c) == (30.0, "fixed", {UUID: 52.5})
    assert probe.read_at == [0.0, 30.0]  # calibration, then the start of the run only


def test_no_gap_waits_nothing_but_still_reads_the_start_temperature() -> None:
    clock = FakeClock()
    probe = ScriptedProbe(clock, temps(40.0, 41.0))
    record = waiter(thermal(), probe, clock).wait(0.0)
    assert (record.waited_s, record.ended_by, record.start_temperature_c) == (0.0, "none", {UUID: 41.0})
    assert clock.sleeps == []


def test_a_stop_request_ends_a_fixed_gap_early() -> None:
    clock = FakeClock()
    stop = threading.Event()
    clock.schedule(1_005.0, stop.set)  # Ctrl-C 5 s into the gap
    record = waiter(ExecutionConfig(gap_mode="fixed"), None, clock, stop=stop).wait(60.0)
    assert (record.waited_s, record.ended_by) == (5.0, "stopped")


def test_a_stop_request_ends_a_thermal_gap_early() -> None:
    clock = FakeClock()
    stop = threading.Event()
    clock.schedule(1_013.0, stop.set)
    probe = ScriptedProbe(clock, temps(40.0, 70.0))
    record = waiter(thermal(), probe, clock, stop=stop).wait(60.0)
    assert (record.waited_s, record.ended_by) == (13.0, "stopped")
    assert probe.read_at == [0.0, 10.0, 12.0]


# --------------------------------------------------------------------------- thermal


def test_thermal_gap_ends_at_the_first_poll_within_tolerance() -> None:
    clock = FakeClock()
    # idle 40 °C at calibration; tolerance 3 °C: 44 is too warm, 43 is near enough.
    probe = ScriptedProbe(clock, temps(40.0, 55.0, 50.0, 44.0, 43.0, 41.0))
    record = waiter(thermal(), probe, clock).wait(60.0)
    assert probe.read_at == [0.0, 10.0, 12.0, 14.0, 16.0]
    assert (record.waited_s, record.ended_by, record.start_temperature_c) == (16.0, "thermal", {UUID: 43.0})


def test_thermal_gap_never_ends_before_the_minimum_gap() -> None:
    clock = FakeClock()
    probe = ScriptedProbe(clock, temps(40.0, 40.0))  # already idle
    record = waiter(thermal(min_gap_seconds=10.0), probe, clock).wait(60.0)
    assert (record.waited_s, record.ended_by) == (10.0, "thermal")
    assert probe.read_at == [0.0, 10.0]


def test_thermal_gap_stops_at_the_configured_gap_when_the_gpu_stays_warm() -> None:
    clock = FakeClock()
    probe = ScriptedProbe(clock, temps(40.0, 70.0))
    record = waiter(thermal(poll_interval_seconds=7.0), probe, clock).wait(30.0)
    # polls at 10, 17, 24, then the last step is cut to the cap (6 s): 30.
    assert probe.read_at == [0.0, 10.0, 17.0, 24.0, 30.0]
    assert (record.waited_s, record.ended_by, record.start_temperature_c) == (30.0, "cap", {UUID: 70.0})


def test_thermal_gap_waits_for_power_near_idle_too() -> None:
    clock = FakeClock()
    script = [
        [GpuReading(UUID, 40.0, 60.0)],  # calibration: idle 40 °C, 60 W; tolerance 15 W
        [GpuReading(UUID, 41.0, 90.0)],
        [GpuReading(UUID, 41.0, 76.0)],
        [GpuReading(UUID, 41.0, 75.0)],
    ]
    record = waiter(thermal(), ScriptedProbe(clock, script), clock).wait(60.0)
    assert (record.waited_s, record.ended_by) == (14.0, "thermal")


def test_thermal_gap_waits_for_every_gpu() -> None:
    clock = FakeClock()
    script = [
        [GpuReading(UUID, 40.0, 60.0), GpuReading(UUID2, 35.0, 55.0)],
        [GpuReading(UUID, 41.0, 60.0), GpuReading(UUID2, 45.0, 55.0)],
        [GpuReading(UUID, 41.0, 60.0), GpuReading(UUID2, 38.0, 55.0)],
    ]
    record = waiter(thermal(), ScriptedProbe(clock, script), clock).wait(60.0)
    assert (record.waited_s, record.start_temperature_c) == (12.0, {UUID: 41.0, UUID2: 38.0})


def test_a_gpu_without_a_temperature_reading_is_never_near_idle() -> None:
    clock = FakeClock()
    script = [[GpuReading(UUID, 40.0, 60.0)], [GpuReading(UUID, None, 60.0)]]
    record = waiter(thermal(), ScriptedProbe(clock, script), clock).wait(20.0)
    assert (record.waited_s, record.ended_by, record.start_temperature_c) == (20.0, "cap", None)


def test_a_measured_idle_baseline_lowers_the_reference() -> None:
    clock = FakeClock()
    probe = ScriptedProbe(clock, temps(45.0, 47.0))
    gaps = waiter(thermal(), probe, clock)
    assert gaps.idle.temperature_c == {UUID: 45.0}
    gaps.observe_baseline(BaselineMetrics(idle_temperature_c={UUID: 42.0}, per_gpu_idle_power_w={UUID: 55.0}))
    assert (gaps.idle.temperature_c, gaps.idle.power_w) == ({UUID: 42.0}, {UUID: 55.0})
    gaps.observe_baseline(BaselineMetrics(idle_temperature_c={UUID: 44.0}))
    assert gaps.idle.temperature_c == {UUID: 42.0}
    record = gaps.wait(20.0)  # 47 °C is 5 above the new reference: not near, up to the cap
    assert (record.waited_s, record.ended_by) == (20.0, "cap")


# --------------------------------------------------------------------------- warmest start


def warmest(enabled: bool = True, settled: bool = False) -> ExecutionConfig:
    return thermal(end_when_settled=settled, end_at_warmest_start=enabled)


# Idle 40 °C (band: ≤ 43 °C). Run 1 starts at 40 °C (no gap); the 20 s gap before run 2 stays at
# 50 °C and ends at its cap, so run 2 starts at 50 °C; the gap before run 3 reads 60, 55, 51, 50 …
CAPPED_THEN_COOLING = temps(40.0, 40.0, *[50.0] * 6, 60.0, 55.0, 51.0, 50.0, 49.0)


Starts = list[tuple[float, str, float]]


def three_starts(execution: ExecutionConfig) -> tuple[GapWaiter, ScriptedProbe, Starts]:
    clock = FakeClock()
    probe = ScriptedProbe(clock, CAPPED_THEN_COOLING)
    gaps = waiter(execution, probe, clock)
    records = [gaps.wait(s) for s in (0.0, 20.0, 60.0)]
    return gaps, probe, [(r.waited_s, r.ended_by, (r.start_temperature_c or {})[UUID]) for r in records]


def test_a_gap_ends_once_no_warmer_than_an_earlier_runs_start() -> None:
    gaps, probe, records = three_starts(warmest())
    # run 3 may start at 50 °C: run 2 did, so the spread of start temperatures does not grow
    assert records == [(0.0, "none", 40.0), (20.0, "cap", 50.0), (16.0, "warmest_start", 50.0)]
    assert gaps.warmest_start_c == {UUID: 50.0}
    assert probe.read_at[-4:] == [30.0, 32.0, 34.0, 36.0]  # the gap began at 20 s (runs take no fake time)


def test_without_the_rule_the_same_gap_waits_for_idle_or_its_cap() -> None:
    _, _, records = three_starts(warmest(enabled=False))
    assert records[2] == (60.0, "cap", 49.0)


def test_the_band_and_the_settled_rule_are_tried_first() -> None:
    # 55, 51, 50: the drops 4 then 1 predict 1·¼/(1 − ¼) ≈ 0.33 °C to come: settled first
    _, _, records = three_starts(warmest(settled=True))
    assert records[2] == (16.0, "settled", 50.0)


def test_the_warmest_start_rule_needs_idle_power_too() -> None:
    clock = FakeClock()
    hot = [[GpuReading(UUID, t, 200.0)] for t in (48.0, 47.0)]
    probe = ScriptedProbe(clock, [*temps(40.0, 40.0, *[50.0] * 6), *hot])
    gaps = waiter(warmest(), probe, clock)
    records = [gaps.wait(s) for s in (0.0, 20.0, 30.0)]
    assert (records[2].waited_s, records[2].ended_by) == (30.0, "cap")  # 47 °C but 200 W: not idle


def test_a_stopped_gap_is_no_start() -> None:
    clock = FakeClock()
    stop = threading.Event()
    clock.schedule(1_013.0, stop.set)
    probe = ScriptedProbe(clock, temps(40.0, 70.0))
    gaps = waiter(warmest(), probe, clock, stop=stop)
    assert gaps.wait(60.0).ended_by == "stopped"
    assert gaps.warmest_start_c == {}


def test_each_gpu_is_held_to_its_own_warmest_start() -> None:
    clock = FakeClock()

    def both(a: float, b: float) -> list[GpuReading]:
        return [GpuReading(UUID, a, 60.0), GpuReading(UUID2, b, 60.0)]

    # run 2 starts with GPU a at 50 °C and GPU b at 45 °C; in the next gap a reaches 50 at 12 s,
    # but b is at 46 until 14 s
    script = [both(40.0, 40.0), *[both(50.0, 45.0)] * 6, both(52.0, 47.0), both(50.0, 46.0), both(50.0, 45.0)]
    gaps = waiter(warmest(), ScriptedProbe(clock, script), clock)
    records = [gaps.wait(s) for s in (20.0, 60.0)]
    assert (records[1].waited_s, records[1].ended_by) == (14.0, "warmest_start")
    assert gaps.status_line() == "GPU-aaaa 50 °C → ≤ 50 °C; GPU-bbbb 45 °C → ≤ 45 °C"


# --------------------------------------------------------------------------- fallbacks


def test_without_nvml_thermal_mode_says_so_once_and_falls_back_to_fixed() -> None:
    clock = FakeClock()
    warnings: list[str] = []

    def no_nvml(uuids: Sequence[str]) -> ScriptedProbe:
        raise DeviceUnavailableError("NVML could not be initialised (library not found)")

    gaps = open_gap_waiter(
        thermal(), [UUID], clock=clock, stop=threading.Event(), warn=warnings.append, probe_factory=no_nvml
    )
    first, second = gaps.wait(60.0), gaps.wait(300.0)
    assert gaps.mode == "fixed"
    assert (first.waited_s, first.ended_by, second.waited_s) == (60.0, "fixed", 300.0)
    assert len(warnings) == 1
    assert "thermal gaps need NVML on the host" in warnings[0]
    assert "library not found" in warnings[0]


def test_without_nvml_fixed_mode_is_silent() -> None:
    warnings: list[str] = []

    def no_nvml(uuids: Sequence[str]) -> ScriptedProbe:
        raise DeviceUnavailableError("no NVML")

    gaps = open_gap_waiter(
        ExecutionConfig(),
        [UUID],
        clock=FakeClock(),
        stop=threading.Event(),
        warn=warnings.append,
        probe_factory=no_nvml,
    )
    assert (gaps.mode, warnings) == ("fixed", [])


def test_thermal_mode_without_known_gpus_falls_back() -> None:
    warnings: list[str] = []
    gaps = open_gap_waiter(thermal(), [], clock=FakeClock(), stop=threading.Event(), warn=warnings.append)
    assert gaps.mode == "fixed"
    assert warnings == [
        "thermal gaps need the GPUs' UUIDs and none are known here; falling back to fixed gaps"
    ]


def test_a_probe_failing_mid_gap_falls_back_to_the_rest_of_a_fixed_gap() -> None:
    clock = FakeClock()
    warnings: list[str] = []

    class FailingProbe(ScriptedProbe):
        def read(self) -> list[GpuReading]:
            if len(self.read_at) == 2:
                self.read_at.append(self.clock.monotonic() - 1_000.0)
                raise DeviceError("GPU is lost")
            return super().read()

    probe = FailingProbe(clock, temps(40.0, 60.0))
    gaps = waiter(thermal(), probe, clock, warnings)
    record = gaps.wait(40.0)
    assert probe.read_at == [0.0, 10.0, 12.0]
    assert (record.waited_s, record.ended_by, gaps.mode, probe.closed) == (40.0, "cap", "fixed", True)
    assert warnings == [
        "thermal gaps: reading the GPUs failed (GPU is lost); "
        "falling back to fixed gaps of the configured length"
    ]


def test_the_nvml_probe_reads_through_the_harness_nvml_module() -> None:
    samples = [DeviceSample(0, UUID, 61.5, 44.0, 1410.0, 1024, 0.0, 0)]
    with mock.patch("lem_harness.devices.nvml.open_nvml_by_uuid", autospec=True) as opener:
        opener.return_value.sample.return_value = samples
        probe = NvmlProbe([UUID])
        assert probe.read() == [GpuReading(UUID, 44.0, 61.5)]
        probe.close()
    opener.assert_called_once_with([UUID])
    opener.return_value.close.assert_called_once_with()


def test_open_gap_waiter_passes_the_uuids_to_the_probe() -> None:
    clock = FakeClock()
    seen: list[list[str]] = []

    def factory(uuids: Sequence[str]) -> ScriptedProbe:
        seen.append(list(uuids))
        return ScriptedProbe(clock, temps(40.0))

    gaps = open_gap_waiter(
        thermal(), [UUID, UUID2], clock=clock, stop=threading.Event(), warn=print, probe_factory=factory
    )
    assert (seen, gaps.mode) == ([[UUID, UUID2]], "thermal")


@pytest.mark.parametrize("seconds", [0.0, -1.0])
def test_non_positive_gaps_do_not_sleep(seconds: float) -> None:
    clock = FakeClock()
    assert waiter(ExecutionConfig(), None, clock).wait(seconds).waited_s == 0.0
    assert clock.sleeps == []


def test_the_host_inventory_maps_indices_to_uuids_through_nvml() -> None:
    info = [GpuInfo(index=0, uuid=UUID, name="H100"), GpuInfo(index=1, uuid=UUID2, name="H100")]
    devices = mock.Mock(spec=["info", "close"])
    devices.info.return_value = info
    with mock.patch(
        "lem_harness.devices.nvml.open_nvml", autospec=True, return_value=(devices, [])
    ) as opener:
        assert host_gpu_inventory({1, 0}) == ({0: UUID, 1: UUID2}, None)
    opener.assert_called_once_with([0, 1], env={})
    devices.close.assert_called_once_with()


def test_without_nvml_the_inventory_is_empty_and_says_why() -> None:
    failure = DeviceUnavailableError("NVML could not be initialised (library not found)")
    with mock.patch("lem_harness.devices.nvml.open_nvml", autospec=True, side_effect=failure):
        assert host_gpu_inventory([0]) == ({}, "NVML could not be initialised (library not found)")
    assert host_gpu_inventory([]) == ({}, None)  # nothing asked: NVML is not even opened
