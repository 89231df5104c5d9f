"""docs/configuration.md documents every key of both schemas and every advice code."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import BaseModel

from lem.campaign import check
from lem.config import advice
from lem.config.campaign import CampaignConfig
from lem.config.fields import field_models, models_in
from lem_harness.experiment import ExperimentConfig

REPO = Path(__file__).resolve().parents[3]
DOC = (REPO / "docs" / "configuration.md").read_text()


def sections(part: str) -> dict[str, str]:
    """``### title`` -> its text (deeper headings included) inside the ``## part`` of the doc."""
    body = DOC.split(f"\n## {part}\n", 1)[1].split("\n## ", 1)[0]
    out: dict[str, str] = {}
    for chunk in re.split(r"\n(?=### )", body)[1:]:
        title, _, text = chunk.partition("\n")
        out[title.removeprefix("### ").strip()] = text
    return out


def leaf_paths(model: type[BaseModel], prefix: str, stop: tuple[type[BaseModel], ...] = ()) -> list[str]:
    """Every field of ``model`` and of the models it holds, as dotted paths (``stop``: not entered)."""
    out: list[str] = []
    for name, info in model.model_fields.items():
        path = f"{prefix}{name}"
        out.append(path)
        for sub in models_in(info.annotation):
            if sub not in stop:
                out.extend(p for p in leaf_paths(sub, f"{path}.", stop) if p not in out)
    return out


def section_of(path: str, found: dict[str, str]) -> str:
    """The text documenting ``path``: the deepest ``### a.b`` heading its parent path starts with,
    else the ``Top level`` table."""
    parts = path.split(".")[:-1]
    while parts:
        title = ".".join(parts)
        if title in found:
            return found[title]
        parts.pop()
    return found["Top level"]


EXPERIMENT_SECTIONS = sections("Experiment file")
CAMPAIGN_SECTIONS = sections("Campaign file")
# The experiment's own models inside a campaign (dataset, prompts) are documented once, there.
EXPERIMENT_MODELS = tuple(
    m for name in ExperimentConfig.model_fields for m in field_models(ExperimentConfig, name)
)


def documented(path: str, text: str) -> bool:
    """``path``'s key in backticks in ``text``: its own name or any dotted tail of its path
    (``enabled``, ``beam_search.enabled``, ``pytorch.beam_search.enabled``)."""
    parts = path.split(".")
    return any(f"`{'.'.join(parts[i:])}`" in text for i in range(len(parts)))


@pytest.mark.parametrize("path", leaf_paths(ExperimentConfig, ""))
def test_every_experiment_field_is_documented_in_its_section(path: str) -> None:
    assert documented(path, section_of(path, EXPERIMENT_SECTIONS))


@pytest.mark.parametrize("path", leaf_paths(CampaignConfig, "", stop=EXPERIMENT_MODELS))
def test_every_campaign_field_is_documented_in_its_section(path: str) -> None:
    assert documented(path, section_of(path, CAMPAIGN_SECTIONS))


def test_the_walk_reaches_nested_and_union_fields() -> None:
    experiment = leaf_paths(ExperimentConfig, "")
    for path in ("prompts.input_len_std", "prompts.dataset", "dataset.shuffle", "warmup.target_cv"):
        assert path in experiment
    assert "execution.thermal" in {p.rsplit(".", 1)[0] for p in leaf_paths(CampaignConfig, "")}
    assert section_of("dataset.subset", EXPERIMENT_SECTIONS) is EXPERIMENT_SECTIONS["dataset"]
    assert section_of("save_outputs", EXPERIMENT_SECTIONS) is EXPERIMENT_SECTIONS["Top level"]
    assert documented("a.b.c", "`b.c`") and documented("a.b.c", "`c`") and not documented("a.b.c", "`a.b`")


def test_every_advice_code_is_documented() -> None:
    sources = Path(advice.__file__).read_text() + Path(check.__file__).read_text()
    codes = set(re.findall(r'"([A-Z][A-Z0-9]+(?:_[A-Z0-9]+)+)"', sources))
    assert len(codes) >= 25
    assert sorted(c for c in codes if f"`{c}`" not in DOC) == []
