"""A campaign on a Slurm cluster: lanes submitted as jobs, followed, and merged into one manifest.

``run_cluster`` is the API behind ``lem campaign run --runtime slurm``. The plan is cut into
lanes (``lem.campaign.lanes``); each lane becomes one job (``lem.runtime.slurm_script``) that
holds one node and runs ``lem campaign lane`` there — the ordinary executor, gaps, thermal gating
and cold-start rules, journaling to the lane's own manifest on the shared filesystem. On the
login node this module only submits, polls and merges:

- reconcile: a lane whose runs are all done is collected — once its results pass the checksum
  check a resume does (``lem.campaign.resume_check``; the results directory is on the shared
  filesystem), else it is submitted again, saying which result is missing or changed, and its
  job re-runs those runs; a lane whose last job Slurm still shows queued or running is adopted
  (never submitted twice); any other lane is submitted (the first time, or again on
  ``--resume`` when its job ended or was lost). A lane submitted again is told its earlier
  jobs (``ended_jobs`` in its lane file): each was found no longer queued or running, so a
  harness one of them left recorded on another node is dead, and its run runs again;
- follow: one ``squeue`` call per poll for every job, the lanes' manifests read and merged into
  ``<campaign dir>/manifest.json``, a progress line whenever something changed;
- a job that ended (time limit, preemption, scancel, node failure, or gone without a trace)
  leaves its unfinished runs ``interrupted`` — never ``done``, which only a lane's own result
  can say. Where Slurm has forgotten the job and no ``sacct`` answers, the job's exit file
  tells an ended job from a lost one.

A stop request returns with the jobs still running: the command offers ``scancel``.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from lem.campaign.clock import Clock
from lem.campaign.executor import CampaignReport
from lem.campaign.expand import Expansion, campaign_project_root
from lem.campaign.lane_file import (
    ClusterState,
    LaneRecord,
    lane_file_for,
    lane_paths,
    read_state,
    slurm_dir,
    write_model,
)
from lem.campaign.lanes import Lane, lane_time_limit_minutes, regap, run_estimate_s, split_lanes
from lem.campaign.liveness import LiveCampaign, live_key, runtime_dir
from lem.campaign.manifest import Manifest, ManifestError, RunEntry, definition_hash
from lem.campaign.plan import PlannedRun
from lem.campaign.resume_check import broken_entries
from lem.campaign.session import OpenOptions, campaign_id_for, open_campaign
from lem.config.campaign import CampaignConfig
from lem.runtime.images import Flavour
from lem.runtime.slurm import JobState, SlurmClient
from lem.runtime.slurm_script import LaneJob, render_script

_IDENTITY = {"run_id", "position", "cycle", "config_id", "name", "backend"}


@dataclass(frozen=True)
class ClusterRequest:
    campaign: CampaignConfig
    campaign_file: Path
    expansion: Expansion
    runs: Sequence[PlannedRun]
    results_root: Path
    resume: bool = False
    detach: bool = False
    flavour: Flavour = "gpu"
    project_root: Path | None = None  # where local inputs may live; default: the campaign file's project
    python: str = sys.executable

    @property
    def campaign_dir(self) -> Path:
        return self.results_root / self.campaign.campaign_name

    @property
    def lane_project_root(self) -> Path:
        """The project root each lane's runs get (as ``LaunchRequest`` decides it on one host)."""
        return (self.project_root or campaign_project_root(self.campaign_file)).resolve()

    @property
    def campaign_id(self) -> str:
        name = self.campaign.campaign_name
        return campaign_id_for(name, definition_hash(name, self.runs))


@dataclass
class ClusterServices:
    slurm: SlurmClient
    clock: Clock
    stop: threading.Event
    note: Callable[[str], None]
    registry: Path = field(default_factory=runtime_dir)


@dataclass(frozen=True)
class ClusterResult:
    report: CampaignReport
    campaign_dir: Path
    campaign_id: str
    resumed: bool
    detached: bool
    active_jobs: tuple[str, ...]  # jobs still queued or running when this call returned
    submitted: tuple[str, ...] = ()
    adopted: tuple[str, ...] = ()
    collected: tuple[str, ...] = ()  # lanes already complete


# ---------------------------------------------------------------------------- pure parts


def plan_lanes(request: ClusterRequest) -> list[Lane]:
    cfg = request.campaign.slurm
    run_s = run_estimate_s(request.campaign.execution, cfg.expected_run_seconds)
    return split_lanes(
        request.runs, request.campaign.execution, cfg.max_nodes, pin_configs=cfg.pin_configs, run_s=run_s
    )


