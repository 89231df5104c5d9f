"""Statistics helpers: exact values on known inputs, and numpy's percentile bit for bit."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from lem_harness.measure.stats import (
    coefficient_of_variation,
    median,
    percentile,
    throttle_reason_names,
    throttling_reasons,
    trapezoid,
)


def test_cv_of_known_values() -> None:
    assert coefficient_of_variation([2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]) == 0.4  # σ = 2, μ = 5
    assert coefficient_of_variation([3.0]) == 0.0
    assert coefficient_of_variation([1.5, 1.5, 1.5]) == 0.0
    assert coefficient_of_variation([-1.0, 1.0]) == math.inf


def test_cv_matches_numpy_population_std() -> None:
    values = [0.31, 0.29, 0.35, 0.30, 0.33]
    assert coefficient_of_variation(values) == pytest.approx(
        float(np.std(values) / np.mean(values)), rel=1e-12
    )


def test_cv_needs_values() -> None:
    with pytest.raises(ValueError, match="at least one"):
        coefficient_of_variation([])


def test_percentile_of_known_values() -> None:
    values = [15.0, 20.0, 35.0, 40.0, 50.0]
    assert percentile(values, 0) == 15.0
    assert percentile(values, 40) == 29.0  # position 1.6: 20 + 0.6·15
    assert percentile(values, 50) == 35.0
    assert percentile(values, 100) == 50.0
    assert median([4.0, 1.0, 3.0, 2.0]) == 2.5


def test_percentile_matches_numpy_linear_exactly() -> None:
    rng = random.Random(7)
    for n in (1, 2, 3, 10, 101):
        values = [rng.uniform(-1e3, 1e3) for _ in range(n)]
        for q in (0, 1, 10, 25, 33.3, 50, 66.7, 90, 99, 99.9, 100):
            assert percentile(values, q) == float(np.percentile(values, q)), (n, q)


@pytest.mark.parametrize(("values", "q"), [([], 50.0), ([1.0], -1.0), ([1.0], 100.5)])
def test_percentile_rejects_bad_input(values: list[float], q: float) -> None:
    with pytest.raises(ValueError):
        percentile(values, q)


def test_throttle_reason_names() -> None:
    assert throttle_reason_names(0) == []
    assert throttle_reason_names(0x1) == ["gpu_idle"]
    assert throttle_reason_names(0x4 | 0x20 | 0x40) == [
        "sw_power_cap",
        "sw_thermal_slowdown",
        "hw_thermal_slowdown",
    ]
    assert throttle_reason_names(0x800) == ["unknown_0x800"]


def test_throttling_ignores_idle_and_clock_settings() -> None:
    assert throttling_reasons(0x1 | 0x2 | 0x10 | 0x100) == 0
    assert throttling_reasons(0x1 | 0x8 | 0x80) == 0x88


def test_trapezoid() -> None:
    assert trapezoid([0.0, 1.0, 3.0], [10.0, 20.0, 20.0]) == 55.0
    assert trapezoid([5.0], [100.0]) == 0.0
    with pytest.raises(ValueError, match="2 times but 1 values"):
        trapezoid([0.0, 1.0], [1.0])
