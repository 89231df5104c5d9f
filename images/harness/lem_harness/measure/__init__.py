"""Measurement: the power timeline sampler, energy windows, the idle baseline, statistics."""

from __future__ import annotations

from lem_harness.measure.baseline import (
    BaselineCache,
    BaselineReading,
    measure_idle_baseline,
    with_counter_idle,
)
from lem_harness.measure.energy import EnergyMeter, WindowEnergy
from lem_harness.measure.sampler import MIN_PERIOD_S, Sampler, TimelineRow
from lem_harness.measure.stats import (
    coefficient_of_variation,
    percentile,
    throttle_reason_names,
    throttling_reasons,
)

__all__ = [
    "MIN_PERIOD_S",
    "BaselineCache",
    "BaselineReading",
    "EnergyMeter",
    "Sampler",
    "TimelineRow",
    "WindowEnergy",
    "coefficient_of_variation",
    "measure_idle_baseline",
    "percentile",
    "throttle_reason_names",
    "throttling_reasons",
    "with_counter_idle",
]
