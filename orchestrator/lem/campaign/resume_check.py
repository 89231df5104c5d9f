"""What resume checks before it trusts a campaign directory (pure reads, no changes).

- Every ``done`` run's ``result.json`` must still be there, be a regular file (not a link),
  and hash to the SHA-256 the manifest recorded when the run was judged (a manifest written
  before checksums were kept: it must still be a valid result of that run). Each one that is
  not is a ``BrokenResult``, saying which and why.
- No run that is not ``done`` may still have a live harness process from an earlier attempt
  (``lem.runtime.process.ATTEMPT_FILE``): two processes measuring in one run directory would
  contaminate both energy readings. ``judge_attempt`` says whether it lives:

  - recorded on this host: ``/proc`` answers (pid + start time) — ``alive`` or ``ended``;
  - recorded on another host by a Slurm job that has ended (one of ``Here.ended_jobs``, which
    the orchestrator passes to a lane it resubmits: that lane's earlier jobs, each found no
    longer queued or running before the lane was submitted again): ``ended`` — Slurm kills a
    job's processes when the job ends;
  - recorded on another host by this very job (``SLURM_JOB_ID``): ``ended`` — a one-node job
    found on another node was requeued, and Slurm ended its first start;
  - anything else on another host (no Slurm job recorded, or a job not known to have ended):
    ``unknown``, refused like a live one, with what to check and what to delete.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from lem.campaign.manifest import Manifest, RunEntry
from lem.campaign.verdict import read_result_bytes
from lem.runtime.process import ATTEMPT_FILE, Attempt, ProcessId, is_alive, recorded_attempt
from lem_harness.contract import RESULT_FILE


@dataclass(frozen=True)
class BrokenResult:
    run_id: str
    outcome: str  # result_missing | result_corrupt
    detail: str


def broken_results(manifest: Manifest, campaign_dir: Path) -> list[BrokenResult]:
    """The ``done`` runs whose ``result.json`` is missing or no longer what was judged.

    ``campaign_dir`` holds the run directories (a Slurm lane's manifest lives in ``slurm/``)."""
    return broken_entries(campaign_dir, manifest.entries())


def broken_entries(campaign_dir: Path, entries: Iterable[RunEntry]) -> list[BrokenResult]:
    """``broken_results`` for some entries (a Slurm lane's, read from its own manifest)."""
    broken = []
    for entry in entries:
        if entry.status == "done":
            problem = _check(campaign_dir, entry)
            if problem is not None:
                broken.append(problem)
    return broken


def _check(campaign_dir: Path, entry: RunEntry) -> BrokenResult | None:
    run_dir = campaign_dir / entry.run_id
    result, problem, sha = read_result_bytes(run_dir, entry.run_id)
    if sha is None:
        why = (problem or "").partition(": ")[2]
        missing = not os.path.lexists(run_dir / RESULT_FILE)
        return BrokenResult(
            entry.run_id, "result_missing", f"{run_dir / RESULT_FILE} is missing" if missing else why
        )
    if entry.result_sha256 is not None and sha != entry.result_sha256:
        return BrokenResult(
            entry.run_id,
            "result_corrupt",
            f"{run_dir / RESULT_FILE} changed since it was judged (SHA-256 {sha[:12]}…, "
            f"manifest {entry.result_sha256[:12]}…)",
        )
    if result is None or result.status != "ok":
        return BrokenResult(entry.run_id, "result_corrupt", problem or f"{run_dir / RESULT_FILE} is not ok")
    return None


Verdict = Literal["alive", "ended", "unknown"]


@dataclass(frozen=True)
class Here:
    """Who asks: this host, the Slurm job this process runs in, and the jobs known to have ended."""

    host: str
    slurm_job: str | None = None
    ended_jobs: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True)
class AttemptCheck:
    run_id: str
    attempt: Attempt
    verdict: Verdict
    why: str  # one clause: how the verdict was reached

    @property
    def attempt_file(self) -> str:
        return f"{self.run_id}/{ATTEMPT_FILE}"


def judge_attempt(
    attempt: Attempt, here: Here, alive: Callable[[ProcessId, str], bool] = is_alive
) -> tuple[Verdict, str]:
    """Whether an earlier attempt's harness may still run (rules in the module docstring)."""
    p, job = attempt.process, attempt.slurm_job
    if p.host == here.host:
        return ("alive", "still running") if alive(p, here.host) else ("ended", "it has ended")
    if job is not None and job in here.ended_jobs:
        return "ended", f"its Slurm job {job} has ended"
    if job is not None and job == here.slurm_job:
        return "ended", f"its Slurm job {job} was requeued and now runs on this node"
    if job is not None:
        return "unknown", f"recorded by Slurm job {job} on another node, not known to have ended"
    return "unknown", "recorded on another host, where this process cannot look"


def check_attempts(
    manifest: Manifest,
    campaign_dir: Path,
    here: Here,
    alive: Callable[[ProcessId, str], bool] = is_alive,
) -> list[AttemptCheck]:
    """Every unfinished run's recorded earlier attempt (in ``campaign_dir/<run id>``), judged."""
    checks = []
    for entry in manifest.entries():
        if entry.status == "done":
            continue
        attempt = recorded_attempt(campaign_dir / entry.run_id)
        if attempt is not None:
            checks.append(AttemptCheck(entry.run_id, attempt, *judge_attempt(attempt, here, alive)))
    return checks
