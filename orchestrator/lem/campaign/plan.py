"""Run order and gaps of a campaign (pure).

Structures, for configurations A, B, C and 2 cycles:

- ``interleaved``: A B C | A B C — every cycle runs every configuration once, in file order.
- ``shuffled``: like interleaved, but each cycle is a permutation seeded by
  ``execution.seed`` and the cycle number (same seed, same plan).
- ``grouped``: A A | B B | C C — each configuration's cycles back to back.

Gaps (the configured wait before a run; in ``thermal`` gap mode it is the cap):

- the first run: none;
- interleaved / shuffled: ``cycle_gap_seconds`` before the first run of a new cycle,
  ``config_gap_seconds`` before every other run;
- grouped: ``cycle_gap_seconds`` between two cycles of the same configuration (each
  repeat starts a new cycle of it), ``config_gap_seconds`` when the configuration changes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal

from lem.campaign.expand import ExpandedConfig, Expansion
from lem.config.campaign import CampaignConfig

GapKind = Literal["none", "config", "cycle"]


@dataclass(frozen=True)
class PlannedRun:
    run_id: str  # f"{name}-c{cycle:02d}"
    cycle: int
    position: int  # 1-based index in the whole schedule
    config_id: str
    name: str
    backend: str
    axis_values: dict[str, object]
    gap_before_s: float
    gap_kind: GapKind


def plan_campaign(campaign: CampaignConfig, expansion: Expansion) -> list[PlannedRun]:
    """The ordered schedule of every (configuration, cycle) with the gap before each run."""
    execution = campaign.execution
    order = _order(list(expansion.configs), execution.cycles, execution.structure, execution.seed)
    gaps = {"none": 0.0, "config": execution.config_gap_seconds, "cycle": execution.cycle_gap_seconds}
    runs: list[PlannedRun] = []
    previous: tuple[int, ExpandedConfig] | None = None
    for position, (cycle, config) in enumerate(order, start=1):
        kind = _gap_kind(previous, cycle, config, execution.structure)
        runs.append(_run(position, cycle, config, gaps[kind], kind))
        previous = (cycle, config)
    return runs


def total_gap_s(runs: list[PlannedRun]) -> float:
    """Time the schedule spends in configured gaps (the sum of ``gap_before_s``)."""
    return sum(run.gap_before_s for run in runs)


def _order(
    configs: list[ExpandedConfig], cycles: int, structure: str, seed: int
) -> list[tuple[int, ExpandedConfig]]:
    if structure == "grouped":
        return [(cycle, config) for config in configs for cycle in range(1, cycles + 1)]
    if structure == "shuffled":
        return [
            (cycle, config) for cycle in range(1, cycles + 1) for config in shuffled(configs, seed, cycle)
        ]
    return [(cycle, config) for cycle in range(1, cycles + 1) for config in configs]


def shuffled(configs: list[ExpandedConfig], seed: int, cycle: int) -> list[ExpandedConfig]:
    """A permutation fixed by (seed, cycle): sort by SHA-256 of seed, cycle and config id.

    Independent of Python's ``random`` implementation, so a plan is the same on every
    machine and version.
    """

    def key(config: ExpandedConfig) -> str:
        return hashlib.sha256(f"{seed}:{cycle}:{config.config_id}".encode()).hexdigest()

    return sorted(configs, key=key)


def _gap_kind(
    previous: tuple[int, ExpandedConfig] | None, cycle: int, config: ExpandedConfig, structure: str
) -> GapKind:
    if previous is None:
        return "none"
    prev_cycle, prev_config = previous
    if structure == "grouped":
        return "cycle" if prev_config.config_id == config.config_id else "config"
    return "cycle" if cycle != prev_cycle else "config"


def _run(position: int, cycle: int, config: ExpandedConfig, gap: float, kind: GapKind) -> PlannedRun:
    return PlannedRun(
        run_id=f"{config.name}-c{cycle:02d}",
        cycle=cycle,
        position=position,
        config_id=config.config_id,
        name=config.name,
        backend=config.backend,
        axis_values=config.axis_values,
        gap_before_s=gap,
        gap_kind=kind,
    )
