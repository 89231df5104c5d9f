"""Idle baseline medians and the on-disk cache (fake clocks throughout)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lem_harness.devices.base import DeviceError, DeviceSample
from lem_harness.devices.simulated import SimulatedDevices
from lem_harness.measure.baseline import (
    BaselineCache,
    BaselineReading,
    baseline_from_readings,
    measure_idle_baseline,
)
from lem_harness.measure.sampler import Sampler

from .fakes import FakeClock

STEP = 0.125  # exact in binary, so the fake clock lands on exact instants


def reading(uuid: str, power: float | None, temperature: float | None = None) -> DeviceSample:
    return DeviceSample(0, uuid, power, temperature, None, None, None, None)


def test_median_per_gpu_and_their_sum() -> None:
    readings = [reading("A", p, t) for p, t in [(10, 30), (50, 31), (20, 35), (1000, 90), (30, 33)]]
    readings += [reading("B", 5.0), reading("B", 7.0), reading("B", None, 40.0)]
    baseline = baseline_from_readings(readings, 30.0)
    assert baseline.per_gpu_idle_power_w == {"A": 30.0, "B": 6.0}  # the 1000 W spike does not move it
    assert baseline.idle_power_w == 36.0
    assert baseline.idle_temperature_c == {"A": 33.0, "B": 40.0}
    assert baseline.samples == 2
    assert baseline.duration_s == 30.0


def test_no_power_readings_is_an_error() -> None:
    with pytest.raises(DeviceError, match="no idle power readings in 5 s"):
        baseline_from_readings([reading("A", None, 30.0)], 5.0)


def ramp_devices(clock: FakeClock) -> SimulatedDevices:
    return SimulatedDevices(2, clock=clock, origin_s=0.0, amplitude_w=0.0, ramp_w_per_s=1.0)


def test_polls_the_devices_for_the_duration() -> None:
    clock = FakeClock(0.0)
    baseline = measure_idle_baseline(
        ramp_devices(clock), 10.0, clock=clock, sleep=clock.sleep, poll_period_s=STEP
    )
    # 80 polls at t = 0, 0.125, …, 9.875: the median is between t = 4.875 and t = 5.0
    assert baseline.samples == 80
    assert baseline.per_gpu_idle_power_w == {"GPU-SIMULATED-0": 64.9375, "GPU-SIMULATED-1": 74.9375}
    assert baseline.idle_power_w == 139.875
    assert clock() == 10.0


def test_poll_period_is_never_below_50_ms() -> None:
    clock = FakeClock(0.0)
    baseline = measure_idle_baseline(
        ramp_devices(clock), 1.0, clock=clock, sleep=clock.sleep, poll_period_s=0.001
    )
    assert 20 <= baseline.samples <= 21  # 1 s at 50 ms (the last step may land a hair short of 1 s)


def test_uses_the_running_sampler_rows() -> None:
    clock = FakeClock(0.0)
    devices = ramp_devices(clock)
    sampler = Sampler(devices, 8.0, clock=clock, origin_s=0.0)
    sampler.tick()

    def sleep(seconds: float) -> None:  # the sampler thread, played by hand
        for _ in range(round(seconds / STEP)):
            clock.sleep(STEP)
            sampler.tick()

    clock.set(0.0)
    baseline = measure_idle_baseline(devices, 10.0, sampler=sampler, clock=clock, sleep=sleep)
    # rows at t = 0 … 10 inclusive (81 of them): the median is t = 5
    assert baseline.samples == 81
    assert baseline.per_gpu_idle_power_w["GPU-SIMULATED-0"] == 65.0


def test_rejects_non_positive_duration() -> None:
    with pytest.raises(ValueError, match="duration"):
        measure_idle_baseline(SimulatedDevices(), 0.0)


# --------------------------------------------------------------------------- cache

UUIDS = ["GPU-b", "GPU-a"]
READING = BaselineReading(
    idle_power_w=140.0,
    per_gpu_idle_power_w={"GPU-a": 60.0, "GPU-b": 80.0},
    idle_temperature_c={"GPU-a": 31.0},
    duration_s=30.0,
    samples=300,
)


def test_cache_hit_returns_the_reading_and_its_age(tmp_path: Path) -> None:
    cache = BaselineCache(tmp_path / "cache")
    path = cache.put(UUIDS, "sha256:abc", READING, now=1_000.0)
    assert path.parent == tmp_path / "cache"
    hit = cache.get(list(reversed(UUIDS)), "sha256:abc", ttl_s=3_600.0, now=1_250.0)
    assert hit == (READING, 250.0)
    assert cache.last_miss is None
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # atomic: no temp file left
    stored = json.loads(path.read_text())
    assert stored["gpu_uuids"] == ["GPU-a", "GPU-b"]
    assert stored["created_unix_s"] == 1_000.0


def test_cache_keys_on_gpus_and_image(tmp_path: Path) -> None:
    cache = BaselineCache(tmp_path)
    cache.put(UUIDS, "sha256:abc", READING, now=0.0)
    assert cache.get(UUIDS, "sha256:other", ttl_s=10.0, now=1.0) is None
    assert cache.get(["GPU-a"], "sha256:abc", ttl_s=10.0, now=1.0) is None
    assert cache.get(UUIDS, None, ttl_s=10.0, now=1.0) is None
    assert cache.warnings == []


def test_cache_ttl_boundary(tmp_path: Path) -> None:
    cache = BaselineCache(tmp_path)
    cache.put(UUIDS, None, READING, now=0.0)
    assert cache.get(UUIDS, None, ttl_s=100.0, now=100.0) == (READING, 100.0)
    assert cache.get(UUIDS, None, ttl_s=100.0, now=100.5) is None
    assert cache.last_miss == "cached baseline is 100 s old, older than the TTL of 100 s"
    assert cache.warnings == []


def test_cache_entry_from_the_future_is_ignored_with_a_warning(tmp_path: Path) -> None:
    cache = BaselineCache(tmp_path)
    cache.put(UUIDS, None, READING, now=500.0)
    assert cache.get(UUIDS, None, ttl_s=1e9, now=100.0) is None
    assert "400 s in the future" in cache.warnings[0]


def test_missing_cache_is_a_quiet_miss(tmp_path: Path) -> None:
    cache = BaselineCache(tmp_path / "absent")
    assert cache.get(UUIDS, None, ttl_s=10.0, now=0.0) is None
    assert cache.last_miss is not None and cache.last_miss.startswith("no cached baseline")
    assert cache.warnings == []


@pytest.mark.parametrize(
    ("content", "where"),
    [
        ("{not json", "file"),
        ('{"gpu_uuids": ["GPU-a"]}', "image_id"),
        (
            '{"schema_version": 1, "gpu_uuids": [], "image_id": null, '
            '"created_unix_s": "soon", "reading": {}}',
            "created_unix_s",
        ),
    ],
)
def test_corrupt_cache_file_is_ignored_with_a_warning(tmp_path: Path, content: str, where: str) -> None:
    cache = BaselineCache(tmp_path)
    cache.path_for(UUIDS, None).write_text(content)
    assert cache.get(UUIDS, None, ttl_s=10.0, now=0.0) is None
    assert len(cache.warnings) == 1
    assert "is corrupt" in cache.warnings[0]
    assert f"({where}:" in cache.warnings[0]
    cache.put(UUIDS, None, READING, now=0.0)  # a fresh measurement replaces it
    assert cache.get(UUIDS, None, ttl_s=10.0, now=0.0) == (READING, 0.0)
