"""Starting a daemon campaign: its schedule opened (or resumed), each repetition launched as a campaign.

``launch_daemon`` is the API behind ``lem campaign run`` when ``daemon.enabled`` is true. The
daemon holds a liveness lock of its own for its whole life (a second daemon of the same
campaign is refused); each repetition is ``launch_campaign`` on ``<campaign_dir>/rep-NNNN``
with a fresh progress display, so it checks images, removes orphans and writes its own
manifest exactly as a plain campaign does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import tzinfo
from pathlib import Path

from lem.campaign.daemon import (
    DaemonReport,
    DaemonScheduler,
    DaemonServices,
    OutcomeStatus,
    RepetitionOutcome,
    ScheduleDisplay,
)
from lem.campaign.launch import LaunchRequest, LaunchServices, launch_campaign
from lem.campaign.liveness import CampaignBusy, LiveCampaign
from lem.campaign.manifest import ManifestError, definition_hash
from lem.campaign.progress import ProgressSink
from lem.campaign.schedule import Schedule
from lem.campaign.schedule_state import ScheduleError, ScheduleState, ScheduleStore, new_state, schedule_hash
from lem.campaign.session import campaign_id_for
from lem.runtime.errors import LemRuntimeError

DAEMON_LOCK_SUFFIX = ".daemon"


@dataclass(frozen=True)
class DaemonResult:
    report: DaemonReport
    campaign_dir: Path
    resumed: bool


@dataclass
class LaunchedRepetitions:
    """``RepetitionRunner`` that runs each repetition as a whole campaign in its own subtree."""

    request: LaunchRequest
    services: LaunchServices
    progress_factory: Callable[[], ProgressSink]

    def run(self, repetition: int, directory: str, resume: bool) -> RepetitionOutcome:
        request = replace(self.request, subdir=directory, resume=resume)
        services = replace(self.services, progress=self.progress_factory())
        try:
            report = launch_campaign(request, services).report
        except (LemRuntimeError, ManifestError, CampaignBusy) as e:
            return RepetitionOutcome("aborted", message=str(e))
        status: OutcomeStatus
        if report.stopped:
            status = "interrupted"
        elif report.aborted:
            status = "aborted"
        else:
            status = "failed" if report.failed else "done"
        return RepetitionOutcome(status, report.total, report.done, report.failed, report.aborted)


def launch_daemon(
    request: LaunchRequest,
    services: LaunchServices,
    *,
    display: ScheduleDisplay,
    progress_factory: Callable[[], ProgressSink],
    zone: tzinfo,
    zone_name: str,
) -> DaemonResult:
    """Run (or resume) the schedule; raises ``ScheduleError``, ``CampaignBusy``."""
    name = request.campaign.campaign_name
    plan_hash = definition_hash(name, request.runs)
    campaign_dir = request.results_root / name
    schedule = Schedule(request.campaign.daemon, zone)
    store = ScheduleStore(campaign_dir)
    with LiveCampaign(services.registry, campaign_id_for(name, plan_hash) + DAEMON_LOCK_SUFFIX):
        resumed = store.exists()
        state = _open_state(
            request,
            services=services,
            store=store,
            schedule=schedule,
            definition=schedule_hash(plan_hash, request.campaign.daemon),
            zone_name=zone_name,
        )
        runner = LaunchedRepetitions(request, services, progress_factory)
        daemon_services = DaemonServices(services.clock, services.stop, runner, display, store)
        report = DaemonScheduler(schedule, state, daemon_services).run()
    return DaemonResult(report, campaign_dir, resumed)


def _open_state(
    request: LaunchRequest,
    *,
    services: LaunchServices,
    store: ScheduleStore,
    schedule: Schedule,
    definition: str,
    zone_name: str,
) -> ScheduleState:
    if store.exists():
        state = store.load(definition)
        if not request.resume:
            raise ScheduleError(
                f"{store.path.parent} already holds this daemon campaign ({len(state.repetitions)} "
                "repetition(s) started): pass --resume to continue its schedule, or move the directory away"
            )
        return state
    now = services.clock.time()
    state = new_state(request.campaign.campaign_name, definition, now, schedule.anchor(now), zone_name)
    store.save(state, now)
    return state
