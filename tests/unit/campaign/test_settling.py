"""The settled-temperature rule: exact figures on exponential cooling curves, and a thermal gap on
the simulated device's thermal model whose idle temperature has drifted above the reference."""

from __future__ import annotations

import math
import threading

import pytest

from lem.campaign.clock import FakeClock
from lem.campaign.gaps import GapWaiter, GpuReading
from lem.campaign.settling import is_settled, predicted_drop_c
from lem.config.campaign import ExecutionConfig, ThermalGapConfig
from lem_harness.devices.simulated import ThermalModel

UUID = "GPU-aaaa"


def cooling(t0_c: float, idle_c: float, tau_s: float, times: list[float]) -> list[float]:
    return [idle_c + (t0_c - idle_c) * math.exp(-t / tau_s) for t in times]


def test_three_readings_of_an_exponential_predict_its_remaining_drop_exactly() -> None:
    readings = cooling(70.0, 34.0, 15.0, [0.0, 2.0, 4.0])
    assert predicted_drop_c(readings) == pytest.approx(36.0 * math.exp(-4.0 / 15.0), rel=1e-12)


def test_the_first_middle_and_last_of_the_longest_odd_tail_are_used() -> None:
    # Six readings: the first is skipped (the tail is the last five: 2, 6, 10 s apart by 4 s).
    readings = [99.0, *cooling(60.0, 40.0, 30.0, [2.0, 4.0, 6.0, 8.0, 10.0])]
    assert predicted_drop_c(readings) == pytest.approx(20.0 * math.exp(-10.0 / 30.0), rel=1e-12)


def test_a_geometric_sequence_of_drops_gives_the_geometric_tail() -> None:
    # drops -8 then -4: ratio 1/2, so 4·(1/2)/(1/2) = 4 °C still to come.
    assert predicted_drop_c([60.0, 52.0, 48.0]) == 4.0
    assert is_settled([60.0, 52.0, 48.0], 4.0)
    assert not is_settled([60.0, 52.0, 48.0], 3.9)


def test_cooling_then_flat_has_settled() -> None:
    assert predicted_drop_c([70.0, 60.0, 60.0]) == 0.0


def test_whole_degree_readings_count_a_flat_second_half_as_one_step() -> None:
    # 66, 64, 64 from a 1 °C sensor: the second half may hide up to 1 °C, so r = 1/2 and
    # 1·(1/2)/(1/2) = 1 °C may still come (a continuous sensor would say 0).
    assert predicted_drop_c([66.0, 64.0, 64.0], resolution_c=1.0) == 1.0
    assert predicted_drop_c([66.0, 64.0, 64.0]) == 0.0
    # a drop of more than one step is taken as read: 60, 52, 48 → 4 °C to come
    assert predicted_drop_c([60.0, 52.0, 48.0], resolution_c=1.0) == 4.0


def test_one_step_of_cooling_says_nothing_on_a_whole_degree_sensor() -> None:
    # 65, 64, 64 early in a gap: one step is within the sensor's rounding, no prediction
    assert predicted_drop_c([65.0, 64.0, 64.0], resolution_c=1.0) is None
    assert not is_settled([65.0, 64.0, 64.0], 50.0, resolution_c=1.0)


@pytest.mark.parametrize(
    ("readings", "why"),
    [
        ([70.0, 60.0], "fewer than three readings"),
        ([70.0, 70.0, 70.0], "no cooling seen: says nothing about where it settles"),
        ([70.0, 71.0, 69.0], "warming over the first half"),
        ([70.0, 60.0, 61.0], "warming over the second half"),
        ([70.0, 68.0, 66.0], "a straight line: not slowing down"),
        ([70.0, 69.0, 66.0], "speeding up"),
    ],
)
def test_no_prediction_when_the_readings_are_not_an_exponential_tail(readings: list[float], why: str) -> None:
    assert predicted_drop_c(readings) is None, why
    assert not is_settled(readings, 50.0)


# --------------------------------------------------------------------------- in a thermal gap


class ModelProbe:
    """Calibrates at ``reference_c``; then the GPU cools at 90 W from ``hot_c`` under ``model``."""

    def __init__(self, clock: FakeClock, model: ThermalModel, reference_c: float, hot_c: float) -> None:
        self.clock, self.model, self.hot_c = clock, model, hot_c
        self.pending = [reference_c]
        self.start = clock.monotonic()

    def read(self) -> list[GpuReading]:
        if self.pending:
            return [GpuReading(UUID, self.pending.pop(), 90.0)]
        temperature = self.model.after(self.hot_c, 90.0, self.clock.monotonic() - self.start)
        return [GpuReading(UUID, temperature, 90.0)]

    def close(self) -> None:
        return None


def gap(settled: bool, reference_c: float) -> tuple[float, str, float]:
    clock = FakeClock()
    # Idle at 90 W settles at 38 °C here (ambient 29 °C); the hot GPU starts cooling at 70 °C.
    probe = ModelProbe(clock, ThermalModel(ambient_c=29.0, tau_s=15.0), reference_c, 70.0)
    thermal = ThermalGapConfig(end_when_settled=settled)  # 3 °C, 15 W, 10 s minimum, 2 s polls
    execution = ExecutionConfig(gap_mode="thermal", thermal=thermal)
    record = GapWaiter(execution, clock, threading.Event(), probe=probe, warn=print).wait(60.0)
    assert record.start_temperature_c is not None
    return record.waited_s, record.ended_by, record.start_temperature_c[UUID]


def test_a_gpu_settling_above_a_stale_reference_ends_the_gap_once_settled() -> None:
    # Reference 34 °C (taken in a cooler room): never within 3 °C of it, but 32·e^(−t/15) ≤ 3
    # from t = 15·ln(32/3) = 35.5 s, so the poll at 36 s ends the gap (14 polls: 10 … 36 s).
    waited, ended, start_c = gap(settled=True, reference_c=34.0)
    assert (waited, ended) == (36.0, "settled")
    assert start_c == pytest.approx(38.0 + 32.0 * math.exp(-36.0 / 15.0), rel=1e-12)


def test_the_band_rule_alone_waits_out_the_cap_on_a_stale_reference() -> None:
    waited, ended, start_c = gap(settled=False, reference_c=34.0)
    assert (waited, ended) == (60.0, "cap")
    assert start_c == pytest.approx(38.0 + 32.0 * math.exp(-60.0 / 15.0), rel=1e-12)


def test_with_a_true_reference_the_band_ends_the_gap_at_the_same_poll() -> None:
    # Reference 38 °C: within 3 °C at the same 36 s poll; the band is checked first.
    assert gap(settled=True, reference_c=38.0)[:2] == (36.0, "thermal")
    assert gap(settled=False, reference_c=38.0)[:2] == (36.0, "thermal")


def test_settled_needs_idle_power_too() -> None:
    clock = FakeClock()
    script = [[GpuReading(UUID, 34.0, 60.0)], *([GpuReading(UUID, t, 200.0)] for t in (60.0, 52.0, 48.0))]
    readings = iter(script)

    class Scripted:
        def read(self) -> list[GpuReading]:
            return next(readings, script[-1])

        def close(self) -> None:
            return None

    thermal = ThermalGapConfig(temperature_tolerance_c=4.0)
    execution = ExecutionConfig(gap_mode="thermal", thermal=thermal)
    record = GapWaiter(execution, clock, threading.Event(), probe=Scripted(), warn=print).wait(20.0)
    # settled by temperature (4 °C to come) at 14 s, but 200 W is far above the 60 W idle
    assert (record.waited_s, record.ended_by) == (20.0, "cap")
