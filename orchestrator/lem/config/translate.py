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
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from lem.config.campaign import CAMPAIGN_KEYS
from lem.config.fields import did_you_mean, field_names, models_in, suggest, unknown_key_hint
from lem.config.yaml_source import KeyPath, dig, format_path
from lem_harness.experiment import ExperimentConfig

_TOKEN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
_QUOTED = re.compile(r"'([^']*)'")


@dataclass(frozen=True)
class Located:
    """One problem at a key path of the user's data."""

    path: KeyPath
    message: str

    @property
    def key(self) -> str:
        return format_path(self.path)


@dataclass
class _Walk:
    """Where a pydantic ``loc`` lands: the user's path and the models around it."""

    path: KeyPath
    parent: tuple[type[BaseModel], ...]  # models holding the last key
    current: Any  # annotation at the end (None when unknown)


def describe_errors(exc: ValidationError, model: type[BaseModel], data: Mapping[str, Any]) -> list[Located]:
    """Translate every error of ``exc`` (raised validating ``data`` as ``model``)."""
    out: list[Located] = []
    for error in exc.errors(include_url=False):
        located = _describe(error, model, data)
        if located not in out:
            out.append(located)
    return out


def _describe(error: ErrorDetails, model: type[BaseModel], data: Mapping[str, Any]) -> Located:
    walk = _walk(model, error["loc"])
    kind = error["type"]
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
    current: Any = model
    path: list[str | int] = []
    parent: tuple[type[BaseModel], ...] = (model,)
    for part in loc:
        members = _union_members(current)
        if len(members) > 1:  # this loc part names the union member (a tag or a type name)
            current = _pick_member(members, part)
            continue
        current = members[0] if members else current
        path.append(part)
        if isinstance(part, int):
            current = _item_type(current)
            continue
        parent = models_in(current) or parent
        current = _field_type(current, part)
    return _Walk(tuple(path), parent, current)


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


def _field_type(annotation: Any, name: str) -> Any:
    for model in models_in(annotation):
        info = model.model_fields.get(name)
        if info is not None:
            return info.annotation
    if typing.get_origin(annotation) is dict:
        return typing.get_args(annotation)[1]
    return None


def _mentioned_path(message: str, base: KeyPath, data: Mapping[str, Any]) -> KeyPath:
    """The first key named in ``message`` that the data spells out (cross-field errors)."""
    for token in _TOKEN.findall(message):
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
}
