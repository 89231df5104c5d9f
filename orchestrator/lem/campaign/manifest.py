"""The campaign manifest: every planned run and its state, rewritten atomically after every change.

``<results_dir>/<campaign_name>/manifest.json`` holds the campaign (id, definition hash,
configuration) and one line per planned run: status ``pending | running | done | failed |
interrupted``, attempts, timings, the gap waited before it, the GPU temperatures at its start,
the path of its result and the last outcome's message.

Resume: a run that is ``done`` is never repeated; every other run is run again. A manifest
written for a different campaign definition (another plan hash) is refused.

Saving is cheap at any campaign size: only a changed run is serialised again (unset fields
left out), it is journaled at once, and ``manifest.json`` is rewritten whole and atomically by
a background thread at most every half second (``lem.campaign.manifest_store``); ``close``
writes the final state and removes the journal.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lem.campaign.manifest_store import (
    JournalError,
    ManifestStore,
    SnapshotWriter,
    journal_line,
    read_journal,
)
from lem.campaign.plan import PlannedRun
from lem_harness.fileio import UnsafePathError, atomic_write_text, create_exclusive_text, read_bytes_nofollow

MANIFEST_FILE = "manifest.json"
MANIFEST_VERSION = "1.0.0"

RunStatus = Literal["pending", "running", "done", "failed", "interrupted"]


class ManifestError(Exception):
    """A manifest cannot be used: unreadable, or written for another campaign definition."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RunEntry(_Model):
    run_id: str
    position: int
    cycle: int
    config_id: str
    name: str
    backend: str
    status: RunStatus = "pending"
    attempts: int = 0
    outcome: str | None = None  # the runtime's last outcome: ok | failed | oom | timeout | …
    message: str | None = None  # one line: the harness's ``Type: message``, or what the runtime saw
    error_type: str | None = None  # the failure's class (exception type or runtime outcome)
    log_path: str | None = None  # the run's full log, relative to the campaign directory
    started_at: str | None = None  # ISO 8601, UTC
    finished_at: str | None = None
    duration_s: float | None = None
    gap_waited_s: float | None = None
    gap_ended_by: str | None = None  # none | fixed | thermal | settled | warmest_start | cap | stopped
    start_temperature_c: dict[str, float] | None = None  # GPU UUID -> °C when the run started
    page_cache_dropped: bool | None = None
    result_path: str | None = None  # relative to the campaign directory
    result_sha256: str | None = None  # of result.json as judged; resume re-checks it


class ConfigEntry(_Model):
    name: str
    backend: str
    axis_values: dict[str, Any] = Field(default_factory=dict)


class ManifestFile(_Model):
    schema_version: str
    campaign_id: str
    campaign_name: str
    definition_hash: str
    created_at: str
    updated_at: str
    journal_seq: int = 0  # the last journal line this snapshot contains
    config: dict[str, Any]
    configs: dict[str, ConfigEntry]
    runs: list[RunEntry]


def iso_utc(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, tz=timezone.utc).isoformat(timespec="milliseconds")


