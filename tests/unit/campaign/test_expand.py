"""Grid expansion: real products, per-backend paths, duplicates, explicit experiments, located errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from lem.campaign.expand import MAX_CONFIGS, Expansion, expand_campaign
from lem.config import CampaignConfig, ConfigError, load_campaign
from lem.config.loader import campaign_from_document
from lem.config.yaml_source import parse_yaml
from lem_harness.contract import config_hash

EXAMPLES = Path(__file__).resolve().parents[3] / "configs" / "examples"


def campaign_from(data: dict[str, Any], tmp_path: Path, name: str = "c.yaml") -> CampaignConfig:
    """Write ``data`` as a campaign file (so errors have lines) and load it."""
    path = tmp_path / name
    path.write_text(yaml.safe_dump({"campaign_name": "c", "model": "m", **data}, sort_keys=False))
    return load_campaign(path)


def expand(data: dict[str, Any], tmp_path: Path) -> Expansion:
    return expand_campaign(campaign_from(data, tmp_path), tmp_path)


def problems(data: dict[str, Any], tmp_path: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        expand(data, tmp_path)
    return [str(p) for p in info.value.problems]


@pytest.fixture
def example() -> Expansion:
    return expand_campaign(load_campaign(EXAMPLES / "campaign_example.yaml"), EXAMPLES)


def test_example_expands_to_2_x_3_x_2_configurations(example: Expansion) -> None:
    assert [c.name for c in example.configs] == [
        f"{b}-bs{bs}-{p}" for b in ("pytorch", "vllm") for bs in (1, 4, 8) for p in ("float16", "bfloat16")
    ]
    assert example.duplicates == ()
    first = example.configs[0]
    assert (first.backend, first.axis_values) == ("pytorch", {"batch_size": 1, "fp_precision": "float16"})


def test_batch_size_alias_sets_each_backend_limit(example: Expansion) -> None:
    by_name = {c.name: c.config for c in example.configs}
    pytorch, vllm = by_name["pytorch-bs4-bfloat16"], by_name["vllm-bs4-bfloat16"]
    assert pytorch.pytorch is not None and vllm.vllm is not None
    assert (pytorch.pytorch.batch_size, pytorch.fp_precision, pytorch.vllm) == (4, "bfloat16", None)
    assert (vllm.vllm.max_num_seqs, vllm.fp_precision, vllm.pytorch) == (4, "bfloat16", None)


def test_campaign_workload_and_warmup_reach_every_configuration(example: Expansion) -> None:
    for expanded in example.configs:
        cfg = expanded.config
        assert cfg.dataset is not None
        assert (cfg.model_name, cfg.dataset.name, cfg.num_input_prompts, cfg.prompt_count) == (
            "Qwen/Qwen2.5-0.5B",
            "ai_energy_score",
            100,
            100,
        )
        assert (cfg.warmup.mode, cfg.warmup.max_prompts, cfg.warmup.min_prompts) == ("convergence", 5, 5)
        assert cfg.warmup.timeout_seconds == 30
        assert (cfg.schema_version, cfg.config_name) == ("3.0.0", expanded.name)
        assert expanded.config_id == config_hash(cfg)


def test_expansion_is_deterministic(example: Expansion) -> None:
    again = expand_campaign(load_campaign(EXAMPLES / "campaign_example.yaml"), EXAMPLES)
    assert [(c.config_id, c.name) for c in again.configs] == [(c.config_id, c.name) for c in example.configs]
    assert len({c.config_id for c in example.configs}) == 12


def test_backend_path_axis_expands_only_its_backend(tmp_path: Path) -> None:
    grid = {"backends": ["pytorch", "vllm"], "axes": {"vllm.enable_prefix_caching": [True, False]}}
    names = [c.name for c in expand({"grid": grid}, tmp_path).configs]
    assert names == ["pytorch", "vllm-enable_prefix_caching-true", "vllm-enable_prefix_caching-false"]


def test_identical_configurations_are_reported_and_kept_once(tmp_path: Path) -> None:
    grid = {"backends": ["pytorch"], "axes": {"max_output_tokens": [64, 128, 64]}}
    expansion = expand({"grid": grid}, tmp_path)
    assert [c.name for c in expansion.configs] == ["pytorch-out64", "pytorch-out128"]
    (dup,) = expansion.duplicates
    assert (dup.name, dup.same_as, dup.axis_values) == (
        "pytorch-out64-2",
        "pytorch-out64",
        {"max_output_tokens": 64},
    )


def test_warmup_prompts_lower_min_prompts_only_when_needed(tmp_path: Path) -> None:
    base = {"warmup": {"mode": "fixed", "min_prompts": 2, "max_prompts": 50}}
    data = {"base": base, "grid": {"backends": ["pytorch"]}, "execution": {"warmup_prompts": 10}}
    (only,) = expand(data, tmp_path).configs
    assert (only.config.warmup.mode, only.config.warmup.min_prompts, only.config.warmup.max_prompts) == (
        "fixed", 2, 10,
    )  # fmt: skip
    data["execution"] = {"warmup_prompts": 1, "warmup_timeout_seconds": 12.5}
    (only,) = expand(data, tmp_path).configs
    assert (only.config.warmup.min_prompts, only.config.warmup.max_prompts) == (1, 1)
    assert only.config.warmup.timeout_seconds == 12.5


def test_num_samples_sets_the_prompt_count(tmp_path: Path) -> None:
    data = {"prompts": {"type": "synthetic"}, "num_samples": 7, "grid": {"backends": ["pytorch"]}}
    (only,) = expand(data, tmp_path).configs
    assert only.config.prompts is not None and only.config.prompts.type == "synthetic"
    assert (only.config.num_input_prompts, only.config.prompt_count) == (7, 7)


def test_invalid_combination_is_reported_with_its_axis_values_and_line(tmp_path: Path) -> None:
    grid = {"backends": ["pytorch", "tensorrt"], "axes": {"fp_precision": ["float16", "float32"]}}
    assert problems({"grid": grid}, tmp_path) == [
        f"{tmp_path / 'c.yaml'}:8: fp_precision: fp_precision float32 is not supported by TensorRT-LLM: use "
        "float16 or bfloat16 [in configuration tensorrt-float32 (fp_precision=float32)]"
    ]


def test_a_base_error_shared_by_all_configurations_is_reported_once(tmp_path: Path) -> None:
    data = {
        "base": {"max_output_tokens": 0},
        "grid": {"backends": ["pytorch"], "axes": {"random_seed": [1, 2]}},
    }
    assert problems(data, tmp_path) == [
        f"{tmp_path / 'c.yaml'}:4: max_output_tokens: must be >= 1 (got 0) [in all 2 configurations]"
    ]


def test_grid_size_is_capped(tmp_path: Path) -> None:
    axes = {"random_seed": list(range(1000)), "max_output_tokens": list(range(1, 102))}
    (problem,) = problems({"grid": {"backends": ["pytorch"], "axes": axes}}, tmp_path)
    assert f"expands to 101,000 configurations; at most {MAX_CONFIGS:,}" in problem


def write(path: Path, data: dict[str, Any]) -> None:
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def test_explicit_experiments_lay_file_campaign_and_overrides_in_order(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "exp").mkdir()
    experiment = {
        "config_name": "my exp",
        "model_name": "file-model",
        "backend": "vllm",
        "random_seed": 3,
        "vllm": {"max_num_seqs": 16},
    }
    write(tmp_path / "exp" / "e.yaml", experiment)
    data = {
        "base": {
            "random_seed": 1,
            "max_output_tokens": 32,
            "vllm": {"block_size": 32},
            "pytorch": {"batch_size": 2},
        },
        "experiments": [
            {"file": "exp/e.yaml", "overrides": {"vllm.max_num_seqs": 8}},
            {"file": "exp/e.yaml"},
        ],
    }
    expansion = expand(data, tmp_path)
    first, second = expansion.configs
    assert (first.name, second.name) == ("my_exp-seqs8", "my_exp")
    assert first.axis_values == {"experiment": "exp/e.yaml", "vllm.max_num_seqs": 8}
    cfg = first.config
    assert cfg.vllm is not None
    assert (cfg.model_name, cfg.random_seed, cfg.max_output_tokens) == (
        "m",
        3,
        32,
    )  # campaign model > file > base
    assert (cfg.vllm.max_num_seqs, cfg.vllm.block_size, cfg.pytorch) == (8, 32, None)
    assert second.config.vllm is not None and second.config.vllm.max_num_seqs == 16


def test_errors_from_an_experiment_file_name_that_file(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / "e.yaml").write_text("model_name: x\nbackend: pytorch\npytorch:\n  batch_size: 0\n")
    data = {"experiments": [{"file": "e.yaml"}, {"file": "e.yaml", "overrides": {"pytorch.batch_size": 2}}]}
    assert problems(data, tmp_path) == [
        f"{tmp_path / 'e.yaml'}:4: pytorch.batch_size: must be >= 1 (got 0) [in configuration e "
        "(experiment=e.yaml)]"
    ]


@pytest.mark.parametrize(
    ("file", "fragment"),
    [
        ("/etc/passwd", "give the experiment file relative to the campaign file"),
        ("../../outside.yaml", "leaves the project directory"),
        ("missing.yaml", "experiment file not found"),
        ("c.yaml", "is a campaign file; list experiment files only"),
    ],
)
def test_bad_experiment_files(tmp_path: Path, file: str, fragment: str) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / ".git").mkdir()
    (tmp_path / "outside.yaml").write_text("model_name: m\n")
    (problem,) = problems({"experiments": [{"file": file}]}, project)
    assert f"{project / 'c.yaml'}:4: experiments[0].file: " in problem
    assert fragment in problem


def test_campaign_built_in_code_expands_without_a_source_file(tmp_path: Path) -> None:
    campaign = CampaignConfig.model_validate(
        {"campaign_name": "c", "model": "m", "grid": {"backends": ["pytorch"], "axes": {"batch_size": [0]}}}
    )
    with pytest.raises(ConfigError) as info:
        expand_campaign(campaign, tmp_path)
    assert [str(p) for p in info.value.problems] == [
        "<campaign>: pytorch.batch_size: must be >= 1 (got 0) [in configuration pytorch-bs0 (batch_size=0)]"
    ]


def test_axis_lines_point_into_the_campaign_file(tmp_path: Path) -> None:
    text = (
        "campaign_name: c\nmodel: m\ngrid:\n  backends: [vllm]\n  axes:\n    vllm.max_model_len: [64, 4096]\n"
    )
    campaign = campaign_from_document(parse_yaml(text, "c.yaml"))
    with pytest.raises(ConfigError) as info:
        expand_campaign(campaign, tmp_path)
    assert [str(p) for p in info.value.problems] == [
        "c.yaml:6: vllm.max_model_len: vllm.max_model_len (64) must be >= max_input_tokens + "
        "max_output_tokens "
        "(640) [in configuration vllm-max_model_len-64 (vllm.max_model_len=64)]"
    ]
