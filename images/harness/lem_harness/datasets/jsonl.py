"""A local JSON-lines prompt file: one object per line, the prompt under ``field``."""

from __future__ import annotations

import json
from pathlib import Path

from lem_harness.datasets.errors import DatasetError
from lem_harness.prompt_sources import FilePrompts


def _prompt(line: str, where: str, key: str) -> str:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as e:
        raise DatasetError(f"{where}: not valid JSON ({e.msg} at column {e.colno})") from e
    if not isinstance(record, dict):
        raise DatasetError(f"{where}: expected a JSON object with a '{key}' key, got {type(record).__name__}")
    if key not in record:
        keys = ", ".join(sorted(record)) or "none"
        raise DatasetError(f"{where}: no '{key}' key (keys: {keys}); set prompts.field to the prompt's key")
    value = record[key]
    if not isinstance(value, str) or not value:
        raise DatasetError(f"{where}: '{key}' must be a non-empty string")
    return value


def load_jsonl_texts(cfg: FilePrompts) -> list[str]:
    """Every prompt of the file, in file order; blank lines are skipped."""
    path = Path(cfg.path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as e:
        raise DatasetError(
            f"prompts.path {path}: no such file (relative paths are read from {Path.cwd()}); "
            "inside a container the file must be under a mounted directory"
        ) from e
    except (OSError, UnicodeDecodeError) as e:
        raise DatasetError(f"prompts.path {path}: cannot read it ({e})") from e
    return [
        _prompt(line, f"{path}:{number}", cfg.field)
        for number, line in enumerate(text.splitlines(), start=1)
        if line.strip()
    ]
