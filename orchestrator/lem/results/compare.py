"""Two configurations, or two campaigns, side by side.

For each metric: both means with their Student-t 95 % intervals, the ratio B/A, the
difference B - A with its Welch 95 % interval, and whether the difference is larger
than the intervals (the two intervals do not overlap). Two campaigns are compared
configuration by configuration, matched by name. A comparison that mixes GPU models
or drivers is flagged.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from lem.results.load import RunRecord
from lem.results.metrics import resolve_metrics
from lem.results.stats import CONFIDENCE, Stats, t_quantile
from lem.results.summary import CampaignSummary, ConfigSummary
from lem.results.validity import ValidityFlag, mixed_hardware_flags

Verdict = Literal["higher", "lower", "within intervals", "n/a"]


class CompareError(ValueError):
    """A side of a comparison could not be found, or matched more than one configuration."""


@dataclass(frozen=True)
class MetricComparison:
    metric: str
    a: Stats
    b: Stats
    ratio: float | None  # mean B / mean A
    difference: float | None  # mean B - mean A
    welch_low: float | None  # 95 % interval of the difference (Welch)
    welch_high: float | None
    verdict: Verdict  # B compared with A, "higher"/"lower" only beyond both intervals

    @property
    def exceeds_intervals(self) -> bool | None:
        return None if self.verdict == "n/a" else self.verdict != "within intervals"


@dataclass(frozen=True)
class PairComparison:
    a: ConfigSummary
    b: ConfigSummary
    metrics: tuple[MetricComparison, ...]


@dataclass(frozen=True)
class Comparison:
    a_label: str
    b_label: str
    pairs: tuple[PairComparison, ...]
    only_a: tuple[str, ...]  # configuration names without a partner
    only_b: tuple[str, ...]
    flags: tuple[ValidityFlag, ...]


def compare_stats(metric: str, a: Stats, b: Stats, confidence: float = CONFIDENCE) -> MetricComparison:
    if a.mean is None or b.mean is None:
        return MetricComparison(metric, a, b, None, None, None, None, "n/a")
    ratio = b.mean / a.mean if a.mean != 0 else None
    low, high = _welch_interval(a, b, confidence)
    return MetricComparison(metric, a, b, ratio, b.mean - a.mean, low, high, _verdict(a, b))


def _verdict(a: Stats, b: Stats) -> Verdict:
    if None in (a.ci_low, a.ci_high, b.ci_low, b.ci_high):
        return "n/a"
    assert a.ci_low is not None and a.ci_high is not None and b.ci_low is not None and b.ci_high is not None
    if b.ci_low > a.ci_high:
        return "higher"
    if b.ci_high < a.ci_low:
        return "lower"
    return "within intervals"


def _welch_interval(a: Stats, b: Stats, confidence: float) -> tuple[float | None, float | None]:
    """Welch–Satterthwaite interval of mean B - mean A; None without two values on each side."""
    if a.std is None or b.std is None or a.mean is None or b.mean is None:
        return None, None
    va, vb = a.std**2 / a.n, b.std**2 / b.n
    diff = b.mean - a.mean
    se = math.sqrt(va + vb)
    if se == 0:
        return diff, diff
    df = (va + vb) ** 2 / (va**2 / (a.n - 1) + vb**2 / (b.n - 1))
    half = t_quantile(0.5 + confidence / 2, df) * se
    return diff - half, diff + half


def compare_configs(
    a: ConfigSummary, b: ConfigSummary, metrics: Sequence[str] | None = None
) -> PairComparison:
    names = resolve_metrics(list(metrics) if metrics else None)
    return PairComparison(a, b, tuple(compare_stats(m, a.stat(m), b.stat(m)) for m in names))


def compare_two_configs(
    summary_a: CampaignSummary,
    a: ConfigSummary,
    summary_b: CampaignSummary,
    b: ConfigSummary,
    metrics: Sequence[str] | None = None,
) -> Comparison:
    records = _records_of(summary_a, a) + _records_of(summary_b, b)
    return Comparison(
        a_label=a.name if summary_a is summary_b else f"{summary_a.name}/{a.name}",
        b_label=b.name if summary_a is summary_b else f"{summary_b.name}/{b.name}",
        pairs=(compare_configs(a, b, metrics),),
        only_a=(),
        only_b=(),
        flags=mixed_hardware_flags(records),
    )


def compare_campaigns(
    a: CampaignSummary, b: CampaignSummary, metrics: Sequence[str] | None = None
) -> Comparison:
    """Configurations matched by name; the comparison's flags include both campaigns'."""
    by_name_b = {c.name: c for c in b.configs}
    pairs = tuple(compare_configs(c, by_name_b[c.name], metrics) for c in a.configs if c.name in by_name_b)
    names_a = {c.name for c in a.configs}
    return Comparison(
        a_label=a.name,
        b_label=b.name,
        pairs=pairs,
        only_a=tuple(c.name for c in a.configs if c.name not in by_name_b),
        only_b=tuple(c.name for c in b.configs if c.name not in names_a),
        flags=(*mixed_hardware_flags((*a.records, *b.records)), *_prefixed(a), *_prefixed(b)),
    )


def find_config(summary: CampaignSummary, key: str) -> ConfigSummary:
    """A configuration by exact name, exact config id or unique config id prefix."""
    exact = [c for c in summary.configs if key in (c.name, c.config_id)]
    if not exact:
        exact = [c for c in summary.configs if len(key) >= 4 and c.config_id.startswith(key)]
    if len(exact) == 1:
        return exact[0]
    if not exact:
        known = ", ".join(sorted({c.name for c in summary.configs})) or "none"
        raise CompareError(f"no configuration '{key}' in {summary.campaign_dir}; known: {known}")
    where = ", ".join(f"{c.campaign}/{c.name}" for c in exact)
    raise CompareError(f"'{key}' matches several configurations ({where}): name a campaign directory")


def _records_of(summary: CampaignSummary, config: ConfigSummary) -> tuple[RunRecord, ...]:
    return tuple(
        r for r in summary.records if r.config_id == config.config_id and r.campaign == config.campaign
    )


def _prefixed(summary: CampaignSummary) -> tuple[ValidityFlag, ...]:
    return tuple(
        ValidityFlag(f.code, f.scope, f"{summary.name}: {f.message}", f.subjects)
        for f in summary.flags
        if f.code != "MIXED_HARDWARE"
    )
