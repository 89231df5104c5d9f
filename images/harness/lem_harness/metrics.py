"""Pure arithmetic from batch results and energy windows to the result's metric sections.

Throughput is output tokens per second; total (input + output) tokens per second is a
separate field. Energy is that of the measured window only: gross (counter where one
exists, else the power integral), idle-adjusted ``gross - P_idle * window_s``, per
output token, tokens per joule and average power. Missing inputs give null fields,
never zeros.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Sequence

from lem_harness.contract import EnergyMetrics, EnergySource, GpuEnergy, InferenceMetrics, SpeculativeMetrics
from lem_harness.engines.base import BatchResult
from lem_harness.measure import WindowEnergy, percentile


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _pct(values: Sequence[float], q: float) -> float | None:
    return percentile(values, q) if values else None


def _ratio(num: float | None, den: float | None) -> float | None:
    if num is None or den is None or den <= 0:
        return None
    return num / den


def inference_metrics(
    batches: Sequence[BatchResult], duration_s: float, peak_memory_bytes: int | None = None
) -> InferenceMetrics:
    """Token counts, throughput and latency percentiles of the measured window's batches."""
    gens = [g for b in batches for g in b.generations]
    input_tokens = sum(g.input_tokens for g in gens)
    output_tokens = sum(g.output_tokens for g in gens)
    batch_lat = [b.latency_s for b in batches] or [0.0]
    request_lat = [g.latency_s for g in gens if g.latency_s is not None]
    ttft = [g.ttft_s for g in gens if g.ttft_s is not None]
    itl = [gap for g in gens for gap in g.itl_s]
    return InferenceMetrics(
        num_prompts=len(gens),
        num_batches=len(batches),
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        duration_s=duration_s,
        output_tokens_per_s=output_tokens / duration_s if duration_s > 0 else 0.0,
        total_tokens_per_s=(input_tokens + output_tokens) / duration_s if duration_s > 0 else 0.0,
        batch_latency_p50_s=percentile(batch_lat, 50),
        batch_latency_p90_s=percentile(batch_lat, 90),
        batch_latency_p99_s=percentile(batch_lat, 99),
        request_latency_p50_s=_pct(request_lat, 50),
        request_latency_p90_s=_pct(request_lat, 90),
        request_latency_p99_s=_pct(request_lat, 99),
        ttft_mean_s=_mean(ttft),
        ttft_p50_s=_pct(ttft, 50),
        ttft_p99_s=_pct(ttft, 99),
        itl_mean_s=_mean(itl),
        itl_p50_s=_pct(itl, 50),
        itl_p99_s=_pct(itl, 99),
        peak_memory_bytes=peak_memory_bytes,
        speculative=speculative_metrics(batches),
    )


def speculative_metrics(batches: Sequence[BatchResult]) -> SpeculativeMetrics | None:
    """Speculative-decoding counts summed over the batches; None when no batch decoded speculatively."""
    counts = [b.speculative for b in batches if b.speculative is not None]
    if not counts:
        return None
    total = functools.reduce(operator.add, counts)
    return SpeculativeMetrics(
        num_drafts=total.drafts,
        draft_tokens=total.draft_tokens,
        accepted_tokens=total.accepted_tokens,
        acceptance_rate=_ratio(total.accepted_tokens, total.draft_tokens),
        mean_acceptance_length=1.0 + total.accepted_tokens / total.drafts if total.drafts > 0 else None,
    )


def energy_source(device_kind: str | None, window: WindowEnergy | None) -> EnergySource:
    if device_kind is None or window is None:
        return "none"
    if device_kind == "simulated":
        return "simulated"
    if window.counter_energy_j is not None:
        return "nvml_counter"
    if window.integrated_energy_j is not None:
        return "power_integral"
    return "none"


def _per_gpu(window: WindowEnergy) -> list[GpuEnergy]:
    counter = window.counter_energy_j or {}
    integral = window.integrated_energy_j or {}
    return [
        GpuEnergy(gpu_uuid=uuid, counter_energy_j=counter.get(uuid), integrated_energy_j=integral.get(uuid))
        for uuid in sorted(set(counter) | set(integral))
    ]


def energy_metrics(
    window: WindowEnergy | None,
    device_kind: str | None,
    idle: tuple[float, str] | None,
    output_tokens: int,
) -> EnergyMetrics:
    """The measured window's energy figures; every field null where its inputs are missing.

    ``idle`` is ``(watts, "ready" | "deep")``: the idle power subtracted for adjusted energy.
    """
    source = energy_source(device_kind, window)
    if window is None or source == "none":
        return EnergyMetrics(
            energy_source="none",
            window_duration_s=window.duration_s if window else None,
            activity=window.activity if window else None,
        )
    gross = window.gross_energy_j
    seconds = window.duration_s
    idle_power_w = None if idle is None else idle[0]
    adjusted = gross - idle_power_w * seconds if gross is not None and idle_power_w is not None else None
    tokens = float(output_tokens) if output_tokens > 0 else None
    return EnergyMetrics(
        energy_source=source,
        gross_energy_j=gross,
        integrated_energy_j=window.integrated_total_j,
        counter_vs_integral_pct=window.counter_vs_integral_pct,
        idle_power_w=idle_power_w,
        idle_power_kind=None if idle is None else ("ready" if idle[1] == "ready" else "deep"),
        adjusted_energy_j=adjusted,
        window_duration_s=seconds,
        avg_power_w=_ratio(gross, seconds),
        energy_per_output_token_j=_ratio(gross, tokens),
        adjusted_energy_per_output_token_j=_ratio(adjusted, tokens),
        output_tokens_per_j=_ratio(tokens, gross),
        cpu_energy_j=window.cpu_energy_j,
        sample_coverage=window.coverage,
        activity=window.activity,
        per_gpu=_per_gpu(window),
    )
