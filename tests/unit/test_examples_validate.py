"""Every YAML file under configs/ validates (campaigns are expanded too), with no schema warning."""

from __future__ import annotations

from pathlib import Path

import pytest

from lem.campaign.check import check_file

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
FILES = sorted(p for p in CONFIGS.rglob("*") if p.suffix in (".yaml", ".yml"))


def test_the_four_examples_exist() -> None:
    names = {p.name for p in FILES if p.parent == CONFIGS / "examples"}
    assert {
        "pytorch_example.yaml",
        "vllm_example.yaml",
        "tensorrt_example.yaml",
        "campaign_example.yaml",
    } <= names


@pytest.mark.parametrize("path", FILES, ids=[str(p.relative_to(CONFIGS)) for p in FILES])
def test_config_file_validates(path: Path) -> None:
    report = check_file(path)
    assert report.problems == (), "\n".join(str(p) for p in report.problems)
    assert report.passes(), [str(w) for w in report.warnings]
    assert not [w for w in report.warnings if w.code.startswith("SCHEMA_VERSION")]


def test_examples_are_free_of_any_warning() -> None:
    for path in sorted((CONFIGS / "examples").glob("*_example.yaml")):
        assert check_file(path).warnings == (), path
