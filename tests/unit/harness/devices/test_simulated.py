"""The simulated GPU: a known curve whose counter is its exact integral."""

from __future__ import annotations

import math

import pytest

from lem_harness.devices.base import DeviceNotSupportedError
from lem_harness.devices.simulated import (
    SW_THERMAL_SLOWDOWN,
    LoadFollowingDevices,
    PowerCurve,
    SimulatedDevices,
)


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_power_curve_at_known_points() -> None:
    devices = SimulatedDevices(2, clock=Clock(50.0), origin_s=0.0)
    assert devices.power_at(0.0) == 60.0
    assert devices.power_at(2.5) == pytest.approx(80.0, abs=1e-12)  # (1 - cos(π/2)) / 2 = 1/2
    assert devices.power_at(5.0) == 100.0  # the crest: idle + amplitude
    assert devices.power_at(10.0) == pytest.approx(60.0, abs=1e-12)
    assert devices.power_at(5.0, gpu=1) == 110.0  # gpu_step_w


def test_energy_between_is_the_closed_form_integral() -> None:
    devices = SimulatedDevices(2, origin_s=0.0)
    assert devices.energy_between(0.0, 10.0) == pytest.approx(800.0, abs=1e-9)  # mean 80 W for 10 s
    assert devices.energy_between(0.0, 5.0) == pytest.approx(400.0, abs=1e-9)
    assert devices.energy_between(0.0, 2.5) == pytest.approx(
        80.0 * 2.5 - 40.0 / (2.0 * (2.0 * math.pi / 10.0)),
        abs=1e-9,  # sin(π/2) = 1
    )
    assert devices.energy_between(0.0, 10.0, gpu=1) == pytest.approx(900.0, abs=1e-9)
    assert devices.energy_between(0.0, 10.0, gpu=None) == pytest.approx(1700.0, abs=1e-9)


def test_ramp_term_integrates_to_half_t_squared() -> None:
    devices = SimulatedDevices(origin_s=0.0, amplitude_w=0.0, ramp_w_per_s=2.0)
    assert devices.power_at(10.0) == 80.0
    assert devices.energy_between(0.0, 10.0) == 700.0  # 60·10 + 2·10²/2


@pytest.mark.parametrize("ramp", [0.0, 1.5])
def test_antiderivative_matches_a_fine_numeric_integral_of_the_power(ramp: float) -> None:
    curve = PowerCurve(idle_power_w=55.0, amplitude_w=30.0, period_s=7.0, ramp_w_per_s=ramp)
    t0, t1, n = 1.3, 17.9, 200_000
    h = (t1 - t0) / n
    numeric = h * (
        (curve.power_w(0, t0) + curve.power_w(0, t1)) / 2
        + math.fsum(curve.power_w(0, t0 + i * h) for i in range(1, n))
    )
    assert curve.energy_j(0, t1) - curve.energy_j(0, t0) == pytest.approx(numeric, rel=1e-9)


def test_energy_counter_is_the_integral_since_origin_plus_offset() -> None:
    clock = Clock(1000.0)
    devices = SimulatedDevices(2, clock=clock, counter_offset_j=5_000.0)
    first = devices.energy_counter_j()
    assert first == {"GPU-SIMULATED-0": 5_000.0, "GPU-SIMULATED-1": 5_000.0}
    clock.t = 1012.345
    second = devices.energy_counter_j()
    for gpu in (0, 1):
        uuid = f"GPU-SIMULATED-{gpu}"
        assert second[uuid] - first[uuid] == pytest.approx(
            devices.energy_between(1000.0, 1012.345, gpu), rel=1e-12
        )


def test_samples_follow_the_curve_deterministically() -> None:
    clock = Clock(5.0)
    devices = SimulatedDevices(2, clock=clock, origin_s=0.0, throttle_after_s=6.0)
    first, second = devices.sample()
    assert (first.gpu_index, first.gpu_uuid) == (0, "GPU-SIMULATED-0")
    assert first.power_w == 100.0
    assert first.temperature_c == 50.0  # 25 + 0.25·P
    assert first.utilization_pct == 100.0
    assert first.memory_used_bytes == 2**30
    assert first.throttle_reasons == 0
    assert second.power_w == 110.0
    clock.t = 6.0
    assert devices.sample()[0].throttle_reasons == SW_THERMAL_SLOWDOWN


def test_info_and_identity() -> None:
    devices = SimulatedDevices(3)
    assert devices.kind == "simulated"
    assert devices.uuids() == ["GPU-SIMULATED-0", "GPU-SIMULATED-1", "GPU-SIMULATED-2"]
    assert [info.index for info in devices.info()] == [0, 1, 2]
    assert all(info.supports_energy_counter for info in devices.info())
    assert devices.power_sources() == dict.fromkeys(devices.uuids(), "simulated")
    with devices:
        pass
    assert devices.closed is True


