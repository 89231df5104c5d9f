"""Comparisons: ratio, Welch interval of the difference, and whether it exceeds the intervals."""

from __future__ import annotations

from pathlib import Path

import pytest

from lem.results.compare import (
    CompareError,
    compare_campaigns,
    compare_stats,
    compare_two_configs,
    find_config,
)
from lem.results.stats import Stats, describe
from lem.results.summary import CampaignSummary, summarize_campaign

scipy_stats = pytest.importorskip("scipy.stats")
TOKENS = 1280


def test_two_configurations_exact(beta: CampaignSummary) -> None:
    a, b = find_config(beta, "pytorch-bs1-float16"), find_config(beta, "pytorch-bs4-float16")
    comparison = compare_two_configs(beta, a, beta, b, ["energy_per_output_token_j"])
    (pair,) = comparison.pairs
    (m,) = pair.metrics
    values_a = [18 * 210.0 / TOKENS, 19 * 205.0 / TOKENS, 25 * 200.0 / TOKENS]
    values_b = [7.5 * 310.0 / TOKENS, 7.6 * 305.0 / TOKENS, 7.4 * 300.0 / TOKENS]
    mean_a, mean_b = sum(values_a) / 3, sum(values_b) / 3
    assert m.ratio == pytest.approx(mean_b / mean_a, abs=1e-12)
    assert m.difference == pytest.approx(mean_b - mean_a, abs=1e-12)
    welch = scipy_stats.ttest_ind(values_b, values_a, equal_var=False).confidence_interval(0.95)
    assert (m.welch_low, m.welch_high) == pytest.approx((welch.low, welch.high), abs=1e-9)
    assert m.verdict == "lower" and m.exceeds_intervals is True
    assert [f.code for f in comparison.flags] == ["MIXED_HARDWARE", "MIXED_HARDWARE"]
    assert comparison.a_label == "pytorch-bs1-float16"


def test_overlapping_intervals_are_within(alpha: CampaignSummary, beta: CampaignSummary) -> None:
    comparison = compare_campaigns(alpha, beta, ["energy_per_output_token_j", "avg_power_w"])
    assert [p.a.name for p in comparison.pairs] == ["pytorch-bs1-float16", "pytorch-bs4-float16"]
    assert comparison.only_a == ("pytorch-bs8-float16", "vllm-float16") and comparison.only_b == ()
    verdicts = {(p.a.name, m.metric): m.verdict for p in comparison.pairs for m in p.metrics}
    assert verdicts[("pytorch-bs1-float16", "energy_per_output_token_j")] == "within intervals"
    codes = [f.code for f in comparison.flags]
    assert codes == ["MIXED_HARDWARE", "MIXED_HARDWARE", "GAP_CAP_REACHED", "BASELINE_DRIFT"]
    assert comparison.flags[2].message.startswith("alpha: ") and comparison.flags[3].message.startswith(
        "beta: "
    )


def test_verdict_directions_and_missing_sides() -> None:
    low, high = describe([1.0, 1.1, 0.9]), describe([2.0, 2.1, 1.9])
    assert compare_stats("m", low, high).verdict == "higher"
    assert compare_stats("m", high, low).verdict == "lower"
    assert compare_stats("m", low, Stats(n=0)).verdict == "n/a"
    one = compare_stats("m", low, describe([5.0]))
    assert (one.verdict, one.ratio, one.welch_low, one.exceeds_intervals) == ("n/a", 5.0, None, None)
    same = compare_stats("m", describe([2.0, 2.0]), describe([2.0, 2.0]))
    assert (same.welch_low, same.welch_high, same.verdict) == (0.0, 0.0, "within intervals")
    zero = compare_stats("m", describe([0.0, 0.0]), describe([1.0, 1.0]))
    assert zero.ratio is None and zero.verdict == "higher"


def test_find_config(alpha: CampaignSummary) -> None:
    bs1 = find_config(alpha, "pytorch-bs1-float16")
    assert find_config(alpha, bs1.config_id) is bs1
    assert find_config(alpha, bs1.config_id[:6]) is bs1
    with pytest.raises(CompareError, match=r"no configuration 'bs3'.*known: pytorch-bs1-float16"):
        find_config(alpha, "bs3")


def test_ambiguous_configuration_across_campaigns(golden: Path) -> None:
    everything = summarize_campaign(golden)
    with pytest.raises(CompareError, match="matches several configurations"):
        find_config(everything, "pytorch-bs1-float16")
