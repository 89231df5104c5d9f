"""The per-run metrics the results layer aggregates: stable names with SI units.

Each metric reads one field of a ``RunResult`` (through the contract models only).
Its name is the column name in every export, e.g. ``energy_per_output_token_j``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from lem_harness.contract import RunResult

Section = Literal["energy", "metrics", "traffic"]
# Left out of statistics for a run flagged ADJUSTED_NEGATIVE (the flag says so).
ADJUSTED_METRICS = frozenset(
    {"adjusted_energy_j", "adjusted_energy_per_output_token_j", "adjusted_energy_per_request_j"}
)


@dataclass(frozen=True)
class Metric:
    name: str  # stable column name, SI unit as suffix
    label: str  # short human heading
    unit: str  # unit shown in tables
    higher_is_better: bool
    section: Section  # RunResult.energy, RunResult.metrics or RunResult.traffic (traffic_simulation runs)
    field: str  # the field read in that section
    non_negative: bool = True  # intervals are drawn no lower than 0 (all but idle-adjusted energy)

    def extract(self, result: RunResult) -> float | None:
        if self.name in ADJUSTED_METRICS and any(f.code == "ADJUSTED_NEGATIVE" for f in result.flags):
            return None  # the idle baseline does not describe this window: never averaged in silently
        section = _section(result, self.section)
        value = getattr(section, self.field) if section is not None else None
        return float(value) if value is not None and math.isfinite(value) else None


def _energy_metric(
    name: str, label: str, unit: str, higher: bool = False, non_negative: bool = True
) -> Metric:
    return Metric(name, label, unit, higher, "energy", name, non_negative)


def _inference_metric(name: str, label: str, unit: str, higher: bool = False) -> Metric:
    return Metric(name, label, unit, higher, "metrics", name)


def _traffic_metric(
    name: str, label: str, unit: str, higher: bool = False, non_negative: bool = True
) -> Metric:
    return Metric(name, label, unit, higher, "traffic", name, non_negative)


def _section(result: RunResult, section: Section) -> object | None:
    if section == "energy":
        return result.energy
    return result.metrics if section == "metrics" else result.traffic


METRICS: tuple[Metric, ...] = (
    _energy_metric("gross_energy_j", "Energy gross", "J"),
    _energy_metric("adjusted_energy_j", "Energy idle-adj.", "J", non_negative=False),
    _energy_metric("energy_per_output_token_j", "Energy/token", "J/tok"),
    _energy_metric(
        "adjusted_energy_per_output_token_j", "Energy/token idle-adj.", "J/tok", non_negative=False
    ),
    _energy_metric("output_tokens_per_j", "Tokens/J", "tok/J", higher=True),
    _inference_metric("output_tokens_per_s", "Output throughput", "tok/s", higher=True),
    _inference_metric("total_tokens_per_s", "Total throughput", "tok/s", higher=True),
    _inference_metric("batch_latency_p50_s", "Batch latency p50", "s"),
    _inference_metric("batch_latency_p99_s", "Batch latency p99", "s"),
    _inference_metric("request_latency_p50_s", "Request latency p50", "s"),
    _inference_metric("request_latency_p99_s", "Request latency p99", "s"),
    _inference_metric("ttft_mean_s", "TTFT mean", "s"),
    _inference_metric("ttft_p50_s", "TTFT p50", "s"),
    _inference_metric("ttft_p99_s", "TTFT p99", "s"),
    _inference_metric("itl_mean_s", "ITL mean", "s"),
    _inference_metric("itl_p50_s", "ITL p50", "s"),
    _inference_metric("itl_p99_s", "ITL p99", "s"),
    _traffic_metric("achieved_qps", "Achieved rate", "req/s", higher=True),
    _traffic_metric("queue_delay_mean_s", "Queue delay mean", "s"),
    _traffic_metric("queue_delay_p50_s", "Queue delay p50", "s"),
    _traffic_metric("queue_delay_p99_s", "Queue delay p99", "s"),
    _traffic_metric("energy_per_request_j", "Energy/request", "J/req"),
    _traffic_metric("adjusted_energy_per_request_j", "Energy/request idle-adj.", "J/req", non_negative=False),
    _energy_metric("avg_power_w", "Avg power", "W"),
    _energy_metric("idle_power_w", "Idle power", "W"),
    _energy_metric("window_duration_s", "Window", "s"),
)

METRIC_NAMES: tuple[str, ...] = tuple(m.name for m in METRICS)
METRIC_INDEX: dict[str, int] = {m.name: i for i, m in enumerate(METRICS)}
BY_NAME: dict[str, Metric] = {m.name: m for m in METRICS}

# What a table shows when the caller does not choose.
DEFAULT_TABLE_METRICS: tuple[str, ...] = (
    "energy_per_output_token_j",
    "adjusted_energy_per_output_token_j",
    "output_tokens_per_j",
    "output_tokens_per_s",
    "batch_latency_p50_s",
    "avg_power_w",
)


class UnknownMetricError(ValueError):
    """A metric name that is not in ``METRICS``; the message lists the known names."""


def resolve_metrics(names: list[str] | tuple[str, ...] | None) -> tuple[str, ...]:
    """Validate metric names (comma lists allowed); the default table set when empty."""
    if not names:
        return DEFAULT_TABLE_METRICS
    out: list[str] = []
    for item in names:
        for name in (part.strip() for part in item.split(",")):
            if name and name not in BY_NAME:
                raise UnknownMetricError(f"unknown metric '{name}'; known metrics: {', '.join(METRIC_NAMES)}")
            if name and name not in out:
                out.append(name)
    return tuple(out) if out else DEFAULT_TABLE_METRICS


def extract_all(result: RunResult) -> tuple[float | None, ...]:
    """Every metric of one run, in ``METRICS`` order (the hot path of reading 10,000 results)."""
    sources = {"energy": result.energy, "metrics": result.metrics, "traffic": result.traffic}
    out: list[float | None] = []
    for section, field in _FIELDS:
        source = sources[section]
        value = getattr(source, field) if source is not None else None
        out.append(float(value) if value is not None and math.isfinite(value) else None)
    return tuple(out)


_FIELDS: tuple[tuple[Section, str], ...] = tuple((m.section, m.field) for m in METRICS)
