"""Fixtures of the campaign tests (helpers live in ``helpers.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.campaign.helpers import Bench, campaign_config


@pytest.fixture
def bench(tmp_path: Path) -> Bench:
    """The 2 configurations x 2 cycles campaign with gaps 0, wired with fakes."""
    return Bench(tmp_path, campaign_config())
