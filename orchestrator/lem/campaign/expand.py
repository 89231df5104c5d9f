"""Grid expansion: a campaign -> the validated experiment configurations it runs (pure).

For each backend in ``grid.backends``, every combination of the axes that apply to
it (file order), then every explicit ``experiments`` entry. Each configuration is
validated as an ``ExperimentConfig`` before anything runs; problems name the line
in the campaign (or experiment) file the bad value came from and the axis values
of the configurations it breaks. Identical configurations (same ``config_hash``)
are reported as duplicates and kept once.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from lem.campaign.naming import config_name, safe, unique_names
from lem.campaign.settings import (
    apply_execution,
    apply_overrides,
    apply_workload,
    base_for,
    merge_sections,
    set_path,
)
from lem.config.axes import AxisTarget, resolve_axis
from lem.config.campaign import CampaignConfig, ExperimentEntry
from lem.config.campaign_checks import check_campaign
from lem.config.crossfield import validate_fully
from lem.config.errors import ConfigError, ConfigProblem, ConfigWarning
from lem.config.loader import detect_kind, read_document, to_problems
from lem.config.yaml_source import KeyPath, YamlDocument, format_path
from lem_harness.contract import config_hash
from lem_harness.experiment import ExperimentConfig, with_absolute_paths
from lem_harness.schema_base import BACKENDS

MAX_CONFIGS = 100_000
_LABELS_SHOWN = 3


@dataclass(frozen=True)
class ExpandedConfig:
    config_id: str  # contract.config_hash(config)
    name: str  # readable, path-safe, unique in the campaign
    backend: str
    axis_values: dict[str, object]
    config: ExperimentConfig  # campaign execution.warmup_* already applied


@dataclass(frozen=True)
class Duplicate:
    """A configuration identical to an earlier one; it runs once, as ``same_as``."""

    name: str
    axis_values: dict[str, object]
    same_as: str
    config_id: str


@dataclass(frozen=True)
class Expansion:
    configs: tuple[ExpandedConfig, ...]
    duplicates: tuple[Duplicate, ...] = ()
    notices: tuple[ConfigWarning, ...] = ()  # loading notices of the experiment files it read
    entry_documents: Mapping[int, YamlDocument] = field(default_factory=dict)  # experiments[i] -> its file


@dataclass(frozen=True)
class _Candidate:
    """A configuration before validation, and where its keys came from."""

    head: str
    axis_values: dict[str, object]
    name_values: dict[str, object]
    raw: dict[str, Any]
    set_by: Mapping[tuple[str, ...], KeyPath] = field(default_factory=dict)  # key path -> campaign key
    entry: int | None = None
    document: YamlDocument | None = None


def expand_campaign(campaign: CampaignConfig, base_dir: Path) -> Expansion:
    """Every configuration of ``campaign``; raises ``ConfigError`` listing every problem."""
    _raise(to_problems(_document(campaign), check_campaign(campaign)))
    grid = list(_grid_candidates(campaign))
    explicit, problems, notices = _explicit_candidates(campaign, base_dir)
    _raise(problems)
    candidates = grid + explicit
    names = unique_names(config_name(c.head, c.name_values) for c in candidates)
    documents = {c.entry: c.document for c in explicit if c.entry is not None and c.document is not None}
    return replace(_validate_all(campaign, candidates, names), notices=notices, entry_documents=documents)


def _raise(problems: list[ConfigProblem]) -> None:
    if problems:
        raise ConfigError(problems)


def _document(campaign: CampaignConfig) -> YamlDocument:
    return campaign.source or YamlDocument(file="<campaign>", data={}, lines={})


# --------------------------------------------------------------------------- grid


def _grid_candidates(campaign: CampaignConfig) -> Iterator[_Candidate]:
    grid = campaign.grid
    if grid is None:
        return
    targets = [resolve_axis(name, grid.backends) for name in grid.axes]
    _check_size(campaign, targets)
    for backend in grid.backends:
        start = _grid_start(campaign, backend)
        applicable = [t for t in targets if backend in t.paths]
        set_by = {t.paths[backend]: ("grid", "axes", t.name) for t in applicable}
        for combo in itertools.product(*(grid.axes[t.name] for t in applicable)):
            raw = dict(start)
            values: dict[str, object] = {}
            for target, value in zip(applicable, combo, strict=True):
                set_path(raw, target.paths[backend], value)
                values[target.name] = value
            raw = apply_execution(raw, campaign.execution)
            yield _Candidate(backend, values, values, raw, set_by)


def _grid_start(campaign: CampaignConfig, backend: str) -> dict[str, Any]:
    raw = apply_workload(base_for(campaign, backend), campaign)
    raw["backend"] = backend
    if campaign.schema_version is not None:
        raw["schema_version"] = campaign.schema_version
    return raw


def _check_size(campaign: CampaignConfig, targets: list[AxisTarget]) -> None:
    assert campaign.grid is not None
    total = 0
    for backend in campaign.grid.backends:
        total += math.prod(len(campaign.grid.axes[t.name]) for t in targets if backend in t.paths)
    if total > MAX_CONFIGS:
        doc = _document(campaign)
        message = f"the grid expands to {total:,} configurations; at most {MAX_CONFIGS:,}: remove axis values"
        raise ConfigError([ConfigProblem(doc.file, doc.line_of(("grid", "axes")), "grid.axes", message)])


# --------------------------------------------------------------------------- explicit experiments


def _explicit_candidates(
    campaign: CampaignConfig, base_dir: Path
) -> tuple[list[_Candidate], list[ConfigProblem], tuple[ConfigWarning, ...]]:
    candidates: list[_Candidate] = []
    problems: list[ConfigProblem] = []
    cache: dict[Path, YamlDocument] = {}
    for i, entry in enumerate(campaign.experiments):
        try:
            document = _entry_document(campaign, i, entry, base_dir, cache)
        except ConfigError as exc:
            problems.extend(exc.problems)
            continue
        candidates.append(_explicit_candidate(campaign, i, entry, document))
    notices = tuple(
        ConfigWarning(w.param, f"{w.message} [in {doc.file}]", w.severity, w.code)
        for doc in cache.values()
        for w in doc.notices
    )
    return candidates, problems, notices


def _entry_document(
    campaign: CampaignConfig, i: int, entry: ExperimentEntry, base_dir: Path, cache: dict[Path, YamlDocument]
) -> YamlDocument:
    at: KeyPath = ("experiments", i, "file")
    relative = Path(entry.file)
    if relative.is_absolute():
        raise _campaign_error(campaign, at, "give the experiment file relative to the campaign file")
    path = base_dir / relative
    resolved = path.resolve()
    root = project_root(base_dir.resolve())
    if not resolved.is_relative_to(root):
        raise _campaign_error(campaign, at, f"{entry.file} leaves the project directory {root}")
    if not resolved.is_file():
        raise _campaign_error(campaign, at, f"experiment file not found: {path}")
    if resolved not in cache:
        document = read_document(path)
        if detect_kind(document.data) == "campaign":
            raise _campaign_error(
                campaign, at, f"{entry.file} is a campaign file; list experiment files only"
            )
        cache[resolved] = document
    return cache[resolved]


def project_root(start: Path) -> Path:
    """Nearest directory at or above ``start`` holding ``.git`` or ``pyproject.toml`` (else ``start``)."""
    for directory in (start, *start.parents):
        if (directory / ".git").exists() or (directory / "pyproject.toml").exists():
            return directory
    return start


def campaign_project_root(campaign_file: Path) -> Path:
    """The project a campaign file belongs to: where its runs' local inputs may live by default."""
    return project_root(campaign_file.resolve().parent)


