"""Load experiment and campaign files: YAML -> pydantic, every problem with file and line."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel

from lem.config.campaign import CAMPAIGN_KEYS, CampaignConfig
from lem.config.campaign_checks import check_campaign
from lem.config.crossfield import validate_fully
from lem.config.errors import ConfigError, ConfigProblem, ConfigWarning
from lem.config.legacy import LAYOUTS, Upgrade, copied, moved_lines, upgrade_campaign, upgrade_experiment
from lem.config.translate import Located
from lem.config.yaml_source import YamlDocument, format_path, load_yaml
from lem_harness.experiment import CURRENT_SCHEMA_VERSION, ExperimentConfig, with_absolute_paths

Kind = Literal["experiment", "campaign"]
M = TypeVar("M", bound=BaseModel)

_VERSION = re.compile(r"^(\d+)\.(\d+)(?:\.(\d+))?$")


def detect_kind(data: Mapping[str, Any]) -> Kind:
    """A file with any campaign-only key (campaign_name, grid, experiments, ...) is a campaign."""
    return "campaign" if CAMPAIGN_KEYS & set(data) else "experiment"


def read_document(path: Path) -> YamlDocument:
    """Parse a config file and bring older spellings up to date (see ``lem.config.legacy``).

    The document's ``notices`` carry the schema-version notice and one ``DEPRECATED_KEY``
    warning per older key; older layouts and untranslatable values are errors that point to
    ``lem config migrate``.
    """
    return modernize(load_yaml(path))


def modernize(document: YamlDocument) -> YamlDocument:
    data = copied(document.data)
    upgrade = upgrade_campaign(data) if detect_kind(data) == "campaign" else upgrade_experiment(data)
    _raise_if(document, _upgrade_problems(document, upgrade))
    notices = (*schema_notices(data), *_deprecations(document, upgrade))
    return YamlDocument(document.file, data, moved_lines(document.lines, upgrade.changes), notices)


def _upgrade_problems(document: YamlDocument, upgrade: Upgrade) -> list[Located]:
    migrate = f"run `lem config migrate {document.file}` to see the file rewritten (--write saves it)"
    out = [
        Located(
            path, f"'{path[-1]}' is an older LLenergyMeasure layout, now {LAYOUTS[str(path[-1])]}: {migrate}"
        )
        for path in upgrade.layouts
    ]
    out += [
        Located(path, f"older key that cannot be carried over: {why}") for path, why in upgrade.unmappable
    ]
    return out


def _deprecations(document: YamlDocument, upgrade: Upgrade) -> list[ConfigWarning]:
    return [
        ConfigWarning(
            format_path(change.old),
            f"{change.describe()} (line {document.line_of(change.old)}); it still works: "
            f"`lem config migrate {document.file} --write` updates the file",
            "warning",
            "DEPRECATED_KEY",
        )
        for change in upgrade.changes
    ]


def load_experiment(path: Path) -> ExperimentConfig:
    """An experiment file; local model / prompt-file paths are resolved against its directory."""
    return with_absolute_paths(experiment_from_document(read_document(path)), Path(path).resolve().parent)


def load_campaign(path: Path) -> CampaignConfig:
    return campaign_from_document(read_document(path))


def load_any(path: Path) -> ExperimentConfig | CampaignConfig:
    document = read_document(path)
    if detect_kind(document.data) == "campaign":
        return campaign_from_document(document)
    return experiment_from_document(document)


def experiment_from_document(document: YamlDocument) -> ExperimentConfig:
    if detect_kind(document.data) == "campaign":
        keys = sorted(CAMPAIGN_KEYS & set(document.data))
        raise _one(
            document, (keys[0],), "this is a campaign file, not an experiment; run it with `lem campaign`"
        )
    return _validate(ExperimentConfig, document)


def campaign_from_document(document: YamlDocument) -> CampaignConfig:
    if detect_kind(document.data) != "campaign":
        raise _one(
            document, (), "this is an experiment file, not a campaign (no campaign_name, grid or experiments)"
        )
    outcome = validate_fully(CampaignConfig, document.data)
    checked = outcome.best
    named = [] if checked is None else check_campaign(checked)  # runs on the keys that did validate
    _raise_if(document, [*outcome.problems, *(p for p in named if not outcome.concerns_removed(p.path))])
    assert outcome.instance is not None
    return outcome.instance.with_source(document)


def schema_notices(data: Mapping[str, Any]) -> list[ConfigWarning]:
    """The plan's rule: no schema_version is an info, any other version a (non-blocking) warning."""
    value = data.get("schema_version")
    if value is None:
        message = (
            f"no schema_version; add schema_version: '{CURRENT_SCHEMA_VERSION}' to pin the file's schema"
        )
        return [ConfigWarning("schema_version", message, "info", "SCHEMA_VERSION_MISSING")]
    if value == CURRENT_SCHEMA_VERSION:
        return []
    match = _VERSION.match(str(value))
    if match is None:
        why = f"{value!r} is not a version like '{CURRENT_SCHEMA_VERSION}'; the file is read as schema "
    elif int(match.group(1)) > int(CURRENT_SCHEMA_VERSION.split(".")[0]):
        why = f"schema {value} is newer than this lem; some fields may be unknown to it. Read as schema "
    else:
        why = f"file is written for schema {value}; some fields may be deprecated or renamed. Read as schema "
    return [
        ConfigWarning("schema_version", why + CURRENT_SCHEMA_VERSION, "warning", "SCHEMA_VERSION_MISMATCH")
    ]


def to_problems(document: YamlDocument, located: Iterable[Located]) -> list[ConfigProblem]:
    """Problems in line order (problems without a line first: they concern the whole file)."""
    problems = [
        ConfigProblem(document.file, document.line_of(loc.path), loc.key, loc.message) for loc in located
    ]
    return sorted(problems, key=lambda p: p.line or 0)


def _validate(model: type[M], document: YamlDocument) -> M:
    outcome = validate_fully(model, document.data)
    if outcome.instance is None:
        raise ConfigError(to_problems(document, outcome.problems))
    return outcome.instance


def _raise_if(document: YamlDocument, located: list[Located]) -> None:
    if located:
        raise ConfigError(to_problems(document, located))


def _one(document: YamlDocument, path: tuple[str, ...], message: str) -> ConfigError:
    return ConfigError(to_problems(document, [Located(path, message)]))
