"""Fixtures of the results tests: the golden trees under tests/data/golden_results/."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from lem.results.summary import CampaignSummary, summarize_campaign

GOLDEN = Path(__file__).resolve().parents[2] / "data" / "golden_results"
TOKENS = 1280  # output tokens of every golden run (10 prompts x 128)


@pytest.fixture(scope="session")
def golden() -> Path:
    return GOLDEN


@pytest.fixture(scope="session")
def alpha() -> CampaignSummary:
    return summarize_campaign(GOLDEN / "alpha")


@pytest.fixture(scope="session")
def beta() -> CampaignSummary:
    return summarize_campaign(GOLDEN / "beta")


@pytest.fixture(scope="session")
def gamma() -> CampaignSummary:
    return summarize_campaign(GOLDEN / "gamma", ["fp_precision"])


@pytest.fixture
def golden_copy(tmp_path: Path) -> Path:
    """A writable copy of the golden tree."""
    target = tmp_path / "results"
    shutil.copytree(GOLDEN, target)
    return target


PngSize = Callable[[Path | bytes], tuple[int, int]]


def read_png_size(path_or_bytes: Path | bytes) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk."""
    data = path_or_bytes.read_bytes() if isinstance(path_or_bytes, Path) else path_or_bytes
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG file"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


@pytest.fixture
def png_size() -> PngSize:
    return read_png_size
