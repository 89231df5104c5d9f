"""Opening a campaign's results directory: a new manifest, or the old one to resume.

``<results_root>/<campaign_name>/`` is the campaign directory; the caller holds its lock
(``lem.campaign.dirlock``) for as long as it uses it, so nothing here races another lem.

- Without ``resume`` an existing manifest is never touched, and a directory that holds runs but
  no manifest is refused too (starting afresh there would delete older results run by run):
  ``fresh`` first moves the whole directory to ``<campaign_name>.archived-<UTC time>``.
- A new manifest is created exclusively (it cannot replace one that appeared meanwhile).
- With ``resume`` the manifest must have been written for the same campaign definition; a run
  still shown ``running`` belonged to a lem process that ended without saying so: it becomes
  ``interrupted`` and runs again — unless its harness process is still alive, or may be (recorded
  on another host by a Slurm job not known to have ended: ``lem.campaign.resume_check``), which is
  refused, saying what to check and what to delete.
  Every ``done`` run's ``result.json`` is verified against its checksum
  (``lem.campaign.resume_check``): a missing or changed one runs again, or with ``no_rerun`` is
  marked ``failed`` and listed, and left for a later resume.
- Temporary files a killed process left (``.<name>.<random>.tmp``) are removed, after the check
  that no earlier harness still writes them. A Slurm lane shares the campaign directory with the
  other lanes: it sweeps only its own runs' directories and its own manifest's temporary files.
- A Slurm campaign's merged manifest (``lanes_own_runs``) is only a mirror: its runs belong to
  the lanes, whose jobs may still be running them. Opening it touches no run directory — no
  temporary file removed, no live harness refused, no ``running`` run marked ``interrupted``, no
  result re-checked: each lane does that for its own runs, on its node, when its job opens the
  lane's manifest; the orchestrator learns the outcome by merging the lanes' manifests (and
  re-checks the results of a lane it would collect: ``lem.campaign.cluster``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from lem.campaign.executor import CampaignPlan
from lem.campaign.expand import Expansion
from lem.campaign.manifest import (
    MANIFEST_FILE,
    ConfigEntry,
    Manifest,
    ManifestError,
    definition_hash,
    iso_utc,
)
from lem.campaign.manifest_store import SnapshotWriter
from lem.campaign.plan import PlannedRun
from lem.campaign.resume_check import AttemptCheck, Here, broken_results, check_attempts
from lem.config.campaign import CampaignConfig
from lem.runtime.process import host_id
from lem_harness.fileio import atomic_write_text, is_temp_name

_DIED_WHILE_RUNNING = "the lem process ended while this run was running; it runs again on resume"


def campaign_id_for(campaign_name: str, plan_hash: str) -> str:
    """Stable across resumes of one definition; labels every container of the campaign."""
    return f"{campaign_name}-{plan_hash[:8]}"


class AttemptStillRunning(ManifestError):
    """An unfinished run's earlier harness process is still alive."""


@dataclass(frozen=True)
class OpenOptions:
    resume: bool = False
    fresh: bool = False
    no_rerun: bool = False
    lanes_own_runs: bool = False  # the merged manifest of a Slurm campaign: leave run directories alone
    slurm_job: str | None = None  # the Slurm job this process runs in (a lane's job)
    ended_jobs: frozenset[str] = frozenset()  # Slurm jobs known to have ended (a lane's earlier jobs)


@dataclass(frozen=True)
class OpenedCampaign:
    plan: CampaignPlan
    manifest: Manifest
    resumed: bool
    skip: frozenset[str] = frozenset()  # broken results left alone (--no-rerun)
    notes: tuple[str, ...] = ()  # what resume found and did, one line each
    archived: Path | None = None
    temp_removed: tuple[str, ...] = field(default=())