def definition_hash(campaign_name: str, plan: Sequence[PlannedRun]) -> str:
    """The hash of what a campaign runs: its name and every run's id, configuration, cycle, position.

    Gaps, retries and timeouts are left out: changing them does not change the runs, so a
    campaign may be resumed with, say, a longer timeout.
    """
    rows = [[r.run_id, r.config_id, r.cycle, r.position] for r in plan]
    blob = json.dumps([campaign_name, rows], separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _dump(model: BaseModel) -> str:
    return model.model_dump_json(exclude_none=True)


class Manifest:
    """The manifest in memory. ``update`` changes a run, ``save`` persists, ``close`` finishes."""

    def __init__(self, path: Path, data: ManifestFile, writer: SnapshotWriter = atomic_write_text) -> None:
        self.path = path
        self._head = data.model_copy(update={"runs": []})
        self._config_json = json.dumps(data.config, separators=(",", ":"))
        self._configs_json = json.dumps(
            {k: v.model_dump(mode="json") for k, v in data.configs.items()}, separators=(",", ":")
        )
        self._runs: dict[str, RunEntry] = {r.run_id: r for r in data.runs}
        self._lines: dict[str, str] = {r.run_id: _dump(r) for r in data.runs}
        self._lock = threading.Lock()
        self._seq = data.journal_seq
        self._changed: dict[str, int] = {}  # run id -> seq of its last unsaved change
        self._new = False  # created here: the first snapshot must not replace an existing file
        self.store = ManifestStore(path, self.render, writer)

    # ------------------------------------------------------------------ create / load

    @classmethod
    def create(
        cls,
        path: Path,
        *,
        campaign_id: str,
        campaign_name: str,
        config: dict[str, Any],
        configs: dict[str, ConfigEntry],
        plan: Sequence[PlannedRun],
        now: float,
        writer: SnapshotWriter = atomic_write_text,
    ) -> Manifest:
        stamp = iso_utc(now)
        runs = [
            RunEntry(
                run_id=r.run_id,
                position=r.position,
                cycle=r.cycle,
                config_id=r.config_id,
                name=r.name,
                backend=r.backend,
            )
            for r in plan
        ]
        data = ManifestFile(
            schema_version=MANIFEST_VERSION,
            campaign_id=campaign_id,
            campaign_name=campaign_name,
            definition_hash=definition_hash(campaign_name, plan),
            created_at=stamp,
            updated_at=stamp,
            config=config,
            configs=configs,
            runs=runs,
        )
        manifest = cls(path, data, writer)
        manifest._new = True
        return manifest

    @classmethod
    def load(cls, path: Path, writer: SnapshotWriter = atomic_write_text) -> Manifest:
        """The manifest as last saved: the snapshot plus the journal lines written after it."""
        data = _read_snapshot(path)
        manifest = cls(path, data, writer)
        try:
            for seq, run in read_journal(manifest.store.journal, data.journal_seq):
                manifest._replay(seq, run)
        except (JournalError, ValidationError, KeyError) as e:
            raise ManifestError(
                f"{manifest.store.journal} cannot be replayed ({e}); move it away to resume from "
                f"{path} alone (runs finished since its last save run again)"
            ) from e
        return manifest

    def _replay(self, seq: int, run: dict[str, Any]) -> None:
        entry = RunEntry.model_validate(run)
        if entry.run_id not in self._runs:
            raise KeyError(f"run {entry.run_id!r} is not in the manifest")
        self._runs[entry.run_id] = entry
        self._lines[entry.run_id] = _dump(entry)
        self._seq = max(self._seq, seq)

    # ------------------------------------------------------------------ reading

    @property
    def campaign_id(self) -> str:
        return self._head.campaign_id

    @property
    def definition_hash(self) -> str:
        return self._head.definition_hash

    @property
    def campaign_dir(self) -> Path:
        return self.path.parent

    def entry(self, run_id: str) -> RunEntry:
        try:
            return self._runs[run_id]
        except KeyError:
            raise ManifestError(
                f"run {run_id!r} is not in {self.path} (it lists {len(self._runs)} runs): the manifest was "
                "edited or belongs to another plan; restore it, or pass --fresh to archive the directory "
                "and start again"
            ) from None

    def entries(self) -> list[RunEntry]:
        return list(self._runs.values())

    def count(self, *statuses: RunStatus) -> int:
        return sum(1 for r in self._runs.values() if r.status in statuses)

    def check_definition(self, expected_hash: str) -> None:
        """Refuse to resume a manifest written for another campaign definition."""
        if self._head.definition_hash != expected_hash:
            raise ManifestError(
                f"{self.path} was written for a different campaign definition (plan hash "
                f"{self._head.definition_hash}, this file plans {expected_hash}): the configurations, "
                "cycles or order changed. Give the campaign another campaign_name or results_dir, "
                "or move the old results away"
            )

    # ------------------------------------------------------------------ writing

    def update(self, run_id: str, **changes: Any) -> RunEntry:
        """Change one run (validated); ``save`` persists the change."""
        old = self.entry(run_id)
        new = RunEntry.model_validate({**old.model_dump(), **changes})
        line = _dump(new)
        with self._lock:
            self._seq += 1
            self._runs[run_id] = new
            self._lines[run_id] = line
            self._changed[run_id] = self._seq
        return new

    def save(self, now: float) -> None:
        """Persist every change since the last save (the first save writes the whole file at once)."""
        with self._lock:
            self._head = self._head.model_copy(update={"updated_at": iso_utc(now)})
            lines = [journal_line(seq, self._lines[run_id]) for run_id, seq in self._changed.items()]
            self._changed.clear()
        if not self.store.started:
            if self._new:  # claim the name exclusively; the store's first snapshot then fills it
                _create_new(self.path, self.render())
            self.store.start()
        elif lines:
            self.store.append(lines)

    def close(self) -> None:
        """Write the final state whole and remove the journal (end of a campaign, or its stop)."""
        self.store.close()

    def render(self) -> str:
        """The whole manifest as JSON text, one line per run (safe to call from any thread)."""
        with self._lock:
            head = self._head
            fields = [
                ("schema_version", json.dumps(head.schema_version)),
                ("campaign_id", json.dumps(head.campaign_id)),
                ("campaign_name", json.dumps(head.campaign_name)),
                ("definition_hash", json.dumps(head.definition_hash)),
                ("created_at", json.dumps(head.created_at)),
                ("updated_at", json.dumps(head.updated_at)),
                ("journal_seq", str(self._seq)),
                ("config", self._config_json),
                ("configs", self._configs_json),
            ]
            runs = ",\n    ".join(self._lines.values())
        top = "".join(f'  "{key}": {value},\n' for key, value in fields)
        return f'{{\n{top}  "runs": [\n    {runs}\n  ]\n}}\n'


def _create_new(path: Path, text: str) -> None:
    try:
        create_exclusive_text(path, text)
    except FileExistsError as e:
        raise ManifestError(
            f"{path} appeared while this campaign was being created (another lem process?); "
            "nothing was overwritten — resume with --resume, or pass --fresh to archive it"
        ) from e


def _read_snapshot(path: Path) -> ManifestFile:
    try:
        text = read_bytes_nofollow(path).decode("utf-8", errors="replace")
    except UnsafePathError as e:
        raise ManifestError(f"{path} is a symbolic link; lem does not follow links in a results tree") from e
    except OSError as e:
        raise ManifestError(f"cannot read the manifest {path}: {e.strerror or e}") from e
    try:
        data = ManifestFile.model_validate_json(text)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ManifestError(
            f"{path} is not a valid campaign manifest ({where}: {first['msg']}); restore it from a "
            "backup, or pass --fresh to archive this directory (nothing is deleted) and start again"
        ) from e
    if data.schema_version.split(".", 1)[0] != MANIFEST_VERSION.split(".", 1)[0]:
        raise ManifestError(
            f"{path} has manifest version {data.schema_version}; this lem writes {MANIFEST_VERSION}"
        )
    return data
