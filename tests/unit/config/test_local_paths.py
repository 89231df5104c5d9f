"""Local model and dataset paths are made absolute against the file that gave them."""

from __future__ import annotations

from pathlib import Path

from lem.config import load_experiment
from lem_harness.experiment import ExperimentConfig, with_absolute_paths
from lem_harness.schema_base import is_local_path


def test_hub_ids_are_not_paths() -> None:
    assert not is_local_path("Qwen/Qwen2.5-0.5B")
    assert is_local_path("./models/tiny")
    assert is_local_path("../m")
    assert is_local_path("/abs/m")


def test_relative_model_and_jsonl_resolved_against_directory(tmp_path: Path) -> None:
    cfg = ExperimentConfig.model_validate(
        {"model_name": "./models/tiny", "prompts": {"type": "file", "path": "prompts/p.jsonl"}}
    )
    out = with_absolute_paths(cfg, tmp_path)
    assert out.model_name == str(tmp_path / "models" / "tiny")
    assert out.prompts.path == str(tmp_path / "prompts" / "p.jsonl")  # type: ignore[union-attr]


def test_hub_model_left_alone(tmp_path: Path) -> None:
    cfg = ExperimentConfig.model_validate({"model_name": "Qwen/Qwen2.5-0.5B"})
    assert with_absolute_paths(cfg, tmp_path) is cfg


def test_load_experiment_resolves_against_the_file(tmp_path: Path) -> None:
    sub = tmp_path / "cfg"
    sub.mkdir()
    (sub / "e.yaml").write_text("schema_version: '3.0.0'\nmodel_name: ../models/tiny\n")
    assert load_experiment(sub / "e.yaml").model_name == str(tmp_path / "models" / "tiny")
