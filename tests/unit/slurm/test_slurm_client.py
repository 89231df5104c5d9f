"""``CommandSlurm``: the exact commands it runs and how it reads their answers (canned outputs)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from lem.runtime.slurm import CommandResult, CommandSlurm, JobState, SlurmError, parse_sacct, parse_squeue


class Canned:
    """A ``CommandRunner`` answering from a table keyed by the command name; records every call."""

    def __init__(self, answers: dict[str, CommandResult]) -> None:
        self.answers = answers
        self.calls: list[tuple[list[str], str | None]] = []

    def __call__(self, argv: Sequence[str], stdin: str | None, cwd: Path | None) -> CommandResult:
        self.calls.append((list(argv), stdin))
        return self.answers[argv[0]]


NO_ACCOUNTING = CommandResult(1, "", "Slurm accounting storage is disabled\n")


def test_submit_passes_the_script_on_stdin_and_reads_the_id(tmp_path: Path) -> None:
    runner = Canned({"sbatch": CommandResult(0, "4242;cluster\n", "")})
    assert CommandSlurm(runner).submit("#!/bin/bash\n", tmp_path) == "4242"
    assert runner.calls == [(["sbatch", "--parsable"], "#!/bin/bash\n")]


def test_a_refused_submission_says_what_sbatch_said(tmp_path: Path) -> None:
    runner = Canned({"sbatch": CommandResult(1, "", "sbatch: error: invalid partition specified: gpux\n")})
    with pytest.raises(SlurmError, match="invalid partition specified: gpux"):
        CommandSlurm(runner).submit("#!/bin/bash\n", tmp_path)


def test_states_from_squeue_without_accounting() -> None:
    squeue = CommandResult(
        0, "12|RUNNING|node7|None\n13|PENDING||Resources\n14|TIMEOUT|node8|TimeLimit\n", ""
    )
    runner = Canned({"squeue": squeue, "sacct": NO_ACCOUNTING})
    client = CommandSlurm(runner)
    states = client.states(["12", "13", "14", "15"])
    assert states == {
        "12": JobState("12", "RUNNING", "node7", None, "squeue"),
        "13": JobState("13", "PENDING", None, "Resources", "squeue"),
        "14": JobState("14", "TIMEOUT", "node8", "TimeLimit", "squeue"),
    }
    assert [s.active for s in states.values()] == [True, True, False]
    assert runner.calls[0][0] == ["squeue", "-h", "--states=all", "-o", "%i|%T|%N|%r", "-j", "12,13,14,15"]
    assert runner.calls[1][0][0] == "sacct"  # probed once for 15 ...
    client.states(["15"])
    assert [c[0][0] for c in runner.calls] == ["squeue", "sacct", "squeue"]  # ... and never again


def test_sacct_answers_for_jobs_squeue_forgot_where_accounting_exists() -> None:
    runner = Canned(
        {
            "squeue": CommandResult(1, "", "slurm_load_jobs error: Invalid job id specified\n"),
            "sacct": CommandResult(0, "20|CANCELLED by 0|node3|None\n21|COMPLETED|node4|None\n", ""),
        }
    )
    states = CommandSlurm(runner).states(["20", "21"])
    assert states == {
        "20": JobState("20", "CANCELLED", "node3", None, "sacct"),
        "21": JobState("21", "COMPLETED", "node4", None, "sacct"),
    }
    assert runner.calls[-1][0] == [
        "sacct", "-n", "-X", "-P", "-o", "JobID,State,NodeList,Reason", "-j", "20,21",
    ]  # fmt: skip


def test_a_failing_squeue_is_an_error() -> None:
    runner = Canned(
        {"squeue": CommandResult(1, "", "slurm_load_jobs error: Unable to contact slurm controller\n")}
    )
    with pytest.raises(SlurmError, match="Unable to contact slurm controller"):
        CommandSlurm(runner).states(["1"])


def test_parsers_skip_junk() -> None:
    assert parse_squeue("garbage\n\n7|RUNNING|n1|None\n") == {"7": JobState("7", "RUNNING", "n1", None)}
    assert parse_sacct("7.batch|COMPLETED|n1|None\n8||None assigned|\n") == {
        "8": JobState("8", "UNKNOWN", None, None, "sacct")
    }


def test_cancel_names_every_job() -> None:
    runner = Canned({"scancel": CommandResult(0, "", "")})
    CommandSlurm(runner).cancel(["3", "4"])
    assert runner.calls == [(["scancel", "3", "4"], None)]
