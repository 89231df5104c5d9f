"""Whether an earlier attempt's harness may still run: this host asks /proc; another host's
attempt is dead only when its Slurm job is known to have ended (or was requeued here)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lem.campaign.resume_check import Here, Verdict, judge_attempt
from lem.runtime.process import (
    ATTEMPT_FILE,
    Attempt,
    ProcessId,
    record_attempt,
    recorded_attempt,
    slurm_job_id,
)

NODE_B = "b" * 32  # this host
RUNNING_HERE = {4242}


def fake_alive(process: ProcessId, this_host: str) -> bool:
    return process.pid in RUNNING_HERE


def attempt(host: str, pid: int, job: str | None) -> Attempt:
    return Attempt(ProcessId(host, pid, 777, 1000), job)


@pytest.mark.parametrize(
    ("recorded", "here", "expected"),
    [
        (attempt(NODE_B, 4242, None), Here(NODE_B), ("alive", "still running")),
        (attempt(NODE_B, 5151, "101"), Here(NODE_B, "102"), ("ended", "it has ended")),
        # this host answers from /proc even for a job the orchestrator says ended
        (attempt(NODE_B, 4242, "101"), Here(NODE_B, "102", frozenset({"101"})), ("alive", "still running")),
        (
            attempt("node-a", 4242, "101"),
            Here(NODE_B, "102", frozenset({"100", "101"})),
            ("ended", "its Slurm job 101 has ended"),
        ),
        (
            attempt("node-a", 4242, "102"),
            Here(NODE_B, "102"),
            ("ended", "its Slurm job 102 was requeued and now runs on this node"),
        ),
        (
            attempt("node-a", 4242, "77"),
            Here(NODE_B, "102", frozenset({"101"})),
            ("unknown", "recorded by Slurm job 77 on another node, not known to have ended"),
        ),
        (
            attempt("node-a", 4242, None),
            Here(NODE_B, "102", frozenset({"101"})),
            ("unknown", "recorded on another host, where this process cannot look"),
        ),
    ],
)
def test_an_attempt_is_judged_by_its_host_and_its_slurm_job(
    recorded: Attempt, here: Here, expected: tuple[Verdict, str]
) -> None:
    assert judge_attempt(recorded, here, fake_alive) == expected


def test_the_attempt_file_records_the_slurm_job_and_reads_back(tmp_path: Path) -> None:
    process = ProcessId("node-a", 4242, 777, 1000)
    record_attempt(tmp_path, process, "5123")
    assert (tmp_path / ATTEMPT_FILE).read_text() == "node-a:4242:777\nslurm-job 5123\n"
    assert recorded_attempt(tmp_path) == Attempt(ProcessId("node-a", 4242, 777, -1), "5123")
    record_attempt(tmp_path, process)  # outside Slurm: the first line alone, as before
    assert (tmp_path / ATTEMPT_FILE).read_text() == "node-a:4242:777\n"
    assert recorded_attempt(tmp_path) == Attempt(ProcessId("node-a", 4242, 777, -1), None)
    (tmp_path / ATTEMPT_FILE).write_text("node-a:4242:777\nslurm-job 51;rm\n")
    assert recorded_attempt(tmp_path) == Attempt(ProcessId("node-a", 4242, 777, -1), None)


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"SLURM_JOB_ID": "5123"}, "5123"),
        ({"SLURM_JOB_ID": " 42\n"}, "42"),
        ({"SLURM_JOB_ID": "x1"}, None),
        ({}, None),
    ],
)
def test_the_slurm_job_comes_from_slurm_job_id(env: dict[str, str], expected: str | None) -> None:
    assert slurm_job_id(env) == expected
