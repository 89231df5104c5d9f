"""``lem config migrate``: rewrite a config written with older spellings as schema 3.0.0.

The file is read with ruamel.yaml's round-trip loader, so comments, key order and quoting
survive; the rewrite is the table of ``lem.config.legacy`` (the same one every load applies)
plus the older layouts a load refuses (``gpu_list``, ``batching_options``), and
``schema_version: "3.0.0"``. The result is validated before anything is written: keys the
table cannot map, and problems of the rewritten file, are reported and nothing is written.
"""

from __future__ import annotations

import difflib
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError
from ruamel.yaml.scalarstring import SingleQuotedScalarString

from lem.config.errors import ConfigError, ConfigProblem
from lem.config.legacy import Change, upgrade_campaign, upgrade_experiment
from lem.config.loader import campaign_from_document, detect_kind, experiment_from_document, modernize
from lem.config.yaml_source import KeyPath, YamlDocument, format_path, load_yaml, parse_yaml
from lem_harness.experiment import CURRENT_SCHEMA_VERSION

TARGETS = (CURRENT_SCHEMA_VERSION,)


@dataclass
class Migration:
    """One file's migration: the texts before and after, and what stops it."""

    file: str
    before: str
    after: str
    changes: list[Change] = field(default_factory=list)
    problems: list[ConfigProblem] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return self.before != self.after

    @property
    def ok(self) -> bool:
        return not self.problems

    def diff(self) -> str:
        lines = difflib.unified_diff(
            self.before.splitlines(keepends=True),
            self.after.splitlines(keepends=True),
            fromfile=f"{self.file} (before)",
            tofile=f"{self.file} (schema {CURRENT_SCHEMA_VERSION})",
        )
        return "".join(lines)


def migrate_file(path: Path) -> Migration:
    """Rewrite ``path``'s text for schema 3.0.0 (nothing is written here)."""
    file = str(path)
    try:
        original = load_yaml(path)  # the same safety checks as every load (size, encoding, tags, ...)
    except ConfigError as exc:
        return Migration(file, "", "", problems=exc.problems)
    before = path.read_text(encoding="utf-8-sig")
    yaml = _round_trip()
    try:
        data = yaml.load(before)
    except YAMLError as exc:
        return Migration(file, before, before, problems=[ConfigProblem(file, None, "", f"YAML error: {exc}")])
    campaign = detect_kind(data) == "campaign"
    upgrade = upgrade_campaign(data, layouts=True) if campaign else upgrade_experiment(data, layouts=True)
    _set_schema_version(data)
    after = _dump(yaml, data)
    migration = Migration(file, before, after, changes=upgrade.changes)
    migration.problems = [
        ConfigProblem(file, original.line_of(path), format_path(path), f"cannot be mapped: {why}")
        for path, why in upgrade.unmappable
    ]
    if not migration.problems:
        migration.problems = [_where_it_was(p, original) for p in _check(file, after)]
    return migration


def _where_it_was(problem: ConfigProblem, original: YamlDocument) -> ConfigProblem:
    """A problem of the rewritten text, at the line the key has in the user's file."""
    path: KeyPath = tuple(problem.key.split(".")) if problem.key else ()
    line = original.lines.get(path, problem.line)
    return ConfigProblem(problem.file, line, problem.key, problem.message)


def _round_trip() -> YAML:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap the user's long lines
    yaml.indent(mapping=2, sequence=2, offset=0)
    return yaml


def _set_schema_version(data: Any) -> None:
    value = SingleQuotedScalarString(CURRENT_SCHEMA_VERSION)
    if "schema_version" in data:
        data["schema_version"] = value
    else:
        data.insert(0, "schema_version", value)


def _dump(yaml: YAML, data: Any) -> str:
    out = io.StringIO()
    yaml.dump(data, out)
    return out.getvalue()


def _check(file: str, text: str) -> Iterator[ConfigProblem]:
    """Problems of the rewritten text; unknown keys are the ones migrate cannot map."""
    try:
        document = modernize(parse_yaml(text, file))
        if detect_kind(document.data) == "campaign":
            campaign_from_document(document)
        else:
            experiment_from_document(document)
    except ConfigError as exc:
        for problem in exc.problems:
            if problem.message.startswith("unknown key"):
                yield ConfigProblem(file, problem.line, problem.key, f"cannot be mapped: {problem.message}")
            else:
                yield problem
