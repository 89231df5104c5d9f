"""Campaign models: defaults, bounds and the checks of experiment keys inside a campaign."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from lem.config import (
    CampaignConfig,
    ConfigError,
    DaemonConfig,
    ExecutionConfig,
    ThermalGapConfig,
    load_campaign,
)
from lem.config.campaign import duration_seconds
from lem.config.loader import campaign_from_document
from lem.config.yaml_source import parse_yaml
from lem_harness.prompt_sources import DatasetConfig


def campaign_problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        campaign_from_document(parse_yaml(text, "c.yaml"))
    return [str(p) for p in info.value.problems]


EXAMPLES = Path(__file__).resolve().parents[3] / "configs" / "examples"
HEAD = "campaign_name: c\nmodel: m\ngrid:\n  backends: [pytorch, vllm]\n"


def test_execution_defaults_are_the_documented_ones() -> None:
    e = ExecutionConfig()
    assert (e.cycles, e.structure, e.seed, e.config_gap_seconds, e.cycle_gap_seconds) == (
        3,
        "interleaved",
        42,
        60,
        300,
    )
    assert (e.warmup_prompts, e.warmup_timeout_seconds, e.gap_mode, e.retries, e.timeout_seconds) == (
        None, None, "fixed", 0, 3600,
    )  # fmt: skip
    t = ThermalGapConfig()
    assert (t.temperature_tolerance_c, t.power_tolerance_w, t.min_gap_seconds, t.poll_interval_seconds) == (
        3.0, 15.0, 10.0, 2.0,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ({"cycles": 0}, "greater than or equal to 1"),
        ({"config_gap_seconds": -1}, "greater than or equal to 0"),
        ({"retries": 11}, "less than or equal to 10"),
        ({"structure": "random"}, "'interleaved', 'shuffled' or 'grouped'"),
        ({"gap_mode": "thermal", "config_gap_seconds": 5}, "min_gap_seconds (10) must be <="),
    ],
)
def test_execution_bounds(data: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ValidationError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        ExecutionConfig.model_validate(data)


def test_daemon_schedule() -> None:
    assert DaemonConfig(enabled=True, at="02:00").at == "02:00"
    assert duration_seconds("30m") == 1800.0
    assert duration_seconds("7d") == 604_800.0
    with pytest.raises(ValueError, match="not a duration"):
        duration_seconds("1w")
    with pytest.raises(ValidationError, match=r"needs daemon.at"):
        DaemonConfig(enabled=True)
    with pytest.raises(ValidationError):
        DaemonConfig(at="24:00")


def test_daemon_keys_of_a_scheduled_campaign() -> None:
    text = HEAD + (
        "group_by: [repetition, hour_of_day, backend]\n"
        "daemon: {enabled: true, at: '02:00', repetitions: 7, days: [mon, fri], on_overrun: skip}\n"
    )
    c = campaign_from_document(parse_yaml(text, "c.yaml"))
    d = c.daemon
    assert (d.at, d.interval_s, d.repetitions, d.days, d.on_overrun) == (
        "02:00",
        86_400.0,
        7,
        ("mon", "fri"),
        "skip",
    )
    assert d.weekdays == frozenset({0, 4})
    assert c.group_by == ("repetition", "hour_of_day", "backend")
    assert DaemonConfig(enabled=True, interval="30s", days="weekdays").days == (
        "mon",
        "tue",
        "wed",
        "thu",
        "fri",
    )
    problems = campaign_problems(HEAD + "daemon: {enabled: true, interval: 1h, repetitions: 0}\n")
    assert any("daemon.repetitions" in p for p in problems), problems


def test_campaign_needs_something_to_run_and_a_safe_name() -> None:
    with pytest.raises(ValidationError, match="needs a 'grid'"):
        CampaignConfig(campaign_name="c")
    with pytest.raises(ValidationError):
        CampaignConfig.model_validate({"campaign_name": "../evil", "grid": {"backends": ["pytorch"]}})


def test_campaign_example_keys() -> None:
    c = load_campaign(EXAMPLES / "campaign_example.yaml")
    assert c.campaign_name == "backend-comparison"
    assert c.grid is not None
    assert c.grid.backends == ("pytorch", "vllm")
    assert c.grid.axes == {"batch_size": [1, 4, 8], "fp_precision": ["float16", "bfloat16"]}
    e = c.execution
    assert (e.cycles, e.structure, e.warmup_prompts, e.warmup_timeout_seconds) == (3, "interleaved", 5, 30)
    assert (e.config_gap_seconds, e.cycle_gap_seconds) == (60, 300)
    assert (c.cold_start.force_cold_start, c.cold_start.drop_page_cache, c.daemon.enabled) == (
        False,
        False,
        False,
    )
    assert c.group_by == ()  # the plan's example names --group-by in a comment only
    assert (c.model, c.dataset, c.num_samples) == (
        "Qwen/Qwen2.5-0.5B",
        DatasetConfig(name="ai_energy_score"),
        100,
    )
    assert c.source is not None and c.source.line_of(("grid", "axes", "batch_size")) is not None


@pytest.mark.parametrize(
    ("tail", "expected"),
    [
        ("base:\n  backend: vllm\n", "c.yaml:6: base.backend: 'backend' cannot be set in base: "
            "list backends in "
         "grid.backends (or set backend in each experiment file)"),
        ("base:\n  model_name: other\n", "c.yaml:6: base.model_name: 'model_name' is set both in base and by "
         "'model' at the top of the campaign; keep one"),
        ("base:\n  pytorch:\n    batchsize: 2\n", "c.yaml:7: base.pytorch.batchsize: unknown key "
            "'batchsize'; "
         "did you mean 'batch_size'?"),
        ("base:\n  warmup: 5\n", "c.yaml:6: base.warmup: must be a mapping of keys (such as enabled, mode, "
         "min_prompts, max_prompts)"),
        ("base:\n  prompts:\n    type: file\n    colum: x\n", "c.yaml:8: base.prompts.colum: unknown key "
         "'colum'; valid keys here: type, path, field, sample_size"),
        ("group_by: [backend, batch_sise]\n", "c.yaml:5: group_by[1]: 'batch_sise' is not a "
         "configuration field to group by; did you mean 'batch_size'?"),
        ("experiments:\n  - file: e.yaml\n    overrides: {pytorch.batchsize: 2}\n",
         "c.yaml:7: experiments[0].overrides.pytorch.batchsize: unknown key 'pytorch.batchsize'; "
             "did you mean "
         "'pytorch.batch_size'?"),
        ("experiments:\n  - file: e.yaml\n    overrides: {backend: vllm}\n",
         "c.yaml:7: experiments[0].overrides.backend: 'backend' cannot be overridden; write "
             "another experiment file"),
    ],
)  # fmt: skip
def test_experiment_keys_inside_a_campaign_are_checked(tail: str, expected: str) -> None:
    assert campaign_problems(HEAD + tail) == [expected]


def test_axis_problems_name_the_valid_choices() -> None:
    text = HEAD + "  axes:\n    tensorrt.tp_size: [1, 2]\n    vlm.max_num_seqs: [8]\n    backend: [vllm]\n"
    found = campaign_problems(text)
    assert found[0].startswith(
        "c.yaml:6: grid.axes.tensorrt.tp_size: axis 'tensorrt.tp_size' sets a tensorrt setting "
        "but grid.backends "
        "lists only pytorch, vllm; add tensorrt to grid.backends or choose one of: batch_size, model_name, gpus"  # noqa: E501
    )
    assert found[1:] == [
        "c.yaml:7: grid.axes.vlm.max_num_seqs: unknown axis 'vlm.max_num_seqs'; did you mean "
        "'vllm.max_num_seqs'?",
        "c.yaml:8: grid.axes.backend: 'backend' cannot be an axis: list backends in grid.backends instead",
    ]
