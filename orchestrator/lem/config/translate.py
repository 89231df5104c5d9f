"""pydantic ``ValidationError`` -> messages a person can act on.

Each pydantic error becomes one ``Located``: the key path as the user wrote it
(discriminator tags removed, list indices kept) and a message that says what was
wrong and what to write instead ("did you mean ...", the allowed values, bounds).
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from lem.config.campaign import CAMPAIGN_KEYS
from lem.config.fields import did_you_mean, field_names, models_in, suggest, unknown_key_hint
from lem.config.yaml_source import KeyPath, dig, format_path
from lem_harness.experiment import ExperimentConfig

TOKEN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
_QUOTED = re.compile(r"'([^']*)'")


@dataclass(frozen=True)
class Located:
    """One problem at a key path of the user's data."""

    path: KeyPath
    message: str

    @property
    def key(self) -> str:
        return format_path(self.path)


@dataclass(frozen=True)
class _Walk:
    """Where a pydantic ``loc`` lands: the user's path and the models around it."""

    path: KeyPath
    parent: tuple[type[BaseModel], ...]  # models holding the last key
    current: Any  # annotation at the end (None when unknown)


HINT_LIMIT = 100
"""Unknown keys past this many get no "did you mean" (nobody reads the 90,000th suggestion)."""


def describe_errors(exc: ValidationError, model: type[BaseModel], data: Mapping[str, Any]) -> list[Located]:
    """Translate every error of ``exc`` (raised validating ``data`` as ``model``), each once, in order."""
    return describe_error_list(exc.errors(include_url=False), model, data)[0]


def describe_error_list(
    errors: list[ErrorDetails], model: type[BaseModel], data: Mapping[str, Any]
) -> tuple[list[Located], list[KeyPath]]:
    """``describe_errors`` for the ``errors()`` of a ``ValidationError`` (linear in their number),
    and the key path of each error (``error_path``), in the order of ``errors``."""
    out: dict[Located, None] = {}  # an ordered set
    paths: list[KeyPath] = []
    for i, error in enumerate(errors):
        walk = _walk(model, error["loc"])
        paths.append(walk.path)
        out.setdefault(_describe(error, walk, model, data, hint=i < HINT_LIMIT))
    return list(out), paths


def describe_error(error: ErrorDetails, model: type[BaseModel], data: Mapping[str, Any]) -> Located:
    """One error of a ``ValidationError`` (``error`` from its ``errors()``), translated."""
    return _describe(error, _walk(model, error["loc"]), model, data, hint=True)


def error_path(error: ErrorDetails, model: type[BaseModel]) -> KeyPath:
    """The key path of ``error`` as the user wrote it (union tags removed)."""
    return _walk(model, error["loc"]).path


def _describe(
    error: ErrorDetails, walk: _Walk, model: type[BaseModel], data: Mapping[str, Any], hint: bool
) -> Located:
    kind = error["type"]
    if kind == "extra_forbidden" and not hint:
        return Located(walk.path, f"unknown key '{walk.path[-1]}'")
    handler = _HANDLERS.get(kind, _generic)
    located = handler(error, walk, model)
    if kind in ("value_error", "assertion_error"):
        path = _mentioned_path(located.message, walk.path, data)
        return Located(path, _without_key(located.message, format_path(path)))
    return located


def _without_key(message: str, key: str) -> str:
    """``"warmup.min_prompts must be <= ..."`` at key ``warmup.min_prompts`` -> ``"must be <= ..."``."""
    for verb in (" must ", " is "):
        if key and message.startswith(key + verb):
            return message[len(key) + 1 :]
    return message


# --------------------------------------------------------------------------- loc walking


def _walk(model: type[BaseModel], loc: tuple[int | str, ...]) -> _Walk:
    """Where ``loc`` lands; the walk to its parent is cached (thousands of errors share a parent)."""
    if not loc:
        return _Walk((), (model,), model)
    return _step(_walk_cached(model, loc[:-1]), loc[-1])


@lru_cache(maxsize=1_024)
def _walk_cached(model: type[BaseModel], loc: tuple[int | str, ...]) -> _Walk:
    return _walk(model, loc)


