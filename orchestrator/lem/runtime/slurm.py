"""Slurm's commands behind one small protocol: submit a script, read job states, cancel jobs.

``SlurmClient`` is what the campaign orchestrator sees; ``CommandSlurm`` implements it with the
Slurm client commands, run through a ``CommandRunner`` (``subprocess.run`` by default, canned
outputs in unit tests):

- ``sbatch --parsable`` (the script on stdin) → the job id;
- ``squeue -h --states=all`` → jobs the controller still knows, ended ones included (Slurm keeps
  them ``MinJobAge`` seconds, 300 by default);
- ``sacct -n -X -P`` for the ids squeue no longer knows, only where accounting answers
  (slurmdbd); detected once, with the first query;
- ``scancel``.

A job that neither knows is absent from ``states``' answer: the orchestrator decides with the
job's own exit file (``lem.campaign.cluster``) whether it ended or was lost.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from lem.runtime.errors import LemRuntimeError

ACTIVE_STATES = frozenset(
    {
        "PENDING",
        "CONFIGURING",
        "RUNNING",
        "COMPLETING",
        "SUSPENDED",
        "REQUEUED",
        "REQUEUE_HOLD",
        "REQUEUE_FED",
        "RESIZING",
        "SIGNALING",
        "STAGE_OUT",
        "STOPPED",
        "RESV_DEL_HOLD",
    }
)
# Ended without finishing its work on purpose: the lane's unfinished runs are `interrupted`.
CUT_SHORT_STATES = frozenset({"TIMEOUT", "PREEMPTED", "CANCELLED", "NODE_FAIL", "DEADLINE", "BOOT_FAIL"})
COMMAND_TIMEOUT_S = 60.0


class SlurmError(LemRuntimeError):
    """A Slurm command failed (controller down, bad option, permission)."""


@dataclass(frozen=True)
class JobState:
    job_id: str
    state: str  # Slurm's base state: RUNNING, PENDING, COMPLETED, TIMEOUT, CANCELLED, ...
    node: str | None = None
    reason: str | None = None
    source: str = "squeue"  # squeue | sacct

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES


class SlurmClient(Protocol):
    def submit(self, script: str, cwd: Path) -> str: ...

    def states(self, job_ids: Sequence[str]) -> dict[str, JobState]: ...

    def cancel(self, job_ids: Sequence[str]) -> None: ...


@dataclass(frozen=True)
class CommandResult:
    returncode: int
    stdout: str
    stderr: str


CommandRunner = Callable[[Sequence[str], str | None, Path | None], CommandResult]


def run_command(argv: Sequence[str], stdin: str | None, cwd: Path | None) -> CommandResult:
    """Run a Slurm command (no shell); a missing command is a ``SlurmError`` that says what to do."""
    try:
        done = subprocess.run(
            list(argv),
            input=stdin,
            capture_output=True,
            text=True,
            cwd=cwd,
            timeout=COMMAND_TIMEOUT_S,
            check=False,
        )
    except FileNotFoundError as e:
        raise SlurmError(
            f"{argv[0]} is not installed here", "run lem on a Slurm login node (or use --runtime docker)"
        ) from e
    except subprocess.TimeoutExpired as e:
        raise SlurmError(
            f"{argv[0]} did not answer in {COMMAND_TIMEOUT_S:g} s", "check the controller"
        ) from e
    return CommandResult(done.returncode, done.stdout, done.stderr)


class CommandSlurm:
    """``SlurmClient`` over sbatch / squeue / sacct / scancel."""

    def __init__(self, runner: CommandRunner = run_command) -> None:
        self._run = runner
        self._accounting: bool | None = None
        self.calls: dict[str, int] = {"sbatch": 0, "squeue": 0, "sacct": 0, "scancel": 0}

    def submit(self, script: str, cwd: Path) -> str:
        out = self._call(["sbatch", "--parsable"], script, cwd)
        job_id = out.strip().split(";", 1)[0]
        if not job_id.isdigit():
            raise SlurmError(
                f"sbatch answered {out.strip()[:200]!r}, not a job id", "check the sbatch script"
            )
        return job_id

    def states(self, job_ids: Sequence[str]) -> dict[str, JobState]:
        if not job_ids:
            return {}
        found = self._squeue(job_ids)
        missing = [j for j in job_ids if j not in found]
        if missing and self.accounting():
            found.update(self._sacct(missing))
        return found

    def cancel(self, job_ids: Sequence[str]) -> None:
        if job_ids:
            self._call(["scancel", *job_ids], None, None)

    def accounting(self) -> bool:
        """Whether ``sacct`` answers (slurmdbd configured); asked once."""
        if self._accounting is None:
            self.calls["sacct"] += 1
            probe = self._run(["sacct", "-n", "-X", "-P", "-o", "JobID", "-j", "1"], None, None)
            self._accounting = probe.returncode == 0
        return self._accounting

    def _squeue(self, job_ids: Sequence[str]) -> dict[str, JobState]:
        argv = ["squeue", "-h", "--states=all", "-o", "%i|%T|%N|%r", "-j", ",".join(job_ids)]
        self.calls["squeue"] += 1
        done = self._run(argv, None, None)
        if done.returncode != 0 and "Invalid job id" not in done.stderr:
            raise SlurmError(f"squeue failed: {done.stderr.strip()[:300]}", "check that slurmctld answers")
        return parse_squeue(done.stdout)

    def _sacct(self, job_ids: Sequence[str]) -> dict[str, JobState]:
        argv = ["sacct", "-n", "-X", "-P", "-o", "JobID,State,NodeList,Reason", "-j", ",".join(job_ids)]
        self.calls["sacct"] += 1
        done = self._run(argv, None, None)
        return parse_sacct(done.stdout) if done.returncode == 0 else {}

    def _call(self, argv: list[str], stdin: str | None, cwd: Path | None) -> str:
        self.calls[argv[0]] = self.calls.get(argv[0], 0) + 1
        done = self._run(argv, stdin, cwd)
        if done.returncode != 0:
            raise SlurmError(
                f"{argv[0]} failed (exit {done.returncode}): {done.stderr.strip()[:500]}",
                "check the slurm section of the campaign (partition, account, qos) with `sinfo`",
            )
        return done.stdout


def parse_squeue(text: str) -> dict[str, JobState]:
    """``%i|%T|%N|%r`` lines → states by job id."""
    out: dict[str, JobState] = {}
    for line in text.splitlines():
        parts = line.strip().split("|")
        if len(parts) != 4 or not parts[0]:
            continue
        job_id, state, node, reason = parts
        out[job_id] = JobState(job_id, state, node or None, _reason(reason), "squeue")
    return out


def parse_sacct(text: str) -> dict[str, JobState]:
    """``JobID|State|NodeList|Reason`` lines → states (``CANCELLED by 0`` → ``CANCELLED``)."""
    out: dict[str, JobState] = {}
    for line in text.splitlines():
        parts = line.strip().split("|")
        if len(parts) != 4 or not parts[0].isdigit():
            continue
        job_id, state, node, reason = parts
        base = state.split()[0] if state.strip() else "UNKNOWN"
        out[job_id] = JobState(
            job_id, base, None if node in ("", "None assigned") else node, _reason(reason), "sacct"
        )
    return out


def _reason(text: str) -> str | None:
    return None if text in ("", "None", "(null)") else text
