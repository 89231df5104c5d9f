"""lem's energy window against Zeus's ``ZeusMonitor`` on one fake NVML with a known power curve.

The same ``CurveNvml`` instance replaces ``pynvml`` in ``lem_harness.devices.nvml`` (the
harness's one import site) and in Zeus (``zeus.device.gpu.nvidia``, and ``sys.modules`` for
Zeus's availability probe). Both meters open and close their windows at the same fake
instants; the curve's antiderivative gives the exact energy.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest

from lem_harness.devices.nvml import open_nvml
from lem_harness.devices.simulated import PowerCurve
from lem_harness.measure.energy import EnergyMeter, WindowEnergy
from lem_harness.measure.sampler import Sampler

from .curve_nvml import CurveNvml

zeus_energy = pytest.importorskip("zeus.monitor.energy")
zeus_gpu = pytest.importorskip("zeus.device.gpu")
zeus_nvidia = pytest.importorskip("zeus.device.gpu.nvidia")

ORIGIN = 1_700_000_000.0  # Zeus reads time.time(): the fake clock runs on the Unix axis
PERIOD = 0.1  # lem's sampling period and the counter's refresh period (H100: ~100 ms)
# 90 W idle, a 360 W wave over 20 s, 15 W more per GPU index: H100-like, smooth
CURVE = PowerCurve(idle_power_w=90.0, amplitude_w=360.0, period_s=20.0, ramp_w_per_s=0.0, gpu_step_w=15.0)
AGREE = 0.005  # 0.5 %


class Clock:
    def __init__(self) -> None:
        self.t = ORIGIN

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def clock() -> Clock:
    return Clock()


def patch_everywhere(monkeypatch: pytest.MonkeyPatch, fake: CurveNvml) -> None:
    monkeypatch.setattr("lem_harness.devices.nvml.pynvml", fake)
    monkeypatch.setattr(zeus_nvidia, "pynvml", fake)
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    monkeypatch.setattr(zeus_energy, "time", fake.clock)
    monkeypatch.setattr(zeus_gpu, "_gpus", None)  # Zeus's GPU singleton: built afresh on the fake
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    zeus_nvidia.nvml_is_available.cache_clear()


@pytest.fixture(autouse=True)
def _clear_zeus_cache() -> Iterator[None]:
    yield
    zeus_nvidia.nvml_is_available.cache_clear()


class Meters:
    """lem's meter (NVML devices + a 10 Hz sampler ticked on the fake clock) and a ZeusMonitor."""

    def __init__(self, fake: CurveNvml, clock: Clock, *, approx_instant: bool = False) -> None:
        self.fake, self.clock = fake, clock
        self.devices, _ = open_nvml(list(range(fake.n_gpus)), env={})
        self.sampler = Sampler(self.devices, 1 / PERIOD, clock=clock, wall=clock, origin_s=ORIGIN)
        self.meter = EnergyMeter(self.devices, self.sampler, clock)
        self.zeus = zeus_energy.ZeusMonitor(
            gpu_indices=list(range(fake.n_gpus)), cpu_indices=[], approx_instant_energy=approx_instant
        )

    def advance_to(self, t: float) -> None:
        """Tick the sampler on its 10 Hz grid up to ``t``, then stop the clock at ``t``."""
        k = round((self.clock.t - ORIGIN) / PERIOD) + 1
        while ORIGIN + k * PERIOD <= t + 1e-9:
            self.clock.t = ORIGIN + k * PERIOD
            self.sampler.tick()
            k += 1
        self.clock.t = t

    def window(self, t0: float, t1: float) -> tuple[WindowEnergy, float]:
        self.advance_to(t0)
        self.meter.begin("w")
        self.zeus.begin_window("w", sync_execution=False)
        self.advance_to(t1)
        lem = self.meter.end("w")
        zeus = self.zeus.end_window("w", sync_execution=False)
        return lem, sum(zeus.gpu_energy.values())


@pytest.mark.parametrize("n_gpus", [1, 4])
def test_a_long_window_agrees_with_zeus_and_the_exact_integral(
    monkeypatch: pytest.MonkeyPatch, clock: Clock, n_gpus: int
) -> None:
    fake = CurveNvml(clock, n_gpus, CURVE, origin_s=ORIGIN, update_period_s=PERIOD)
    patch_everywhere(monkeypatch, fake)
    meters = Meters(fake, clock)
    t0, t1 = ORIGIN + 3.03, ORIGIN + 33.07  # edges between counter refreshes
    lem, zeus = meters.window(t0, t1)
    exact = fake.exact_j(t0, t1)
    assert lem.counter_energy_j is not None and lem.gross_energy_j is not None
    assert lem.gross_energy_j == pytest.approx(zeus, rel=1e-12)  # the same counter, read at the same instants
    assert lem.gross_energy_j == pytest.approx(exact, rel=AGREE)
    assert zeus == pytest.approx(exact, rel=AGREE)
    assert lem.integrated_total_j == pytest.approx(exact, rel=1e-4)  # the cross-check, 10 Hz trapezoid
    meters.devices.close()


def test_a_window_shorter_than_one_counter_refresh(monkeypatch: pytest.MonkeyPatch, clock: Clock) -> None:
    fake = CurveNvml(clock, 1, CURVE, origin_s=ORIGIN, update_period_s=PERIOD)
    patch_everywhere(monkeypatch, fake)
    meters = Meters(fake, clock, approx_instant=True)  # Zeus's own answer to short windows
    t0, t1 = ORIGIN + 10.012, ORIGIN + 10.062  # 50 ms at the wave's crest, inside one counter refresh
    lem, zeus = meters.window(t0, t1)
    exact = fake.exact_j(t0, t1)
    assert lem.counter_energy_j is None  # it did not move: lem falls back to the integral, and says so
    assert any("did not move" in w for w in lem.warnings)
    assert lem.gross_energy_j == pytest.approx(exact, rel=AGREE)
    assert zeus == pytest.approx(exact, rel=AGREE)
    assert lem.gross_energy_j == pytest.approx(zeus, rel=AGREE)
    meters.devices.close()


def test_a_counter_reset_inside_the_window(monkeypatch: pytest.MonkeyPatch, clock: Clock) -> None:
    reset = ORIGIN + 12.34
    fake = CurveNvml(clock, 1, CURVE, origin_s=ORIGIN, update_period_s=PERIOD, reset_at=reset)
    patch_everywhere(monkeypatch, fake)
    meters = Meters(fake, clock)
    t0, t1 = ORIGIN + 3.03, ORIGIN + 33.07
    lem, zeus = meters.window(t0, t1)
    exact = fake.exact_j(t0, t1)
    # lem sees the counter go backwards and takes the power integral over the whole window
    assert lem.counter_energy_j is None
    assert any("reset inside the window" in w for w in lem.warnings)
    assert lem.gross_energy_j == pytest.approx(exact, rel=AGREE)
    # Zeus 0.16 subtracts the two edge readings as they are: counter(t1) - counter(t0), blind to the reset
    readings = []
    for t in (t0, t1):
        clock.t = t
        readings.append(fake.nvmlDeviceGetTotalEnergyConsumption(0) / 1000.0)
    assert zeus == pytest.approx(readings[1] - readings[0], rel=1e-12)
    assert abs(zeus - exact) / exact > 0.10  # the energy before the reset is lost
    meters.devices.close()
