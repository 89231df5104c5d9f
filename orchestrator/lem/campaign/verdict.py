"""How a run ended: the runtime's outcome and the ``result.json`` the harness left, judged together.

A run is ``done`` only when the runtime says ``ok`` and a valid result of the same run, in a
contract this host understands, says ``ok``. A stop request that killed the run makes it
``interrupted``. Everything else is ``failed``, with one message said once: the harness's own
error (``Type: message``) when its ``result.json`` has one, else what the runtime saw (timeout,
OOM kill, exit code with the last log line). ``error_type`` names the failure's class (the
harness's exception type, or the runtime outcome) for the circuit breaker.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import ValidationError

from lem.runtime.spec import RunOutcome
from lem_harness.contract import CONTRACT_VERSION, RESULT_FILE, RunResult, contract_major
from lem_harness.fileio import UnsafePathError, read_bytes_nofollow

Status = Literal["done", "failed", "interrupted"]


@dataclass(frozen=True)
class Verdict:
    status: Status
    outcome: str  # the runtime's status, or result_missing / result_invalid found here
    message: str
    result: RunResult | None
    error_type: str | None = None  # the harness's exception type, else the runtime outcome; None when done
    result_sha256: str | None = None  # of the result.json judged


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_result(run_dir: Path, run_id: str) -> tuple[RunResult | None, str | None]:
    """The run's result, or None and why it cannot be used."""
    result, problem, _ = read_result_bytes(run_dir, run_id)
    return result, problem


def read_result_bytes(run_dir: Path, run_id: str) -> tuple[RunResult | None, str | None, str | None]:
    """``read_result`` plus the SHA-256 of the bytes read (None when nothing could be read)."""
    path = run_dir / RESULT_FILE
    try:
        data = read_bytes_nofollow(path)
    except FileNotFoundError:
        return None, f"result_missing: {path} was not written", None
    except UnsafePathError:
        return None, f"result_invalid: {path} is a symbolic link (not followed)", None
    except OSError as e:
        return None, f"result_missing: {path} cannot be read ({e.strerror or e})", None
    result, problem = _parse(data, path, run_id)
    return result, problem, sha256_hex(data)


def _parse(data: bytes, path: Path, run_id: str) -> tuple[RunResult | None, str | None]:
    try:
        result = RunResult.model_validate_json(data)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top)"
        return None, f"result_invalid: {path}: {where}: {first['msg']}"
    if contract_major(result.schema_version) != contract_major(CONTRACT_VERSION):
        return None, (
            f"result_invalid: {path} speaks contract {result.schema_version}, this host "
            f"{CONTRACT_VERSION}: rebuild the image (lem images build)"
        )
    if result.run_id != run_id:
        return None, f"result_invalid: {path} belongs to run {result.run_id!r}, not {run_id!r}"
    return result, None


def judge(outcome: RunOutcome, run_dir: Path, run_id: str) -> Verdict:
    """The run's status from what the runtime saw and what the harness wrote."""
    if outcome.status == "interrupted":
        return Verdict("interrupted", "interrupted", outcome.message or "stopped by request", None)
    result, problem, sha = read_result_bytes(run_dir, run_id)
    if result is not None and result.error is not None:  # the harness said what went wrong: say only that
        error = result.error
        kind = outcome.status if outcome.status != "ok" else "failed"
        return Verdict("failed", kind, f"{error.type}: {error.message}", result, error.type, sha)
    if outcome.status != "ok":
        message = outcome.message or f"{outcome.status} (exit code {outcome.exit_code})"
        return Verdict("failed", outcome.status, message, result, outcome.status, sha)
    if result is None:
        assert problem is not None
        missing, _, detail = problem.partition(": ")
        return Verdict("failed", missing, detail, None, missing)
    if result.status != "ok":
        return Verdict("failed", "failed", "the harness reported a failure", result, "failed", sha)
    return Verdict("done", "ok", "", result, None, sha)


def first_line(message: str, limit: int = 200) -> str:
    """The message's first line, cut to ``limit`` characters (for one-line progress output)."""
    line = message.strip().splitlines()[0] if message.strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"
