"""Statistics across cycles, checked against scipy to 1e-9 (scipy is a dev dependency only)."""

from __future__ import annotations

import math
import random

import pytest

from lem.results.stats import (
    HIGH_CV,
    Stats,
    betainc_regularized,
    cycles_needed,
    describe,
    log_beta,
    sample_std,
    t_quantile,
    t_sf,
)

scipy_stats = pytest.importorskip("scipy.stats")
scipy_special = pytest.importorskip("scipy.special")

PROBABILITIES = (0.6, 0.75, 0.9, 0.95, 0.975, 0.99, 0.995, 0.999, 0.9995, 0.025, 0.005, 0.1)
DEGREES = (*range(1, 40), 45, 50, 60, 99, 100, 250, 1_000, 10_000, 100_000)


@pytest.mark.parametrize("df", DEGREES)
def test_t_quantile_matches_scipy_to_1e9(df: int) -> None:
    for p in PROBABILITIES:
        assert t_quantile(p, df) == pytest.approx(scipy_stats.t.ppf(p, df), abs=1e-9, rel=1e-12)


@pytest.mark.parametrize("df", [0.5, 1.5, 2.25, 3.7, 7.3, 13.9, 58.41])
def test_t_quantile_non_integer_df_matches_scipy(df: float) -> None:
    # Welch-Satterthwaite degrees of freedom are not integers.
    for p in PROBABILITIES:
        assert t_quantile(p, df) == pytest.approx(scipy_stats.t.ppf(p, df), abs=1e-9, rel=1e-12)


def test_t_quantile_far_tails_and_symmetry() -> None:
    for df in (1, 2, 3, 10, 30):
        for q in (1e-6, 1e-9):
            assert t_quantile(q, df) == pytest.approx(scipy_stats.t.ppf(q, df), rel=1e-9)
            assert t_quantile(1 - q, df) == pytest.approx(-t_quantile(q, df), rel=1e-6)
    assert t_quantile(0.5, 7) == 0.0


def test_t_quantile_known_table_values() -> None:
    # The classic two-sided 95 % table: t(0.975, df).
    table = {1: 12.706204736, 2: 4.302652730, 5: 2.570581836, 10: 2.228138852, 30: 2.042272456}
    for df, value in table.items():
        assert t_quantile(0.975, df) == pytest.approx(value, abs=1e-8)


def test_t_sf_and_betainc_match_scipy() -> None:
    for df in (1, 3, 17, 200):
        for t in (-3.0, -0.2, 0.0, 0.7, 2.5, 40.0):
            assert t_sf(t, df) == pytest.approx(scipy_stats.t.sf(t, df), abs=1e-13)
    for a, b, x in ((0.5, 0.5, 0.3), (2.0, 5.0, 0.9), (150.0, 0.5, 0.999), (3.3, 1.0, 1e-5)):
        assert betainc_regularized(a, b, x) == pytest.approx(scipy_special.betainc(a, b, x), rel=1e-12)
    for a, b in ((0.5, 2.0), (150.0, 0.5), (40.0, 60.0)):
        assert log_beta(a, b) == pytest.approx(scipy_special.betaln(a, b), rel=1e-12)
    # For a large argument scipy's betaln loses digits; the reference is mpmath at 40 digits.
    assert log_beta(1e6, 0.5) == pytest.approx(-6.335390211057436965, rel=1e-14)


@pytest.mark.parametrize("p, df", [(0.0, 3), (1.0, 3), (-0.1, 3), (0.5, 0), (0.9, -1)])
def test_t_quantile_rejects_out_of_range(p: float, df: float) -> None:
    with pytest.raises(ValueError):
        t_quantile(p, df)


@pytest.mark.parametrize("n", range(2, 41))
def test_describe_matches_scipy_for_every_n(n: int) -> None:
    rng = random.Random(n)
    values = [rng.uniform(0.5, 3.0) for _ in range(n)]
    s = describe(values)
    mean = sum(values) / n
    std = float(scipy_stats.tstd(values))
    low, high = scipy_stats.t.interval(0.95, n - 1, loc=mean, scale=scipy_stats.sem(values))
    assert s.n == n
    assert s.mean == pytest.approx(mean, abs=1e-12)
    assert s.std == pytest.approx(std, abs=1e-12)
    assert s.cv == pytest.approx(std / mean, abs=1e-12)
    assert s.ci_low == pytest.approx(low, abs=1e-9)
    assert s.ci_high == pytest.approx(high, abs=1e-9)
    assert (s.min, s.max) == (min(values), max(values))


def test_describe_exact_small_sample() -> None:
    # 3.125 and 3.28125 J/token: mean 3.203125, std 0.15625/√2, half-width t(0.975,1)·std/√2.
    s = describe([3.125, 3.28125])
    std = 0.15625 / math.sqrt(2)
    assert s.mean == 3.203125
    assert s.std == pytest.approx(std, abs=1e-15)
    assert s.ci_half_width == pytest.approx(12.706204736174698 * std / math.sqrt(2), abs=1e-12)


def test_describe_degenerate_sizes() -> None:
    assert describe([]) == Stats(n=0)
    one = describe([4.0])
    assert (one.n, one.mean, one.min, one.max) == (1, 4.0, 4.0, 4.0)
    assert one.std is None and one.ci_low is None and one.cv is None and one.cycles_for_target is None
    zero_mean = describe([-1.0, 1.0])
    assert zero_mean.cv is None and not zero_mean.high_cv
    constant = describe([2.0, 2.0, 2.0])
    assert (constant.std, constant.ci_low, constant.ci_high, constant.cycles_for_target) == (0.0, 2.0, 2.0, 2)


def test_high_cv_threshold_is_strictly_above_ten_percent() -> None:
    assert HIGH_CV == 0.10
    just_under = describe([0.9, 1.1])  # std = 0.1414, mean 1 -> 14 %
    assert just_under.high_cv
    at = Stats(n=3, mean=1.0, std=0.1, cv=0.10)
    assert not at.high_cv
    assert Stats(n=3, mean=1.0, std=0.1001, cv=0.1001).high_cv


def _cycles_reference(mean: float, std: float) -> int:
    n = 2
    while scipy_stats.t.ppf(0.975, n - 1) * std / math.sqrt(n) > 0.05 * abs(mean):
        n += 1
    return n


@pytest.mark.parametrize(
    "mean, std", [(1.0, 0.01), (1.0, 0.03), (3.3, 0.526), (10.0, 1.0), (-2.0, 0.3), (1.0, 0.2)]
)
def test_cycles_needed_matches_brute_force(mean: float, std: float) -> None:
    assert cycles_needed(mean, std) == _cycles_reference(mean, std)


def test_cycles_needed_edge_cases() -> None:
    assert cycles_needed(0.0, 1.0) is None
    assert cycles_needed(5.0, 0.0) == 2
    assert cycles_needed(1.0, 1e6) is None  # beyond a million cycles


def test_sample_std_needs_two_values() -> None:
    with pytest.raises(ValueError, match="at least two"):
        sample_std([1.0])
    assert sample_std([1.0, 3.0]) == pytest.approx(math.sqrt(2))
