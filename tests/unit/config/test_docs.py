"""docs/configuration.md documents every key of both schemas and every advice code."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import BaseModel

from lem.campaign import check
from lem.config import advice
from lem.config.campaign import CampaignConfig
from lem.config.fields import experiment_paths, field_names, models_in

REPO = Path(__file__).resolve().parents[3]
DOC = (REPO / "docs" / "configuration.md").read_text()


def campaign_models() -> list[type[BaseModel]]:
    found: list[type[BaseModel]] = [CampaignConfig]
    for model in found:
        for info in model.model_fields.values():
            found.extend(m for m in models_in(info.annotation) if m not in found)
    return found


@pytest.mark.parametrize("path", experiment_paths())
def test_every_experiment_key_is_documented(path: str) -> None:
    assert f"`{path.rsplit('.', 1)[-1]}`" in DOC


@pytest.mark.parametrize("model", campaign_models(), ids=lambda m: m.__name__)
def test_every_campaign_key_is_documented(model: type[BaseModel]) -> None:
    missing = [name for name in field_names((model,)) if f"`{name}`" not in DOC]
    assert missing == []


def test_every_advice_code_is_documented() -> None:
    sources = Path(advice.__file__).read_text() + Path(check.__file__).read_text()
    codes = set(re.findall(r'"([A-Z][A-Z0-9]+(?:_[A-Z0-9]+)+)"', sources))
    assert len(codes) >= 25
    assert sorted(c for c in codes if f"`{c}`" not in DOC) == []
