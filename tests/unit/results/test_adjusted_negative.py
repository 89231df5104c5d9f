"""A run flagged ADJUSTED_NEGATIVE keeps its gross figures; its adjusted ones stay out of statistics."""

from __future__ import annotations

from lem.results.metrics import BY_NAME
from lem_harness.contract import EnergyMetrics, Flag, RunResult


def _result(flags: list[Flag]) -> RunResult:
    return RunResult(
        run_id="r",
        config_id="c",
        config_name="n",
        cycle=1,
        backend="pytorch",
        status="ok",
        started_at="2026-01-01T00:00:00+00:00",
        finished_at="2026-01-01T00:01:00+00:00",
        energy=EnergyMetrics(
            energy_source="nvml_counter",
            gross_energy_j=100.0,
            adjusted_energy_j=-20.0,
            adjusted_energy_per_output_token_j=-0.2,
        ),
        flags=flags,
    )


def test_negative_adjusted_energy_is_left_out_only_when_flagged() -> None:
    flagged = _result([Flag(code="ADJUSTED_NEGATIVE", message="idle above the window's power")])
    assert BY_NAME["adjusted_energy_j"].extract(flagged) is None
    assert BY_NAME["adjusted_energy_per_output_token_j"].extract(flagged) is None
    assert BY_NAME["gross_energy_j"].extract(flagged) == 100.0
    assert BY_NAME["adjusted_energy_j"].extract(_result([])) == -20.0
