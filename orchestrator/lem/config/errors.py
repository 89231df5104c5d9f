"""Problems and warnings a configuration can produce.

A ``ConfigProblem`` makes a file invalid; a ``ConfigWarning`` is advice (or, with
severity ``error``, a combination known to fail when the engine starts).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

Severity = Literal["info", "warning", "error"]


@dataclass(frozen=True)
class ConfigProblem:
    """One thing wrong with a file: where (file, line, dotted key) and what to do.

    ``column`` (1-based) is given for problems found while reading the YAML text itself.
    """

    file: str
    line: int | None
    key: str
    message: str
    column: int | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        if self.line is not None and self.column is not None:
            where += f":{self.column}"
        key = f" {self.key}:" if self.key else ""
        return f"{where}:{key} {self.message}"


class ConfigError(Exception):
    """A configuration could not be loaded; ``problems`` lists every reason."""

    def __init__(self, problems: Iterable[ConfigProblem]) -> None:
        self.problems: list[ConfigProblem] = _unique(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


@dataclass(frozen=True)
class ConfigWarning:
    """Advice about a valid configuration. ``param`` is the dotted key it concerns."""

    param: str
    message: str
    severity: Severity
    code: str

    def __str__(self) -> str:
        return f"{self.severity} [{self.code}] {self.param}: {self.message}"


def _unique(problems: Iterable[ConfigProblem]) -> list[ConfigProblem]:
    seen: set[ConfigProblem] = set()
    out: list[ConfigProblem] = []
    for problem in problems:
        if problem not in seen:
            seen.add(problem)
            out.append(problem)
    return out
