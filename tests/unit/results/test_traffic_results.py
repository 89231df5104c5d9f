"""Traffic-simulation runs in the results layer: the ``traffic`` block's figures as metrics, in
statistics, ``lem results show`` / ``summary`` and the exports; runs without it stay blank."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from click.testing import CliRunner

from lem.cli import main
from lem.results.summary import summarize_campaign

RATES = {1: 0.5, 2: 0.6, 3: 0.7}


def _add_traffic(campaign: Path) -> None:
    """Traffic blocks in the three runs of beta's pytorch-bs1-float16 (10 requests each)."""
    for cycle, rate in RATES.items():
        path = campaign / f"pytorch-bs1-float16-c0{cycle}" / "result.json"
        result = json.loads(path.read_text())
        gross, adjusted = result["energy"]["gross_energy_j"], result["energy"]["adjusted_energy_j"]
        result["traffic"] = {
            "mode": "poisson",
            "seed": 42,
            "requests": 10,
            "target_qps": 1.0,
            "offered_qps": 0.9,
            "achieved_qps": rate,
            "schedule_span_s": 10.0,
            "queue_delay_mean_s": 0.1 * cycle,
            "queue_delay_p50_s": 0.05 * cycle,
            "queue_delay_p90_s": 0.2 * cycle,
            "queue_delay_p99_s": 0.25 * cycle,
            "queue_delay_max_s": 0.3 * cycle,
            "energy_per_request_j": gross / 10,
            "adjusted_energy_per_request_j": adjusted / 10,
        }
        path.write_text(json.dumps(result))


def _cli(*args: str) -> str:
    result = CliRunner().invoke(main, ["results", *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_traffic_figures_enter_the_statistics_of_their_configuration(golden_copy: Path) -> None:
    beta = golden_copy / "beta"
    _add_traffic(beta)
    summary = summarize_campaign(beta)
    paced = next(c for c in summary.configs if c.name == "pytorch-bs1-float16")
    achieved = paced.stat("achieved_qps")
    assert achieved.n == 3 and achieved.mean is not None
    assert abs(achieved.mean - 0.6) < 1e-12
    p99 = paced.stat("queue_delay_p99_s")
    assert p99.mean is not None and abs(p99.mean - 0.5) < 1e-12
    energy = paced.stat("energy_per_request_j")
    per_token = paced.stat("energy_per_output_token_j")
    assert energy.mean is not None and per_token.mean is not None
    # 10 requests of 128 output tokens each: a request's energy is 128 tokens' energy
    assert abs(energy.mean - 128 * per_token.mean) < 1e-9
    unpaced = next(c for c in summary.configs if c.name == "pytorch-bs4-float16")
    assert unpaced.stat("achieved_qps").n == 0


def test_show_summary_and_export_carry_the_traffic_columns(golden_copy: Path, tmp_path: Path) -> None:
    beta = golden_copy / "beta"
    _add_traffic(beta)
    run = _cli("show", "pytorch-bs1-float16-c02", "--dir", str(beta))
    assert "Achieved rate (req/s)" in run and "Queue delay p99 (s)" in run and "0.5" in run
    assert "Queue delay" not in _cli("show", "pytorch-bs4-float16-c01", "--dir", str(beta))
    table = _cli("summary", str(beta), "--metric", "achieved_qps,queue_delay_p50_s,energy_per_request_j")
    assert "Achieved rate" in table and "Energy/request" in table
    out = tmp_path / "export"
    _cli("export", str(beta), "--format", "csv", "--out", str(out))
    with (out / "runs.csv").open() as handle:
        rows = {r["run_id"]: r for r in csv.DictReader(handle)}
    assert float(rows["pytorch-bs1-float16-c03"]["achieved_qps"]) == 0.7
    assert rows["pytorch-bs4-float16-c01"]["achieved_qps"] == ""
