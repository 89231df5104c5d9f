"""``lem config migrate``: older spellings rewritten in place of the old, comments and order kept."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from lem.campaign.check import check_file
from lem.cli import main

OLD = """\
# An LLenergyMeasure config written before schema 3.0.0
name: old-style   # the label
model: Qwen/Qwen2.5-0.5B
seed: 7
gpu_list: [0, 1]
backend: vllm
batching_options:
  batch_size: 16
dataset:
  source: jsonl
  path: prompts.jsonl   # local prompts
warmup:
  convergence_detection: false
  cv_threshold: 0.1
baseline:
  duration_sec: 45
  cache_ttl_sec: 600
timeseries:
  sample_interval_ms: 200
"""

MIGRATED = """\
# An LLenergyMeasure config written before schema 3.0.0
schema_version: '3.0.0'
config_name: old-style # the label
model_name: Qwen/Qwen2.5-0.5B
random_seed: 7
gpus: [0, 1]
backend: vllm
prompts:
  type: file
  path: prompts.jsonl   # local prompts
warmup:
  mode: fixed
  target_cv: 0.1
baseline:
  duration_seconds: 45
  cache_ttl_seconds: 600
timeseries:
  sample_rate_hz: 5.0
vllm:
  max_num_seqs: 16
"""


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["config", "migrate", *args])
    return result.exit_code, result.stdout, result.stderr


def test_without_write_prints_a_diff_and_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "old.yaml"
    path.write_text(OLD)
    code, out, _ = run(str(path))
    assert code == 0 and path.read_text() == OLD
    assert out.startswith(f"--- {path} (before)\n+++ {path} (schema 3.0.0)\n")
    assert "-name: old-style   # the label\n" in out and "+config_name: old-style # the label\n" in out


def test_write_rewrites_the_file_which_then_validates_strictly(tmp_path: Path) -> None:
    path = tmp_path / "old.yaml"
    path.write_text(OLD)
    (tmp_path / "prompts.jsonl").write_text('{"prompt": "hi"}\n')  # validate checks local files as run does
    code, _, err = run("--write", str(path))
    assert (code, path.read_text()) == (0, MIGRATED)
    assert "migrated (11 key(s) rewritten)" in err
    report = check_file(path)
    assert report.passes(strict=True), report
    assert report.warnings == ()
    assert run(str(path))[::2] == (0, f"{path}: already schema 3.0.0; nothing to change\n")


def test_keys_it_cannot_map_are_named_and_nothing_is_written(tmp_path: Path) -> None:
    path = tmp_path / "odd.yaml"
    text = "model: m\nquery_rate: 2.0\nwarmup: {convergence_detection: sometimes}\n"
    path.write_text(text)
    code, out, err = run("--write", str(path))
    assert (code, out, path.read_text()) == (1, "", text)
    assert (
        f"{path}:3: warmup.convergence_detection: cannot be mapped: convergence_detection must be true" in err
    )
    path.write_text("model: m\nquery_rate: 2.0\n")
    code, _, err = run(str(path))
    assert code == 1
    assert f"{path}:2: query_rate: cannot be mapped: unknown key 'query_rate'" in err


def test_campaigns_and_the_plans_examples(tmp_path: Path) -> None:
    campaign = tmp_path / "c.yaml"
    campaign.write_text(
        "campaign_name: c\nmodel: m\nbase:\n  seed: 3\ngrid:\n  backends: [pytorch]\n"
        "  shared: {seed: [1, 2]}\ngroup_by: [seed]\n"
    )
    assert run("--write", str(campaign))[0] == 0
    assert campaign.read_text() == (
        "schema_version: '3.0.0'\ncampaign_name: c\nmodel: m\nbase:\n  random_seed: 3\ngrid:\n"
        "  backends: [pytorch]\n  axes: {random_seed: [1, 2]}\ngroup_by: [random_seed]\n"
    )
    plan = Path(__file__).resolve().parents[2] / "data" / "plan_examples" / "pytorch_example.yaml"
    assert run(str(plan))[::2] == (0, f"{plan}: already schema 3.0.0; nothing to change\n")
