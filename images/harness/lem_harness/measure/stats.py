"""Small, exact statistics for measurements: CV, percentiles, trapezoid, throttle reasons.

Pure functions on plain sequences (no numpy in the harness's hard dependencies).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

# NVML clocks-event ("throttle") reason bits, as nvmlClocksEventReason* defines them.
THROTTLE_REASONS: dict[int, str] = {
    0x001: "gpu_idle",
    0x002: "applications_clocks_setting",
    0x004: "sw_power_cap",
    0x008: "hw_slowdown",
    0x010: "sync_boost",
    0x020: "sw_thermal_slowdown",
    0x040: "hw_thermal_slowdown",
    0x080: "hw_power_brake_slowdown",
    0x100: "display_clock_setting",
}
# The bits that slow a busy GPU down for power or heat (gpu_idle, clock settings and
# sync boost are not throttling in that sense).
THROTTLING_MASK = 0x004 | 0x008 | 0x020 | 0x040 | 0x080


def throttle_reason_names(mask: int) -> list[str]:
    """Names of the bits set in an NVML clocks-event reasons mask, lowest bit first."""
    names: list[str] = []
    bit = 1
    while bit <= mask:
        if mask & bit:
            names.append(THROTTLE_REASONS.get(bit, f"unknown_{bit:#x}"))
        bit <<= 1
    return names


def throttling_reasons(mask: int) -> int:
    """The power/thermal throttling bits of ``mask`` (0 when the GPU was not throttled)."""
    return mask & THROTTLING_MASK


def coefficient_of_variation(values: Sequence[float]) -> float:
    """Population standard deviation over the mean (``scipy.stats.variation``'s default, ddof=0).

    0.0 for a single value or all-equal values; ``inf`` when the mean is 0 but values differ.
    """
    if not values:
        raise ValueError("coefficient_of_variation needs at least one value")
    mean = math.fsum(values) / len(values)
    variance = math.fsum((v - mean) ** 2 for v in values) / len(values)
    std = math.sqrt(variance)
    if std == 0.0:
        return 0.0
    if mean == 0.0:
        return math.inf
    return std / abs(mean)


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) with linear interpolation — numpy's default method."""
    if not values:
        raise ValueError("percentile needs at least one value")
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"q must be within [0, 100], got {q}")
    ordered = sorted(values)
    position = (len(ordered) - 1) * (q / 100.0)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    fraction = position - low
    below, above = ordered[low], ordered[high]
    # numpy's lerp: interpolate from the nearer end, so q=100 lands exactly on the maximum
    if fraction >= 0.5:
        return above - (above - below) * (1.0 - fraction)
    return below + (above - below) * fraction


def median(values: Sequence[float]) -> float:
    """The 50th percentile (the mean of the middle two for an even count)."""
    return percentile(values, 50.0)


def trapezoid(times_s: Sequence[float], values: Sequence[float]) -> float:
    """∫ values d(time) by the trapezoid rule; times must be non-decreasing."""
    if len(times_s) != len(values):
        raise ValueError(f"{len(times_s)} times but {len(values)} values")
    return math.fsum(
        (times_s[i + 1] - times_s[i]) * (values[i] + values[i + 1]) / 2.0 for i in range(len(values) - 1)
    )