def _explicit_candidate(
    campaign: CampaignConfig, i: int, entry: ExperimentEntry, doc: YamlDocument
) -> _Candidate:
    backend = doc.data.get("backend", "pytorch")
    base = base_for(campaign, backend if backend in BACKENDS else "")
    raw = apply_workload(merge_sections(base, doc.data), campaign)
    raw = apply_execution(apply_overrides(raw, entry.overrides), campaign.execution)
    if campaign.schema_version is not None:
        raw.setdefault("schema_version", campaign.schema_version)
    head = str(entry.overrides.get("config_name") or doc.data.get("config_name") or Path(entry.file).stem)
    name_values = {k: v for k, v in entry.overrides.items() if k != "config_name"}
    set_by = {tuple(k.split(".")): ("experiments", i, "overrides", k) for k in entry.overrides}
    axis_values: dict[str, object] = {"experiment": entry.file, **name_values}
    return _Candidate(safe(head), axis_values, name_values, raw, set_by, entry=i, document=doc)


def _campaign_error(campaign: CampaignConfig, at: KeyPath, message: str) -> ConfigError:
    doc = _document(campaign)
    return ConfigError([ConfigProblem(doc.file, doc.line_of(at), format_path(at), message)])


# --------------------------------------------------------------------------- validation


def _validate_all(campaign: CampaignConfig, candidates: list[_Candidate], names: list[str]) -> Expansion:
    configs: list[ExpandedConfig] = []
    duplicates: list[Duplicate] = []
    seen: dict[str, str] = {}
    failures: dict[tuple[str, int | None, str, str], list[str]] = {}
    for candidate, name in zip(candidates, names, strict=True):
        outcome = validate_fully(ExperimentConfig, candidate.raw)
        if outcome.instance is None:
            for loc in outcome.problems:
                file, line = _where(campaign, candidate, loc.path)
                failures.setdefault((file, line, loc.key, loc.message), []).append(_label(name, candidate))
            continue
        config = with_absolute_paths(
            outcome.instance.model_copy(update={"config_name": name}), _origin_dir(campaign, candidate)
        )
        config_id = config_hash(config)
        if config_id in seen:
            duplicates.append(Duplicate(name, candidate.axis_values, seen[config_id], config_id))
            continue
        seen[config_id] = name
        configs.append(ExpandedConfig(config_id, name, config.backend, candidate.axis_values, config))
    _raise(_failure_problems(failures, len(candidates)))
    return Expansion(tuple(configs), tuple(duplicates))


