"""A Slurm that runs in-process: ``submit`` queues a job, ``start`` runs its lane through the real
``launch_campaign`` with a ``FakeRuntime`` (what ``lem campaign lane`` does on a node), and the
job states are whatever the test sets. ``world`` holds actions played one per ``states`` call, so
a test decides exactly what the cluster does between two polls."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from lem.campaign.clock import FakeClock
from lem.campaign.expand import Expansion
from lem.campaign.lane_file import LaneFile, lane_request
from lem.campaign.launch import LaunchResult, LaunchServices, launch_campaign
from lem.campaign.manifest import Manifest
from lem.campaign.progress import LogProgress
from lem.config.campaign import CampaignConfig
from lem.runtime.slurm import JobState
from tests.support.fake_runtime import FakeRuntime

_LANE = re.compile(r" campaign lane (\S+) &$", re.MULTILINE)


@dataclass
class FakeSlurm:
    root: Path
    campaign: CampaignConfig
    expansion: Expansion
    clock: FakeClock = field(default_factory=FakeClock)
    runtime: FakeRuntime = field(init=False)
    state: dict[str, str] = field(default_factory=dict)  # job id -> Slurm state
    scripts: dict[str, str] = field(default_factory=dict)
    forgotten: set[str] = field(default_factory=set)  # gone from squeue, no accounting
    cancelled: list[str] = field(default_factory=list)
    world: list[Callable[[FakeSlurm], None]] = field(default_factory=list)
    polls: int = 0
    lines: list[str] = field(default_factory=list)
    next_id: int = 100

    def __post_init__(self) -> None:
        self.runtime = FakeRuntime(clock=self.clock.advance)

    # ------------------------------------------------------------------ SlurmClient

    def submit(self, script: str, cwd: Path) -> str:
        job_id = str(self.next_id)
        self.next_id += 1
        self.state[job_id] = "PENDING"
        self.scripts[job_id] = script
        return job_id

    def states(self, job_ids: Sequence[str]) -> dict[str, JobState]:
        if job_ids:
            self.polls += 1
            if self.world:
                self.world.pop(0)(self)
        return {
            j: JobState(j, self.state[j], "node1" if self.state[j] != "PENDING" else None)
            for j in job_ids
            if j in self.state and j not in self.forgotten
        }

    def cancel(self, job_ids: Sequence[str]) -> None:
        for job_id in job_ids:
            self.state[job_id] = "CANCELLED"
            self.cancelled.append(job_id)

    # ------------------------------------------------------------------ the cluster

    def lane_file(self, job_id: str) -> Path:
        match = _LANE.search(self.scripts[job_id])
        assert match is not None, self.scripts[job_id]
        return Path(match.group(1))

    def start(self, job_id: str, end_as: str = "COMPLETED", stop_at_run: int | None = None) -> LaunchResult:
        """Run the job's lane (stopped during its ``stop_at_run``-th run, if given), then set ``end_as``."""
        self.state[job_id] = "RUNNING"
        plan = LaneFile.model_validate_json(self.lane_file(job_id).read_text())
        stop = threading.Event()
        calls = len(self.runtime.calls)
        if stop_at_run is not None:
            self.runtime.during_run = lambda spec, ev: (
                stop.set() if len(self.runtime.calls) - calls == stop_at_run else None
            )
        services = LaunchServices(
            runtime=self.runtime,
            clock=self.clock,
            stop=stop,
            progress=LogProgress(self.clock, self.lines.append),
            probe_factory=_no_probe,
            inventory=lambda indices: ({}, None),
            registry=self.root / "node-live",
            host_env={},
        )
        # the job's id, as ``lem campaign lane`` reads it from SLURM_JOB_ID
        result = launch_campaign(lane_request(plan, self.campaign, self.expansion, job_id), services)
        self.runtime.during_run = None
        self.state[job_id] = end_as
        return result

    def mark_running(self, job_id: str, run_id: str) -> None:
        """Leave ``run_id`` ``running`` in the lane's manifest, as a lane killed with SIGKILL would."""
        plan = LaneFile.model_validate_json(self.lane_file(job_id).read_text())
        path = self.lane_file(job_id).with_name(f"{plan.lane}.manifest.json")
        manifest = Manifest.load(path)
        manifest.update(run_id, status="running", outcome=None, result_path=None)
        manifest.save(self.clock.time())
        manifest.close()


def _no_probe(uuids: Sequence[str]) -> object:
    from lem_harness.devices.base import DeviceUnavailableError

    raise DeviceUnavailableError("no NVML in unit tests")
