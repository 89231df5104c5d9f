"""Report polish: the simulated-energy banner, tables that fit, intervals never drawn below zero."""

from __future__ import annotations

from pathlib import Path

import pytest

from lem.results.plots import _err
from lem.results.report import build_parts, render_html, render_markdown_report, simulated_banner
from lem.results.stats import INDICATIVE, Stats, describe
from lem.results.summary import CampaignSummary, summarize_campaign
from lem.results.tables import LEGEND, format_metric_stat, format_stat
from tests.support.golden import simulated_copy

STAMP = "2025-03-02T10:00:00+00:00"


def test_an_interval_of_a_non_negative_quantity_is_held_at_zero() -> None:
    s = describe([0.2, 1.0])  # mean 0.6, std 0.5657, t(0.975, 1) = 12.706: half-width 5.082
    assert s.ci_low == pytest.approx(-4.4825, abs=1e-4)
    assert s.shown_interval(non_negative=True) == (0.0, pytest.approx(5.6825, abs=1e-4))
    assert s.shown_interval(non_negative=False) == (
        pytest.approx(-4.4825, abs=1e-4),
        pytest.approx(5.6825, abs=1e-4),
    )
    assert s.indicative
    assert format_stat(s) == "0.6 [0, 5.682]† (94.3 %!)"
    assert format_stat(s, non_negative=False) == "0.6 ± 5.082† (94.3 %!)"
    # idle-adjusted energy may be negative: its interval is drawn whole
    assert format_metric_stat(s, "adjusted_energy_per_output_token_j") == "0.6 ± 5.082† (94.3 %!)"
    assert format_metric_stat(s, "energy_per_output_token_j") == "0.6 [0, 5.682]† (94.3 %!)"


def test_three_values_are_not_indicative_and_n1_has_no_interval() -> None:
    three = describe([1.0, 1.1, 1.2])
    assert not three.indicative and format_stat(three) == "1.1 ± 0.2484 (9.1 %)"
    assert not Stats(n=1, mean=2.0).indicative
    assert "† = n < 3: indicative only" in LEGEND and INDICATIVE == "n < 3: indicative only"


def test_plot_error_bars_never_reach_below_zero() -> None:
    wide, narrow = describe([0.2, 1.0]), describe([10.0, 11.0, 12.0])
    below, above = _err([wide, narrow, Stats(n=0)], "energy_per_output_token_j")
    assert below == [pytest.approx(0.6), pytest.approx(2.4841, abs=1e-4), 0.0]  # 0.6 - 0.6 = 0: the axis
    assert above == [pytest.approx(5.0825, abs=1e-4), pytest.approx(2.4841, abs=1e-4), 0.0]
    below, _ = _err([wide], "adjusted_energy_per_output_token_j")
    assert below == [pytest.approx(5.0825, abs=1e-4)]


def test_the_banner_opens_a_report_whose_energy_is_simulated(tmp_path: Path) -> None:
    summary = summarize_campaign(simulated_copy("gamma", tmp_path), ["fp_precision"])
    banner = simulated_banner(summary)
    assert banner is not None and banner.startswith(
        "SIMULATED ENERGY: 12 of the 12 runs with energy figures read no"
    )
    html = render_html(build_parts(summary, generated_at=STAMP))
    body = html.split("<body>", 1)[1]
    assert body.lstrip().startswith(
        '<div class="banner simulated" role="alert">SIMULATED ENERGY: 12 of the 12'
    )
    markdown = render_markdown_report(build_parts(summary, generated_at=STAMP))
    assert markdown.startswith("> **SIMULATED ENERGY: 12 of the 12 runs")


def test_no_banner_for_measured_energy(alpha: CampaignSummary) -> None:
    assert simulated_banner(alpha) is None
    assert 'class="banner' not in render_html(build_parts(alpha, generated_at=STAMP))


def test_every_table_sits_in_a_scroll_box_with_wrapping_text(alpha: CampaignSummary) -> None:
    html = render_html(build_parts(alpha, generated_at=STAMP))
    assert html.count("<table") == html.count('<div class="table-wrap"><table') == 3
    assert ".table-wrap{max-width:100%;overflow-x:auto" in html
    assert "td.text{min-width:12em;max-width:36em;overflow-wrap:anywhere}" in html
    assert '<td class="text">' in html
