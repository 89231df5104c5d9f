"""Plots: files exist, have content, and have the pixel size their figures promise."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from lem.results.load import load_results
from lem.results.plots import PlotsUnavailable, plot_campaign, timeline_png
from lem.results.summary import CampaignSummary, summarize_campaign
from lem.results.timeline import THROTTLE_MASK, TimelineError, read_timeline

PngSize = Callable[[Path | bytes], tuple[int, int]]

pytest.importorskip("matplotlib")
np = pytest.importorskip("numpy")

THROTTLE_RED = (214, 39, 40)  # the marker colour of throttle events (#d62728)


def _pixels(path: Path) -> object:
    from matplotlib.image import imread

    return (imread(path)[:, :, :3] * 255).round().astype(np.uint8)


def _count(pixels: object, rgb: tuple[int, int, int]) -> int:
    return int(np.all(pixels == np.array(rgb, dtype=np.uint8), axis=-1).sum())


def test_alpha_plots(alpha: CampaignSummary, tmp_path: Path, png_size: PngSize) -> None:
    result = plot_campaign(alpha, tmp_path)
    names = [p.name for p in result.files]
    assert names == [
        "tradeoff.png",
        "bars_energy_per_output_token_j.png",
        "bars_output_tokens_per_s.png",
        "timeline_pytorch-bs1-float16-c01.png",
    ]
    assert result.notes == []
    sizes = {p.name: png_size(p) for p in result.files}
    assert sizes["tradeoff.png"] == (900, 600)
    assert sizes["bars_energy_per_output_token_j.png"] == (600, 500)  # 4 bars: the minimum width
    assert sizes["timeline_pytorch-bs1-float16-c01.png"] == (1000, 450)
    assert all(p.stat().st_size > 10_000 for p in result.files)


def test_gamma_group_bars(gamma: CampaignSummary, tmp_path: Path, png_size: PngSize) -> None:
    result = plot_campaign(gamma, tmp_path, metrics=["output_tokens_per_j"], timelines=False)
    assert [p.name for p in result.files] == [
        "tradeoff.png",
        "bars_output_tokens_per_j.png",
        "groups_output_tokens_per_j.png",
    ]
    assert png_size(tmp_path / "bars_output_tokens_per_j.png") == (670, 500)  # 6 bars x 0.7 in + 2.5 in
    assert png_size(tmp_path / "groups_output_tokens_per_j.png") == (600, 500)


def test_timeline_marks_throttle_events(alpha: CampaignSummary, tmp_path: Path) -> None:
    result = plot_campaign(alpha, tmp_path, metrics=[])
    timeline = tmp_path / "timeline_pytorch-bs1-float16-c01.png"
    assert timeline in result.files
    assert _count(_pixels(timeline), THROTTLE_RED) > 20
    assert _count(_pixels(tmp_path / "tradeoff.png"), THROTTLE_RED) == 0


def test_timeline_without_throttling_has_no_markers(golden_copy: Path, tmp_path: Path) -> None:
    csv_path = golden_copy / "alpha" / "pytorch-bs1-float16-c01" / "timeline.csv"
    lines = csv_path.read_text().splitlines()
    csv_path.write_text("\n".join([lines[0], *(line.rsplit(",", 1)[0] + ",0" for line in lines[1:])]) + "\n")
    (record,) = [r for r in load_results(golden_copy / "alpha").records if r.timeline_file]
    out = tmp_path / "t.png"
    out.write_bytes(timeline_png(record))
    assert _count(_pixels(out), THROTTLE_RED) == 0


def test_read_timeline(golden: Path) -> None:
    timeline = read_timeline(golden / "alpha" / "pytorch-bs1-float16-c01" / "timeline.csv")
    assert len(timeline.rows) == 131 and timeline.skipped_rows == 0  # 0..65 s at 2 Hz
    series = timeline.by_gpu()["GPU-0a1b2c3d-0000-4000-8000-00000000a100"]
    throttled = [t for t, mask in zip(series.t_s, series.throttle, strict=True) if mask & THROTTLE_MASK]
    assert throttled == [50.0, 50.5, 51.0, 51.5]
    assert THROTTLE_MASK & 0x1 == 0  # "GPU idle" is not throttling


def test_bad_timeline_becomes_a_note(golden_copy: Path, tmp_path: Path) -> None:
    csv_path = golden_copy / "alpha" / "pytorch-bs1-float16-c01" / "timeline.csv"
    csv_path.write_text("time,watts\n1,2\n")
    summary = summarize_campaign(golden_copy / "alpha")
    result = plot_campaign(summary, tmp_path, metrics=[])
    assert [p.name for p in result.files] == ["tradeoff.png"]
    assert len(result.notes) == 1 and "missing column(s) t_s, gpu_uuid, power_w" in result.notes[0]
    csv_path.write_text("t_s,gpu_uuid,power_w\nx,y,z\n")
    with pytest.raises(TimelineError, match="no usable samples"):
        read_timeline(csv_path)


def test_without_matplotlib_the_message_says_how_to_install(
    alpha: CampaignSummary, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(PlotsUnavailable, match=r"pip install 'llenergymeasure\[plots\]'"):
        plot_campaign(alpha, tmp_path / "plots")
    assert not (tmp_path / "plots").exists()


def test_plots_do_not_touch_pyplot(alpha: CampaignSummary, tmp_path: Path) -> None:
    plot_campaign(alpha, tmp_path, timelines=False)
    if "matplotlib.pyplot" in sys.modules:
        from matplotlib import pyplot

        assert pyplot.get_fignums() == []