def lane_job(request: ClusterRequest, lane: Lane) -> LaneJob:
    cfg = request.campaign.slurm
    gpus = cfg.gpus_per_run
    if gpus is None:
        configs = {c.config_id: c.config for c in request.expansion.configs}
        gpus = max(len(configs[r.config_id].gpus) for r in lane.runs)
    paths = lane_paths(request.campaign_dir, lane.name)
    return LaneJob(
        job_name=f"lem-{request.campaign_id}-{lane.name}",
        lane_name=lane.name,
        lane_file=paths["plan"],
        slurm_dir=slurm_dir(request.campaign_dir),
        python=cfg.python or request.python,
        time_minutes=lane_time_limit_minutes(
            lane, request.campaign.execution, cfg.run_time_limit_minutes, cfg.setup_minutes
        ),
        gpus=gpus,
    )


def lane_scripts(request: ClusterRequest, lanes: Sequence[Lane]) -> dict[str, str]:
    """Every lane's sbatch script, by lane name (what ``--dry-run`` prints)."""
    return {lane.name: render_script(lane_job(request, lane), request.campaign.slurm) for lane in lanes}


# ---------------------------------------------------------------------------- the campaign


def run_cluster(request: ClusterRequest, services: ClusterServices) -> ClusterResult:
    """Submit (or reconcile, with ``--resume``), then follow until every job ended, stop, or detach."""
    campaign_id = request.campaign_id
    with LiveCampaign(services.registry, live_key(campaign_id, "slurm")):
        opened = open_campaign(
            request.campaign,
            request.expansion,
            request.runs,
            request.results_root,
            resume=request.resume,
            now=services.clock.time(),
            # The runs are the lanes' (their jobs may be running them now, as on --resume after
            # the orchestrator was killed): the merged manifest only mirrors the lanes' manifests.
            options=OpenOptions(resume=request.resume, lanes_own_runs=True),
        )
        try:
            lanes = _lanes(request, campaign_id)
            follower = Follower(request.campaign_dir, lanes, opened.manifest, services, _run_s(request))
            submitted, adopted, collected = follower.reconcile(
                lambda lane, ended: _submit(request, services, lane, ended)
            )
            if not request.detach:
                follower.follow(request.campaign.slurm.poll_interval_seconds)
            else:
                follower.poll()
        finally:
            opened.manifest.close()
    return ClusterResult(
        follower.report(),
        request.campaign_dir,
        campaign_id,
        opened.resumed,
        request.detach,
        follower.active_jobs(),
        tuple(submitted),
        tuple(adopted),
        tuple(collected),
    )


@dataclass
class LaneSet:
    state: ClusterState
    lanes: dict[str, Lane]


def _lanes(request: ClusterRequest, campaign_id: str) -> LaneSet:
    """The lanes of this campaign: as first submitted (``jobs.json``), else a fresh split."""
    state = read_state(request.campaign_dir)
    if state is None:
        lanes = plan_lanes(request)
        state = ClusterState(
            campaign_id=campaign_id,
            campaign_file=str(request.campaign_file.resolve()),
            lanes=[LaneRecord(lane=lane.name, run_ids=list(lane.run_ids)) for lane in lanes],
        )
    else:
        by_id = {r.run_id: r for r in request.runs}
        execution = request.campaign.execution
        lanes = [
            Lane(i, regap([by_id[run_id] for run_id in record.run_ids], execution))
            for i, record in enumerate(state.lanes)
        ]
    slurm_dir(request.campaign_dir).mkdir(parents=True, exist_ok=True)
    return LaneSet(state, {lane.name: lane for lane in lanes})


def _submit(request: ClusterRequest, services: ClusterServices, lane: Lane, ended_jobs: Sequence[str]) -> str:
    paths = lane_paths(request.campaign_dir, lane.name)
    cfg = request.campaign.slurm
    runtime = cfg.launcher
    lane_plan = lane_file_for(
        lane,
        campaign_file=str(request.campaign_file.resolve()),
        results_root=str(request.results_root),
        project_root=str(request.lane_project_root),
        campaign_id=request.campaign_id,
        runtime=runtime,
        flavour=request.flavour,
        apptainer_image_dir=cfg.apptainer_image_dir,
        ended_jobs=list(ended_jobs),
    )
    write_model(paths["plan"], lane_plan)
    script = render_script(lane_job(request, lane), cfg)
    paths["script"].write_text(script)
    paths["exit"].unlink(missing_ok=True)
    return services.slurm.submit(script, paths["script"].parent)


