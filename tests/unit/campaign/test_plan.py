"""Run order and gaps: interleaved, grouped and seeded shuffled schedules, exact to the run."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from lem.campaign.expand import Expansion, expand_campaign
from lem.campaign.plan import PlannedRun, plan_campaign, total_gap_s
from lem.config import CampaignConfig, load_campaign
from lem_harness.contract import RunSpec

EXAMPLES = Path(__file__).resolve().parents[3] / "configs" / "examples"
RUN_ID = re.compile(RunSpec.model_fields["run_id"].metadata[-1].pattern)


def campaign(n_configs: int, **execution: Any) -> tuple[CampaignConfig, Expansion]:
    config = CampaignConfig.model_validate(
        {
            "campaign_name": "c",
            "model": "m",
            "grid": {"backends": ["pytorch"], "axes": {"random_seed": list(range(1, n_configs + 1))}},
            "execution": {"config_gap_seconds": 60, "cycle_gap_seconds": 300, **execution},
        }
    )
    return config, expand_campaign(config, Path("."))


def order(runs: list[PlannedRun]) -> list[str]:
    return [r.run_id for r in runs]


def test_interleaved_runs_every_configuration_once_per_cycle() -> None:
    runs = plan_campaign(*campaign(3, cycles=2, structure="interleaved"))
    assert order(runs) == [
        "pytorch-seed1-c01", "pytorch-seed2-c01", "pytorch-seed3-c01",
        "pytorch-seed1-c02", "pytorch-seed2-c02", "pytorch-seed3-c02",
    ]  # fmt: skip
    assert [r.position for r in runs] == [1, 2, 3, 4, 5, 6]
    assert [r.cycle for r in runs] == [1, 1, 1, 2, 2, 2]
    assert [(r.gap_kind, r.gap_before_s) for r in runs] == [
        ("none", 0.0), ("config", 60), ("config", 60), ("cycle", 300), ("config", 60), ("config", 60),
    ]  # fmt: skip
    assert total_gap_s(runs) == 4 * 60 + 300


def test_grouped_runs_each_configuration_back_to_back() -> None:
    runs = plan_campaign(*campaign(2, cycles=3, structure="grouped"))
    assert order(runs) == [
        "pytorch-seed1-c01", "pytorch-seed1-c02", "pytorch-seed1-c03",
        "pytorch-seed2-c01", "pytorch-seed2-c02", "pytorch-seed2-c03",
    ]  # fmt: skip
    assert [r.gap_kind for r in runs] == ["none", "cycle", "cycle", "config", "cycle", "cycle"]
    assert total_gap_s(runs) == 4 * 300 + 60


def test_shuffled_is_a_seeded_permutation_per_cycle() -> None:
    cfg, expansion = campaign(12, cycles=3, structure="shuffled", seed=7)
    runs = plan_campaign(cfg, expansion)
    names = [c.name for c in expansion.configs]
    cycles = [[r.name for r in runs if r.cycle == k] for k in (1, 2, 3)]
    for cycle in cycles:
        assert sorted(cycle) == sorted(names)
    assert cycles[0] != names and cycles[0] != cycles[1] != cycles[2]
    assert plan_campaign(cfg, expansion) == runs  # same seed, same plan
    other_cfg, other_expansion = campaign(12, cycles=3, structure="shuffled", seed=8)
    assert order(plan_campaign(other_cfg, other_expansion)) != order(runs)
    assert [r.gap_kind for r in runs].count("cycle") == 2


def test_example_campaign_plan_totals() -> None:
    cfg = load_campaign(EXAMPLES / "campaign_example.yaml")
    runs = plan_campaign(cfg, expand_campaign(cfg, EXAMPLES))
    assert len(runs) == 36
    assert total_gap_s(runs) == 33 * 60 + 2 * 300
    assert all(RUN_ID.fullmatch(r.run_id) for r in runs)
    assert len({r.run_id for r in runs}) == 36
    assert runs[12].run_id == "pytorch-bs1-float16-c02"


def test_a_single_configuration_gets_cycle_gaps_only() -> None:
    runs = plan_campaign(*campaign(1, cycles=3))
    assert [(r.gap_kind, r.gap_before_s) for r in runs] == [("none", 0.0), ("cycle", 300), ("cycle", 300)]
