"""Open the HTML report in headless Chromium (Debian's package) and check its screenshot.

The screenshot must show the summary table (its header colour, above the plots) and the
embedded plots (matplotlib's tab10 series colours, which the page's own styles never use).
In a narrow window, a report of simulated energy must open with its red banner, and no table
may run past the page's right margin (wide tables scroll inside their own box).
Skipped when /usr/bin/chromium is missing, unless LEM_REQUIRE_CHROMIUM=1 (CI sets it).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from lem.results.report import write_report
from lem.results.summary import summarize_campaign
from tests.support.golden import simulated_copy

GOLDEN = Path(__file__).resolve().parents[1] / "data" / "golden_results"
CHROMIUM = os.environ.get("LEM_CHROMIUM", "/usr/bin/chromium")
WIDTH, HEIGHT = 1400, 3000
TABLE_HEADER = (31, 58, 95)  # th background #1f3a5f
PLOT_BLUE, PLOT_ORANGE = (31, 119, 180), (255, 127, 14)  # matplotlib tab10 C0, C1
BANNER_RED = (176, 0, 32)  # .banner background #b00020
NARROW = 900
BODY_MARGIN = 32  # body{margin:24px 32px}

np = pytest.importorskip("numpy")
pytest.importorskip("matplotlib")


def _chromium() -> str:
    if Path(CHROMIUM).is_file() or shutil.which(CHROMIUM):
        return CHROMIUM
    if os.environ.get("LEM_REQUIRE_CHROMIUM") == "1":
        pytest.fail(f"LEM_REQUIRE_CHROMIUM=1 but {CHROMIUM} is missing: apt-get install -y chromium")
    pytest.skip(f"{CHROMIUM} not installed (apt-get install -y chromium); set LEM_REQUIRE_CHROMIUM=1 to fail")


def _screenshot(html: Path, out: Path, profile: Path, width: int = WIDTH, height: int = HEIGHT) -> None:
    command = [
        _chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        f"--screenshot={out}",
        f"--window-size={width},{height}",
        html.as_uri(),
    ]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert out.is_file(), f"chromium wrote no screenshot (exit {proc.returncode}): {proc.stderr[-2000:]}"


def _mask(pixels: Any, rgb: tuple[int, int, int], tolerance: int = 2) -> Any:
    return np.all(np.abs(pixels.astype(int) - np.array(rgb)) <= tolerance, axis=-1)


def test_report_renders_tables_and_plots_in_chromium(tmp_path: Path) -> None:
    from matplotlib.image import imread

    summary = summarize_campaign(GOLDEN / "gamma", ["fp_precision"])
    (html,) = write_report(
        summary, tmp_path / "report.html", "html", generated_at="2025-03-02T10:00:00+00:00"
    )
    shot = tmp_path / "shot.png"
    _screenshot(html, shot, tmp_path / "profile")

    pixels = (imread(shot)[:, :, :3] * 255).round().astype(np.uint8)
    assert pixels.shape == (HEIGHT, WIDTH, 3)
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 200, "the page looks blank"

    header_rows = np.nonzero(_mask(pixels, TABLE_HEADER).sum(axis=1) > WIDTH // 3)[0]
    assert header_rows.size >= 10, "no table header band found"
    plot_pixels = _mask(pixels, PLOT_BLUE) | _mask(pixels, PLOT_ORANGE)
    plot_rows = np.nonzero(plot_pixels.sum(axis=1) > 0)[0]
    assert plot_pixels.sum() > 5_000, "no plot content found"
    assert header_rows.min() < plot_rows.min(), "the summary table should come before the plots"


def test_a_simulated_report_has_its_banner_and_no_table_overflows_a_narrow_page(tmp_path: Path) -> None:
    from matplotlib.image import imread

    summary = summarize_campaign(simulated_copy("gamma", tmp_path), ["fp_precision"])
    (html,) = write_report(
        summary, tmp_path / "report.html", "html", generated_at="2025-03-02T10:00:00+00:00"
    )
    shot = tmp_path / "narrow.png"
    _screenshot(html, shot, tmp_path / "profile", width=NARROW)
    pixels = (imread(shot)[:, :, :3] * 255).round().astype(np.uint8)
    assert pixels.shape == (HEIGHT, NARROW, 3)

    banner = _mask(pixels, BANNER_RED)
    banner_rows = np.nonzero(banner.sum(axis=1) > NARROW // 2)[0]
    assert banner_rows.size >= 20, "no banner band found"
    header = _mask(pixels, TABLE_HEADER)
    header_rows = np.nonzero(header.sum(axis=1) > 0)[0]
    assert header_rows.size > 0, "no table header found"
    assert banner_rows.max() < header_rows.min(), "the banner should open the page, above every table"
    # every table's header band ends inside the page's right margin: nothing runs off the page
    header_cols = np.nonzero(header.sum(axis=0) > 0)[0]
    assert header_cols.max() < NARROW - BODY_MARGIN + 2, f"a table reaches x={header_cols.max()}"
    assert header_cols.min() >= BODY_MARGIN - 2
