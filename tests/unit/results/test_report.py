"""Reports: a self-contained HTML file and Markdown with the tables, flags, plots and provenance."""

from __future__ import annotations

import base64
import re
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from lem.results.report import build_parts, methodology, render_html, write_report
from lem.results.summary import CampaignSummary

PngSize = Callable[[Path | bytes], tuple[int, int]]
STAMP = "2025-03-02T10:00:00+00:00"


def test_html_report_is_self_contained(alpha: CampaignSummary, tmp_path: Path, png_size: PngSize) -> None:
    pytest.importorskip("matplotlib")
    (path,) = write_report(alpha, tmp_path / "report.html", "html", generated_at=STAMP)
    text = path.read_text()
    assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")
    # nothing fetched from anywhere: no scripts, links, remote or relative sources
    assert "<script" not in text and "<link" not in text and "http://" not in text and "https://" not in text
    sources = re.findall(r'src="([^"]+)"', text)
    assert len(sources) == 4  # trade-off, two bar charts, one timeline
    for src in sources:
        assert src.startswith("data:image/png;base64,")
        assert png_size(base64.b64decode(src.split(",", 1)[1]))[0] >= 600


def test_html_report_content(alpha: CampaignSummary) -> None:
    text = render_html(build_parts(alpha, generated_at=STAMP))
    for section in ("validity", "summary", "plots", "runs", "provenance", "methodology"):
        assert f'<section id="{section}">' in text
    assert "GAP_CAP_REACHED" in text and "THROTTLING" in text and "SHORT_WINDOW" in text
    assert "3.203 ± 0.9927† (3.4 %)" in text  # bs1 energy per token, n = 2: mean ± CI half-width† (CV)
    assert "excluded: 1 failed, 2 invalid, 1 missing" in text
    assert "contract version 0.9.0 is older" in text and "not valid JSON" in text
    assert "NVIDIA A100-SXM4-80GB (GPU-0a1b2c3d-0000-4000-8000-00000000a100, 400 W limit)" in text
    assert "550.54.15" in text and "torch 2.5.1" in text
    assert "Student-t 95 % confidence interval" in text and "2 cycle(s)" not in text
    assert "(3 cycle(s) in this campaign)" in text
    assert f"generated {STAMP}" in text


def test_html_escapes_names(alpha: CampaignSummary) -> None:
    parts = build_parts(alpha, generated_at="<b>now</b>")
    assert "&lt;b&gt;now&lt;/b&gt;" in render_html(parts)


def test_markdown_report_links_its_plots(gamma: CampaignSummary, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    written = write_report(gamma, tmp_path / "paper.md", "md", generated_at=STAMP)
    report = written[0]
    assert [p.name for p in written[1:]] == [
        "tradeoff.png",
        "bars_energy_per_output_token_j.png",
        "groups_energy_per_output_token_j.png",
        "bars_output_tokens_per_s.png",
        "groups_output_tokens_per_s.png",
    ]
    text = report.read_text()
    assert text.startswith("# LLenergyMeasure report: gamma")
    assert "| Configuration | fp_precision | Backend | n | Excluded |" in text
    assert "**Campaign gamma by fp_precision (runs pooled across configurations)**" in text
    assert (
        "![Energy per output token against output throughput, mean ± 95 % CI](paper_plots/tradeoff.png)"
        in text
    )
    for link in re.findall(r"\]\((paper_plots/[^)]+)\)", text):
        assert (tmp_path / link).is_file()
    assert "## Methodology" in text and "## Provenance" in text


def test_report_without_matplotlib(
    alpha: CampaignSummary, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    (html_path,) = write_report(alpha, tmp_path / "r.html", "html", generated_at=STAMP)
    text = html_path.read_text()
    assert "<img" not in text and "no plots: plots need matplotlib" in text
    (md_path,) = write_report(alpha, tmp_path / "r.md", "md", generated_at=STAMP)
    assert "_no plots: plots need matplotlib" in md_path.read_text()


def test_methodology_names_the_energy_sources(beta: CampaignSummary) -> None:
    text = methodology(beta)
    assert "Energy sources in these results: nvml_counter." in text
    assert "gross energy − idle power × window duration" in text
