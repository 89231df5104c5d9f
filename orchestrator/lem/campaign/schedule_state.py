"""``schedule.json``: a daemon campaign's schedule, kept in its campaign directory.

It holds what ``--resume`` needs to keep the schedule after a crash or a reboot: when the
schedule began and its first slot (so every later start is recomputed the same way), each
repetition's slot, start, end and outcome, the slots skipped and why, and what the daemon
was doing (``running`` a repetition, ``waiting`` for the next, ``stopped``, ``finished``).
It is rewritten whole and atomically (temp file, fsync, rename) at every change, a few
times per repetition. Each repetition's runs live in their own subtree, ``rep-0001/`` …,
with their own ``manifest.json``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from lem.campaign.manifest import iso_utc
from lem.config.campaign import DaemonConfig
from lem_harness.fileio import atomic_write_text

SCHEDULE_FILE = "schedule.json"
SCHEDULE_VERSION = "1"
REPETITION_PREFIX = "rep-"

RepetitionStatus = Literal["running", "done", "failed", "interrupted", "aborted"]
DaemonPhase = Literal["running", "waiting", "stopped", "finished", "aborted"]
FINISHED_REPETITION = ("done", "failed")


class ScheduleError(Exception):
    """``schedule.json`` cannot be used (unreadable, another definition, exists without --resume)."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RepetitionRecord(_Model):
    repetition: int  # 1, 2, …
    slot: int
    directory: str  # rep-0001
    due_at: str
    late: bool = False
    started_at: str
    finished_at: str | None = None
    status: RepetitionStatus = "running"
    runs_total: int | None = None
    runs_done: int | None = None
    runs_failed: int | None = None
    message: str | None = None

    @property
    def finished(self) -> bool:
        return self.status in FINISHED_REPETITION


class SkipRecord(_Model):
    first_slot: int
    last_slot: int
    count: int
    first_due_at: str
    last_due_at: str
    reason: str
    recorded_at: str


class ScheduleState(_Model):
    schema_version: str = SCHEDULE_VERSION
    campaign_name: str
    definition_hash: str
    began_ts: float
    began_at: str
    anchor_ts: float
    anchor_at: str
    timezone: str
    phase: DaemonPhase = "running"
    next_slot: int | None = None
    next_due_at: str | None = None
    finished_reason: str | None = None
    repetitions: list[RepetitionRecord] = []
    skipped: list[SkipRecord] = []
    updated_at: str

    @property
    def last_slot(self) -> int:
        """The last slot decided on (run or skipped); -1 before the first."""
        slots = [r.slot for r in self.repetitions] + [s.last_slot for s in self.skipped]
        return max(slots, default=-1)

    def in_flight(self) -> RepetitionRecord | None:
        """The last repetition when it did not finish (lem died, was stopped, or lost its runtime)."""
        last = self.repetitions[-1] if self.repetitions else None
        return last if last is not None and not last.finished else None

    def count(self, *statuses: RepetitionStatus) -> int:
        return sum(1 for r in self.repetitions if r.status in statuses)


def repetition_dir(repetition: int) -> str:
    return f"{REPETITION_PREFIX}{repetition:04d}"


def schedule_hash(plan_hash: str, daemon: DaemonConfig) -> str:
    """What must not change under a running schedule: the runs and the schedule settings."""
    blob = json.dumps([plan_hash, daemon.model_dump(mode="json")], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def new_state(
    campaign_name: str, definition: str, began: float, anchor: float, zone_name: str
) -> ScheduleState:
    return ScheduleState(
        campaign_name=campaign_name,
        definition_hash=definition,
        began_ts=began,
        began_at=iso_utc(began),
        anchor_ts=anchor,
        anchor_at=iso_utc(anchor),
        timezone=zone_name,
        updated_at=iso_utc(began),
    )


class ScheduleStore:
    """Reads and writes ``<campaign_dir>/schedule.json``."""

    def __init__(self, campaign_dir: Path) -> None:
        self.path = campaign_dir / SCHEDULE_FILE

    def exists(self) -> bool:
        return self.path.exists()

    def load(self, definition: str) -> ScheduleState:
        try:
            state = ScheduleState.model_validate_json(self.path.read_bytes())
        except (OSError, ValidationError) as e:
            raise ScheduleError(f"{self.path}: not a readable schedule ({_first_line(e)})") from None
        if state.definition_hash != definition:
            raise ScheduleError(
                f"{self.path} was written for another definition of this campaign (its runs or its daemon "
                "settings changed): restore the campaign file, or move the directory away to start again"
            )
        return state

    def save(self, state: ScheduleState, now: float) -> None:
        state.updated_at = iso_utc(now)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.path, state.model_dump_json(indent=2) + "\n")


def _first_line(error: BaseException) -> str:
    return str(error).splitlines()[0] if str(error) else type(error).__name__
