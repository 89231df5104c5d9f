"""Descriptive statistics across cycles (pure; standard library only).

The host does not depend on scipy, so the Student-t quantile is computed here: the
t survival function is the regularised incomplete beta function (evaluated by its
continued fraction), and the quantile is found by safeguarded Newton steps on it.
``tests/unit/results/test_stats.py`` checks it against ``scipy.stats.t.ppf`` to 1e-9.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from statistics import NormalDist

CONFIDENCE = 0.95
HIGH_CV = 0.10  # a coefficient of variation above this is flagged
TARGET_REL_HALF_WIDTH = 0.05  # "cycles needed" answers for a ±5 % interval
MAX_CYCLES_ESTIMATE = 1_000_000

_EPS = 1e-16
_TINY = 1e-300
_MAX_CF_ITERATIONS = 100_000
_STIRLING_FROM = 100.0  # Stirling's series is exact to double precision beyond this


INDICATIVE_BELOW_N = 3
INDICATIVE = "n < 3: indicative only"


@dataclass(frozen=True)
class Stats:
    """Summary of one metric over the valid runs of a configuration.

    ``std`` is the sample standard deviation (n - 1); ``cv = std / |mean|``; the
    interval is ``mean ± t(1 - α/2, n - 1) · std / √n``. Fields that need more
    values than there are (std and interval need n ≥ 2) are None.
    """

    n: int
    mean: float | None = None
    std: float | None = None
    cv: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    min: float | None = None
    max: float | None = None
    cycles_for_target: int | None = None  # cycles for a ±5 % interval at the current spread

    @property
    def ci_half_width(self) -> float | None:
        if self.ci_low is None or self.ci_high is None:
            return None
        return (self.ci_high - self.ci_low) / 2.0

    @property
    def high_cv(self) -> bool:
        return self.cv is not None and self.cv > HIGH_CV

    @property
    def indicative(self) -> bool:
        """An interval from fewer than 3 values: t(0.975, 1) = 12.7 makes it too wide to read much into."""
        return self.n < INDICATIVE_BELOW_N and self.ci_low is not None

    def shown_interval(self, non_negative: bool) -> tuple[float, float] | None:
        """The interval to draw: the Student-t bounds, the lower one held at 0 for a quantity that cannot
        be negative (energy, throughput, power, latency)."""
        if self.ci_low is None or self.ci_high is None:
            return None
        return (max(0.0, self.ci_low) if non_negative else self.ci_low), self.ci_high


def describe(values: Sequence[float], confidence: float = CONFIDENCE) -> Stats:
    """n, mean, sample std, CV, Student-t interval, min, max and cycles needed."""
    n = len(values)
    if n == 0:
        return Stats(n=0)
    mean = math.fsum(values) / n
    low, high = min(values), max(values)
    if n == 1:
        return Stats(n=1, mean=mean, min=low, max=high)
    std = sample_std(values, mean)
    half = t_quantile(0.5 + confidence / 2.0, n - 1) * std / math.sqrt(n)
    cv = std / abs(mean) if mean != 0 else None
    return Stats(
        n=n,
        mean=mean,
        std=std,
        cv=cv,
        ci_low=mean - half,
        ci_high=mean + half,
        min=low,
        max=high,
        cycles_for_target=cycles_needed(mean, std, TARGET_REL_HALF_WIDTH, confidence),
    )


def sample_std(values: Sequence[float], mean: float | None = None) -> float:
    """Sample standard deviation (divisor n - 1), two-pass for accuracy."""
    n = len(values)
    if n < 2:
        raise ValueError("the sample standard deviation needs at least two values")
    centre = math.fsum(values) / n if mean is None else mean
    return math.sqrt(math.fsum((v - centre) ** 2 for v in values) / (n - 1))


def cycles_needed(
    mean: float,
    std: float,
    rel_half_width: float = TARGET_REL_HALF_WIDTH,
    confidence: float = CONFIDENCE,
) -> int | None:
    """Smallest n ≥ 2 with ``t(n-1) · std / √n ≤ rel_half_width · |mean|``.

    The current ``std`` is taken as the estimate of the spread. None when the mean
    is zero or more than ``MAX_CYCLES_ESTIMATE`` cycles would be needed.
    """
    if mean == 0:
        return None
    target = rel_half_width * abs(mean)
    if std == 0:
        return 2
    p = 0.5 + confidence / 2.0
    # t(df) > z for every df, so the normal answer is a lower bound to start from.
    z = NormalDist().inv_cdf(p)
    n = max(2, math.ceil((z * std / target) ** 2))
    while n <= MAX_CYCLES_ESTIMATE:
        if t_quantile(p, n - 1) * std / math.sqrt(n) <= target:
            return n
        n += 1
    return None


# --------------------------------------------------------------------------- Student t


@lru_cache(maxsize=8192)
def t_quantile(p: float, df: float) -> float:
    """Quantile (inverse CDF) of Student's t distribution with ``df`` degrees of freedom."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"p must be in (0, 1), got {p}")
    if not df > 0:
        raise ValueError(f"df must be > 0, got {df}")
    if p == 0.5:
        return 0.0
    if p < 0.5:
        return -_upper_t(p, df)
    return _upper_t(1.0 - p, df)


