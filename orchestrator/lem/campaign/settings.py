"""Layering of experiment settings (pure dict operations, copy-on-write).

An expanded configuration is built by laying, in order: the campaign's ``base``
(shared keys, plus the section of this backend), the experiment file (explicit
experiments), the campaign's ``model`` / ``dataset`` / ``num_samples``, the axis
values or overrides, and finally ``execution.warmup_*``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from lem.config.campaign import CampaignConfig, ExecutionConfig
from lem_harness.experiment import WarmupConfig
from lem_harness.schema_base import BACKENDS

Raw = dict[str, Any]


def set_path(raw: Raw, path: Sequence[str], value: Any) -> None:
    """Set ``raw[a][b] = value`` copying the section first (shared dicts are never mutated).

    A section that is not a mapping is left alone so validation reports the user's value.
    """
    if len(path) == 1:
        raw[path[0]] = value
        return
    head, key = path[0], path[1]
    section = raw.get(head)
    if section is None:
        raw[head] = {key: value}
    elif isinstance(section, Mapping):
        raw[head] = {**section, key: value}
    elif head == "dataset" and isinstance(section, str):
        raw[head] = {"name": section, key: value}


def merge_sections(lower: Mapping[str, Any], upper: Mapping[str, Any]) -> Raw:
    """``upper`` over ``lower``; sections present in both merge key by key (one level deep)."""
    out: Raw = dict(lower)
    for key, value in upper.items():
        below = out.get(key)
        if isinstance(value, Mapping) and isinstance(below, Mapping):
            out[key] = {**below, **value}
        else:
            out[key] = value
    return out


def base_for(campaign: CampaignConfig, backend: str) -> Raw:
    """The part of ``base`` for one backend (shared keys and that backend's section)."""
    raw: Raw = {k: v for k, v in campaign.base.items() if k not in BACKENDS}
    section = campaign.base.get(backend)
    if section is not None:
        raw[backend] = section
    return raw


def apply_workload(raw: Raw, campaign: CampaignConfig) -> Raw:
    """Lay the campaign-wide ``model``, ``dataset``, ``prompts`` and ``num_samples`` onto ``raw``.

    ``model`` sets ``model_name``; ``num_samples`` sets ``num_input_prompts`` (the prompts
    measured, which wins over a dataset's ``sample_size``).
    """
    if campaign.model is not None:
        raw["model_name"] = campaign.model
    if campaign.dataset is not None:
        raw["dataset"] = campaign.dataset.model_dump(exclude_unset=True)
    if campaign.prompts is not None:
        raw["prompts"] = campaign.prompts.model_dump(exclude_unset=True)
    if campaign.num_samples is not None:
        raw["num_input_prompts"] = campaign.num_samples
    return raw


def apply_overrides(raw: Raw, overrides: Mapping[str, Any]) -> Raw:
    """Dotted overrides (``pytorch.batch_size: 4``); a whole section given as a mapping merges."""
    for dotted, value in overrides.items():
        parts = dotted.split(".")
        current = raw.get(parts[0])
        if len(parts) == 1 and isinstance(value, Mapping) and isinstance(current, Mapping):
            raw[parts[0]] = {**current, **value}
        else:
            set_path(raw, parts, value)
    return raw


_MIN_PROMPTS_DEFAULT: int = WarmupConfig.model_fields["min_prompts"].default


def apply_execution(raw: Raw, execution: ExecutionConfig) -> Raw:
    """Campaign warmup settings into the experiment's ``warmup`` section.

    ``warmup_prompts`` sets ``max_prompts`` (the count a fixed warmup runs, the cap of
    a convergence warmup) and lowers ``min_prompts`` to it when needed;
    ``warmup_timeout_seconds`` sets ``timeout_seconds``.
    """
    prompts, timeout = execution.warmup_prompts, execution.warmup_timeout_seconds
    warmup = raw.get("warmup")
    if (prompts is None and timeout is None) or (warmup is not None and not isinstance(warmup, Mapping)):
        return raw
    section: Raw = dict(warmup or {})
    if prompts is not None:
        section["max_prompts"] = prompts
        current_min = section.get("min_prompts", _MIN_PROMPTS_DEFAULT)
        if isinstance(current_min, int) and current_min > prompts:
            section["min_prompts"] = prompts
    if timeout is not None:
        section["timeout_seconds"] = timeout
    raw["warmup"] = section
    return raw
