"""The files a Slurm campaign keeps in ``<campaign dir>/slurm/`` on the shared filesystem.

- ``lane-NN.json`` — a lane's plan (``LaneFile``): the campaign file, the results root, the
  campaign's id, the runtime a job starts the backend with, the lane's runs in order with the
  gap before each, and the lane's earlier jobs (``ended_jobs``: each found no longer queued or
  running before the lane was submitted again, so a harness one of them left on another node
  is known dead). ``lem campaign lane lane-NN.json`` runs it on a node.
- ``lane-NN.manifest.json`` (+ ``.journal``) — the lane's own manifest: each lane journals to its
  own file, so no two nodes ever write one file (no locking on NFS).
- ``lane-NN.sbatch`` / ``lane-NN.out`` / ``lane-NN.exit`` — the job script, its output, its exit status.
- ``jobs.json`` — the orchestrator's state (``ClusterState``): the lanes and every job submitted
  for each, so ``--resume`` and ``lem campaign status`` find the jobs again.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from lem.campaign.expand import Expansion
from lem.campaign.lanes import Lane
from lem.campaign.launch import LaneTarget, LaunchRequest
from lem.campaign.plan import GapKind, PlannedRun, plan_campaign
from lem.config.campaign import CampaignConfig
from lem_harness.fileio import atomic_write_text

SLURM_DIR = "slurm"
STATE_FILE = "jobs.json"
LANE_FILE_VERSION = "1.0.0"
LaneRuntime = Literal["docker", "local", "apptainer"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LaneRun(_Model):
    run_id: str
    gap_before_s: float
    gap_kind: GapKind


class LaneFile(_Model):
    schema_version: str = LANE_FILE_VERSION
    lane: str
    campaign_file: str
    results_root: str
    project_root: str
    campaign_id: str
    runtime: LaneRuntime
    flavour: Literal["gpu", "cpu"] = "gpu"
    apptainer_image_dir: str | None = None
    runs: list[LaneRun]
    ended_jobs: list[str] = Field(default_factory=list)


class LaneRecord(_Model):
    lane: str
    run_ids: list[str]
    job_ids: list[str] = Field(default_factory=list)  # every submission, the last one current


class ClusterState(_Model):
    schema_version: str = LANE_FILE_VERSION
    campaign_id: str
    campaign_file: str
    lanes: list[LaneRecord]


def slurm_dir(campaign_dir: Path) -> Path:
    return campaign_dir / SLURM_DIR


def lane_paths(campaign_dir: Path, lane: str) -> dict[str, Path]:
    base = slurm_dir(campaign_dir)
    return {
        "plan": base / f"{lane}.json",
        "manifest": base / f"{lane}.manifest.json",
        "script": base / f"{lane}.sbatch",
        "out": base / f"{lane}.out",
        "exit": base / f"{lane}.exit",
    }


def lane_file_for(lane: Lane, **fields: object) -> LaneFile:
    runs = [LaneRun(run_id=r.run_id, gap_before_s=r.gap_before_s, gap_kind=r.gap_kind) for r in lane.runs]
    return LaneFile.model_validate({"lane": lane.name, "runs": runs, **fields})


def lane_runs(lane_file: LaneFile, plan: Sequence[PlannedRun]) -> list[PlannedRun]:
    """The lane's runs from the whole plan, in the lane's order, with the lane's gaps."""
    by_id: Mapping[str, PlannedRun] = {r.run_id: r for r in plan}
    missing = [r.run_id for r in lane_file.runs if r.run_id not in by_id]
    if missing:
        raise ValueError(
            f"the campaign file no longer plans {', '.join(missing)}: it changed since submission"
        )
    return [
        dataclasses.replace(by_id[r.run_id], gap_before_s=r.gap_before_s, gap_kind=r.gap_kind)
        for r in lane_file.runs
    ]


def write_model(path: Path, model: BaseModel) -> None:
    atomic_write_text(path, model.model_dump_json(indent=2) + "\n")


def read_state(campaign_dir: Path) -> ClusterState | None:
    path = slurm_dir(campaign_dir) / STATE_FILE
    return ClusterState.model_validate_json(path.read_text()) if path.exists() else None


def lane_request(
    plan: LaneFile, campaign: CampaignConfig, expansion: Expansion, slurm_job: str | None = None
) -> LaunchRequest:
    """What ``lem campaign lane`` runs on its node: the lane's runs, its manifest, the campaign's id,
    the job running it (``slurm_job``) and the lane's earlier jobs, all ended.

    Raises ``ValueError`` when the campaign file no longer plans one of the lane's runs.
    """
    results_root = Path(plan.results_root)
    campaign_dir = results_root / campaign.campaign_name
    return LaunchRequest(
        campaign=campaign,
        campaign_file=Path(plan.campaign_file),
        expansion=expansion,
        runs=lane_runs(plan, plan_campaign(campaign, expansion)),
        results_root=results_root,
        flavour=plan.flavour,
        project_root=Path(plan.project_root),
        lane=LaneTarget(
            plan.lane,
            lane_paths(campaign_dir, plan.lane)["manifest"],
            plan.campaign_id,
            slurm_job=slurm_job,
            ended_jobs=frozenset(plan.ended_jobs),
        ),
    )
