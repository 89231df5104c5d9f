"""What resume checks before it trusts a campaign directory (pure reads, no changes).

- Every ``done`` run's ``result.json`` must still be there, be a regular file (not a link),
  and hash to the SHA-256 the manifest recorded when the run was judged (a manifest written
  before checksums were kept: it must still be a valid result of that run). Each one that is
  not is a ``BrokenResult``, saying which and why.
- No run that is not ``done`` may still have a live harness process from an earlier attempt
  (``lem.runtime.process.ATTEMPT_FILE``): two processes measuring in one run directory would
  contaminate both energy readings.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from lem.campaign.manifest import Manifest, RunEntry
from lem.campaign.verdict import read_result_bytes
from lem.runtime.process import ProcessId, is_alive, recorded_attempt
from lem_harness.contract import RESULT_FILE


@dataclass(frozen=True)
class BrokenResult:
    run_id: str
    outcome: str  # result_missing | result_corrupt
    detail: str


def broken_results(manifest: Manifest) -> list[BrokenResult]:
    """The ``done`` runs whose ``result.json`` is missing or no longer what was judged."""
    broken = []
    for entry in manifest.entries():
        if entry.status == "done":
            problem = _check(manifest.campaign_dir, entry)
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


def live_attempts(manifest: Manifest, this_host: str) -> list[tuple[str, ProcessId]]:
    """``(run id, process)`` for every unfinished run whose earlier harness process still runs."""
    live = []
    for entry in manifest.entries():
        if entry.status == "done":
            continue
        process = recorded_attempt(manifest.campaign_dir / entry.run_id)
        if process is not None and is_alive(process, this_host):
            live.append((entry.run_id, process))
    return live