def t_sf(t: float, df: float) -> float:
    """Survival function P(T > t) of Student's t distribution."""
    t2 = t * t
    # x = df / (df + t²) and its complement, each computed without cancellation.
    tail = 0.5 * betainc_regularized(df / 2.0, 0.5, df / (df + t2), t2 / (df + t2))
    return tail if t >= 0 else 1.0 - tail


def t_pdf(t: float, df: float) -> float:
    log_norm = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)
    return math.exp(log_norm - (df + 1) / 2 * math.log1p(t * t / df))


def _upper_t(q: float, df: float) -> float:
    """The t > 0 with P(T > t) = q, for 0 < q < 0.5."""
    if df == 1:
        return 1.0 / math.tan(math.pi * q)
    if df == 2:
        return (1.0 - 2.0 * q) / math.sqrt(2.0 * q * (1.0 - q))
    lo, hi = 0.0, _bracket_high(q, df)
    t = min(max(_initial_guess(q, df), lo), hi)
    for _ in range(200):
        f = t_sf(t, df) - q  # decreasing in t
        if f > 0:
            lo = t
        else:
            hi = t
        step = f / t_pdf(t, df)
        nxt = t + step
        if not lo < nxt < hi:
            nxt = (lo + hi) / 2.0
        if abs(nxt - t) <= 1e-15 * max(1.0, abs(nxt)):
            return nxt
        t = nxt
    return t


def _bracket_high(q: float, df: float) -> float:
    hi = 2.0
    while t_sf(hi, df) > q:
        hi *= 2.0
    return hi


def _initial_guess(q: float, df: float) -> float:
    """Cornish-Fisher expansion of the t quantile around the normal one."""
    z = NormalDist().inv_cdf(1.0 - q)
    g1 = (z**3 + z) / 4
    g2 = (5 * z**5 + 16 * z**3 + 3 * z) / 96
    g3 = (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384
    return z + g1 / df + g2 / df**2 + g3 / df**3


def betainc_regularized(a: float, b: float, x: float, y: float | None = None) -> float:
    """The regularised incomplete beta function I_x(a, b), 0 ≤ x ≤ 1.

    ``y`` is ``1 - x`` when the caller can compute it more accurately than the subtraction.
    """
    y = 1.0 - x if y is None else y
    if x <= 0.0:
        return 0.0
    if y <= 0.0:
        return 1.0
    log_x = math.log(x) if x < 0.5 else math.log1p(-y)
    log_y = math.log(y) if y < 0.5 else math.log1p(-x)
    log_front = a * log_x + b * log_y - log_beta(a, b)
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _beta_cf(a, b, x) / a
    return 1.0 - math.exp(log_front) * _beta_cf(b, a, y) / b


def log_beta(a: float, b: float) -> float:
    """ln B(a, b), without the cancellation of three large lgamma terms when one argument is large."""
    small, large = min(a, b), max(a, b)
    if large < _STIRLING_FROM:
        return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)
    return math.lgamma(small) - _log_gamma_shift(large, small)


def _log_gamma_shift(z: float, h: float) -> float:
    """ln Γ(z + h) - ln Γ(z) for large z, from Stirling's series with the large terms cancelled."""
    return (z - 0.5) * math.log1p(h / z) + h * math.log(z + h) - h + _stirling_tail(z + h) - _stirling_tail(z)


def _stirling_tail(z: float) -> float:
    return 1 / (12 * z) - 1 / (360 * z**3) + 1 / (1260 * z**5) - 1 / (1680 * z**7)


def _beta_cf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > _TINY else _TINY)
    h = d
    for m in range(1, _MAX_CF_ITERATIONS):
        m2 = 2 * m
        for num in (
            m * (b - m) * x / ((qam + m2) * (a + m2)),
            -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2)),
        ):
            d = 1.0 + num * d
            d = 1.0 / (d if abs(d) > _TINY else _TINY)
            c = 1.0 + num / c
            c = c if abs(c) > _TINY else _TINY
            h *= d * c
        if abs(d * c - 1.0) < _EPS:
            return h
    raise ArithmeticError(f"incomplete beta continued fraction did not converge (a={a}, b={b}, x={x})")
