"""Older spellings load with a DEPRECATED_KEY warning; older layouts point to ``lem config migrate``."""

from __future__ import annotations

from pathlib import Path

import pytest

from lem.campaign.check import check_file
from lem.config.errors import ConfigError
from lem.config.loader import experiment_from_document, load_experiment, modernize
from lem.config.yaml_source import parse_yaml

OLD_EXPERIMENT = """\
schema_version: '3.0.0'
name: old-style
model: Qwen/Qwen2.5-0.5B
seed: 7
dataset:
  source: jsonl
  path: prompts.jsonl
  sample_size: 12
warmup:
  convergence_detection: false
  cv_threshold: 0.1
baseline:
  duration_sec: 40
  cache_ttl_sec: 600
  sample_interval_ms: 100
"""


def deprecated(text: str) -> dict[str, str]:
    document = modernize(parse_yaml(text, "x.yaml"))
    return {w.param: w.message for w in document.notices if w.code == "DEPRECATED_KEY"}


def test_older_spellings_read_as_todays_keys(tmp_path: Path) -> None:
    (tmp_path / "old.yaml").write_text(OLD_EXPERIMENT)
    cfg = load_experiment(tmp_path / "old.yaml")
    assert (cfg.config_name, cfg.model_name, cfg.random_seed) == ("old-style", "Qwen/Qwen2.5-0.5B", 7)
    assert cfg.prompts is not None and cfg.prompts.type == "file"
    assert cfg.prompts.path == str(tmp_path / "prompts.jsonl") and cfg.prompt_count == 12
    assert (cfg.warmup.mode, cfg.warmup.target_cv) == ("fixed", 0.1)
    assert (cfg.baseline.duration_seconds, cfg.baseline.cache_ttl_seconds) == (40, 600)
    assert cfg.timeseries.sample_rate_hz == 10.0  # 1000 / 100 ms


def test_each_older_key_is_named_with_its_line_and_the_migrate_command() -> None:
    notes = deprecated(OLD_EXPERIMENT)
    assert sorted(notes) == [
        "baseline.cache_ttl_sec",
        "baseline.duration_sec",
        "baseline.sample_interval_ms",
        "dataset",
        "model",
        "name",
        "seed",
        "warmup.convergence_detection",
        "warmup.cv_threshold",
    ]
    assert notes["model"].startswith("'model' is an older spelling of 'model_name' (line 3)")
    assert "`lem config migrate x.yaml --write` updates the file" in notes["model"]
    assert "(true -> convergence, false -> fixed) (line 10)" in notes["warmup.convergence_detection"]
    assert "dataset: {source: jsonl} -> prompts: {type: file}" in notes["dataset"]


def test_older_keys_fail_strict_validation_but_not_plain(tmp_path: Path) -> None:
    (tmp_path / "old.yaml").write_text(OLD_EXPERIMENT)
    (tmp_path / "prompts.jsonl").write_text('{"prompt": "hi"}\n')  # validate checks local files as run does
    report = check_file(tmp_path / "old.yaml")
    assert report.passes(strict=False) and not report.passes(strict=True)
    assert {w.code for w in report.warnings} >= {"DEPRECATED_KEY"}


def test_errors_in_renamed_keys_keep_their_line() -> None:
    text = "model_name: m\nseed: -1\ntensorrt:\n  paged_kv_cache: maybe\n"
    with pytest.raises(ConfigError) as info:
        experiment_from_document(modernize(parse_yaml(text, "x.yaml")))
    assert [str(p) for p in info.value.problems] == [
        "x.yaml:4: tensorrt.paged_kv_cache: older key that cannot be carried over: "
        "paged_kv_cache must be true or false, not 'maybe'"
    ]
    with pytest.raises(ConfigError) as info:
        experiment_from_document(modernize(parse_yaml("model_name: m\nseed: -1\n", "x.yaml")))
    assert [str(p) for p in info.value.problems] == ["x.yaml:2: random_seed: must be >= 0 (got -1)"]


def test_tensorrt_and_hub_dataset_spellings() -> None:
    text = (
        "model: m\nbackend: tensorrt\ndataset: {source: ai_energy_score, name: org/prompts, column: q}\n"
        "tensorrt:\n  paged_kv_cache: false\n  enable_block_reuse: false\n"
    )
    document = modernize(parse_yaml(text, "x.yaml"))
    cfg = experiment_from_document(document)
    assert cfg.tensorrt is not None
    assert (cfg.tensorrt.kv_cache_type, cfg.tensorrt.enable_kv_cache_reuse) == ("continuous", False)
    assert cfg.dataset is not None and (cfg.dataset.name, cfg.dataset.resolved_column) == ("org/prompts", "q")


def test_both_spellings_at_once_is_an_error_naming_the_one_to_keep() -> None:
    with pytest.raises(ConfigError, match="both 'model' and 'model_name' are given; keep 'model_name'"):
        modernize(parse_yaml("model: a\nmodel_name: b\n", "x.yaml"))


def test_baseline_interval_that_disagrees_with_the_timeline_is_an_error() -> None:
    text = "model_name: m\nbaseline: {sample_interval_ms: 100}\ntimeseries: {sample_rate_hz: 5}\n"
    with pytest.raises(ConfigError, match=r"x.yaml:2: baseline.sample_interval_ms: .* asks for 10 Hz"):
        modernize(parse_yaml(text, "x.yaml"))
    same = "model_name: m\nbaseline: {sample_interval_ms: 200}\ntimeseries: {sample_rate_hz: 5}\n"
    assert experiment_from_document(modernize(parse_yaml(same, "x.yaml"))).timeseries.sample_rate_hz == 5


@pytest.mark.parametrize("key", ["gpu_list: [0, 1]", "batching_options: {batch_size: 4}"])
def test_older_layouts_point_to_migrate(key: str) -> None:
    with pytest.raises(ConfigError) as info:
        modernize(parse_yaml(f"model_name: m\n{key}\n", "x.yaml"))
    (problem,) = info.value.problems
    assert problem.line == 2 and "older LLenergyMeasure layout" in problem.message
    assert "run `lem config migrate x.yaml`" in problem.message


def test_campaign_keys_that_name_experiment_settings_are_upgraded() -> None:
    text = (
        "campaign_name: c\nmodel: m\n"
        "dataset: {source: synthetic, input_len: 8}\n"
        "base:\n  seed: 3\n  warmup: {cv_threshold: 0.2}\n"
        "grid:\n  backends: [pytorch]\n  shared: {seed: [1, 2]}\n"
        "group_by: [seed]\n"
    )
    document = modernize(parse_yaml(text, "c.yaml"))
    data = document.data
    assert data["prompts"] == {"type": "synthetic", "input_len": 8} and "dataset" not in data
    assert data["base"] == {"random_seed": 3, "warmup": {"target_cv": 0.2}}
    assert data["grid"]["axes"] == {"random_seed": [1, 2]} and data["group_by"] == ["random_seed"]
    assert document.line_of(("grid", "axes", "random_seed")) == 9
    assert len([w for w in document.notices if w.code == "DEPRECATED_KEY"]) == 6
