"""Starting a campaign: images checked, results directory opened, orphans removed, runs executed.

``launch_campaign`` is the API behind ``lem campaign run``. In order: preflight
(``lem.campaign.preflight``: images, paths, GPUs, disk, what the runs need inside the runtime —
every problem at once, ``PreflightFailed`` before anything runs; ``skip_preflight`` keeps only
the runtime's own image check and the container specs); the campaign registers itself as live
on this host (for every user: ``lem.campaign.liveness``) and locks its results directory (one
lem per directory); the manifest is created, or loaded for ``--resume`` and checked
(``lem.campaign.session``); this user's containers whose lem process is gone and whose campaign
is not live (including this campaign's own, left by a process that died) are removed
(``lem.runtime.orphans``); the host GPUs are looked up for the containers and the thermal gaps;
then the executor runs what is left to do.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from lem.campaign.clock import Clock
from lem.campaign.coldstart import DROP_CACHES, PageCacheDropper
from lem.campaign.executor import CampaignExecutor, CampaignReport, Services
from lem.campaign.expand import Expansion, campaign_project_root
from lem.campaign.gaps import NvmlProbe, ProbeFactory, open_gap_waiter
from lem.campaign.hostgpus import host_gpu_inventory, host_gpu_processes
from lem.campaign.liveness import (
    PART_SEPARATOR,
    LiveCampaign,
    ResultsDirLock,
    live_campaign_ids,
    live_key,
    runtime_dir,
)
from lem.campaign.manifest import definition_hash
from lem.campaign.plan import PlannedRun
from lem.campaign.preflight import Finding, HostProbes, PreflightInput, preflight
from lem.campaign.progress import ProgressSink
from lem.campaign.session import OpenOptions, campaign_id_for, open_campaign
from lem.campaign.specs import CampaignSpecs
from lem.config.campaign import CampaignConfig
from lem.runtime.images import Flavour, image_name
from lem.runtime.orphans import OrphanPolicy
from lem.runtime.process import current_process
from lem.runtime.spec import Runtime

Inventory = Callable[[Collection[int]], tuple[dict[int, str], str | None]]


@dataclass(frozen=True)
class LaunchRequest:
    """What to run and how (everything the command line decides)."""

    campaign: CampaignConfig
    campaign_file: Path
    expansion: Expansion
    runs: Sequence[PlannedRun]
    results_root: Path
    resume: bool = False
    fail_fast: bool = False
    flavour: Flavour = "gpu"
    skip_preflight: bool = False
    project_root: Path | None = None  # where local inputs may live; default: the campaign file's project
    fresh: bool = False  # archive an existing campaign directory first
    no_rerun: bool = False  # resume lists broken results instead of running them again
    subdir: str | None = None  # a daemon repetition's directory inside the campaign directory
    lane: LaneTarget | None = None  # set when this process runs one lane of a Slurm campaign

    @property
    def campaign_dir(self) -> Path:
        root = self.results_root / self.campaign.campaign_name
        return root / self.subdir if self.subdir else root


@dataclass(frozen=True)
class LaneTarget:
    """One lane of a campaign run by ``--runtime slurm``: its name, manifest and the campaign's id."""

    name: str
    manifest_path: Path
    campaign_id: str
    slurm_job: str | None = None  # the job running this lane (SLURM_JOB_ID)
    ended_jobs: frozenset[str] = frozenset()  # the lane's earlier jobs, ended (from the orchestrator)


@dataclass
class LaunchServices:
    """The side effects a campaign needs; tests replace them with fakes."""

    runtime: Runtime
    clock: Clock
    stop: threading.Event
    progress: ProgressSink
    probe_factory: ProbeFactory = NvmlProbe
    inventory: Inventory = host_gpu_inventory
    gpu_processes: Callable[[Collection[str]], dict[str, int]] = host_gpu_processes
    host: HostProbes | None = None  # preflight's disk probes (default: the real ones)
    registry: Path = field(default_factory=runtime_dir)
    host_env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ), repr=False)
    page_cache_path: Path = DROP_CACHES


@dataclass(frozen=True)
class LaunchResult:
    report: CampaignReport
    campaign_dir: Path
    campaign_id: str
    resumed: bool
    orphans_removed: tuple[str, ...]


def campaign_images(campaign_runs: Sequence[PlannedRun], flavour: Flavour) -> dict[str, str]:
    """Backend → image for every backend the plan uses."""
    return {backend: image_name(backend, flavour) for backend in {run.backend for run in campaign_runs}}


def check_campaign(request: LaunchRequest, services: LaunchServices) -> list[Finding]:
    """Preflight alone (``lem doctor CAMPAIGN``): the warnings, or ``PreflightFailed`` with every problem."""
    images = campaign_images(request.runs, request.flavour)
    name = request.campaign.campaign_name
    specs = _specs(request, services, campaign_id_for(name, definition_hash(name, request.runs)), images)
    return _preflight(request, services, specs, images)


