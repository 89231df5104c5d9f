"""Warnings ``OVERRIDDEN``: a campaign setting that a later layer replaces names both keys."""

from __future__ import annotations

from pathlib import Path

from lem.campaign.expand import expand_campaign
from lem.config.loader import load_campaign
from lem.config.overrides import override_warnings


def warnings_of(tmp_path: Path, campaign: str, files: dict[str, str] | None = None) -> list[str]:
    (tmp_path / "pyproject.toml").write_text("")
    for name, text in (files or {}).items():
        (tmp_path / name).write_text(text)
    path = tmp_path / "c.yaml"
    path.write_text(campaign)
    loaded = load_campaign(path)
    expansion = expand_campaign(loaded, tmp_path)
    return [f"{w.param}: {w.message}" for w in override_warnings(loaded, expansion.entry_documents)]


def test_execution_warmup_overrides_base_and_axis_warmup(tmp_path: Path) -> None:
    campaign = (
        "campaign_name: c\nmodel: m\nbase:\n  warmup:\n    max_prompts: 20\n    min_prompts: 8\n"
        "    timeout_seconds: 60\ngrid:\n  backends: [pytorch]\n  axes:\n    warmup.max_prompts: [10, 30]\n"
        "execution:\n  warmup_prompts: 5\n  warmup_timeout_seconds: 30\n"
    )
    assert warnings_of(tmp_path, campaign) == [
        "base.warmup.max_prompts: base.warmup.max_prompts (20) has no effect: execution.warmup_prompts (5) "
        "overrides it; set it in one place",
        "grid.axes.warmup.max_prompts: grid.axes.warmup.max_prompts ([10, 30]) has no effect: "
        "execution.warmup_prompts (5) overrides it; set it in one place",
        "base.warmup.min_prompts: base.warmup.min_prompts (8) has no effect: execution.warmup_prompts (5) "
        "overrides it (a minimum above it is lowered to it); set it in one place",
        "base.warmup.timeout_seconds: base.warmup.timeout_seconds (60) has no effect: "
        "execution.warmup_timeout_seconds (30.0) overrides it; set it in one place",
        "base.warmup.max_prompts: base.warmup.max_prompts (20) has no effect: grid.axes.warmup.max_prompts "
        "([10, 30]) overrides it; set it in one place",
    ]


def test_a_minimum_below_the_campaign_count_is_kept_silently(tmp_path: Path) -> None:
    campaign = (
        "campaign_name: c\nmodel: m\nbase:\n  warmup:\n    min_prompts: 3\ngrid:\n  backends: [pytorch]\n"
        "execution:\n  warmup_prompts: 5\n"
    )
    assert warnings_of(tmp_path, campaign) == []


def test_campaign_workload_overrides_experiment_files(tmp_path: Path) -> None:
    campaign = (
        "campaign_name: c\nmodel: org/big\nnum_samples: 50\nexperiments:\n  - file: a.yaml\n"
        "  - file: b.yaml\n    overrides:\n      warmup.max_prompts: 12\nexecution:\n  warmup_prompts: 4\n"
    )
    files = {"a.yaml": "model_name: org/small\nnum_input_prompts: 10\n", "b.yaml": "model_name: org/big\n"}
    assert warnings_of(tmp_path, campaign, files) == [
        "experiments[1].overrides.warmup.max_prompts: experiments[1].overrides.warmup.max_prompts (12) "
        "has no effect: execution.warmup_prompts (4) overrides it; set it in one place",
        "model_name in a.yaml: model_name in a.yaml ('org/small') has no effect: the campaign's model "
        "('org/big') overrides it; set it in one place",
        "num_input_prompts in a.yaml: num_input_prompts in a.yaml (10) has no effect: num_samples (50) "
        "overrides it; set it in one place",
        "model_name in b.yaml: model_name in b.yaml ('org/big') has no effect: the campaign's model "
        "('org/big') overrides it; set it in one place",
    ]


def test_campaign_dataset_and_prompts_replace_a_file_section(tmp_path: Path) -> None:
    campaign = (
        "campaign_name: c\ndataset: ai_energy_score\nprompts:\n  type: synthetic\n"
        "experiments:\n  - file: a.yaml\n"
    )
    files = {
        "a.yaml": "model_name: m\ndataset:\n  name: org/other\nprompts:\n  type: synthetic\n  input_len: 8\n"
    }
    assert warnings_of(tmp_path, campaign, files) == [
        "dataset in a.yaml: dataset in a.yaml ({'name': 'org/other'}) has no effect: the campaign's dataset "
        "({'name': 'ai_energy_score'}) overrides it (it replaces the whole section); set it in one place",
        "prompts in a.yaml: prompts in a.yaml ({'type': 'synthetic', 'input_len': 8}) has no effect: the "
        "campaign's prompts ({'type': 'synthetic'}) overrides it (it replaces the whole section); set it in "
        "one place",
    ]


def test_base_keys_every_experiment_file_sets_again(tmp_path: Path) -> None:
    campaign = (
        "campaign_name: c\nbase:\n  max_output_tokens: 64\n  pytorch:\n    batch_size: 2\n"
        "experiments:\n  - file: a.yaml\n  - file: b.yaml\n"
    )
    files = {
        "a.yaml": "model_name: m\nmax_output_tokens: 32\npytorch:\n  batch_size: 4\n",
        "b.yaml": "model_name: m\nmax_output_tokens: 16\n",
    }
    assert warnings_of(tmp_path, campaign, files) == [
        "base.max_output_tokens: base.max_output_tokens (64) has no effect: max_output_tokens in a.yaml, "
        "b.yaml (32) overrides it; set it in one place",
    ]


def test_the_example_campaign_has_no_override(tmp_path: Path) -> None:
    example = Path(__file__).resolve().parents[3] / "configs" / "examples" / "campaign_example.yaml"
    loaded = load_campaign(example)
    assert override_warnings(loaded, expand_campaign(loaded, example.parent).entry_documents) == []
