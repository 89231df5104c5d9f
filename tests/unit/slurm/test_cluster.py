"""The Slurm orchestrator with an in-process Slurm: submit, follow, merge, time limits, resume, stop."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from lem.campaign.cluster import ClusterRequest, ClusterResult, ClusterServices, run_cluster
from lem.campaign.expand import expand_campaign
from lem.campaign.manifest import MANIFEST_FILE, Manifest
from lem.campaign.plan import plan_campaign
from lem.runtime.process import ProcessId, host_id, record_attempt, start_ticks
from tests.support.fake_slurm import FakeSlurm
from tests.unit.campaign.helpers import campaign_config

LANE0 = ["pytorch-bs1-c01", "pytorch-bs1-c02"]
LANE1 = ["pytorch-bs2-c01", "pytorch-bs2-c02"]


class Cluster:
    def __init__(self, root: Path, **slurm: Any) -> None:
        self.root = root
        self.campaign = campaign_config(
            slurm={"pin_configs": True, "max_nodes": 2, "launcher": "local", **slurm}
        )
        self.expansion = expand_campaign(self.campaign, root)
        self.slurm = FakeSlurm(root, self.campaign, self.expansion)
        self.notes: list[str] = []

    @property
    def campaign_dir(self) -> Path:
        return self.root / "results" / "demo"

    def run(self, *, resume: bool = False, detach: bool = False, **request_fields: Any) -> ClusterResult:
        fields = {"campaign_file": self.root / "campaign.yaml", "project_root": self.root, **request_fields}
        request = ClusterRequest(
            campaign=self.campaign,
            expansion=self.expansion,
            runs=plan_campaign(self.campaign, self.expansion),
            results_root=self.root / "results",
            resume=resume,
            detach=detach,
            python="/opt/lem/bin/python",
            **fields,
        )
        services = ClusterServices(
            self.slurm, self.slurm.clock, stop_event(self), self.notes.append, self.root / "live"
        )
        self.services = services
        return run_cluster(request, services)

    def merged(self) -> dict[str, tuple[str, str | None]]:
        manifest = Manifest.load(self.campaign_dir / MANIFEST_FILE)
        return {e.run_id: (e.status, e.message) for e in manifest.entries()}

    def jobs(self) -> dict[str, list[str]]:
        state = json.loads((self.campaign_dir / "slurm" / "jobs.json").read_text())
        return {lane["lane"]: lane["job_ids"] for lane in state["lanes"]}


def stop_event(cluster: Cluster) -> Any:
    import threading

    cluster.stop = threading.Event()
    return cluster.stop


def test_two_lanes_are_submitted_followed_and_merged(tmp_path: Path) -> None:
    c = Cluster(tmp_path)
    c.slurm.world = [lambda s: None, lambda s: (s.start("100"), s.start("101"))]
    result = c.run()
    assert (result.report.done, result.report.exit_code, result.submitted) == (4, 0, ("100", "101"))
    assert c.jobs() == {"lane-00": ["100"], "lane-01": ["101"]}
    assert c.merged() == dict.fromkeys([LANE0[0], LANE1[0], LANE0[1], LANE1[1]], ("done", None))
    assert c.notes[:2] == [
        "submitted lane-00 (2 runs) as Slurm job 100",
        "submitted lane-01 (2 runs) as Slurm job 101",
    ]
    assert c.notes[2:] == [
        "0/4 runs done, about 120 min left | lane-00 (job 100 PENDING): 0/2 done; "
        "lane-01 (job 101 PENDING): 0/2 done",
        "4/4 runs done | lane-00 (job 100 COMPLETED on node1): 2/2 done; "
        "lane-01 (job 101 COMPLETED on node1): 2/2 done",
    ]
    assert c.slurm.polls == 2  # one squeue call per poll, whatever the number of jobs
    assert c.slurm.clock.sleeps == [15.0]  # the poll interval
    script = c.slurm.scripts["100"]
    assert "#SBATCH --time=" + str(2 * 60 + 10) in script  # 2 runs x timeout 3600 s + 10 setup minutes
    assert "/opt/lem/bin/python -m lem campaign lane " in script
    lane = json.loads((c.campaign_dir / "slurm" / "lane-00.json").read_text())
    assert [r["run_id"] for r in lane["runs"]] == LANE0
    assert (lane["runtime"], lane["campaign_id"]) == ("local", result.campaign_id)


def test_a_job_at_its_time_limit_leaves_its_run_interrupted_never_done(tmp_path: Path) -> None:
    c = Cluster(tmp_path)

    def world(s: FakeSlurm) -> None:
        s.start("100")
        s.start("101", end_as="TIMEOUT")
        s.mark_running("101", LANE1[1])  # killed while its second run ran

    c.slurm.world = [world]
    result = c.run()
    merged = c.merged()
    assert merged[LANE1[1]] == ("interrupted", "Slurm job 101 ended TIMEOUT")
    assert [merged[r][0] for r in [*LANE0, LANE1[0]]] == ["done"] * 3
    assert (result.report.done, result.report.interrupted, result.report.exit_code) == (3, 1, 1)
    assert result.report.aborted == "1 run(s) not done when their Slurm jobs ended"
    assert "lane-01: Slurm job 101 ended TIMEOUT" in c.notes  # no job output in the fake cluster


def test_a_failed_job_is_reported_with_the_end_of_its_output(tmp_path: Path) -> None:
    c = Cluster(tmp_path)

    def world(s: FakeSlurm) -> None:
        s.start("100")
        s.state["101"] = "FAILED"
        out = c.campaign_dir / "slurm" / "lane-01.out"
        out.write_text(
            "lem lane-01 on node1\nError: llenergymeasure/pytorch:latest is outdated\n  → rebuild it\n"
        )

    c.slurm.world = [world]
    result = c.run()
    out = c.campaign_dir / "slurm" / "lane-01.out"
    assert (
        f"lane-01: Slurm job 101 ended FAILED ({out}: lem lane-01 on node1 | "
        "Error: llenergymeasure/pytorch:latest is outdated | → rebuild it)"
    ) in c.notes
    assert c.merged()[LANE1[0]] == ("pending", None) and result.report.exit_code == 1


def test_a_lane_stopped_by_scancel_marks_its_run_interrupted_with_the_job_state(tmp_path: Path) -> None:
    c = Cluster(tmp_path)
    c.slurm.world = [lambda s: (s.start("100"), s.start("101", end_as="CANCELLED", stop_at_run=1))]
    result = c.run()
    status, message = c.merged()[LANE1[0]]
    assert (
        status == "interrupted"
        and message is not None
        and message.startswith("Slurm job 101 ended CANCELLED: ")
    )
    assert c.merged()[LANE1[1]] == ("pending", None)  # never started
    assert result.report.exit_code == 1


def test_resume_collects_adopts_and_resubmits(tmp_path: Path) -> None:
    c = Cluster(tmp_path, pin_configs=False, max_nodes=4)  # one run per lane: jobs 100..103
    first = c.run(detach=True)
    assert first.active_jobs == ("100", "101", "102", "103") and first.report.exit_code == 0
    c.slurm.start("100")
    c.slurm.forgotten.add("100")  # done, and forgotten by Slurm: collected from its manifest
    c.slurm.state["101"] = "RUNNING"  # still running: adopted
    c.slurm.forgotten.add("102")  # vanished without an exit file: lost, resubmitted
    c.slurm.start("103", end_as="PREEMPTED", stop_at_run=1)  # preempted: resubmitted
    c.slurm.world = [lambda s: None, lambda s: (s.start("101"), s.start("104"), s.start("105"))]
    result = c.run(resume=True)
    assert (result.collected, result.adopted, result.submitted) == (("lane-00",), ("101",), ("104", "105"))
    assert c.jobs() == {
        "lane-00": ["100"],
        "lane-01": ["101"],
        "lane-02": ["102", "104"],
        "lane-03": ["103", "105"],
    }
    assert set(c.merged().values()) == {("done", None)}
    assert result.report.exit_code == 0
    assert "adopted Slurm job 101 (still running)" in c.notes


def test_resume_adopts_a_lane_whose_harness_still_runs_and_leaves_its_run_directory_alone(
    tmp_path: Path,
) -> None:
    """The orchestrator dies while lane-01's job runs its first run; ``--resume`` adopts the job.

    The run's harness process is alive (its attempt file names a live process on this host) and
    is writing a temporary file: the merged manifest only mirrors the lanes, so resuming it must
    neither refuse, nor sweep the lane's temporary file, nor mark the run ``interrupted``.
    """
    c = Cluster(tmp_path)
    run_dir = c.campaign_dir / LANE1[0]
    in_flight = run_dir / ".status.json.ab12cd34.tmp"  # what a harness writing status.json leaves
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])

    def lanes_running(s: FakeSlurm) -> None:
        s.state["100"] = "RUNNING"
        s.start("101", end_as="RUNNING", stop_at_run=1)
        s.mark_running("101", LANE1[0])  # lane-01 is in its first run
        ticks = start_ticks(sleeper.pid)
        assert ticks is not None
        record_attempt(run_dir, ProcessId(host_id(), sleeper.pid, ticks, os.getuid()))
        in_flight.write_text("{}")
        c.stop.set()  # the orchestrator goes away; the jobs keep running

    seen: dict[str, object] = {}

    def at_reconcile(s: FakeSlurm) -> None:
        seen["merged"] = c.merged()[LANE1[0]]
        seen["in_flight"] = in_flight.exists()

    def lanes_end(s: FakeSlurm) -> None:
        sleeper.kill()
        sleeper.wait()
        s.start("100")
        s.start("101")  # the lane's own resume runs what its job left

    try:
        c.slurm.world = [lanes_running]
        first = c.run()
        assert (first.report.stopped, first.active_jobs) == (True, ("100", "101"))
        before = c.merged()[LANE1[0]]
        assert before[0] == "running"
        c.slurm.world = [at_reconcile, lanes_end]
        result = c.run(resume=True)
    finally:
        sleeper.kill()
        sleeper.wait()
    assert (result.collected, result.adopted, result.submitted) == ((), ("100", "101"), ())
    assert seen == {"merged": before, "in_flight": True}  # as the lane left it; nothing swept
    assert "adopted Slurm job 101 (still running)" in c.notes
    assert c.jobs() == {"lane-00": ["100"], "lane-01": ["101"]}  # nothing resubmitted
    assert set(c.merged().values()) == {("done", None)} and result.report.exit_code == 0


def test_an_exit_file_tells_an_ended_job_from_a_lost_one(tmp_path: Path) -> None:
    c = Cluster(tmp_path)

    def world(s: FakeSlurm) -> None:
        for job in ("100", "101"):
            s.start(job)
            s.forgotten.add(job)
        (c.campaign_dir / "slurm" / "lane-00.exit").write_text("0\n")

    c.slurm.world = [world]
    result = c.run()
    assert "4/4 runs done | lane-00 (job 100 EXIT 0): 2/2 done; lane-01 (job 101 LOST): 2/2 done" in c.notes
    assert result.report.exit_code == 0


def test_a_stop_request_returns_with_the_jobs_still_running(tmp_path: Path) -> None:
    c = Cluster(tmp_path)

    def world(s: FakeSlurm) -> None:
        s.state["100"] = s.state["101"] = "RUNNING"
        c.stop.set()

    c.slurm.world = [world]
    result = c.run()
    assert (result.report.stopped, result.report.exit_code, result.active_jobs) == (True, 130, ("100", "101"))
    assert c.slurm.cancelled == []  # cancelling is the command's offer, not the orchestrator's decision


def test_a_lane_running_on_a_node_keeps_its_campaign_live_there(tmp_path: Path) -> None:
    from lem.campaign.liveness import LiveCampaign, live_campaign_ids, live_key

    with LiveCampaign(tmp_path, live_key("demo-1234abcd", "lane-03")), LiveCampaign(tmp_path, "other"):
        assert live_campaign_ids(tmp_path) == {"demo-1234abcd", "other"}  # its containers are not orphans


def test_a_lane_gets_the_campaign_files_project_as_its_root_wherever_lem_was_started(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "project"
    (project / "configs").mkdir(parents=True)
    (project / "pyproject.toml").write_text("")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # where the orchestrator runs does not matter
    c = Cluster(tmp_path)
    c.run(detach=True, campaign_file=project / "configs" / "campaign.yaml", project_root=None)
    for lane in ("lane-00", "lane-01"):
        plan = json.loads((c.campaign_dir / "slurm" / f"{lane}.json").read_text())
        assert plan["project_root"] == str(project)  # as LaunchRequest decides it on one host
