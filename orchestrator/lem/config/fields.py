"""What keys exist: field catalogues of the config models and "did you mean" lookup."""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Iterable
from functools import cache, lru_cache
from typing import Any

from pydantic import BaseModel

from lem_harness.experiment import ExperimentConfig
from lem_harness.schema_base import BACKENDS


def models_in(annotation: Any) -> tuple[type[BaseModel], ...]:
    """The pydantic models an annotation can hold (``X | None``, unions, ``Annotated``)."""
    try:
        return _models_in_cached(annotation)
    except TypeError:  # an annotation that cannot be hashed
        return _models_in(annotation)


@lru_cache(maxsize=1_024)
def _models_in_cached(annotation: Any) -> tuple[type[BaseModel], ...]:
    return _models_in(annotation)


def _models_in(annotation: Any) -> tuple[type[BaseModel], ...]:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return models_in(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return tuple(m for arg in typing.get_args(annotation) for m in models_in(arg))
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return (annotation,)
    return ()


def field_models(model: type[BaseModel], name: str) -> tuple[type[BaseModel], ...]:
    """Models a field of ``model`` holds (empty when the field is a plain value)."""
    info = model.model_fields.get(name)
    return models_in(info.annotation) if info is not None else ()


def field_names(models: Iterable[type[BaseModel]]) -> list[str]:
    """Union of field names, in declaration order."""
    out: dict[str, None] = {}
    for model in models:
        out.update(dict.fromkeys(model.model_fields))
    return list(out)


@cache
def experiment_sections() -> dict[str, tuple[type[BaseModel], ...]]:
    """Top-level experiment keys that hold a section (``dataset`` holds one of three models)."""
    return {
        name: models
        for name in ExperimentConfig.model_fields
        if (models := field_models(ExperimentConfig, name))
    }


@cache
def experiment_paths() -> tuple[str, ...]:
    """Every settable key of an experiment: ``field`` and ``section.field``."""
    out: list[str] = []
    sections = experiment_sections()
    for name in ExperimentConfig.model_fields:
        out.append(name)
        out.extend(f"{name}.{sub}" for sub in field_names(sections.get(name, ())))
    return tuple(out)


def is_backend_section(name: str) -> bool:
    return name in BACKENDS


def suggest(word: str, choices: Iterable[str]) -> str | None:
    """The closest choice to ``word`` (difflib ratio >= 0.6), or ``None``."""
    return _suggest(word, tuple(choices))


@lru_cache(maxsize=4_096)
def _suggest(word: str, choices: tuple[str, ...]) -> str | None:
    """Cached: a file that repeats one misspelling thousands of times pays for difflib once."""
    pool = [c for c in choices if c != word]
    matches = difflib.get_close_matches(word, pool, n=1, cutoff=0.6)
    if not matches:
        matches = difflib.get_close_matches(word.lower(), pool, n=1, cutoff=0.6)
    return matches[0] if matches else None


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`` ; did you mean 'x'?`` or an empty string."""
    near = suggest(word, choices)
    return f"; did you mean '{near}'?" if near else ""


@lru_cache(maxsize=4_096)
def unknown_key_hint(word: str, models: tuple[type[BaseModel], ...], at_top: bool) -> str:
    """Hint for an unknown key: nearest sibling, or the section it belongs in."""
    names = field_names(models)
    near = suggest(word, names)
    if near:
        return f"; did you mean '{near}'?"
    if at_top:
        home = nested_home(word)
        if home:
            return f"; did you mean '{home}' (it belongs in a section)?"
    source = _other_prompt_type(word, models)
    if source:
        return f"; '{word}' belongs to prompts type '{source}' (set type: {source})"
    shown = ", ".join(names[:25]) + (", ..." if len(names) > 25 else "")
    return f"; valid keys here: {shown}"


def nested_home(word: str) -> str | None:
    """``batchsize`` -> ``pytorch.batch_size``: the section key closest to a misplaced top-level key."""
    leaves = _section_leaves()
    near = word if word in leaves else suggest(word, leaves)
    return leaves[near] if near else None


@cache
def _section_leaves() -> dict[str, str]:
    """``batch_size`` -> ``pytorch.batch_size``: each section key's first home."""
    leaves: dict[str, str] = {}
    for path in experiment_paths():
        if "." in path:
            leaves.setdefault(path.split(".", 1)[1], path)
    return leaves


def _other_prompt_type(word: str, models: tuple[type[BaseModel], ...]) -> str | None:
    """The ``type`` of another prompts shape that has the key ``word``."""
    members = experiment_sections()["prompts"]
    if not set(models) <= set(members):
        return None
    for member in members:
        if member not in models and word in member.model_fields:
            return str(typing.get_args(member.model_fields["type"].annotation)[0])
    return None
