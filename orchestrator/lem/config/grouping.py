"""Group-by keys: the configuration values a summary can group runs by (pure).

A key is what a grid axis can be called, so a campaign's ``group_by`` can repeat its axes:
- an alias (``batch_size``: ``pytorch.batch_size`` / ``vllm.max_num_seqs`` /
  ``tensorrt.max_batch_size``, read in each configuration's own backend section);
- a top-level experiment field (``backend``, ``fp_precision``);
- a dotted path to any field or section (``decoder.preset``, ``vllm.enable_prefix_caching``);
- a field of the run rather than its configuration: ``repetition`` and ``hour_of_day``
  (daemon campaigns).

Used by the campaign checks (``group_by`` in a campaign file) and by ``lem.results``
(``--group-by`` and the summary), so both accept and refuse the same keys.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache

from pydantic import BaseModel

from lem.config.axes import ALIASES
from lem.config.campaign import RUN_GROUP_FIELDS
from lem.config.fields import models_in, suggest
from lem_harness.experiment import ExperimentConfig


class UnknownGroupKey(ValueError):
    """A group-by key that names no configuration value."""


def split_keys(values: Iterable[str]) -> tuple[str, ...]:
    """``["backend,batch_size", "backend"]`` -> ``("backend", "batch_size")`` (stripped, de-duplicated)."""
    out: list[str] = []
    for item in values:
        for key in (k.strip() for k in item.split(",")):
            if key and key not in out:
                out.append(key)
    return tuple(out)


def check_keys(values: Iterable[str]) -> tuple[str, ...]:
    """``split_keys``, then every key checked; raises ``UnknownGroupKey`` naming the first unknown one."""
    keys = split_keys(values)
    for key in keys:
        problem = group_key_problem(key)
        if problem is not None:
            raise UnknownGroupKey(problem)
    return keys


def group_key_problem(key: str) -> str | None:
    """Why ``key`` cannot group runs (with the closest known key), or ``None`` when it can."""
    if key in ALIASES or key in RUN_GROUP_FIELDS:
        return None
    if key in _leaves(ExperimentConfig, "") or key in _sections(ExperimentConfig, ""):
        return None
    known = group_keys()
    near = suggest(key, known)
    if near is None and "." not in key:
        near = next((k for k in known if k.endswith(f".{key}")), None)
    hint = (
        f"did you mean '{near}'?"
        if near
        else "use batch_size, a top-level key such as backend or fp_precision, or a dotted path such as "
        "pytorch.batch_size or decoder.preset"
    )
    return f"'{key}' is not a configuration field to group by; {hint}"


def field_path(key: str, backend: str) -> str:
    """The dotted field ``key`` reads in a configuration of ``backend`` (aliases resolved)."""
    alias = ALIASES.get(key)
    if alias is not None and backend in alias:
        return ".".join(alias[backend])
    return key


@cache
def group_keys() -> tuple[str, ...]:
    """Every accepted key: aliases, fields of a run (repetition, hour_of_day), then fields and
    sections of ``ExperimentConfig`` in sorted order."""
    paths = _leaves(ExperimentConfig, "") | _sections(ExperimentConfig, "")
    return (*ALIASES, *RUN_GROUP_FIELDS, *sorted(paths))


def leaf_fields() -> tuple[str, ...]:
    """Every dotted leaf path of ``ExperimentConfig`` (all dataset variants included)."""
    return tuple(sorted(_leaves(ExperimentConfig, "")))


@cache
def _leaves(model: type[BaseModel], prefix: str) -> frozenset[str]:
    out: set[str] = set()
    for name, info in model.model_fields.items():
        path = f"{prefix}{name}"
        submodels = models_in(info.annotation)
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
        for sub in models_in(info.annotation):
            out.add(f"{prefix}{name}")
            out |= _sections(sub, f"{prefix}{name}.")
    return frozenset(out)