def _step(walk: _Walk, part: int | str) -> _Walk:
    shape = _shape(walk.current)
    if len(shape.members) > 1:  # this loc part names the union member (a tag or a type name)
        return _Walk(walk.path, walk.parent, _pick_member(list(shape.members), part))
    path = (*walk.path, part)
    if isinstance(part, int):
        return _Walk(path, walk.parent, shape.item)
    return _Walk(path, shape.models or walk.parent, shape.fields.get(part, shape.values))


@dataclass(frozen=True)
class _Shape:
    """What an annotation holds, worked out once per annotation."""

    members: tuple[Any, ...]  # union members (``None`` left out); more than one: a tagged union
    models: tuple[type[BaseModel], ...]  # the models of its single member
    fields: Mapping[str, Any]  # field name -> annotation, over those models
    values: Any  # value annotation of a ``dict``, else None
    item: Any  # item annotation of a tuple / list, else None


def _shape(annotation: Any) -> _Shape:
    try:
        return _shape_cached(annotation)
    except TypeError:  # an annotation that cannot be hashed
        return _make_shape(annotation)


@lru_cache(maxsize=512)
def _shape_cached(annotation: Any) -> _Shape:
    return _make_shape(annotation)


def _make_shape(annotation: Any) -> _Shape:
    members = tuple(_union_members(annotation))
    current = members[0] if members else annotation
    models = models_in(current)
    fields: dict[str, Any] = {}
    for model in models:
        for name, info in model.model_fields.items():
            fields.setdefault(name, info.annotation)
    values = typing.get_args(current)[1] if typing.get_origin(current) is dict else None
    return _Shape(members, models, fields, values, _item_type(current))


