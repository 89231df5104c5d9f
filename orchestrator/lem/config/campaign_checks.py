"""Checks of a campaign's keys that name experiment settings.

``base``, ``experiments[].overrides``, ``grid.axes`` and ``group_by`` hold experiment
keys, which the campaign model cannot type on its own. Each check returns
``Located`` problems (key path in the campaign file + message), one per problem.
"""

from __future__ import annotations

import typing
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from pydantic import BaseModel

from lem.config.axes import AxisError, resolve_axis
from lem.config.campaign import CampaignConfig
from lem.config.fields import experiment_paths, experiment_sections, field_names, suggest, unknown_key_hint
from lem.config.grouping import group_key_problem
from lem.config.translate import HINT_LIMIT, Located
from lem.config.yaml_source import KeyPath
from lem_harness.experiment import ExperimentConfig

NOT_IN_BASE = {
    "backend": "list backends in grid.backends (or set backend in each experiment file)",
    "config_name": "names are generated for each configuration",
    "schema_version": "set schema_version once at the top of the campaign",
}
NOT_OVERRIDES = {"backend", "schema_version"}
# base keys that a campaign-level key sets for every configuration: base key -> campaign key
_SET_AT_TOP = {
    "model_name": "model",
    "dataset": "dataset",
    "prompts": "prompts",
    "num_input_prompts": "num_samples",
}


class _Hints:
    """ "Did you mean" for the first ``HINT_LIMIT`` unknown keys only (difflib is the costly part)."""

    def __init__(self) -> None:
        self.left = HINT_LIMIT

    def __call__(self, hint: Callable[[], str]) -> str:
        self.left -= 1
        return hint() if self.left >= 0 else ""


def check_campaign(campaign: CampaignConfig) -> list[Located]:
    """Every problem with the experiment keys a campaign names."""
    hints = _Hints()
    out = list(_check_base(campaign, hints))
    for i, entry in enumerate(campaign.experiments):
        out.extend(_check_overrides(entry.overrides, ("experiments", i, "overrides"), hints))
    out.extend(_check_axes(campaign))
    out.extend(_check_group_by(campaign))
    return out


def _check_base(campaign: CampaignConfig, hints: _Hints) -> Iterator[Located]:
    for key, value in campaign.base.items():
        path: KeyPath = ("base", key)
        if key in NOT_IN_BASE:
            yield Located(path, f"'{key}' cannot be set in base: {NOT_IN_BASE[key]}")
        elif key not in ExperimentConfig.model_fields:
            hint = hints(lambda: unknown_key_hint(key, (ExperimentConfig,), True))  # noqa: B023 (called at once)
            yield Located(path, f"unknown key '{key}'{hint}")
        elif key in _SET_AT_TOP and getattr(campaign, _SET_AT_TOP[key]) is not None:
            top = _SET_AT_TOP[key]
            yield Located(
                path, f"'{key}' is set both in base and by '{top}' at the top of the campaign; keep one"
            )
        else:
            yield from _check_section_value(key, value, path, hints)


def _check_overrides(overrides: Mapping[str, Any], at: KeyPath, hints: _Hints) -> Iterator[Located]:
    paths = set(experiment_paths())
    for dotted, value in overrides.items():
        path: KeyPath = (*at, dotted)
        parts = dotted.split(".")
        if parts[0] in NOT_OVERRIDES:
            yield Located(path, f"'{parts[0]}' cannot be overridden; write another experiment file")
        elif len(parts) > 2 or dotted not in paths:
            yield Located(path, f"unknown key '{dotted}'{hints(lambda: _path_hint(dotted))}")  # noqa: B023
        elif len(parts) == 1:
            yield from _check_section_value(dotted, value, path, hints)


def _check_section_value(key: str, value: Any, path: KeyPath, hints: _Hints) -> Iterator[Located]:
    models = experiment_sections().get(key)
    if not models or value is None:
        return
    if key == "dataset" and isinstance(value, str):
        return
    mapping = _as_mapping(value)
    if mapping is None:
        yield Located(path, f"must be a mapping of keys (such as {', '.join(field_names(models)[:4])})")
        return
    if key == "prompts":
        models = _prompts_member(mapping, models)
    names = set(field_names(models))
    for sub in mapping:
        if sub not in names:
            hint = hints(lambda: unknown_key_hint(sub, models, False))  # noqa: B023 (called at once)
            yield Located((*path, sub), f"unknown key '{sub}'{hint}")


def _prompts_member(
    data: Mapping[str, Any], models: tuple[type[BaseModel], ...]
) -> tuple[type[BaseModel], ...]:
    kind = data.get("type")
    for model in models:
        if kind in typing.get_args(model.model_fields["type"].annotation):
            return (model,)
    return models


def _check_axes(campaign: CampaignConfig) -> Iterator[Located]:
    if campaign.grid is None:
        return
    for name in campaign.grid.axes:
        try:
            resolve_axis(name, campaign.grid.backends)
        except AxisError as exc:
            yield Located(("grid", "axes", name), str(exc))


def _check_group_by(campaign: CampaignConfig) -> Iterator[Located]:
    for i, key in enumerate(campaign.group_by):
        problem = group_key_problem(key)
        if problem is not None:
            yield Located(("group_by", i), problem)


def _path_hint(dotted: str, known: list[str] | None = None) -> str:
    pool = known if known is not None else list(experiment_paths())
    near = suggest(dotted, pool)
    if near is None and "." not in dotted:
        homes = [p for p in pool if p.endswith(f".{dotted}")]
        near = homes[0] if homes else None
    return f"; did you mean '{near}'?" if near else "; use a key such as fp_precision or pytorch.batch_size"


def _as_mapping(value: Any) -> Mapping[str, Any] | None:
    return value if isinstance(value, Mapping) else None
