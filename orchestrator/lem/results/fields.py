"""Dotted configuration fields (``backend``, ``pytorch.batch_size``, ``dataset.input_len``) for group_by.

A path is checked against the ``ExperimentConfig`` schema before any result is read,
so a typo is reported with the closest known names. A backend section that a config
omits resolves to that backend's defaults (``pytorch.batch_size`` is 1 when a
PyTorch config leaves the section out); a field of another backend resolves to None.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Sequence
from functools import cache
from typing import Any

from pydantic import BaseModel

from lem_harness.experiment import BACKEND_SECTIONS, DatasetConfig, ExperimentConfig


class UnknownFieldError(ValueError):
    """A group_by path that names no configuration field."""


FieldValue = str | int | float | bool | None
# Fields of where a run ran rather than of its configuration: resolved from the results themselves.
RUN_FIELDS = frozenset({"node"})


def validate_fields(paths: Sequence[str]) -> tuple[str, ...]:
    """Split comma lists, strip, de-duplicate and check every path; raises ``UnknownFieldError``."""
    out: list[str] = []
    for item in paths:
        for path in (p.strip() for p in item.split(",")):
            if path and path not in out:
                _check(path)
                out.append(path)
    return tuple(out)


def known_fields() -> tuple[str, ...]:
    """Every dotted leaf path of ``ExperimentConfig`` (all dataset variants included)."""
    return tuple(sorted(_leaves(ExperimentConfig, "")))


def resolve_field(config: ExperimentConfig, path: str) -> FieldValue:
    """The value at ``path`` in ``config``; None where the config has no such value."""
    head, _, rest = path.partition(".")
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


def _check(path: str) -> None:
    leaves = _leaves(ExperimentConfig, "")
    if path in RUN_FIELDS or path in leaves or path in _sections(ExperimentConfig, ""):
        return
    close = difflib.get_close_matches(path, sorted(leaves), n=3, cutoff=0.6)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    raise UnknownFieldError(
        f"group_by field '{path}' is not a configuration field{hint} "
        "(use a dotted path such as backend, fp_precision or pytorch.batch_size, or node)"
    )


@cache
def _leaves(model: type[BaseModel], prefix: str) -> frozenset[str]:
    out: set[str] = set()
    for name, info in model.model_fields.items():
        path = f"{prefix}{name}"
        submodels = _submodels(info.annotation)
        if submodels:
            for sub in submodels:
                out |= _leaves(sub, f"{path}.")
        else:
            out.add(path)
    return frozenset(out)


@cache
def _sections(model: type[BaseModel], prefix: str) -> frozenset[str]:
    out: set[str] = set()
    for name, info in model.model_fields.items():
        for sub in _submodels(info.annotation):
            out.add(f"{prefix}{name}")
            out |= _sections(sub, f"{prefix}{name}.")
    return frozenset(out)


def _submodels(annotation: Any) -> tuple[type[BaseModel], ...]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return (annotation,)
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType, typing.Annotated):
        found: list[type[BaseModel]] = []
        for arg in typing.get_args(annotation):
            found.extend(_submodels(arg))
        return tuple(found)
    return ()
