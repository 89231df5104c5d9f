"""Cutting a plan into lanes: plan order kept, gaps redone per lane, pinned configurations, estimates."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lem.campaign.expand import expand_campaign
from lem.campaign.lanes import (
    campaign_estimate_s,
    lane_estimate_s,
    lane_time_limit_minutes,
    split_lanes,
)
from lem.campaign.plan import PlannedRun, plan_campaign
from lem.config.campaign import CampaignConfig, ExecutionConfig


def plan(n_configs: int, **execution: Any) -> tuple[list[PlannedRun], ExecutionConfig]:
    config = CampaignConfig.model_validate(
        {
            "campaign_name": "c",
            "model": "m",
            "grid": {"backends": ["pytorch"], "axes": {"random_seed": list(range(1, n_configs + 1))}},
            "execution": {"config_gap_seconds": 60, "cycle_gap_seconds": 300, **execution},
        }
    )
    return plan_campaign(config, expand_campaign(config, Path("."))), config.execution


def ids(runs: tuple[PlannedRun, ...]) -> list[str]:
    return [r.run_id.removeprefix("pytorch-seed") for r in runs]


def test_unpinned_runs_spread_round_robin_in_plan_order() -> None:
    runs, execution = plan(3, cycles=2)
    lanes = split_lanes(runs, execution, 2, pin_configs=False, run_s=300)
    assert [ids(lane.runs) for lane in lanes] == [["1-c01", "3-c01", "2-c02"], ["2-c01", "1-c02", "3-c02"]]
    # gaps redone inside each lane: none first, then the plan's rule (cycle change -> cycle gap)
    assert [[(r.gap_kind, r.gap_before_s) for r in lane.runs] for lane in lanes] == [
        [("none", 0.0), ("config", 60.0), ("cycle", 300.0)],
        [("none", 0.0), ("cycle", 300.0), ("config", 60.0)],
    ]
    assert [r.position for r in lanes[1].runs] == [2, 4, 6]  # ids and positions of the whole plan


def test_pinned_configurations_keep_every_cycle_in_one_lane() -> None:
    runs, execution = plan(3, cycles=3)
    lanes = split_lanes(runs, execution, 2, pin_configs=True, run_s=300)
    assert [ids(lane.runs) for lane in lanes] == [
        ["1-c01", "3-c01", "1-c02", "3-c02", "1-c03", "3-c03"],
        ["2-c01", "2-c02", "2-c03"],
    ]
    assert [lane.name for lane in lanes] == ["lane-00", "lane-01"]


def test_never_more_lanes_than_units() -> None:
    runs, execution = plan(2, cycles=2)
    assert len(split_lanes(runs, execution, 16, pin_configs=True, run_s=1)) == 2
    assert len(split_lanes(runs, execution, 16, pin_configs=False, run_s=1)) == 4


def test_grouped_structure_keeps_its_gaps_within_a_lane() -> None:
    runs, execution = plan(2, cycles=2, structure="grouped")
    (lane,) = split_lanes(runs, execution, 1, pin_configs=False, run_s=1)
    assert [(r.run_id, r.gap_kind) for r in lane.runs] == [(r.run_id, r.gap_kind) for r in runs]


def test_time_limit_and_estimates() -> None:
    runs, execution = plan(2, cycles=2, timeout_seconds=600)
    lanes = split_lanes(runs, execution, 2, pin_configs=True, run_s=300)
    # lane-00: seed-1 c01 (no gap), c02 (cycle gap 300): (600 + 0 + 600 + 300) s = 25 min, + 10 setup
    assert lane_time_limit_minutes(lanes[0], execution, None, 10) == 35
    assert lane_time_limit_minutes(lanes[0], execution, 7, 10) == 24
    assert lane_estimate_s(lanes[0], 300) == 300 + 300 + 300
    assert campaign_estimate_s(lanes, 300, nodes=2) == 900
    assert campaign_estimate_s(lanes, 300, nodes=1) == 1800
