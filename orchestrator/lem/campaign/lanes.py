"""Splitting a campaign's plan into lanes: one Slurm job (one node) runs each lane (pure).

A lane is a subsequence of the plan, kept in plan order, so that within one node the runs follow
the campaign's structure (interleaved, shuffled or grouped) exactly as on one host. Units go to
the lane with the least estimated work so far (ties: the lowest lane), largest units first:

- ``pin_configs: false`` — a unit is one run;
- ``pin_configs: true`` — a unit is every cycle of one configuration, so cross-cycle statistics
  never mix nodes or GPUs.

The gaps are worked out again inside each lane, with the plan's own rules (``lem.campaign.plan``):
the first run of a lane has none; after that ``cycle_gap_seconds`` where the cycle changes
(grouped: where the configuration repeats), ``config_gap_seconds`` otherwise. A run keeps its
id, cycle and position in the whole plan, so lanes' manifests merge into one.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

from lem.campaign.plan import GapKind, PlannedRun
from lem.config.campaign import ExecutionConfig


@dataclass(frozen=True)
class Lane:
    index: int
    runs: tuple[PlannedRun, ...]

    @property
    def name(self) -> str:
        return f"lane-{self.index:02d}"

    @property
    def run_ids(self) -> tuple[str, ...]:
        return tuple(r.run_id for r in self.runs)


def run_estimate_s(execution: ExecutionConfig, expected_run_s: float | None) -> float:
    """Expected length of one run: ``slurm.expected_run_seconds``, else its timeout (an upper bound)."""
    return expected_run_s if expected_run_s is not None else execution.timeout_seconds


def split_lanes(
    runs: Sequence[PlannedRun],
    execution: ExecutionConfig,
    max_lanes: int,
    *,
    pin_configs: bool,
    run_s: float,
) -> list[Lane]:
    """The plan cut into at most ``max_lanes`` non-empty lanes, each in plan order, gaps redone."""
    units = _units(runs, pin_configs)
    n = max(1, min(max_lanes, len(units)))
    loads = [0.0] * n
    members: list[list[PlannedRun]] = [[] for _ in range(n)]
    for unit in sorted(units, key=lambda u: -len(u)):  # stable: equal units keep plan order
        lane = min(range(n), key=lambda i: (loads[i], i))
        members[lane].extend(unit)
        loads[lane] += len(unit) * run_s
    lanes = [sorted(m, key=lambda r: r.position) for m in members if m]
    return [Lane(i, regap(lane, execution)) for i, lane in enumerate(lanes)]


def regap(runs: Sequence[PlannedRun], execution: ExecutionConfig) -> tuple[PlannedRun, ...]:
    """``runs`` (in order) with the gap before each worked out as if they were the whole plan."""
    gaps = {"none": 0.0, "config": execution.config_gap_seconds, "cycle": execution.cycle_gap_seconds}
    out: list[PlannedRun] = []
    for run in runs:
        kind = _gap_kind(out[-1] if out else None, run, execution.structure)
        out.append(dataclasses.replace(run, gap_before_s=gaps[kind], gap_kind=kind))
    return tuple(out)


def lane_estimate_s(lane: Lane, run_s: float) -> float:
    """Expected wall time of a lane: its runs plus the gaps between them."""
    return sum(run_s + r.gap_before_s for r in lane.runs)


def lane_time_limit_minutes(
    lane: Lane, execution: ExecutionConfig, per_run_min: int | None, setup_min: int
) -> int:
    """The job's ``--time``: per run its limit (given, else timeout + the gap before it), plus setup."""
    if per_run_min is not None:
        return per_run_min * len(lane.runs) + setup_min
    total_s = sum(execution.timeout_seconds + r.gap_before_s for r in lane.runs)
    return math.ceil(total_s / 60) + setup_min


def campaign_estimate_s(lanes: Sequence[Lane], run_s: float, nodes: int) -> float:
    """Expected wall time with ``nodes`` nodes: lanes queued longest first onto the free node."""
    free = [0.0] * max(1, nodes)
    for est in sorted((lane_estimate_s(lane, run_s) for lane in lanes), reverse=True):
        i = min(range(len(free)), key=lambda k: (free[k], k))
        free[i] += est
    return max(free)


def _units(runs: Sequence[PlannedRun], pin_configs: bool) -> list[list[PlannedRun]]:
    if not pin_configs:
        return [[r] for r in runs]
    by_config: dict[str, list[PlannedRun]] = {}
    for run in runs:
        by_config.setdefault(run.config_id, []).append(run)
    return list(by_config.values())


def _gap_kind(previous: PlannedRun | None, run: PlannedRun, structure: str) -> GapKind:
    if previous is None:
        return "none"
    if structure == "grouped":
        return "cycle" if previous.config_id == run.config_id else "config"
    return "cycle" if run.cycle != previous.cycle else "config"
