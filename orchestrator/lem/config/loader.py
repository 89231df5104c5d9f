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
from lem.config.errors import ConfigError, ConfigProblem
from lem.config.translate import Located
from lem.config.yaml_source import YamlDocument, load_yaml
from lem_harness.experiment import CURRENT_SCHEMA_VERSION, ExperimentConfig, with_absolute_paths

Kind = Literal["experiment", "campaign"]
M = TypeVar("M", bound=BaseModel)

_VERSION = re.compile(r"^(\d+)\.(\d+)(?:\.(\d+))?$")


def detect_kind(data: Mapping[str, Any]) -> Kind:
    """A file with any campaign-only key (campaign_name, grid, experiments, ...) is a campaign."""
    return "campaign" if CAMPAIGN_KEYS & set(data) else "experiment"


def load_experiment(path: Path) -> ExperimentConfig:
    """An experiment file; local model / dataset paths are resolved against its directory."""
    return with_absolute_paths(experiment_from_document(load_yaml(path)), Path(path).resolve().parent)


def load_campaign(path: Path) -> CampaignConfig:
    return campaign_from_document(load_yaml(path))


def load_any(path: Path) -> ExperimentConfig | CampaignConfig:
    document = load_yaml(path)
    if detect_kind(document.data) == "campaign":
        return campaign_from_document(document)
    return experiment_from_document(document)


def experiment_from_document(document: YamlDocument) -> ExperimentConfig:
    if detect_kind(document.data) == "campaign":
        keys = sorted(CAMPAIGN_KEYS & set(document.data))
        raise _one(
            document, (keys[0],), "this is a campaign file, not an experiment; run it with `lem campaign`"
        )
    schema = schema_version_problems(document.data)
    config = _validate(ExperimentConfig, document, schema)
    _raise_if(document, schema)
    return config


def campaign_from_document(document: YamlDocument) -> CampaignConfig:
    if detect_kind(document.data) != "campaign":
        raise _one(
            document, (), "this is an experiment file, not a campaign (no campaign_name, grid or experiments)"
        )
    schema = schema_version_problems(document.data)
    outcome = validate_fully(CampaignConfig, document.data)
    checked = outcome.best
    named = [] if checked is None else check_campaign(checked)  # runs on the keys that did validate
    _raise_if(
        document, [*schema, *outcome.problems, *(p for p in named if not outcome.concerns_removed(p.path))]
    )
    assert outcome.instance is not None
    return outcome.instance.with_source(document)


def schema_version_problems(data: Mapping[str, Any]) -> list[Located]:
    """An unreadable schema version, or one newer than this tool, is an error (older ones only warn)."""
    value = data.get("schema_version")
    if not isinstance(value, str):
        return []
    match = _VERSION.match(value)
    if match is None:
        return [Located(("schema_version",), f"{value!r} is not a version like '{CURRENT_SCHEMA_VERSION}'")]
    if int(match.group(1)) > int(CURRENT_SCHEMA_VERSION.split(".")[0]):
        return [
            Located(
                ("schema_version",),
                f"schema {value} is newer than this lem understands ({CURRENT_SCHEMA_VERSION}); "
                "upgrade lem or rewrite the file for schema " + CURRENT_SCHEMA_VERSION,
            )
        ]
    return []


def to_problems(document: YamlDocument, located: Iterable[Located]) -> list[ConfigProblem]:
    """Problems in line order (problems without a line first: they concern the whole file)."""
    problems = [
        ConfigProblem(document.file, document.line_of(loc.path), loc.key, loc.message) for loc in located
    ]
    return sorted(problems, key=lambda p: p.line or 0)


def _validate(model: type[M], document: YamlDocument, earlier: list[Located]) -> M:
    outcome = validate_fully(model, document.data)
    if outcome.instance is None:
        raise ConfigError(to_problems(document, [*earlier, *outcome.problems]))
    return outcome.instance


def _raise_if(document: YamlDocument, located: list[Located]) -> None:
    if located:
        raise ConfigError(to_problems(document, located))


def _one(document: YamlDocument, path: tuple[str, ...], message: str) -> ConfigError:
    return ConfigError(to_problems(document, [Located(path, message)]))
