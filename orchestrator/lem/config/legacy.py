"""Older spellings of schema 3.0.0 keys, and how each becomes today's key.

One table serves two callers:

- every load (``lem config validate``, ``campaign plan|run``, ``experiment``) applies the
  key-by-key renames to the parsed data, so a file written with an older LLenergyMeasure
  spelling (``convergence_detection``, ``cache_ttl_sec``, ``sample_interval_ms``) or with this
  project's earlier short names (``name``, ``model``, ``seed``, ``dataset.source``) keeps
  working, with a ``DEPRECATED_KEY`` warning per key;
- ``lem config migrate`` applies the same renames to a round-trip YAML tree (comments and key
  order kept) and, beyond them, the older *layouts* (``gpu_list``, ``batching_options``) that
  cannot be read key by key. A load refuses those layouts and points to ``migrate``.

The functions work on any ``MutableMapping`` (plain dicts when loading, ruamel's
``CommentedMap`` when migrating); a renamed key keeps its position and its comments.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from lem.config.yaml_source import KeyPath, format_path

BATCH_KEYS = {"pytorch": "batch_size", "vllm": "max_num_seqs", "tensorrt": "max_batch_size"}


class Unmappable(ValueError):
    """An older key whose value cannot be carried over (the message says why)."""


@dataclass(frozen=True)
class Rename:
    """``old`` (a key path inside an experiment mapping) is now ``new``; ``convert`` maps the value."""

    old: tuple[str, ...]
    new: tuple[str, ...]
    convert: Callable[[Any], Any] | None = None
    why: str = ""


def _mode(value: Any) -> str:
    if not isinstance(value, bool):
        raise Unmappable(f"convergence_detection must be true or false, not {value!r}")
    return "convergence" if value else "fixed"


def _rate_hz(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise Unmappable(f"sample_interval_ms must be a positive number of milliseconds, not {value!r}")
    return round(1000.0 / float(value), 6)


def _kv_cache_type(value: Any) -> str:
    if not isinstance(value, bool):
        raise Unmappable(f"paged_kv_cache must be true or false, not {value!r}")
    return "paged" if value else "continuous"


RENAMES: tuple[Rename, ...] = (
    Rename(("name",), ("config_name",)),
    Rename(("model",), ("model_name",)),
    Rename(("seed",), ("random_seed",)),
    Rename(("warmup", "cv_threshold"), ("warmup", "target_cv")),
    Rename(
        ("warmup", "convergence_detection"), ("warmup", "mode"), _mode, "true -> convergence, false -> fixed"
    ),
    Rename(("baseline", "duration_sec"), ("baseline", "duration_seconds")),
    Rename(("baseline", "cache_ttl_sec"), ("baseline", "cache_ttl_seconds")),
    Rename(("timeseries", "sample_interval_ms"), ("timeseries", "sample_rate_hz"), _rate_hz, "1000 / ms"),
    Rename(("tensorrt", "paged_kv_cache"), ("tensorrt", "kv_cache_type"), _kv_cache_type, "true -> paged"),
    Rename(("tensorrt", "enable_block_reuse"), ("tensorrt", "enable_kv_cache_reuse")),
)
# Dotted keys of campaign overrides, axes and group_by: old -> new.
DOTTED = {".".join(r.old): ".".join(r.new) for r in RENAMES}
LAYOUTS = {
    "gpu_list": "gpus",
    "batching_options": "the backend section's batch settings (pytorch.batch_size, ...)",
}


@dataclass(frozen=True)
class Change:
    """One older key rewritten: where it was, where it went, how."""

    old: KeyPath
    new: KeyPath | None  # None: removed (its value was redundant)
    note: str = ""

    def describe(self) -> str:
        target = f"'{format_path(self.new)}'" if self.new is not None else "nothing (removed)"
        how = f" ({self.note})" if self.note else ""
        return f"'{format_path(self.old)}' is an older spelling of {target}{how}"


@dataclass
class Upgrade:
    """What ``upgrade_*`` did: the changes, and the keys it could not carry over."""

    changes: list[Change] = field(default_factory=list)
    unmappable: list[tuple[KeyPath, str]] = field(default_factory=list)
    layouts: list[KeyPath] = field(default_factory=list)  # older layouts found (migrate handles them)


# --------------------------------------------------------------------------- mapping edits


def replace_key(mapping: MutableMapping[str, Any], old: str, new: str, value: Any) -> None:
    """Put ``new: value`` where ``old`` was (same position; ruamel comments move along)."""
    position = list(mapping).index(old)
    insert = getattr(mapping, "insert", None)
    if insert is not None:  # ruamel CommentedMap
        comments = getattr(mapping, "ca", None)
        comment = comments.items.pop(old, None) if comments is not None else None
        del mapping[old]
        insert(position, new, value)
        if comment is not None and comments is not None:
            comments.items[new] = comment
        return
    items = list(mapping.items())
    items[position] = (new, value)
    mapping.clear()
    mapping.update(items)


def _section(data: MutableMapping[str, Any], name: str, create: bool) -> MutableMapping[str, Any] | None:
    section = data.get(name)
    if isinstance(section, MutableMapping):
        return section
    if section is None and create:
        data[name] = type(data)()
        return data[name]  # type: ignore[no-any-return]
    return None


# --------------------------------------------------------------------------- experiments


def upgrade_experiment(data: MutableMapping[str, Any], at: KeyPath = (), layouts: bool = False) -> Upgrade:
    """Rewrite the older keys of one experiment mapping in place (``at``: where it sits)."""
    result = Upgrade()
    for rename in RENAMES:
        _apply(data, rename, at, result)
    _upgrade_dataset(data, at, result)
    _upgrade_baseline_interval(data, at, result)
    for key in LAYOUTS:
        if key in data:
            if layouts:
                _upgrade_layout(data, key, at, result)
            else:
                result.layouts.append((*at, key))
    return result


def _apply(data: MutableMapping[str, Any], rename: Rename, at: KeyPath, result: Upgrade) -> None:
    *parents, key = rename.old
    holder = data if not parents else _section(data, parents[0], create=False)
    if holder is None or key not in holder:
        return
    old_path, new_path = (*at, *rename.old), (*at, *rename.new)
    if rename.new[-1] in holder:
        result.unmappable.append(
            (old_path, f"both '{key}' and '{rename.new[-1]}' are given; keep '{rename.new[-1]}'")
        )
        return
    value = holder[key]
    try:
        value = rename.convert(value) if rename.convert is not None else value
    except Unmappable as exc:
        result.unmappable.append((old_path, str(exc)))
        return
    replace_key(holder, key, rename.new[-1], value)
    result.changes.append(Change(old_path, new_path, rename.why))


def _upgrade_dataset(data: MutableMapping[str, Any], at: KeyPath, result: Upgrade) -> None:
    """``dataset: {source: ...}`` (this project's earlier layout) -> ``dataset`` / ``prompts``."""
    dataset = data.get("dataset")
    if isinstance(dataset, str) and dataset in ("jsonl", "synthetic"):
        if "prompts" in data:
            result.unmappable.append(((*at, "dataset"), "both 'dataset' and 'prompts' name a prompt source"))
            return
        section = type(data)()
        section["type"] = "file" if dataset == "jsonl" else "synthetic"
        replace_key(data, "dataset", "prompts", section)
        result.changes.append(
            Change((*at, "dataset"), (*at, "prompts", "type"), f"{dataset} -> {section['type']}")
        )
        return
    if not isinstance(dataset, MutableMapping) or "source" not in dataset:
        return
    source = dataset["source"]
    if source in ("jsonl", "synthetic"):
        if "prompts" in data:
            result.unmappable.append(((*at, "dataset"), "both 'dataset' and 'prompts' name a prompt source"))
            return
        kind = "file" if source == "jsonl" else "synthetic"
        replace_key(dataset, "source", "type", kind)
        replace_key(data, "dataset", "prompts", dataset)
        note = f"dataset: {{source: {source}}} -> prompts: {{type: {kind}}}"
        result.changes.append(Change((*at, "dataset"), (*at, "prompts"), note))
        return
    if source != "ai_energy_score":
        result.unmappable.append(((*at, "dataset", "source"), f"unknown dataset source {source!r}"))
        return
    if "name" in dataset:  # the hub id, kept as the dataset's name
        del dataset["source"]
        result.changes.append(Change((*at, "dataset", "source"), None, "dataset.name names the hub dataset"))
    else:
        replace_key(dataset, "source", "name", source)
        result.changes.append(Change((*at, "dataset", "source"), (*at, "dataset", "name")))


def _upgrade_baseline_interval(data: MutableMapping[str, Any], at: KeyPath, result: Upgrade) -> None:
    """``baseline.sample_interval_ms``: the baseline samples at ``timeseries.sample_rate_hz`` now."""
    baseline = _section(data, "baseline", create=False)
    if baseline is None or "sample_interval_ms" not in baseline:
        return
    old: KeyPath = (*at, "baseline", "sample_interval_ms")
    try:
        rate = _rate_hz(baseline["sample_interval_ms"])
    except Unmappable as exc:
        result.unmappable.append((old, str(exc)))
        return
    timeseries = _section(data, "timeseries", create=True)
    if timeseries is None:
        result.unmappable.append((old, "timeseries is not a mapping"))
        return
    current = timeseries.get("sample_rate_hz")
    if current is not None and current != rate:
        result.unmappable.append(
            (
                old,
                f"it asks for {rate:g} Hz but timeseries.sample_rate_hz is {current}; the baseline samples "
                "at timeseries.sample_rate_hz: delete baseline.sample_interval_ms",
            )
        )
        return
    del baseline["sample_interval_ms"]
    if current is None:
        timeseries["sample_rate_hz"] = rate
        result.changes.append(
            Change(old, (*at, "timeseries", "sample_rate_hz"), "the baseline samples at this rate")
        )
    else:
        result.changes.append(Change(old, None, "the baseline samples at timeseries.sample_rate_hz"))


def _upgrade_layout(data: MutableMapping[str, Any], key: str, at: KeyPath, result: Upgrade) -> None:
    value = data[key]
    if key == "gpu_list":
        if "gpus" in data:
            result.unmappable.append(((*at, key), "both 'gpu_list' and 'gpus' are given; keep 'gpus'"))
            return
        replace_key(data, key, "gpus", value if isinstance(value, list) else [value])
        result.changes.append(Change((*at, key), (*at, "gpus")))
        return
    _upgrade_batching(data, value, at, result)


def _upgrade_batching(data: MutableMapping[str, Any], value: Any, at: KeyPath, result: Upgrade) -> None:
    """``batching_options: {batch_size, strategy, max_tokens_per_batch}`` -> the backend section."""
    old: KeyPath = (*at, "batching_options")
    backend = str(data.get("backend", "pytorch"))
    if not isinstance(value, Mapping) or backend not in BATCH_KEYS:
        result.unmappable.append((old, "batching_options must be a mapping, under a known backend"))
        return
    keys = {"batch_size": BATCH_KEYS[backend]}
    if backend == "pytorch":
        keys |= {"strategy": "batching_strategy", "batching_strategy": "batching_strategy",
                 "max_tokens_per_batch": "max_tokens_per_batch"}  # fmt: skip
    unknown = [k for k in value if k not in keys]
    if unknown:
        result.unmappable.append((old, f"no {backend} setting for batching_options.{', '.join(unknown)}"))
        return
    section = _section(data, backend, create=True)
    if section is None:
        result.unmappable.append((old, f"{backend} is not a mapping"))
        return
    for k, v in value.items():
        section[keys[k]] = v
        result.changes.append(Change((*old, k), (*at, backend, keys[k])))
    del data["batching_options"]


# --------------------------------------------------------------------------- campaigns


def upgrade_campaign(data: MutableMapping[str, Any], layouts: bool = False) -> Upgrade:
    """The experiment keys a campaign names: ``base``, overrides, axes and ``group_by``."""
    result = Upgrade()
    _upgrade_dataset(data, (), result)  # a campaign-wide dataset has the experiment's shapes
    base = data.get("base")
    if isinstance(base, MutableMapping):
        _merge(result, upgrade_experiment(base, ("base",), layouts))
    grid = data.get("grid")
    if isinstance(grid, MutableMapping):
        if "shared" in grid and "axes" not in grid:
            replace_key(grid, "shared", "axes", grid["shared"])
            result.changes.append(Change(("grid", "shared"), ("grid", "axes")))
        axes = grid.get("axes")
        if isinstance(axes, MutableMapping):
            _rename_dotted_keys(axes, ("grid", "axes"), result)
    for i, entry in enumerate(_list(data.get("experiments"))):
        if not isinstance(entry, MutableMapping):
            continue
        if "config" in entry and "file" not in entry:
            replace_key(entry, "config", "file", entry["config"])
            result.changes.append(Change(("experiments", i, "config"), ("experiments", i, "file")))
        overrides = entry.get("overrides")
        if isinstance(overrides, MutableMapping):
            _rename_dotted_keys(overrides, ("experiments", i, "overrides"), result)
    group_by = data.get("group_by")
    for i, item in enumerate(_list(group_by)):
        if isinstance(item, str) and item in DOTTED:
            group_by[i] = DOTTED[item]  # type: ignore[index]
            result.changes.append(Change(("group_by", i), ("group_by", i), f"{item} -> {DOTTED[item]}"))
    return result


def _rename_dotted_keys(mapping: MutableMapping[str, Any], at: KeyPath, result: Upgrade) -> None:
    for key in [k for k in mapping if k in DOTTED]:
        new = DOTTED[key]
        if new in mapping:
            result.unmappable.append(((*at, key), f"both '{key}' and '{new}' are given; keep '{new}'"))
            continue
        replace_key(mapping, key, new, mapping[key])
        result.changes.append(Change((*at, key), (*at, new)))


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _merge(into: Upgrade, other: Upgrade) -> None:
    into.changes.extend(other.changes)
    into.unmappable.extend(other.unmappable)
    into.layouts.extend(other.layouts)


# --------------------------------------------------------------------------- line maps


def moved_lines(lines: Mapping[KeyPath, int], changes: list[Change]) -> dict[KeyPath, int]:
    """The line map after ``changes``: every key under an old path is found under its new path."""
    out = dict(lines)
    for change in changes:
        if change.new is None or change.new == change.old:
            continue
        n = len(change.old)
        for path in [p for p in out if p[:n] == change.old]:
            out.setdefault((*change.new, *path[n:]), out[path])
    return out


def copied(data: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy to upgrade (loaded data is shared with the line map's document)."""
    return copy.deepcopy(dict(data))