def _run_s(request: ClusterRequest) -> float:
    return run_estimate_s(request.campaign.execution, request.campaign.slurm.expected_run_seconds)


# ---------------------------------------------------------------------------- following


@dataclass
class LaneView:
    """What the orchestrator knows of one lane after a poll."""

    lane: str
    job_id: str | None
    state: str  # Slurm state, EXIT <rc> from the exit file, LOST, or COLLECTED
    node: str | None
    done: int
    total: int
    running: str | None  # the run id the lane is running now
    ended: bool

    def line(self) -> str:
        where = f" on {self.node}" if self.node else ""
        now = f", running {self.running}" if self.running else ""
        job = f"job {self.job_id} " if self.job_id else ""
        return f"{self.lane} ({job}{self.state}{where}): {self.done}/{self.total} done{now}"


class Follower:
    """Reconciles lanes with Slurm, polls them, and merges their manifests into the campaign's."""

    def __init__(
        self,
        campaign_dir: Path,
        lanes: LaneSet,
        merged: Manifest,
        services: ClusterServices,
        run_s: float,
    ) -> None:
        self.campaign_dir = campaign_dir
        self.state = lanes.state
        self.lanes = lanes.lanes
        self.merged = merged
        self.s = services
        self.run_s = run_s
        self.views: dict[str, LaneView] = {}
        self._finished: dict[str, tuple[str, str | None]] = {}  # lane -> (end state, node)
        self._last_line = ""

    # ------------------------------------------------------------------ reconcile

    def reconcile(
        self, submit: Callable[[Lane, Sequence[str]], str]
    ) -> tuple[list[str], list[str], list[str]]:
        """Collect complete lanes, adopt live jobs, submit the rest: (submitted, adopted, collected).

        ``submit`` gets the lane and its earlier jobs (all ended: none is queued or running).
        """
        submitted: list[str] = []
        adopted: list[str] = []
        collected: list[str] = []
        jobs = [r.job_ids[-1] for r in self.state.lanes if r.job_ids]
        states = self.s.slurm.states(jobs)
        for record in self.state.lanes:
            if self._collect(record):
                collected.append(record.lane)
            elif record.job_ids and _is_active(states.get(record.job_ids[-1])):
                adopted.append(record.job_ids[-1])
            else:
                job_id = submit(self.lanes[record.lane], list(record.job_ids))
                record.job_ids.append(job_id)
                submitted.append(job_id)
                self._save_state()
                self.s.note(f"submitted {record.lane} ({len(record.run_ids)} runs) as Slurm job {job_id}")
        for job_id in adopted:
            self.s.note(f"adopted Slurm job {job_id} (still {states[job_id].state.lower()})")
        for name in collected:
            self.s.note(f"{name}: every run done already")
        self._save_state()
        return submitted, adopted, collected

    def _collect(self, record: LaneRecord) -> bool:
        """Merge a lane whose runs are all done and whose results are intact; False otherwise."""
        entries = self._lane_entries(record)
        if not entries or any(e.status != "done" for e in entries.values()):
            return False
        broken = broken_entries(self.campaign_dir, entries.values())
        for b in broken:
            self.s.note(f"{record.lane}: {b.run_id} is not intact ({b.detail}): the lane runs again")
        if broken:
            return False
        self._merge(entries)
        self._finished[record.lane] = ("COLLECTED", None)
        return True

    # ------------------------------------------------------------------ follow

    def follow(self, poll_s: float) -> None:
        """Poll until every lane ended or a stop request."""
        while True:
            self.poll()
            if not self.active_jobs() or self.s.stop.is_set():
                return
            if self.s.clock.wait(self.s.stop, poll_s):
                return

    def poll(self) -> dict[str, LaneView]:
        """One squeue call for every live job; every lane's manifest merged; a progress line if changed."""
        current = {
            r.lane: r.job_ids[-1] for r in self.state.lanes if r.job_ids and r.lane not in self._finished
        }
        states = self.s.slurm.states(list(current.values()))
        for record in self.state.lanes:
            self.views[record.lane] = self._view(record, states)
        self.merged.save(self.s.clock.time())
        self._progress()
        return self.views

    def _view(self, record: LaneRecord, states: dict[str, JobState]) -> LaneView:
        job_id = record.job_ids[-1] if record.job_ids else None
        if record.lane in self._finished:
            ended_as, node = self._finished[record.lane]
            return self._summary(record, job_id, ended_as, node, ended=True)
        self._merge(self._lane_entries(record))
        job = states.get(job_id) if job_id else None
        if job is not None and job.active:
            return self._summary(record, job_id, job.state, job.node, ended=False)
        ended_as = job.state if job is not None else self._exit_state(record.lane)
        self._finish(record, job_id, ended_as)
        self._finished[record.lane] = (ended_as, job.node if job else None)
        return self._summary(record, job_id, ended_as, job.node if job else None, ended=True)

    def _exit_state(self, lane: str) -> str:
        path = lane_paths(self.campaign_dir, lane)["exit"]
        try:
            return f"EXIT {path.read_text().strip()}"
        except OSError:
            return "LOST"

    def _finish(self, record: LaneRecord, job_id: str | None, ended_as: str) -> None:
        """The job ended: its runs left running or interrupted are interrupted (never done)."""
        for run_id in record.run_ids:
            entry = self.merged.entry(run_id)
            if entry.status in ("running", "interrupted"):
                why = f"Slurm job {job_id} ended {ended_as}" + (f": {entry.message}" if entry.message else "")
                self.merged.update(run_id, status="interrupted", message=why)
        if ended_as not in ("COMPLETED", "EXIT 0"):
            out = lane_paths(self.campaign_dir, record.lane)["out"]
            self.s.note(f"{record.lane}: Slurm job {job_id} ended {ended_as}{_tail(out)}")

    def _lane_entries(self, record: LaneRecord) -> dict[str, RunEntry]:
        path = lane_paths(self.campaign_dir, record.lane)["manifest"]
        if not path.exists():
            return {}
        try:
            lane_manifest = Manifest.load(path)
        except ManifestError as e:
            self.s.note(f"{record.lane}: manifest not readable yet ({e})")
            return {}
        return {e.run_id: e for e in lane_manifest.entries() if e.run_id in set(record.run_ids)}

    def _merge(self, entries: dict[str, RunEntry]) -> None:
        for run_id, entry in entries.items():
            if entry != self.merged.entry(run_id):
                self.merged.update(run_id, **entry.model_dump(exclude=_IDENTITY))

    def _summary(
        self, record: LaneRecord, job_id: str | None, state: str, node: str | None, *, ended: bool
    ) -> LaneView:
        merged = [self.merged.entry(r) for r in record.run_ids]
        running = next((e.run_id for e in merged if e.status == "running"), None)
        done = sum(1 for e in merged if e.status == "done")
        return LaneView(record.lane, job_id, state, node, done, len(record.run_ids), running, ended)

    def _progress(self) -> None:
        views = list(self.views.values())
        done = sum(v.done for v in views)
        total = sum(v.total for v in views)
        lanes = "; ".join(v.line() for v in views)
        line = f"{done}/{total} runs done{self._eta(views)} | {lanes}"
        if line != self._last_line:
            self.s.note(line)
            self._last_line = line

    def _eta(self, views: Sequence[LaneView]) -> str:
        left = [(v.total - v.done) * self.run_s for v in views if not v.ended]
        if not left:
            return ""
        return f", about {round(max(left) / 60)} min left"

    # ------------------------------------------------------------------ results

    def active_jobs(self) -> tuple[str, ...]:
        return tuple(v.job_id for v in self.views.values() if not v.ended and v.job_id)

    def report(self) -> CampaignReport:
        """The campaign's counts; unfinished runs after every job ended make it ``aborted`` (exit 1)."""
        m = self.merged
        left = m.count("interrupted", "running", "pending")
        ended = not self.active_jobs() and not self.s.stop.is_set()
        return CampaignReport(
            aborted=f"{left} run(s) not done when their Slurm jobs ended" if ended and left else None,
            total=len(m.entries()),
            done=m.count("done"),
            failed=m.count("failed"),
            interrupted=m.count("interrupted", "running"),
            pending=m.count("pending"),
            stopped=self.s.stop.is_set(),
            problems=[
                (e.run_id, f"{e.status}: {e.message or e.outcome}")
                for e in m.entries()
                if e.status in ("failed", "interrupted")
            ],
        )

    def _save_state(self) -> None:
        write_model(slurm_dir(self.campaign_dir) / "jobs.json", self.state)


def _tail(path: Path, lines: int = 3) -> str:
    """The last lines of a job's output, to say why it ended (empty when there is none)."""
    try:
        last = path.read_text(errors="replace").strip().splitlines()[-lines:]
    except OSError:
        return ""
    return f" ({path}: {' | '.join(line.strip() for line in last)})" if last else ""


def _is_active(job: JobState | None) -> bool:
    return job is not None and job.active
