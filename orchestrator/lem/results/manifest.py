"""Optional extra context from a campaign's ``manifest.json``, read defensively.

The results layer never needs a manifest (a tree copied without one summarises the
same). When one is there it adds what result files cannot say: runs that produced
no result (timeouts, OOM, interrupted, never started) and gaps that reached their
cap before the GPU cooled. Any shape this reader does not recognise is ignored with
a note, never an error.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MANIFEST_FILE = "manifest.json"


@dataclass(frozen=True)
class ManifestRun:
    run_id: str
    status: str | None
    outcome: str | None
    message: str | None
    config_id: str | None
    config_name: str | None
    backend: str | None
    cycle: int | None
    gap_ended_by: str | None


@dataclass(frozen=True)
class ManifestInfo:
    path: Path
    campaign_id: str | None
    campaign_name: str | None
    runs: tuple[ManifestRun, ...]
    notes: tuple[str, ...]  # what could not be used, and why
    group_by: tuple[str, ...] = ()  # the campaign's own group_by, when its config lists one

    @property
    def gap_capped_runs(self) -> tuple[str, ...]:
        """Runs whose preceding gap ended at its cap, i.e. before the GPU had cooled."""
        return tuple(r.run_id for r in self.runs if r.gap_ended_by == "cap")


def read_manifest(campaign_dir: Path) -> ManifestInfo | None:
    """The manifest of ``campaign_dir``; None when there is none."""
    path = campaign_dir / MANIFEST_FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        return ManifestInfo(path, None, None, (), (f"{path}: unreadable manifest ignored ({exc})",))
    if not isinstance(data, dict):
        return ManifestInfo(path, None, None, (), (f"{path}: manifest is not a JSON object; ignored",))
    runs, notes = _runs(data.get("runs"), path)
    return ManifestInfo(
        path=path,
        campaign_id=_str(data.get("campaign_id")),
        campaign_name=_str(data.get("campaign_name")),
        runs=runs,
        notes=notes,
        group_by=_group_by(data.get("config")),
    )


def _group_by(config: Any) -> tuple[str, ...]:
    raw = config.get("group_by") if isinstance(config, dict) else None
    if not isinstance(raw, list):
        return ()
    return tuple(item for item in raw if isinstance(item, str))


def _runs(raw: Any, path: Path) -> tuple[tuple[ManifestRun, ...], tuple[str, ...]]:
    if isinstance(raw, dict):  # tolerate {run_id: entry}
        raw = [{"run_id": k, **v} if isinstance(v, dict) else v for k, v in raw.items()]
    if not isinstance(raw, list):
        return (), (f"{path}: no list of runs found; manifest statuses not used",)
    runs: list[ManifestRun] = []
    skipped = 0
    for entry in raw:
        run = _run(entry)
        if run is None:
            skipped += 1
        else:
            runs.append(run)
    notes = (f"{path}: {skipped} run entries without a run_id ignored",) if skipped else ()
    return tuple(runs), notes


def _run(entry: Any) -> ManifestRun | None:
    if not isinstance(entry, dict) or not isinstance(entry.get("run_id"), str):
        return None
    cycle = entry.get("cycle")
    return ManifestRun(
        run_id=entry["run_id"],
        status=_str(entry.get("status")),
        outcome=_str(entry.get("outcome")),
        message=_str(entry.get("message")),
        config_id=_str(entry.get("config_id")),
        config_name=_str(entry.get("name") or entry.get("config_name")),
        backend=_str(entry.get("backend")),
        cycle=cycle if isinstance(cycle, int) and not isinstance(cycle, bool) else None,
        gap_ended_by=_str(entry.get("gap_ended_by")),
    )


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None
