"""Opening a campaign's results directory: a new manifest, or the old one to resume.

``<results_root>/<campaign_name>/`` is the campaign directory. Without ``resume`` an existing
manifest there is never overwritten; with it, the manifest must have been written for the
same campaign definition. A run the manifest still shows as ``running`` belonged to a lem
process that ended without saying so: it becomes ``interrupted`` and runs again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from lem.campaign.executor import CampaignPlan
from lem.campaign.expand import Expansion
from lem.campaign.manifest import (
    MANIFEST_FILE,
    ConfigEntry,
    Manifest,
    ManifestError,
    definition_hash,
)
from lem.campaign.manifest_store import SnapshotWriter
from lem.campaign.plan import PlannedRun
from lem.config.campaign import CampaignConfig
from lem_harness.fileio import atomic_write_text

_DIED_WHILE_RUNNING = "the lem process ended while this run was running; it runs again on resume"


def campaign_id_for(campaign_name: str, plan_hash: str) -> str:
    """Stable across resumes of one definition; labels every container of the campaign."""
    return f"{campaign_name}-{plan_hash[:8]}"


@dataclass(frozen=True)
class OpenedCampaign:
    plan: CampaignPlan
    manifest: Manifest
    resumed: bool


def open_campaign(
    campaign: CampaignConfig,
    expansion: Expansion,
    runs: Sequence[PlannedRun],
    results_root: Path,
    *,
    resume: bool,
    now: float,
    writer: SnapshotWriter = atomic_write_text,
    manifest_path: Path | None = None,
    campaign_id: str | None = None,
    campaign_dir: Path | None = None,
) -> OpenedCampaign:
    """The campaign's plan and manifest (created and saved, or loaded for resume).

    ``campaign_dir`` defaults to ``<results_root>/<campaign_name>``; a daemon campaign gives each
    repetition its own (``<results_root>/<campaign_name>/rep-0001``). A Slurm lane passes its own
    ``manifest_path`` (its journal on the shared filesystem) and the whole campaign's ``campaign_id``.
    """
    campaign_dir = campaign_dir or results_root / campaign.campaign_name
    plan_hash = definition_hash(campaign.campaign_name, runs)
    path = manifest_path or campaign_dir / MANIFEST_FILE
    existed = path.exists()
    if existed:
        manifest = _existing(path, plan_hash, resume, writer)
        _mark_dead_runs(manifest)
        manifest.save(now)  # a fresh snapshot with the journal folded in
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        manifest = Manifest.create(
            path,
            campaign_id=campaign_id or campaign_id_for(campaign.campaign_name, plan_hash),
            campaign_name=campaign.campaign_name,
            config=campaign.model_dump(mode="json"),
            configs={
                c.config_id: ConfigEntry(name=c.name, backend=c.backend, axis_values=c.axis_values)
                for c in expansion.configs
            },
            plan=runs,
            now=now,
            writer=writer,
        )
        manifest.save(now)
    plan = CampaignPlan(
        campaign=campaign,
        campaign_id=manifest.campaign_id,
        configs={c.config_id: c for c in expansion.configs},
        runs=tuple(runs),
        campaign_dir=campaign_dir,
    )
    return OpenedCampaign(plan, manifest, resumed=existed)


def _existing(path: Path, plan_hash: str, resume: bool, writer: SnapshotWriter) -> Manifest:
    manifest = Manifest.load(path, writer)
    manifest.check_definition(plan_hash)
    if not resume:
        done, total = manifest.count("done"), len(manifest.entries())
        raise ManifestError(
            f"{path.parent} already holds this campaign ({done} of {total} runs done): pass --resume "
            "to continue it, or move the directory away to start again"
        )
    return manifest


def _mark_dead_runs(manifest: Manifest) -> None:
    for entry in manifest.entries():
        if entry.status == "running":
            manifest.update(entry.run_id, status="interrupted", message=_DIED_WHILE_RUNNING)
