"""How one dataset row becomes one prompt text (pure: rows in, texts out).

- ``column``: the row's value under a column (the configured one, the built-in's, or the
  first of ``AUTO_COLUMNS`` the rows hold);
- ``alpaca``: ``instruction``, then a blank line and ``input`` when the row has one;
- ``sharegpt``: the first human turn of ``conversations`` (``from: human`` or ``user``);
- ``mmlu``: the question, one ``A. choice`` line per choice, then ``Answer:``.

Rows without a usable prompt (empty text, no human turn) are skipped; a missing column is
an error naming the columns the rows do have.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from lem_harness.datasets.errors import DatasetError
from lem_harness.prompt_sources import AUTO_COLUMNS, DatasetConfig

Row = Mapping[str, Any]
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def alpaca_prompt(row: Row) -> str | None:
    instruction = _text(row.get("instruction"))
    if instruction is None:
        return None
    extra = _text(row.get("input"))
    return f"{instruction}\n\n{extra}" if extra is not None else instruction


def sharegpt_prompt(row: Row) -> str | None:
    turns = row.get("conversations")
    if not isinstance(turns, list):
        return None
    for turn in turns:
        if isinstance(turn, Mapping) and turn.get("from") in ("human", "user"):
            return _text(turn.get("value"))
    return None


def mmlu_prompt(row: Row) -> str | None:
    question, choices = _text(row.get("question")), row.get("choices")
    if question is None or not isinstance(choices, Sequence) or isinstance(choices, str):
        return None
    lines = [question, *(f"{LETTERS[i]}. {choice}" for i, choice in enumerate(choices[: len(LETTERS)]))]
    return "\n".join([*lines, "Answer:"])


EXTRACTORS: dict[str, Callable[[Row], str | None]] = {
    "alpaca": alpaca_prompt,
    "sharegpt": sharegpt_prompt,
    "mmlu": mmlu_prompt,
}
# Keys each structured extraction needs in every row.
NEEDED: dict[str, tuple[str, ...]] = {
    "alpaca": ("instruction",),
    "sharegpt": ("conversations",),
    "mmlu": ("question", "choices"),
}


def pick_column(cfg: DatasetConfig, columns: Sequence[str]) -> str:
    """The column to read: the configured or built-in one, else the first of ``AUTO_COLUMNS``."""
    column = cfg.resolved_column
    if column is not None:
        return column
    found = next((c for c in AUTO_COLUMNS if c in columns), None)
    if found is None:
        raise DatasetError(
            f"dataset '{cfg.repo_id}': none of the usual prompt columns ({', '.join(AUTO_COLUMNS)}) "
            f"is present (columns: {', '.join(columns) or 'none'}); set the column with dataset.column"
        )
    return found


def extract_texts(cfg: DatasetConfig, rows: Sequence[Row], where: str) -> list[str]:
    """Every usable prompt text of ``rows`` in row order (``where`` names the file in errors)."""
    columns = list(rows[0]) if rows else []
    builtin = cfg.builtin
    kind = builtin.extract if builtin is not None and cfg.column is None else "column"
    if kind == "column":
        column = pick_column(cfg, columns)
        needed: tuple[str, ...] = (column,)
    else:
        needed = NEEDED[kind]
    for number, row in enumerate(rows, start=1):
        missing = [key for key in needed if key not in row]
        if missing:
            raise DatasetError(
                f"{where}: row {number} has no '{missing[0]}' (columns: {', '.join(row) or 'none'}); "
                "set dataset.column to the column holding the prompt"
            )
    if kind == "column":
        values = [_text(row[needed[0]]) for row in rows]
    else:
        values = [EXTRACTORS[kind](row) for row in rows]
    return [v for v in values if v is not None]
