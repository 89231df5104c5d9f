"""Configuration values to group runs by (``backend``, ``batch_size``, ``pytorch.batch_size``).

Two more group_by keys belong to a run rather than to its configuration: ``repetition``
(a daemon campaign's repetition, 1, 2, …) and ``hour_of_day`` (the local hour, 0–23, at which
the run started). See ``RECORD_FIELDS`` and ``record_value``.

The keys are those of ``lem.config.grouping`` (the aliases of grid axes, top-level fields,
dotted paths, the run fields): checked before any result is read, so a typo is reported with
the closest known key. ``batch_size`` reads each configuration's own backend key. A backend
section that a config omits resolves to that backend's defaults (``pytorch.batch_size`` is 1 when a
PyTorch config leaves the section out); a field of another backend resolves to None.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, tzinfo
from typing import Any

from pydantic import BaseModel

from lem.config.campaign import RUN_GROUP_FIELDS
from lem.config.grouping import UnknownGroupKey, check_keys, field_path, leaf_fields
from lem.results.load import RunRecord
from lem_harness.backend_sections import BACKEND_SECTIONS
from lem_harness.experiment import ExperimentConfig
from lem_harness.prompt_sources import DatasetConfig

UnknownFieldError = UnknownGroupKey  # the results commands' name for it

FieldValue = str | int | float | bool | None
RECORD_FIELDS = RUN_GROUP_FIELDS


def is_record_field(path: str) -> bool:
    return path in RECORD_FIELDS


def record_value(record: RunRecord, path: str, zone: tzinfo) -> FieldValue:
    """A group_by field of one run: a record field, else the run's configuration field."""
    if path == "repetition":
        return record.repetition
    if path == "hour_of_day":
        return start_time(record, zone).hour if record.started_at else None
    if path == "node":
        return record.provenance.hostname if record.provenance is not None else None
    return resolve_field(record.config, path) if record.config is not None else None


def start_time(record: RunRecord, zone: tzinfo) -> datetime:
    """When the run started, in ``zone``."""
    return datetime.fromisoformat(record.started_at).astimezone(zone)


def validate_fields(paths: Sequence[str]) -> tuple[str, ...]:
    """Split comma lists, strip, de-duplicate and check every key; raises ``UnknownFieldError``."""
    return check_keys(paths)


def known_fields() -> tuple[str, ...]:
    """Every dotted leaf path of ``ExperimentConfig`` (all dataset variants included)."""
    return leaf_fields()


def resolve_field(config: ExperimentConfig, key: str) -> FieldValue:
    """The value ``key`` names in ``config``; None where the config has no such value."""
    head, _, rest = field_path(key, config.backend).partition(".")
    node: Any
    if head in BACKEND_SECTIONS:
        node = config.backend_section() if config.backend == head else None
    elif head == "dataset":  # the dataset measured (the default one when no source is given)
        node = config.prompt_source if isinstance(config.prompt_source, DatasetConfig) else None
    else:
        node = getattr(config, head, None)
    for part in rest.split(".") if rest else ():
        node = getattr(node, part, None) if isinstance(node, BaseModel) else None
    return _scalar(node)


def _scalar(value: Any) -> FieldValue:
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, BaseModel):
        return value.model_dump_json()
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value)
    return str(value)