def test_without_counter() -> None:
    devices = SimulatedDevices(has_counter=False)
    assert devices.supports_energy_counter() is False
    assert devices.info()[0].supports_energy_counter is False
    with pytest.raises(DeviceNotSupportedError):
        devices.energy_counter_j()


@pytest.mark.parametrize(("kwargs", "message"), [({"n_gpus": 0}, "n_gpus"), ({"period_s": 0.0}, "period_s")])
def test_rejects_nonsense(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SimulatedDevices(**kwargs)  # type: ignore[arg-type]


class _Clocks:
    """A wall clock and a CPU-time clock that the test moves by hand."""

    def __init__(self) -> None:
        self.wall, self.cpu = 100.0, 7.0

    def step(self, seconds: float, cpu_seconds: float) -> None:
        self.wall += seconds
        self.cpu += cpu_seconds


def test_load_following_power_follows_the_cpu_share_with_a_first_order_response() -> None:
    c = _Clocks()
    dev = LoadFollowingDevices(2, lambda: c.wall, cpu_clock=lambda: c.cpu, cpus=2, response_s=0.5)
    c.step(4.0, 0.0)  # idle: 4 s, no CPU
    assert [s.power_w for s in dev.sample()] == [60.0, 70.0]
    c.step(2.0, 3.0)  # 3 CPU-seconds over 2 s on 2 CPUs: u = 0.75; L = 0.75·(1 − e^−4)
    activity = 0.75 * (1 - math.exp(-4.0))
    samples = dev.sample()
    assert [s.power_w for s in samples] == pytest.approx(
        [60 + 240 * activity, 70 + 240 * activity], rel=1e-12
    )
    assert samples[0].utilization_pct == pytest.approx(100 * activity, rel=1e-12)
    c.step(1.0, 5.0)  # more CPU than the CPUs allow (clock granularity): u clamps to 1
    area = 0.75 * 2 - 0.75 * 0.5 * (1 - math.exp(-4.0)) + 1.0 + (activity - 1.0) * 0.5 * (1 - math.exp(-2.0))
    counter = dev.energy_counter_j()
    assert counter["GPU-SIMULATED-0"] == pytest.approx(60.0 * 7 + 240.0 * area, rel=1e-12)
    assert counter["GPU-SIMULATED-1"] == pytest.approx(70.0 * 7 + 240.0 * area, rel=1e-12)


def test_load_following_counter_is_the_integral_whatever_the_reading_times() -> None:
    """Readings split an interval of constant load anywhere: the counter does not change."""
    coarse, fine = _Clocks(), _Clocks()
    one = LoadFollowingDevices(1, lambda: coarse.wall, cpu_clock=lambda: coarse.cpu, cpus=1, response_s=0.5)
    many = LoadFollowingDevices(1, lambda: fine.wall, cpu_clock=lambda: fine.cpu, cpus=1, response_s=0.5)
    coarse.step(3.0, 1.8)  # u = 0.6 throughout
    for _ in range(30):
        fine.step(0.1, 0.06)
        many.sample()
    assert many.energy_counter_j()["GPU-SIMULATED-0"] == pytest.approx(
        one.energy_counter_j()["GPU-SIMULATED-0"], rel=1e-9
    )
    assert one.energy_counter_j()["GPU-SIMULATED-0"] == pytest.approx(
        60 * 3 + 240 * (0.6 * 3 - 0.6 * 0.5 * (1 - math.exp(-6.0))), rel=1e-12
    )


def test_load_following_window_energy_exceeds_its_idle_share_when_the_process_works() -> None:
    c = _Clocks()
    dev = LoadFollowingDevices(1, lambda: c.wall, cpu_clock=lambda: c.cpu, cpus=1, response_s=0.5)
    c.step(5.0, 0.0)  # a baseline
    idle_w = dev.energy_counter_j()["GPU-SIMULATED-0"] / 5.0
    start = dev.energy_counter_j()["GPU-SIMULATED-0"]  # no time passed: nothing added
    c.step(10.0, 10.0)  # busy throughout
    gross = dev.energy_counter_j()["GPU-SIMULATED-0"] - start
    assert idle_w == 60.0
    assert gross == pytest.approx(600.0 + 240.0 * (10.0 - 0.5 * (1 - math.exp(-20.0))), rel=1e-12)
    assert gross - idle_w * 10.0 > 2_000.0


def test_load_following_rejects_no_cpus() -> None:
    with pytest.raises(ValueError, match="cpus must be >= 1"):
        LoadFollowingDevices(cpus=0)
    with pytest.raises(ValueError, match="response_s must be > 0"):
        LoadFollowingDevices(response_s=0.0)