def _union_members(annotation: Any) -> list[Any]:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _union_members(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        return members if len(members) > 1 else _union_members(members[0])
    return [annotation]


def _pick_member(members: list[Any], tag: int | str) -> Any:
    for member in members:
        for model in models_in(member):
            for info in model.model_fields.values():
                if (
                    tag in typing.get_args(info.annotation)
                    and typing.get_origin(info.annotation) is typing.Literal
                ):
                    return model
    return None


def _item_type(annotation: Any) -> Any:
    args = typing.get_args(annotation)
    return args[0] if args else None


def _mentioned_path(message: str, base: KeyPath, data: Mapping[str, Any]) -> KeyPath:
    """The first key named in ``message`` that the data spells out (cross-field errors)."""
    for token in TOKEN.findall(message):
        parts = tuple(token.split("."))
        for candidate in (parts, (*base, *parts)):
            if dig(data, candidate)[0]:
                return candidate
    return base


# --------------------------------------------------------------------------- handlers


def _got(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _type_name(value: Any) -> str:
    names = {
        dict: "a mapping",
        list: "a list",
        str: "text",
        bool: "a boolean",
        int: "a number",
        float: "a number",
    }
    if value is None:
        return "nothing (null)"
    return names.get(type(value), f"a {type(value).__name__}")


def _extra(error: ErrorDetails, walk: _Walk, model: type[BaseModel]) -> Located:
    key = str(walk.path[-1])
    at_top = len(walk.path) == 1 and model is ExperimentConfig
    hint = unknown_key_hint(key, walk.parent, at_top=at_top)
    campaign_key = suggest(key, CAMPAIGN_KEYS) if at_top else None
    sibling = suggest(key, field_names(walk.parent))
    if campaign_key and (
        "did you mean" not in hint if sibling is None else _closer(key, campaign_key, sibling)
    ):
        hint = (
            f"; did you mean '{campaign_key}'? (that is a campaign key: this file was read as an experiment)"
        )
    return Located(walk.path, f"unknown key '{key}'{hint}")


def _closer(word: str, candidate: str, other: str | None) -> bool:
    """``candidate`` is at least as close to ``word`` as ``other`` (difflib ratio)."""
    ratio = difflib.SequenceMatcher(None, word, candidate).ratio()
    return other is None or ratio >= difflib.SequenceMatcher(None, word, other).ratio()


def _missing(error: ErrorDetails, walk: _Walk, model: type[BaseModel]) -> Located:
    return Located(walk.path, f"missing required key '{walk.path[-1]}'")


def _literal(error: ErrorDetails, walk: _Walk, model: type[BaseModel]) -> Located:
    expected = str((error.get("ctx") or {}).get("expected", ""))
    value = error["input"]
    hint = did_you_mean(value, _QUOTED.findall(expected)) if isinstance(value, str) else ""
    return Located(walk.path, f"{_got(value)} is not allowed; choose one of {expected}{hint}")


def _tag_invalid(error: ErrorDetails, walk: _Walk, model: type[BaseModel]) -> Located:
    ctx = error.get("ctx") or {}
    field = str(ctx.get("discriminator", "'type'")).strip("'")
    tag = str(ctx.get("tag", ""))
    expected = str(ctx.get("expected_tags", ""))
    hint = did_you_mean(tag, _QUOTED.findall(expected))
    return Located((*walk.path, field), f"unknown value {tag!r}; choose one of {expected}{hint}")


def _tag_missing(error: ErrorDetails, walk: _Walk, model: type[BaseModel]) -> Located:
    field = str((error.get("ctx") or {}).get("discriminator", "'type'")).strip("'")
    tags = [_tag_of(m) for m in models_in(walk.current)]
    choices = ", ".join(f"'{t}'" for t in tags if t)
    return Located(walk.path, f"needs a '{field}' key: one of {choices}")


def _tag_of(model: type[BaseModel]) -> str | None:
    info = model.model_fields.get("type")
    args = typing.get_args(info.annotation) if info is not None else ()
    return str(args[0]) if args else None


def _not_mapping(error: ErrorDetails, walk: _Walk, model: type[BaseModel]) -> Located:
    value = error["input"]
    keys = field_names(models_in(walk.current))
    example = f" (keys such as {', '.join(keys[:4])})" if keys else ""
    return Located(walk.path, f"must be a mapping of keys{example}, not {_type_name(value)} {_got(value)}")


def _not_list(error: ErrorDetails, walk: _Walk, model: type[BaseModel]) -> Located:
    value = error["input"]
    return Located(walk.path, f"must be a list such as [0, 1], not {_type_name(value)} {_got(value)}")


def _value_error(error: ErrorDetails, walk: _Walk, model: type[BaseModel]) -> Located:
    message = str(error["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
    return Located(walk.path, message)


_BOUNDS = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}


def _bound(error: ErrorDetails, walk: _Walk, model: type[BaseModel]) -> Located:
    ctx = error.get("ctx") or {}
    op = _BOUNDS[error["type"]]
    limit = next(iter(ctx.values()), "?")
    return Located(walk.path, f"must be {op} {limit} (got {_got(error['input'])})")


def _pattern(error: ErrorDetails, walk: _Walk, model: type[BaseModel]) -> Located:
    pattern = (error.get("ctx") or {}).get("pattern", "")
    return Located(walk.path, f"{_got(error['input'])} does not have the required form (pattern {pattern})")


def _number(error: ErrorDetails, walk: _Walk, model: type[BaseModel]) -> Located:
    """Numbers are strict: ``yes``/``true`` and ``"12"`` are not numbers."""
    value = error["input"]
    wanted = "a number" if error["type"].startswith("float") else "a whole number"
    if isinstance(value, bool):
        why = f"not the boolean {str(value).lower()} (YAML reads yes/no/on/off/true/false as booleans)"
    elif isinstance(value, str):
        why = f"not the text {_got(value)}" + ("; remove the quotes" if _numeric_text(value) else "")
    else:
        why = f"not {_type_name(value)} {_got(value)}"
    return Located(walk.path, f"must be {wanted}, {why}")


def _numeric_text(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _generic(error: ErrorDetails, walk: _Walk, model: type[BaseModel]) -> Located:
    return Located(walk.path, f"{error['msg']} (got {_got(error['input'])})")


_Handler = Callable[[ErrorDetails, _Walk, type[BaseModel]], Located]
_HANDLERS: dict[str, _Handler] = {
    "extra_forbidden": _extra,
    "missing": _missing,
    "literal_error": _literal,
    "union_tag_invalid": _tag_invalid,
    "union_tag_not_found": _tag_missing,
    "model_type": _not_mapping,
    "model_attributes_type": _not_mapping,
    "dict_type": _not_mapping,
    "tuple_type": _not_list,
    "list_type": _not_list,
    "value_error": _value_error,
    "string_pattern_mismatch": _pattern,
    **dict.fromkeys(_BOUNDS, _bound),
    "assertion_error": _value_error,
    **dict.fromkeys(("int_type", "int_parsing", "int_from_float", "float_type", "float_parsing"), _number),
}
