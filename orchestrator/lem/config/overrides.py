"""Settings of a campaign that a later layer silently replaces: warning ``OVERRIDDEN``.

A configuration is built by laying, in order (``lem.campaign.settings``): ``base``, the
experiment file, the campaign's ``model`` / ``dataset`` / ``prompts`` / ``num_samples``, the axis values or
``overrides``, and ``execution.warmup_*``. A value given in a lower layer and replaced by a
higher one has no effect; each warning names the key that has no effect and the key that
wins. Pure: the experiment files come in as parsed documents.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pydantic import BaseModel

from lem.config.axes import AxisError, resolve_axis
from lem.config.campaign import CampaignConfig
from lem.config.errors import ConfigWarning
from lem.config.yaml_source import YamlDocument, dig
from lem_harness.schema_base import BACKENDS

CODE = "OVERRIDDEN"
Path = tuple[str, ...]


def override_warnings(
    campaign: CampaignConfig, entry_documents: Mapping[int, YamlDocument]
) -> list[ConfigWarning]:
    """One warning per setting that a later layer replaces in every configuration it reaches."""
    return [
        *_execution_warmup(campaign, entry_documents),
        *_workload(campaign, entry_documents),
        *_axes_over_base(campaign),
        *_files_over_base(campaign, entry_documents),
    ]


def _warning(lost: str, lost_value: Any, winner: str, winner_value: Any, how: str = "") -> ConfigWarning:
    return ConfigWarning(
        param=lost,
        message=(
            f"{lost} ({_shown(lost_value)}) has no effect: {winner} ({_shown(winner_value)}) overrides it"
            f"{how}; set it in one place"
        ),
        severity="warning",
        code=CODE,
    )


def _shown(value: Any) -> str:
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 40 else text[:37] + "..."


# --------------------------------------------------------------------------- where a setting is given


def _given(
    campaign: CampaignConfig, entries: Mapping[int, YamlDocument], path: Path
) -> Iterator[tuple[str, Any]]:
    """``(where, value)`` for each place below the workload layer that gives experiment key ``path``."""
    found, value = dig(campaign.base, path)
    if found:
        yield "base." + ".".join(path), value
    for i, document in sorted(entries.items()):
        found, value = dig(document.data, path)
        if found:
            yield f"{'.'.join(path)} in {_file_of(campaign, i)}", value
        dotted = ".".join(path)
        overrides = campaign.experiments[i].overrides if i < len(campaign.experiments) else {}
        if dotted in overrides:
            yield f"experiments[{i}].overrides.{dotted}", overrides[dotted]


def _file_of(campaign: CampaignConfig, i: int) -> str:
    return campaign.experiments[i].file if i < len(campaign.experiments) else f"experiments[{i}]"


# --------------------------------------------------------------------------- the rules


def _execution_warmup(
    campaign: CampaignConfig, entries: Mapping[int, YamlDocument]
) -> Iterator[ConfigWarning]:
    execution = campaign.execution
    prompts, timeout = execution.warmup_prompts, execution.warmup_timeout_seconds
    axis_paths = _axis_paths(campaign)
    if prompts is not None:
        winner = "execution.warmup_prompts"
        for where, value in _given_or_axis(campaign, entries, ("warmup", "max_prompts"), axis_paths):
            yield _warning(where, value, winner, prompts)
        for where, value in _given_or_axis(campaign, entries, ("warmup", "min_prompts"), axis_paths):
            if isinstance(value, int) and value > prompts:
                yield _warning(where, value, winner, prompts, " (a minimum above it is lowered to it)")
    if timeout is not None:
        for where, value in _given_or_axis(campaign, entries, ("warmup", "timeout_seconds"), axis_paths):
            yield _warning(where, value, "execution.warmup_timeout_seconds", timeout)


def _given_or_axis(
    campaign: CampaignConfig, entries: Mapping[int, YamlDocument], path: Path, axis_paths: Mapping[Path, str]
) -> Iterator[tuple[str, Any]]:
    yield from _given(campaign, entries, path)
    if path in axis_paths and campaign.grid is not None:
        yield f"grid.axes.{axis_paths[path]}", campaign.grid.axes[axis_paths[path]]


def _workload(campaign: CampaignConfig, entries: Mapping[int, YamlDocument]) -> Iterator[ConfigWarning]:
    """The campaign's ``model`` / ``dataset`` / ``prompts`` / ``num_samples`` over an experiment file's."""
    tops: list[tuple[str, Any, str, str]] = [
        ("model_name", campaign.model, "the campaign's model", ""),
        (
            "dataset",
            _shown_section(campaign.dataset),
            "the campaign's dataset",
            " (it replaces the whole section)",
        ),
        (
            "prompts",
            _shown_section(campaign.prompts),
            "the campaign's prompts",
            " (it replaces the whole section)",
        ),
        ("num_input_prompts", campaign.num_samples, "num_samples", ""),
    ]
    for i, document in sorted(entries.items()):
        file = _file_of(campaign, i)
        for key, winner_value, winner, how in tops:
            if winner_value is not None and key in document.data:
                yield _warning(f"{key} in {file}", document.data[key], winner, winner_value, how)


def _shown_section(section: BaseModel | None) -> Any:
    return None if section is None else section.model_dump(exclude_unset=True)


def _axis_paths(campaign: CampaignConfig) -> dict[Path, str]:
    """Experiment key path -> axis name, for every axis of the grid (every backend it sets)."""
    if campaign.grid is None:
        return {}
    out: dict[Path, str] = {}
    for name in campaign.grid.axes:
        try:
            target = resolve_axis(name, campaign.grid.backends)
        except AxisError:
            continue
        out.update(dict.fromkeys(target.paths.values(), name))
    return out


def _axes_over_base(campaign: CampaignConfig) -> Iterator[ConfigWarning]:
    if campaign.grid is None:
        return
    for path, name in _axis_paths(campaign).items():
        if path[0] in BACKENDS and path[0] not in campaign.grid.backends:
            continue
        found, value = dig(campaign.base, path)
        if found:
            yield _warning("base." + ".".join(path), value, f"grid.axes.{name}", campaign.grid.axes[name])


def _files_over_base(
    campaign: CampaignConfig, entries: Mapping[int, YamlDocument]
) -> Iterator[ConfigWarning]:
    """A ``base`` key that every experiment file sets again (the file wins) has no effect."""
    if not entries or campaign.grid is not None:
        return  # grid configurations are built on base alone
    for path, value in _leaves(campaign.base):
        winners = [dig(doc.data, path) for doc in entries.values()]
        if all(found for found, _ in winners):
            files = ", ".join(sorted({_file_of(campaign, i) for i in entries}))
            yield _warning("base." + ".".join(path), value, f"{'.'.join(path)} in {files}", winners[0][1])


def _leaves(base: Mapping[str, Any]) -> Iterator[tuple[Path, Any]]:
    for key, value in base.items():
        if isinstance(value, Mapping) and key != "dataset":
            for sub, inner in value.items():
                yield (key, str(sub)), inner
        else:
            yield (key,), value