def open_campaign(
    campaign: CampaignConfig,
    expansion: Expansion,
    runs: Sequence[PlannedRun],
    results_root: Path,
    *,
    resume: bool,
    now: float,
    writer: SnapshotWriter = atomic_write_text,
    options: OpenOptions | None = None,
    manifest_path: Path | None = None,
    campaign_id: str | None = None,
    campaign_dir: Path | None = None,
) -> OpenedCampaign:
    """The campaign's plan and manifest (created and saved, or loaded for resume).

    ``campaign_dir`` defaults to ``<results_root>/<campaign_name>``; a daemon campaign gives each
    repetition its own (``<results_root>/<campaign_name>/rep-0001``). A Slurm lane passes its own
    ``manifest_path`` (its journal on the shared filesystem) and the whole campaign's ``campaign_id``.
    """
    opts = options or OpenOptions(resume=resume)
    campaign_dir = campaign_dir or results_root / campaign.campaign_name
    plan_hash = definition_hash(campaign.campaign_name, runs)
    lane = manifest_path is not None  # a Slurm lane: other lanes write in the same directory
    shared = lane or opts.lanes_own_runs  # other processes (lane jobs) may be writing run directories
    archived = archive_campaign_dir(campaign_dir, now) if opts.fresh and not shared else None
    path = manifest_path or campaign_dir / MANIFEST_FILE
    existed = os.path.lexists(path)
    skip: frozenset[str] = frozenset()
    notes: list[str] = []
    manifest = _existing(path, plan_hash, opts.resume, writer) if existed else None
    if manifest is not None and not opts.lanes_own_runs:  # the lanes check their own runs
        _check_attempts(manifest, campaign_dir, Here(host_id(), opts.slurm_job, opts.ended_jobs), notes)
    removed = _sweep(campaign_dir, runs, path, lane=lane, shared=shared)
    if manifest is not None:
        if not opts.lanes_own_runs:
            _mark_dead_runs(manifest)
            skip = _recheck_results(manifest, campaign_dir, opts.no_rerun, notes)
        manifest.save(now)  # a fresh snapshot with the journal folded in
    else:
        if not lane:
            _refuse_unmanaged_runs(campaign_dir)
        campaign_dir.mkdir(parents=True, exist_ok=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        manifest = _create(
            campaign,
            expansion,
            runs,
            path,
            plan_hash=plan_hash,
            now=now,
            writer=writer,
            campaign_id=campaign_id,
        )
        manifest.save(now)
    plan = CampaignPlan(
        campaign=campaign,
        campaign_id=manifest.campaign_id,
        configs={c.config_id: c for c in expansion.configs},
        runs=tuple(runs),
        campaign_dir=campaign_dir,
    )
    return OpenedCampaign(plan, manifest, existed, skip, tuple(notes), archived, tuple(removed))


def _create(
    campaign: CampaignConfig,
    expansion: Expansion,
    runs: Sequence[PlannedRun],
    path: Path,
    *,
    plan_hash: str,
    now: float,
    writer: SnapshotWriter,
    campaign_id: str | None = None,
) -> Manifest:
    return Manifest.create(
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


def _existing(path: Path, plan_hash: str, resume: bool, writer: SnapshotWriter) -> Manifest:
    manifest = Manifest.load(path, writer)
    manifest.check_definition(plan_hash)
    if not resume:
        done, total = manifest.count("done"), len(manifest.entries())
        raise ManifestError(
            f"{path.parent} already holds this campaign ({done} of {total} runs done): pass --resume "
            "to continue it, or --fresh to archive the directory and start again"
        )
    return manifest


def _refuse_unmanaged_runs(campaign_dir: Path) -> None:
    """A directory with content but no manifest: a fresh start would overwrite older results."""
    if not campaign_dir.is_dir():
        return
    names = sorted(e.name for e in os.scandir(campaign_dir) if not is_temp_name(e.name))
    if names:
        shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
        raise ManifestError(
            f"{campaign_dir} holds {len(names)} entries ({shown}) but no {MANIFEST_FILE}: starting "
            "again there would overwrite those results. Restore the manifest and pass --resume, or "
            "pass --fresh to move the directory aside (nothing is deleted) and start again"
        )


def _check_attempts(manifest: Manifest, campaign_dir: Path, here: Here, notes: list[str]) -> None:
    """Refuse while an earlier harness lives or may live; note the ones found ended on another node."""
    checks = check_attempts(manifest, campaign_dir, here)
    live = [c for c in checks if c.verdict == "alive"]
    unknown = [c for c in checks if c.verdict == "unknown"]
    if live or unknown:
        raise AttemptStillRunning(_in_the_way(campaign_dir, live, unknown))
    for c in checks:
        if c.attempt.process.host != here.host:
            p = c.attempt.process
            notes.append(f"{c.run_id}: its earlier harness (pid {p.pid} on host {p.host}) is gone: {c.why}")


def _in_the_way(campaign_dir: Path, live: list[AttemptCheck], unknown: list[AttemptCheck]) -> str:
    parts = []
    if live:
        runs = ", ".join(f"{c.run_id} (pid {c.attempt.process.pid})" for c in live)
        parts.append(
            f"{len(live)} run(s) of {campaign_dir} still have a harness process from an earlier "
            f"attempt: {runs}. Two processes would measure at once; stop it (kill <pid>) or wait for "
            "it to end, then resume"
        )
    for c in unknown:
        p, job = c.attempt.process, c.attempt.slurm_job
        check = (
            f"check that Slurm job {job} has ended (`squeue -j {job}`, `sacct -j {job}`)"
            if job
            else f"check on host {p.host} that pid {p.pid} has ended (`ps -p {p.pid}`)"
        )
        parts.append(
            f"run {c.run_id} of {campaign_dir} has a harness process from an earlier attempt that "
            f"this process cannot see (pid {p.pid} on host {p.host}, {c.why}). Two processes would "
            f"measure at once: {check}, then delete {campaign_dir / c.attempt_file} and resume"
        )
    return "; ".join(parts)


def _mark_dead_runs(manifest: Manifest) -> None:
    for entry in manifest.entries():
        if entry.status == "running":
            manifest.update(entry.run_id, status="interrupted", message=_DIED_WHILE_RUNNING)


def _recheck_results(
    manifest: Manifest, campaign_dir: Path, no_rerun: bool, notes: list[str]
) -> frozenset[str]:
    """Re-run (or, ``no_rerun``, mark failed and skip) every done run whose result is not intact."""
    skip = set()
    for broken in broken_results(manifest, campaign_dir):
        if no_rerun:
            message = f"{broken.detail}; not re-run (--no-rerun): a later --resume runs it again"
            skip.add(broken.run_id)
        else:
            message = f"{broken.detail}; runs again"
        manifest.update(
            broken.run_id,
            status="failed" if no_rerun else "pending",
            outcome=broken.outcome,
            message=message,
            result_path=None,
            result_sha256=None,
        )
        notes.append(f"{broken.run_id}: {message}")
    return frozenset(skip)


def archive_campaign_dir(campaign_dir: Path, now: float) -> Path | None:
    """Move ``campaign_dir`` to ``<name>.archived-<UTC time>`` beside it (None if there is nothing)."""
    if not campaign_dir.is_dir() or campaign_dir.is_symlink() or not any(campaign_dir.iterdir()):
        return None
    stamp = iso_utc(now)[:19].replace("-", "").replace(":", "") + "Z"
    target = campaign_dir.with_name(f"{campaign_dir.name}.archived-{stamp}")
    n = 1
    while os.path.lexists(target):
        n += 1
        target = campaign_dir.with_name(f"{campaign_dir.name}.archived-{stamp}-{n}")
    campaign_dir.rename(target)
    return target


def remove_temp_files(campaign_dir: Path) -> list[str]:
    """Remove the temporary files killed processes left in the campaign and run directories."""
    if not campaign_dir.is_dir() or campaign_dir.is_symlink():
        return []
    removed: list[str] = []
    for directory in (campaign_dir, *_subdirs(campaign_dir)):
        removed.extend(_remove_temp_in(directory))
    return removed


def _sweep(
    campaign_dir: Path, runs: Sequence[PlannedRun], manifest_path: Path, *, lane: bool, shared: bool
) -> list[str]:
    """Temporary files removed: the whole campaign directory's, a Slurm lane's own (its runs'
    directories, its manifest's), or none (the merged manifest of a Slurm campaign)."""
    if not lane:
        return [] if shared else remove_temp_files(campaign_dir)
    removed: list[str] = []
    for run in runs:
        removed.extend(_remove_temp_in(campaign_dir / run.run_id))
    removed.extend(_remove_temp_in(manifest_path.parent, prefix=f".{manifest_path.name}."))
    return removed


def _remove_temp_in(directory: Path, prefix: str = "") -> list[str]:
    """Remove ``directory``'s temporary files (those whose name starts with ``prefix``), not below."""
    if not directory.is_dir() or directory.is_symlink():
        return []
    removed = []
    for entry in os.scandir(directory):
        ours = entry.name.startswith(prefix) and is_temp_name(entry.name)
        if ours and not entry.is_dir(follow_symlinks=False):
            os.unlink(entry.path)
            removed.append(entry.path)
    return removed


def _subdirs(directory: Path) -> list[Path]:
    return [Path(e.path) for e in os.scandir(directory) if e.is_dir(follow_symlinks=False)]
