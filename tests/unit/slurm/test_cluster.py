"""The Slurm orchestrator with an in-process Slurm: submit, follow, merge, time limits, resume, stop."""

from __future__ import annotations

import hashlib
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
from lem.campaign.session import AttemptStillRunning
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


# ---------------------------------------------------------------------------- resubmission on resume


def _temp_files(directory: Path) -> list[str]:
    return sorted(str(p.relative_to(directory)) for p in directory.rglob(".*.tmp"))


def _died_on_node_a(c: Cluster, job: str, attempt_job: str | None) -> None:
    """lane-01's job dies hard on node-a during its second run: the lane manifest still says
    ``running`` and the run's attempt file names a harness on node-a (recorded by ``attempt_job``)."""

    def world(s: FakeSlurm) -> None:
        s.start("100")
        s.start(job, end_as="NODE_FAIL", stop_at_run=2)
        s.mark_running(job, LANE1[1])
        record_attempt(c.campaign_dir / LANE1[1], ProcessId("node-a", 4242, 777, 1000), attempt_job)

    c.slurm.world = [world]
    first = c.run()
    assert c.merged()[LANE1[0]][0] == "done" and c.merged()[LANE1[1]][0] == "interrupted"
    assert first.report.exit_code == 1


def test_a_lane_resubmitted_to_another_node_reruns_a_run_whose_job_ended_there(tmp_path: Path) -> None:
    c = Cluster(tmp_path)
    _died_on_node_a(c, "101", attempt_job="101")
    c.slurm.world = [lambda s: None, lambda s: s.start("102")]  # the new job runs here, not on node-a
    calls = len(c.slurm.runtime.calls)
    result = c.run(resume=True)
    assert (result.collected, result.adopted, result.submitted) == (("lane-00",), (), ("102",))
    lane = json.loads((c.campaign_dir / "slurm" / "lane-01.json").read_text())
    assert lane["ended_jobs"] == ["101"]  # the orchestrator tells the lane its earlier job ended
    assert (
        "resume: pytorch-bs2-c02: its earlier harness (pid 4242 on host node-a) is gone: "
        + ("its Slurm job 101 has ended")
        in c.slurm.lines
    )
    # the interrupted run ran again; the done one kept its result (checked in the campaign directory)
    assert [s.run_id for s in c.slurm.runtime.calls[calls:]] == [LANE1[1]]
    assert set(c.merged().values()) == {("done", None)} and result.report.exit_code == 0


def test_a_harness_on_another_node_of_a_job_not_known_to_have_ended_is_refused(tmp_path: Path) -> None:
    c = Cluster(tmp_path)
    _died_on_node_a(c, "101", attempt_job="77")  # a job this campaign never submitted for the lane
    seen: dict[str, str] = {}

    def start_102(s: FakeSlurm) -> None:
        with pytest.raises(AttemptStillRunning) as refused:
            s.start("102")
        seen["error"] = str(refused.value)
        s.state["102"] = "FAILED"

    c.slurm.world = [lambda s: None, start_102]
    calls = len(c.slurm.runtime.calls)
    result = c.run(resume=True)
    attempt_file = c.campaign_dir / LANE1[1] / ".attempt-process"
    assert seen["error"] == (
        f"run {LANE1[1]} of {c.campaign_dir} has a harness process from an earlier attempt that this "
        "process cannot see (pid 4242 on host node-a, recorded by Slurm job 77 on another node, not known "
        "to have ended). Two processes would measure at once: check that Slurm job 77 has ended "
        f"(`squeue -j 77`, `sacct -j 77`), then delete {attempt_file} and resume"
    )
    assert len(c.slurm.runtime.calls) == calls  # nothing measured next to it
    assert c.merged()[LANE1[1]] == ("interrupted", "Slurm job 102 ended FAILED: stopped by request")
    assert result.report.exit_code == 1


def test_a_collected_lane_whose_results_are_broken_is_resubmitted_and_runs_them_again(
    tmp_path: Path,
) -> None:
    c = Cluster(tmp_path)
    c.slurm.world = [lambda s: (s.start("100"), s.start("101"))]
    assert c.run().report.exit_code == 0
    missing = c.campaign_dir / LANE0[0] / "result.json"
    changed = c.campaign_dir / LANE0[1] / "result.json"
    missing.unlink()
    judged = Manifest.load(c.campaign_dir / "slurm" / "lane-00.manifest.json").entry(LANE0[1]).result_sha256
    assert judged is not None
    changed.write_text('{"edited": true}\n')
    now = hashlib.sha256(changed.read_bytes()).hexdigest()
    c.slurm.world = [lambda s: None, lambda s: s.start("102")]
    calls = len(c.slurm.runtime.calls)
    c.notes.clear()
    result = c.run(resume=True)
    assert (result.collected, result.submitted) == (("lane-01",), ("102",))
    assert c.notes[:4] == [
        f"lane-00: {LANE0[0]} is not intact ({missing} is missing): the lane runs again",
        f"lane-00: {LANE0[1]} is not intact ({changed} changed since it was judged "
        f"(SHA-256 {now[:12]}…, manifest {judged[:12]}…)): the lane runs again",
        "submitted lane-00 (2 runs) as Slurm job 102",
        "lane-01: every run done already",
    ]
    assert [s.run_id for s in c.slurm.runtime.calls[calls:]] == LANE0  # the lane's own resume re-ran both
    assert missing.is_file() and json.loads(changed.read_text())["run_id"] == LANE0[1]
    assert set(c.merged().values()) == {("done", None)} and result.report.exit_code == 0


def test_a_lane_sweeps_the_temporary_files_of_its_own_runs_only(tmp_path: Path) -> None:
    c = Cluster(tmp_path)
    slurm = c.campaign_dir / "slurm"
    leftovers = [
        f"{LANE0[0]}/.status.json.aaaa1111.tmp",  # lane-00's: its job is still running
        f"{LANE1[0]}/.result.json.bbbb2222.tmp",  # lane-01's, left when its job was cancelled
        f"{LANE1[1]}/.spec.json.cccc3333.tmp",
        "slurm/.lane-01.manifest.json.dddd4444.tmp",
        "slurm/.lane-00.manifest.json.eeee5555.tmp",
        ".manifest.json.ffff6666.tmp",  # the orchestrator's own
    ]

    def first(s: FakeSlurm) -> None:
        s.state["100"] = "RUNNING"
        s.start("101", end_as="CANCELLED", stop_at_run=1)
        for name in leftovers:
            (c.campaign_dir / name).parent.mkdir(parents=True, exist_ok=True)
            (c.campaign_dir / name).write_text("{}")
        c.stop.set()

    seen: dict[str, list[str]] = {}

    def lanes_end(s: FakeSlurm) -> None:
        s.start("102")  # lane-01 again, next to lane-00's job
        seen["after lane-01"] = _temp_files(c.campaign_dir)
        s.start("100")

    c.slurm.world = [first]
    c.run()
    c.slurm.world = [lambda s: None, lanes_end]
    result = c.run(resume=True)
    assert (result.adopted, result.submitted) == (("100",), ("102",))
    assert seen["after lane-01"] == sorted([leftovers[0], leftovers[4], leftovers[5]])
    assert _temp_files(c.campaign_dir) == [leftovers[5]]  # lane-00 swept its own; nobody the orchestrator's
    assert slurm.is_dir() and result.report.exit_code == 0