def _origin_dir(campaign: CampaignConfig, candidate: _Candidate) -> Path:
    """Directory of the file that gave this configuration (relative paths are resolved there)."""
    document = candidate.document or _document(campaign)
    return Path(document.file).resolve().parent


def _label(name: str, candidate: _Candidate) -> str:
    values = ", ".join(f"{k}={v}" for k, v in candidate.axis_values.items())
    return f"{name} ({values})" if values else name


def _failure_problems(
    failures: dict[tuple[str, int | None, str, str], list[str]], total: int
) -> list[ConfigProblem]:
    out: list[ConfigProblem] = []
    for (file, line, key, message), labels in failures.items():
        if len(labels) == 1:
            where = f"configuration {labels[0]}"
        elif len(labels) == total:
            where = f"all {total} configurations"
        else:
            shown = "; ".join(labels[:_LABELS_SHOWN])
            more = f"; and {len(labels) - _LABELS_SHOWN} more" if len(labels) > _LABELS_SHOWN else ""
            where = f"{len(labels)} configurations: {shown}{more}"
        out.append(ConfigProblem(file, line, key, f"{message} [in {where}]"))
    return out


def _where(campaign: CampaignConfig, candidate: _Candidate, path: KeyPath) -> tuple[str, int | None]:
    """File and line that gave the value at ``path`` of an expanded configuration."""
    doc = _document(campaign)
    at = _campaign_key(campaign, candidate, path)
    if at is not None:
        return doc.file, doc.line_of(at)
    if candidate.document is not None and path and candidate.document.has(path[:1]):
        return candidate.document.file, candidate.document.line_of(path)
    if path and isinstance(path[0], str) and path[0] in campaign.base:
        return doc.file, doc.line_of(("base", *path))
    fallback: KeyPath = ("grid",) if candidate.entry is None else ("experiments", candidate.entry)
    return doc.file, doc.line_of(fallback)


def _campaign_key(campaign: CampaignConfig, candidate: _Candidate, path: KeyPath) -> KeyPath | None:
    for target, key in candidate.set_by.items():
        if tuple(path[: len(target)]) == target:
            return key
    head = tuple(path[:2])
    execution = campaign.execution
    rules: list[tuple[bool, bool, KeyPath]] = [
        (path[:1] == ("num_input_prompts",), campaign.num_samples is not None, ("num_samples",)),
        (path[:1] == ("dataset",), campaign.dataset is not None, ("dataset", *path[1:])),
        (path[:1] == ("prompts",), campaign.prompts is not None, ("prompts", *path[1:])),
        (path[:1] == ("model_name",), campaign.model is not None, ("model",)),
        (head in (("warmup", "max_prompts"), ("warmup", "min_prompts")), execution.warmup_prompts is not None,
         ("execution", "warmup_prompts")),
        (head == ("warmup", "timeout_seconds"), execution.warmup_timeout_seconds is not None,
         ("execution", "warmup_timeout_seconds")),
    ]  # fmt: skip
    return next((key for matches, applies, key in rules if matches and applies), None)
