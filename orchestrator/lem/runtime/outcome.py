"""How a run ended → ``RunOutcome`` (pure, shared by the docker and local runtimes).

Precedence: interrupted (our stop) > timeout (our kill) > OOM-killed > non-zero exit >
result missing > result invalid > the harness's own verdict in ``result.json``.
A SIGKILL (exit 137) without the kernel's OOM flag is reported as ``failed`` with a message
that names both likely causes (host-level OOM or a kill from outside): only ``OOMKilled``
proves an out-of-memory kill.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import ValidationError

from lem.runtime.spec import OutcomeStatus, RunOutcome
from lem_harness.contract import RESULT_FILE, RunResult
from lem_harness.fileio import UnsafePathError, read_bytes_nofollow

SIGKILL_EXIT = 137
StoppedBy = Literal["interrupted", "timeout"]
ResultState = Literal["ok", "failed", "missing", "invalid"]


@dataclass(frozen=True)
class ExitInfo:
    exit_code: int | None
    oom_killed: bool = False
    stopped_by: StoppedBy | None = None


@dataclass(frozen=True)
class ResultCheck:
    state: ResultState
    detail: str


def check_result(run_dir: str | Path | None, run_id: str) -> ResultCheck:
    """Is there a valid ``result.json`` for ``run_id`` in ``run_dir``, and what does it say?"""
    if run_dir is None:
        return ResultCheck("missing", "no run directory is mounted")
    path = Path(run_dir) / RESULT_FILE
    try:
        text = read_bytes_nofollow(path)
    except FileNotFoundError:
        return ResultCheck("missing", f"{path} was not written")
    except UnsafePathError:
        return ResultCheck("invalid", f"{path} is a symbolic link (not followed)")
    except OSError as e:
        return ResultCheck("invalid", f"{path} cannot be read: {e.strerror or e}")
    try:
        result = RunResult.model_validate_json(text)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        return ResultCheck(
            "invalid", f"{path} is not a valid result ({e.error_count()} errors; {where}: {first['msg']})"
        )
    if result.run_id != run_id:
        return ResultCheck("invalid", f"{path} belongs to run {result.run_id}, not {run_id}")
    if result.status == "failed":
        error = f"{result.error.type}: {result.error.message}" if result.error else "no error recorded"
        return ResultCheck("failed", f"the harness reported a failure ({error})")
    return ResultCheck("ok", "result.json written")


def classify(
    info: ExitInfo, result: ResultCheck, *, timeout_s: float, duration_s: float, log_tail: list[str]
) -> RunOutcome:
    status, message = _status(info, result, timeout_s, log_tail)
    return RunOutcome(status, info.exit_code, duration_s, log_tail, message)


def _status(
    info: ExitInfo, result: ResultCheck, timeout_s: float, tail: list[str]
) -> tuple[OutcomeStatus, str]:
    last = f" Last log line: {tail[-1]}" if tail else ""
    if info.stopped_by == "interrupted":
        return "interrupted", "stopped on request; the run was killed"
    if info.stopped_by == "timeout":
        return (
            "timeout",
            f"no result within the {timeout_s:g} s timeout (execution.timeout_seconds); killed.{last}",
        )
    if info.oom_killed:
        return (
            "oom",
            f"killed by the out-of-memory killer (exit {info.exit_code}): "
            f"lower the batch size or the memory use.{last}",
        )
    if info.exit_code != 0:
        return "failed", _failure_message(info.exit_code, result, last)
    if result.state == "missing":
        return "result_missing", f"exit 0 but {result.detail}.{last}"
    if result.state == "invalid":
        return "result_invalid", f"exit 0 but {result.detail}.{last}"
    if result.state == "failed":
        return "failed", f"exit 0 but {result.detail}"
    return "ok", "ok"


def _failure_message(exit_code: int | None, result: ResultCheck, last: str) -> str:
    if exit_code is None:
        return f"no exit status: the container was removed from outside or the engine lost it.{last}"
    if exit_code == SIGKILL_EXIT:
        return f"killed by SIGKILL (exit 137): out of memory on the host, or killed from outside.{last}"
    if result.state == "failed":
        return f"exit {exit_code}: {result.detail}"
    return f"exit {exit_code}.{last}"
