"""Configuration values to group runs by (``backend``, ``batch_size``, ``pytorch.batch_size``).

The keys are those of ``lem.config.grouping`` (the aliases of grid axes, top-level fields,
dotted paths): checked before any result is read, so a typo is reported with the closest
known key. ``batch_size`` reads each configuration's own backend key. A backend section
that a config omits resolves to that backend's defaults (``pytorch.batch_size`` is 1 when a
PyTorch config leaves the section out); a field of another backend resolves to None.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel

from lem.config.grouping import UnknownGroupKey, check_keys, field_path, leaf_fields
from lem_harness.experiment import BACKEND_SECTIONS, DatasetConfig, ExperimentConfig

UnknownFieldError = UnknownGroupKey  # the results commands' name for it

FieldValue = str | int | float | bool | None


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
