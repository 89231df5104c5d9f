"""Prefill vs decode energy (``measurement.phase_split``), pure arithmetic.

The prefill window runs the measured prompts again, in the same batches, with one output
token each: it costs what the full window's prefill costs, plus one decode step's
sampling. Decode is what the full window spent beyond that::

    decode_energy_j  = full_gross − prefill_gross           (adjusted: full_adj − prefill_adj)
    decode_tokens    = full_output_tokens − prefill_output_tokens
    decode_energy_per_output_token_j = decode_energy_j / decode_tokens

Both windows keep their own validity flags (the prefill window is often shorter than the
counter can resolve: ``SHORT_WINDOW`` there says so). A negative difference is kept, not
clipped: it means the two passes were not comparable, and the flags say why.
"""

from __future__ import annotations

from dataclasses import dataclass

from lem_harness.contract import EnergyMetrics, InferenceMetrics, PhaseSplitMetrics
from lem_harness.measure import WindowEnergy
from lem_harness.metrics import energy_metrics


@dataclass(frozen=True)
class PhaseSplit:
    """The prefill window's figures before flags are attached."""

    metrics: PhaseSplitMetrics
    prefill_energy: EnergyMetrics


def _minus(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def _per(value: float | None, count: int) -> float | None:
    return None if value is None or count <= 0 else value / count


def phase_split(  # noqa: PLR0917
    full: EnergyMetrics,
    full_metrics: InferenceMetrics,
    prefill_window: WindowEnergy,
    prefill_metrics: InferenceMetrics,
    device_kind: str | None,
    idle: tuple[float, str] | None,
) -> PhaseSplit:
    """Prefill and decode figures from the full window's and the prefill window's measurements."""
    prefill = energy_metrics(prefill_window, device_kind, idle, prefill_metrics.output_tokens)
    decode_tokens = full_metrics.output_tokens - prefill_metrics.output_tokens
    decode_energy = _minus(full.gross_energy_j, prefill.gross_energy_j)
    decode_adjusted = _minus(full.adjusted_energy_j, prefill.adjusted_energy_j)
    metrics = PhaseSplitMetrics(
        prefill_duration_s=prefill_window.duration_s,
        prefill_output_tokens=prefill_metrics.output_tokens,
        prefill_energy_j=prefill.gross_energy_j,
        prefill_adjusted_energy_j=prefill.adjusted_energy_j,
        prefill_energy_per_input_token_j=_per(prefill.gross_energy_j, prefill_metrics.input_tokens),
        decode_duration_s=full_metrics.duration_s - prefill_window.duration_s,
        decode_output_tokens=decode_tokens,
        decode_energy_j=decode_energy,
        decode_adjusted_energy_j=decode_adjusted,
        decode_energy_per_output_token_j=_per(decode_energy, decode_tokens),
        decode_adjusted_energy_per_output_token_j=_per(decode_adjusted, decode_tokens),
        prefill_energy=prefill,
    )
    return PhaseSplit(metrics, prefill)
