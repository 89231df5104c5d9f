"""Field errors and cross-field errors in one pass.

pydantic runs a model's cross-field rules (its ``model_validator(mode="after")``) only once
every field validated, so one bad value hides every cross-field problem and a user fixes a
file in rounds. ``validate_fully`` validates again with each failing value taken out (its
default takes its place; a missing text key gets a placeholder) and keeps the cross-field
problems that name none of the values taken out (a rule that compared against a default
would otherwise blame a value the user never wrote). Each round is linear in the size of
the data and in the number of errors.
"""

from __future__ import annotations

import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from lem.config.translate import TOKEN, Located, describe_error, describe_error_list, error_path
from lem.config.yaml_source import KeyPath

M = TypeVar("M", bound=BaseModel)

MAX_ROUNDS = 4
CROSS_FIELD_TYPES = frozenset({"value_error", "assertion_error"})
PLACEHOLDER = "x"  # stands for a missing required text key while the other rules run
_DELETE = object()


@dataclass(frozen=True)
class Outcome(Generic[M]):
    """``instance``: the data as given validated (else ``None``); ``repaired``: validated once
    the failing values were taken out (``None`` when that did not succeed either)."""

    instance: M | None
    repaired: M | None
    problems: tuple[Located, ...]
    removed: tuple[KeyPath, ...]

    @property
    def best(self) -> M | None:
        return self.instance if self.instance is not None else self.repaired

    def concerns_removed(self, path: KeyPath) -> bool:
        """Whether ``path`` is (inside) a value that was taken out."""
        removed = self._removed_set
        return any(path[:n] in removed for n in range(1, len(path) + 1))

    @cached_property
    def _removed_set(self) -> frozenset[KeyPath]:
        return frozenset(self.removed)


def validate_fully(model: type[M], data: Mapping[str, Any]) -> Outcome[M]:
    """Validate ``data``; on failure, every field problem plus the cross-field ones that still apply."""
    try:
        return Outcome(model.model_validate(data), None, (), ())
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
    described, paths = describe_error_list(errors, model, data)
    problems = dict.fromkeys(described)
    removed: dict[KeyPath, None] = {}
    current = data
    for _ in range(MAX_ROUNDS):
        cuts = _cuts(errors, paths, model)
        if cuts is None:
            break
        removed.update(dict.fromkeys(cuts))
        current = _apply(current, list(cuts.items()))
        try:
            repaired = model.model_validate(current)
        except ValidationError as exc:
            errors = exc.errors(include_url=False)
            paths = [error_path(e, model) for e in errors]
            problems.update(dict.fromkeys(_cross_field(errors, model, current, removed)))
            continue
        return Outcome(None, repaired, tuple(problems), tuple(removed))
    return Outcome(None, None, tuple(problems), tuple(removed))


def _cross_field(
    errors: list[ErrorDetails], model: type[M], data: Mapping[str, Any], removed: Mapping[KeyPath, None]
) -> Iterator[Located]:
    for error in errors:
        if error["type"] in CROSS_FIELD_TYPES:
            located = describe_error(error, model, data)
            if not _names_removed(error, model, located, removed):
                yield located


def _names_removed(
    error: ErrorDetails, model: type[BaseModel], located: Located, removed: Mapping[KeyPath, None]
) -> bool:
    """Whether the rule's message names a value that was taken out (absolute or relative to the rule)."""
    base = error_path(error, model)
    for token in TOKEN.findall(located.message):
        parts = tuple(token.split("."))
        for n in range(1, len(parts) + 1):
            if parts[:n] in removed or (*base, *parts[:n]) in removed:
                return True
    return False


def _cuts(
    errors: list[ErrorDetails], paths: list[KeyPath], model: type[BaseModel]
) -> dict[KeyPath, Any] | None:
    """What to take out (or fill in) so that the next round gets past these errors; ``None``: nothing can.

    ``paths``: the key path of each error (``error_path``).
    """
    cuts: dict[KeyPath, Any] = {}
    for error, given in zip(errors, paths, strict=True):
        path = _before_first_index(given)
        if error["type"] == "missing" and len(path) == 1 and _is_text(model, str(path[0])):
            cuts[path] = PLACEHOLDER
        elif error["type"] == "missing" and len(path) > 1:
            cuts[path[:-1]] = _DELETE
        elif path and error["type"] != "missing":
            cuts[path] = _DELETE
        else:
            return None  # a rule of the whole model, or a missing key that has no stand-in
    return cuts or None


def _before_first_index(path: KeyPath) -> KeyPath:
    """``("gpus", 3)`` -> ``("gpus",)``: a bad list item takes the whole list out."""
    for i, part in enumerate(path):
        if isinstance(part, int):
            return path[:i]
    return path


def _is_text(model: type[BaseModel], name: str) -> bool:
    info = model.model_fields.get(name)
    return info is not None and (info.annotation is str or str in typing.get_args(info.annotation))


def _apply(data: Any, cuts: list[tuple[KeyPath, Any]]) -> Any:
    """``data`` with each path deleted (``_DELETE``) or set, copying only what changes (linear)."""
    if not isinstance(data, Mapping):
        return data
    here: dict[str | int, Any] = {}
    below: dict[str | int, list[tuple[KeyPath, Any]]] = {}
    for path, value in cuts:
        if len(path) == 1:
            here[path[0]] = value
        else:
            below.setdefault(path[0], []).append((path[1:], value))
    out = dict(data)
    for key, sub in below.items():
        if key in out and key not in here:
            out[str(key)] = _apply(out[str(key)], sub)
    for key, value in here.items():
        if value is _DELETE:
            out.pop(str(key), None)
        else:
            out[str(key)] = value
    return out