def launch_campaign(request: LaunchRequest, services: LaunchServices) -> LaunchResult:
    """Run (or resume) the campaign; raises ``LemRuntimeError``, ``ManifestError``, ``CampaignBusy``."""
    images = campaign_images(request.runs, request.flavour)
    name = request.campaign.campaign_name
    lane = request.lane
    campaign_id = lane.campaign_id if lane else campaign_id_for(name, definition_hash(name, request.runs))
    specs = _specs(request, services, campaign_id, images)
    if request.skip_preflight:
        services.runtime.check(sorted(set(images.values())))
    else:
        _preflight(request, services, specs, images)
    _check_specs(request, specs)
    # One lem per results directory; a Slurm lane locks its own part of it (lanes share the directory).
    dir_lock = ResultsDirLock(request.results_root, f"{name}{PART_SEPARATOR}{lane.name}" if lane else name)
    with LiveCampaign(services.registry, live_key(campaign_id, lane.name) if lane else campaign_id), dir_lock:
        opened = open_campaign(
            request.campaign,
            request.expansion,
            request.runs,
            request.results_root,
            resume=request.resume or lane is not None,  # a lane job always continues its own journal
            now=services.clock.time(),
            options=OpenOptions(
                request.resume or lane is not None,
                request.fresh,
                request.no_rerun,
                slurm_job=lane.slurm_job if lane else None,
                ended_jobs=lane.ended_jobs if lane else frozenset(),
            ),
            manifest_path=lane.manifest_path if lane else None,
            campaign_id=campaign_id,
            campaign_dir=request.campaign_dir,
        )
        try:
            _notes(services, opened.archived, opened.notes)
            # A lane shares its node with the campaign's other lanes: their containers are not orphans.
            removed = [] if lane else _cleanup(services, campaign_id)
            executor = CampaignExecutor(
                opened.plan,
                opened.manifest,
                _services(request, services, specs),
                fail_fast=request.fail_fast,
                skip=opened.skip,
            )
            report = executor.run()
        finally:
            opened.manifest.close()
    return LaunchResult(report, opened.plan.campaign_dir, campaign_id, opened.resumed, tuple(removed))


def _notes(services: LaunchServices, archived: Path | None, notes: Sequence[str]) -> None:
    if archived is not None:
        services.progress.note(f"--fresh: the earlier campaign directory was moved to {archived}")
    for line in notes:
        services.progress.note(f"resume: {line}")


def _cleanup(services: LaunchServices, campaign_id: str) -> list[str]:
    """Remove this user's orphans: containers whose lem process is gone, of campaigns not live
    (this campaign's own leftovers from a dead process too)."""
    others_live = live_campaign_ids(services.registry) - {campaign_id}
    policy = OrphanPolicy.for_caller(os.getuid(), others_live)
    removed = services.runtime.cleanup_orphans(policy)
    for orphan in removed:
        services.progress.note(f"removed orphan container {orphan}")
    return removed


def _specs(
    request: LaunchRequest, services: LaunchServices, campaign_id: str, images: dict[str, str]
) -> CampaignSpecs:
    configs = request.expansion.configs
    wanted = {i for c in configs if c.config.measurement.device != "simulated" for i in c.config.gpus}
    inventory, why = services.inventory(wanted)
    if why is not None:
        services.progress.note(f"no NVIDIA GPU found on this host ({why}); runs get no GPU")
    campaign_file_dir = request.campaign_file.resolve().parent
    return CampaignSpecs(
        campaign_id=campaign_id,
        images=images,
        results_root=request.results_root,
        project_root=request.project_root or campaign_project_root(request.campaign_file),
        timeout_s=request.campaign.execution.timeout_seconds,
        extra_roots=(campaign_file_dir, *(Path(root) for root in request.campaign.input_roots)),
        gpu_uuids_by_index=inventory,
        host_env=services.host_env,
        owner=current_process(),
    )


def _check_specs(request: LaunchRequest, specs: CampaignSpecs) -> None:
    """Build every run's container spec once, so a path or GPU problem stops the campaign before it starts."""
    configs = {c.config_id: c for c in request.expansion.configs}
    for run in request.runs:
        specs.container_spec(run, configs[run.config_id], request.campaign_dir / run.run_id)


def _preflight(
    request: LaunchRequest, services: LaunchServices, specs: CampaignSpecs, images: dict[str, str]
) -> list[Finding]:
    """Every problem at once before anything runs (``PreflightFailed``); warnings are shown."""
    given = PreflightInput(
        runtime=services.runtime,
        images=images,
        runs=request.runs,
        configs={c.config_id: c for c in request.expansion.configs},
        specs=specs,
        campaign_dir=request.campaign_dir,
        timeout_s=request.campaign.execution.timeout_seconds,
    )
    warnings = preflight(given, services.host or HostProbes(services.gpu_processes))
    for finding in warnings:
        services.progress.note(f"preflight warning: {finding.subject}: {finding.message} ({finding.fix})")
    return warnings


def _services(request: LaunchRequest, services: LaunchServices, specs: CampaignSpecs) -> Services:
    note = services.progress.note
    gaps = open_gap_waiter(
        request.campaign.execution,
        specs.gpu_uuids({c.config_id: c for c in request.expansion.configs}),
        clock=services.clock,
        stop=services.stop,
        warn=note,
        probe_factory=services.probe_factory,
    )
    page_cache = PageCacheDropper(
        request.campaign.cold_start.drop_page_cache, note, path=services.page_cache_path
    )
    return Services(
        runtime=services.runtime,
        specs=specs,
        clock=services.clock,
        stop=services.stop,
        gaps=gaps,
        progress=services.progress,
        page_cache=page_cache,
    )
