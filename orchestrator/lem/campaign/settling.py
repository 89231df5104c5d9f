"""How much further a cooling GPU will fall: the asymptote of an exponential through three readings.

A GPU idling after a run cools roughly as ``T(t) = T∞ + (T₀ − T∞)·e^(−t/τ)``. Three readings
equally spaced in time, ``a``, ``b``, ``c``, fix both unknowns without knowing τ: the drops
``d₁ = b − a`` and ``d₂ = c − b`` shrink by the same ratio ``r = e^(−Δ/τ)`` every step, so
the drop still to come after ``c`` is the geometric tail ``|d₂|·r / (1 − r)`` (Aitken's Δ²
extrapolation). A thermal gap may end once that predicted further drop is within the
temperature tolerance: the GPU is then "settled", even if it settles above the campaign's idle
reference (a warmer room, a neighbour's heat, a reference taken on a cold morning).
"""

from __future__ import annotations

from collections.abc import Sequence


def predicted_drop_c(readings: Sequence[float], resolution_c: float = 0.0) -> float | None:
    """The further fall (°C, ≥ 0) of the exponential through equally spaced ``readings``, oldest first.

    Uses the first, the middle and the last of the longest odd-length tail of ``readings``
    (so the span grows with the gap, and a sensor's whole-degree steps weigh less). ``None``
    when it cannot be told: fewer than three readings, no cooling over the first half by more
    than ``resolution_c`` (a GPU that has not started cooling, or whose flat reading says
    nothing about where it settles), warming over the second half, or a drop that is not
    slowing down (not yet an exponential tail). A sensor that reports steps of
    ``resolution_c`` can hide up to one step of the second half's drop, so that drop counts as
    at least one step (the prediction errs towards waiting). Zero only when the first half
    cooled and the second half is exactly flat with ``resolution_c`` 0.
    """
    if len(readings) < 3:
        return None
    half = (len(readings) - 1) // 2
    a, b, c = readings[-1 - 2 * half], readings[-1 - half], readings[-1]
    first, second = b - a, c - b
    if first >= -resolution_c or first >= 0 or second > 0:
        return None
    second_drop = max(-second, resolution_c)
    if second_drop == 0:
        return 0.0
    ratio = second_drop / -first
    if ratio >= 1.0:
        return None
    return second_drop * ratio / (1.0 - ratio)


def is_settled(readings: Sequence[float], tolerance_c: float, resolution_c: float = 0.0) -> bool:
    """Whether the predicted further drop is known and within ``tolerance_c``."""
    drop = predicted_drop_c(readings, resolution_c)
    return drop is not None and drop <= tolerance_c
