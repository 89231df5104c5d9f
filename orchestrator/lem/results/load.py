"""Walk a results tree and read every ``result.json`` through the contract.

Works on any tree (a campaign directory, a results root with many campaigns, a
copy from another machine) without needing a manifest. A file that cannot be read,
is not JSON, has an unknown contract major version, or does not match the contract
becomes a ``LoadProblem`` naming its path; it never stops the walk.

Each valid result is reduced to a compact ``RunRecord`` (metric values in a tuple,
configuration and provenance shared between runs that have equal ones) so that
tens of thousands of results fit in little memory.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import ValidationError

from lem.results.metrics import METRIC_INDEX, extract_all
from lem_harness.contract import (
    CONTRACT_VERSION,
    RESULT_FILE,
    SPEC_FILE,
    Phase,
    RunResult,
    contract_major,
)
from lem_harness.experiment import ExperimentConfig

RecordStatus = Literal["ok", "failed", "invalid"]
KNOWN_MAJOR = contract_major(CONTRACT_VERSION)
_PROVENANCE_NOT_SHOWN = {"config_hash", "random_seed", "visible_devices"}
SCHEDULE_FILE = "schedule.json"  # written by a daemon campaign (lem.campaign.schedule_state)
_REPETITION_DIR = re.compile(r"rep-([0-9]{4,})")


@dataclass(frozen=True)
class GpuIdentity:
    name: str
    uuid: str
    driver_version: str | None
    power_limit_w: float | None


@dataclass(frozen=True)
class ProvenanceInfo:
    """The provenance fields the results layer shows; equal ones are shared between runs."""

    hostname: str
    harness_version: str
    python_version: str
    driver_version: str | None
    cuda_version: str | None
    device_kind: str
    gpus: tuple[GpuIdentity, ...]
    image: str | None
    packages: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class RunRecord:
    """One run as the results layer sees it (read from a valid ``result.json``)."""

    run_dir: Path
    campaign: str  # the directory holding the run directory (a daemon campaign's, above rep-NNNN/)
    campaign_id: str | None
    run_id: str
    config_id: str
    config_name: str
    backend: str
    cycle: int
    status: RecordStatus  # "invalid": status ok but no inference metrics
    error: str | None
    started_at: str
    finished_at: str
    energy_source: str | None
    values: tuple[float | None, ...]  # in ``metrics.METRICS`` order
    flags: tuple[str, ...]
    flag_messages: tuple[str, ...]
    warnings: tuple[str, ...]
    output_tokens: int | None
    idle_power_w: float | None
    per_gpu_idle_power_w: tuple[tuple[str, float], ...]
    baseline_from_cache: bool
    phases: tuple[Phase, ...]
    timeline_file: Path | None
    config: ExperimentConfig | None
    provenance: ProvenanceInfo | None
    repetition: int | None = None  # a daemon campaign's repetition (rep-0002 -> 2)

    def value(self, metric: str) -> float | None:
        return self.values[METRIC_INDEX[metric]]

    @property
    def label(self) -> str:
        """The run id, preceded by its repetition directory in a daemon campaign (``rep-0002/<run_id>``)."""
        return f"rep-{self.repetition:04d}/{self.run_id}" if self.repetition is not None else self.run_id

    @property
    def order(self) -> tuple[str, int, int, str]:
        """Campaign, repetition, cycle, run id: the order runs are listed in."""
        return (self.campaign, self.repetition or 0, self.cycle, self.run_id)

    @property
    def gpu_uuids(self) -> tuple[str, ...]:
        return tuple(g.uuid for g in self.provenance.gpus) if self.provenance else ()


@dataclass(frozen=True)
class LoadProblem:
    """A result file that was skipped, and why. Run/config ids come from ``spec.json`` when readable."""

    path: Path
    reason: str
    campaign: str
    run_id: str | None = None
    config_id: str | None = None
    config_name: str | None = None

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass
class LoadedResults:
    records: list[RunRecord] = field(default_factory=list)
    problems: list[LoadProblem] = field(default_factory=list)


class NoResultsError(Exception):
    """The path does not exist or holds no result files."""


# --------------------------------------------------------------------------- walking


def find_result_files(root: Path) -> Iterator[Path]:
    """Every ``result.json`` under ``root`` (or ``root`` itself), in a stable order.

    A directory holding a ``result.json`` is a run directory: nothing below it is searched.
    Hidden directories are skipped.
    """
    if root.is_file():
        yield root
        return
    stack = [str(root)]
    while stack:
        directory = stack.pop()
        candidate = os.path.join(directory, RESULT_FILE)
        if os.path.isfile(candidate):
            yield Path(candidate)
            continue
        try:
            with os.scandir(directory) as entries:
                subdirs = [e.path for e in entries if e.is_dir(follow_symlinks=False) and e.name[0] != "."]
        except OSError:
            continue
        stack.extend(sorted(subdirs, reverse=True))


def load_results(root: Path) -> LoadedResults:
    """Read every result under ``root``. Raises ``NoResultsError`` when ``root`` is missing."""
    if not root.exists():
        raise NoResultsError(f"{root}: no such file or directory")
    reader = _Reader()
    out = LoadedResults()
    for path in find_result_files(root):
        item = reader.read(path)
        if isinstance(item, LoadProblem):
            out.problems.append(item)
        else:
            out.records.append(item)
    return out


def read_run_result(path: Path) -> RunResult:
    """One full ``RunResult`` (for ``show``); raises ``ValueError`` with the reason."""
    item = _Reader().read(path)
    if isinstance(item, LoadProblem):
        raise ValueError(str(item))
    return RunResult.model_validate_json(path.read_bytes())


# --------------------------------------------------------------------------- reading one file


class _Reader:
    """Reads result files, sharing equal configurations and provenance between records."""

    def __init__(self) -> None:
        self._configs: dict[str, ExperimentConfig] = {}
        self._provenance: dict[str, ProvenanceInfo] = {}
        self._daemon_dirs: dict[Path, bool] = {}

    def read(self, path: Path) -> RunRecord | LoadProblem:
        try:
            raw = path.read_bytes()
        except OSError as exc:
            return _problem(path, f"cannot read the file: {exc.strerror or exc}")
        try:
            result = RunResult.model_validate_json(raw)
        except ValidationError as exc:
            return _problem(path, _diagnose(raw, exc))
        reason = _version_problem(result.schema_version)
        if reason is not None:
            return _problem(path, reason)
        return self._record(path, result)

    def _record(self, path: Path, result: RunResult) -> RunRecord:
        run_dir = path.parent
        status: RecordStatus = result.status
        if status == "ok" and result.metrics is None:
            status = "invalid"
        baseline = result.baseline
        repetition = self._repetition(run_dir.parent)
        return RunRecord(
            run_dir=run_dir,
            campaign=run_dir.parent.parent.name if repetition is not None else run_dir.parent.name,
            campaign_id=result.campaign_id,
            run_id=result.run_id,
            config_id=result.config_id,
            config_name=result.config_name,
            backend=result.backend,
            cycle=result.cycle,
            status=status,
            error=f"{result.error.type}: {result.error.message}" if result.error else None,
            started_at=result.started_at,
            finished_at=result.finished_at,
            energy_source=result.energy.energy_source if result.energy else None,
            values=extract_all(result),
            flags=tuple(f.code for f in result.flags),
            flag_messages=tuple(f.message for f in result.flags),
            warnings=tuple(result.warnings),
            output_tokens=result.metrics.output_tokens if result.metrics else None,
            idle_power_w=baseline.idle_power_w if baseline else None,
            per_gpu_idle_power_w=tuple(sorted(baseline.per_gpu_idle_power_w.items())) if baseline else (),
            baseline_from_cache=baseline.from_cache if baseline else False,
            phases=tuple(result.phases),
            timeline_file=_timeline_path(run_dir, result.timeline_file),
            config=self._shared_config(result),
            provenance=self._shared_provenance(result),
            repetition=repetition,
        )

    def _repetition(self, directory: Path) -> int | None:
        """``rep-0002`` inside a daemon campaign directory (one holding ``schedule.json``) -> 2."""
        match = _REPETITION_DIR.fullmatch(directory.name)
        if match is None:
            return None
        parent = directory.parent
        if parent not in self._daemon_dirs:
            self._daemon_dirs[parent] = (parent / SCHEDULE_FILE).is_file()
        return int(match.group(1)) if self._daemon_dirs[parent] else None

    def _shared_config(self, result: RunResult) -> ExperimentConfig | None:
        if result.config is None:
            return None
        return self._configs.setdefault(result.config_id, result.config)

    def _shared_provenance(self, result: RunResult) -> ProvenanceInfo | None:
        prov = result.provenance
        if prov is None:
            return None
        key = prov.model_dump_json(exclude=_PROVENANCE_NOT_SHOWN)
        known = self._provenance.get(key)
        if known is not None:
            return known
        image = prov.image.digest or prov.image.id or prov.image.name if prov.image else None
        info = ProvenanceInfo(
            hostname=prov.hostname,
            harness_version=prov.harness_version,
            python_version=prov.python_version,
            driver_version=prov.driver_version,
            cuda_version=prov.cuda_version,
            device_kind=prov.device_kind,
            gpus=tuple(
                GpuIdentity(g.name, g.uuid, g.driver_version or prov.driver_version, g.power_limit_w)
                for g in prov.gpus
            ),
            image=image,
            packages=tuple(sorted(prov.packages.items())),
        )
        self._provenance[key] = info
        return info


def _timeline_path(run_dir: Path, name: str | None) -> Path | None:
    if not name:
        return None
    path = run_dir / Path(name).name  # the file travels with the run directory
    return path if path.is_file() else None


def _diagnose(raw: bytes, exc: ValidationError) -> str:
    """Why a file failed validation: not JSON, not an object, another contract version, or a mismatch."""
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as err:
        return f"not valid JSON (line {err.lineno}, column {err.colno}: {err.msg}); the file is corrupt"
    except UnicodeDecodeError:
        return "not valid JSON (not UTF-8 text); the file is corrupt"
    if not isinstance(data, dict):
        return f"expected a JSON object, found {type(data).__name__}"
    version = data.get("schema_version")
    if not isinstance(version, str):
        return "no schema_version: not a result file of a known contract version"
    return _version_problem(version) or _describe_validation(exc)


def _version_problem(version: str) -> str | None:
    major = contract_major(version)
    if major == KNOWN_MAJOR:
        return None
    age = "older" if 0 <= major < KNOWN_MAJOR else "newer or unknown"
    return (
        f"contract version {version} is {age}; this lem reads {KNOWN_MAJOR}.x results "
        f"(contract {CONTRACT_VERSION}): skipped"
    )


def _describe_validation(exc: ValidationError) -> str:
    errors = exc.errors()
    first = errors[0]
    where = ".".join(str(part) for part in first["loc"]) or "(top level)"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"does not match the result contract: {where}: {first['msg']}{more}"


def _problem(path: Path, reason: str) -> LoadProblem:
    run_dir = path.parent
    spec = _read_spec_ids(run_dir / SPEC_FILE)
    daemon = (
        _REPETITION_DIR.fullmatch(run_dir.parent.name) and (run_dir.parent.parent / SCHEDULE_FILE).is_file()
    )
    return LoadProblem(
        path=path,
        reason=reason,
        campaign=run_dir.parent.parent.name if daemon else run_dir.parent.name,
        run_id=spec.get("run_id") or run_dir.name,
        config_id=spec.get("config_id"),
        config_name=spec.get("config_name"),
    )


def _read_spec_ids(path: Path) -> dict[str, str]:
    """run_id / config_id / config_name from a spec file, best effort (never raises)."""
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    keys = ("run_id", "config_id", "config_name")
    return {k: data[k] for k in keys if isinstance(data.get(k), str)}
