"""The timeline sampler: rows, phases, CSV, and a short real thread."""

from __future__ import annotations

import csv
import time
from pathlib import Path

import pytest

from lem_harness.contract import TIMELINE_COLUMNS
from lem_harness.devices.simulated import SimulatedDevices
from lem_harness.measure.sampler import MIN_PERIOD_S, Sampler, sampling_period_s

from .fakes import FakeClock, ScriptedDevices


@pytest.mark.parametrize(("rate_hz", "period_s"), [(10.0, 0.1), (20.0, 0.05), (50.0, 0.05), (1000.0, 0.05)])
def test_period_is_never_below_50_ms(rate_hz: float, period_s: float) -> None:
    assert sampling_period_s(rate_hz) == period_s
    sampler = Sampler(SimulatedDevices(), rate_hz)
    assert sampler.period_s == period_s
    assert sampler.clamped is (rate_hz > 20.0)


@pytest.mark.parametrize("rate_hz", [0.0, -1.0])
def test_rejects_non_positive_rate(rate_hz: float) -> None:
    with pytest.raises(ValueError, match="sample rate"):
        sampling_period_s(rate_hz)


def test_tick_writes_one_row_per_gpu_with_phase_and_times() -> None:
    clock = FakeClock(100.0)
    devices = SimulatedDevices(2, clock=clock, origin_s=100.0)
    sampler = Sampler(devices, 10.0, clock=clock, wall=lambda: 1_700_000_000.5, phase="baseline")
    assert sampler.origin_s == 100.0
    sampler.tick()
    clock.set(102.5)
    sampler.set_phase("measure")
    sampler.tick()
    rows = sampler.samples()
    assert [(r.t_s, r.phase, r.gpu_index, r.gpu_uuid) for r in rows] == [
        (0.0, "baseline", 0, "GPU-SIMULATED-0"),
        (0.0, "baseline", 1, "GPU-SIMULATED-1"),
        (2.5, "measure", 0, "GPU-SIMULATED-0"),
        (2.5, "measure", 1, "GPU-SIMULATED-1"),
    ]
    assert [r.power_w for r in rows] == [60.0, 70.0, devices.power_at(102.5), devices.power_at(102.5, 1)]
    assert all(r.unix_time_s == 1_700_000_000.5 for r in rows)
    assert sampler.ticks == 2
    assert [r.t_s for r in sampler.rows_between(0.0, 2.5)] == [0.0, 0.0, 2.5, 2.5]
    assert sampler.rows_between(0.1, 2.4) == []


def test_csv_has_the_contract_columns_and_empty_cells_for_missing_readings(tmp_path: Path) -> None:
    clock = FakeClock(10.0)
    devices = ScriptedDevices(clock, power_w=lambda t: None if t > 10.0 else 150.5, reasons=lambda t: 0x24)
    sampler = Sampler(devices, 5.0, clock=clock, wall=lambda: 1.25, origin_s=9.0, phase="measure")
    sampler.tick()
    clock.set(11.0)
    sampler.tick()
    path = tmp_path / "timeline.csv"
    sampler.write_csv(path)
    with path.open(newline="") as handle:
        rows = list(csv.reader(handle))
    assert tuple(rows[0]) == TIMELINE_COLUMNS
    assert rows[1:] == [
        ["1.0", "1.25", "measure", "0", "GPU-FAKE-0", "150.5", "40.0", "1000.0", "1", "50.0", "36"],
        ["2.0", "1.25", "measure", "0", "GPU-FAKE-0", "", "40.0", "1000.0", "1", "50.0", "36"],
    ]
    assert [p.name for p in tmp_path.iterdir()] == ["timeline.csv"]  # no temp file left behind


def test_thread_samples_and_stop_is_idempotent() -> None:
    sampler = Sampler(SimulatedDevices(), 20.0)
    started = time.monotonic()
    sampler.start()
    thread = sampler._thread
    sampler.start()  # already running: the same thread
    assert sampler._thread is thread
    time.sleep(0.35)
    sampler.stop()
    elapsed = time.monotonic() - started
    sampler.stop()
    assert not sampler.running
    assert thread is not None and not thread.is_alive()
    count = len(sampler.samples())
    assert 3 <= count <= elapsed / 0.05 + 1  # ~7 ticks at 50 ms in 0.35 s, never more than the schedule
    time.sleep(0.12)
    assert len(sampler.samples()) == count  # nothing after stop


def test_thread_respects_the_50_ms_floor() -> None:
    sampler = Sampler(SimulatedDevices(), 1000.0)
    start = time.monotonic()
    sampler.start()
    time.sleep(0.5)
    sampler.stop()
    elapsed = time.monotonic() - start
    assert sampler.ticks <= elapsed / MIN_PERIOD_S + 2  # 1000 Hz would give ~500


def test_sampler_can_restart_after_stop() -> None:
    sampler = Sampler(SimulatedDevices(), 20.0)
    sampler.start()
    time.sleep(0.06)
    sampler.stop()
    first = sampler.ticks
    sampler.start()
    time.sleep(0.06)
    sampler.stop()
    assert sampler.ticks > first


def test_failed_reads_are_recorded_and_sampling_continues() -> None:
    devices = ScriptedDevices(FakeClock())
    devices.fail_sample = True
    sampler = Sampler(devices, 20.0)
    sampler.start()
    time.sleep(0.12)
    devices.fail_sample = False
    time.sleep(0.12)
    sampler.stop()
    assert sampler.failed_ticks >= 1
    assert sampler.errors[0] == "DeviceError: scripted failure"
    assert sampler.ticks >= 1  # later ticks succeeded


def test_tick_callbacks_run_and_their_errors_do_not_lose_rows() -> None:
    clock = FakeClock()
    sampler = Sampler(ScriptedDevices(clock), 10.0, clock=clock)
    calls: list[float] = []
    sampler.add_tick_callback(lambda: calls.append(clock()))

    def broken() -> None:
        raise OSError("sysfs went away")

    sampler.add_tick_callback(broken)
    sampler.tick()
    assert calls == [100.0]
    assert len(sampler.samples()) == 1
    assert sampler.errors == ["tick callback OSError: sysfs went away"]
    assert sampler.failed_ticks == 0


def test_stop_before_start_is_harmless() -> None:
    sampler = Sampler(SimulatedDevices(), 10.0)
    sampler.stop()
    assert not sampler.running
    assert sampler.samples() == []
