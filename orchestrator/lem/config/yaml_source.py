"""Safe YAML loading that remembers the line of every key.

PyYAML composes the node graph (safe tags only); this module builds the Python
data from it by hand so that it can record ``key path -> line``, reject duplicate
keys (no silent last-wins), refuse non-text keys and stop alias bombs, deep
nesting and oversize files with a message that names the file and the line.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from lem.config.errors import ConfigError, ConfigProblem, ConfigWarning

KeyPath = tuple[str | int, ...]

MAX_FILE_BYTES = 1024 * 1024  # a config file is a few kB; 1 MiB is generous
MAX_VALUES = 100_000  # values after alias expansion (stops "billion laughs")
MAX_DEPTH = 50  # nesting depth of mappings/sequences

_MERGE_TAG = "tag:yaml.org,2002:merge"
_STR_TAG = "tag:yaml.org,2002:str"
_PLAIN_TAGS = frozenset({*("tag:yaml.org,2002:" + t for t in ("int", "float", "bool", "null"))})
_COLLECTION_TAGS = ("tag:yaml.org,2002:map", "tag:yaml.org,2002:seq")
_NUMBER_TAGS = ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float")


@dataclass(frozen=True)
class YamlDocument:
    """A parsed config file: its data and the line of every key (1-based)."""

    file: str
    data: dict[str, Any]
    lines: dict[KeyPath, int] = field(default_factory=dict)
    notices: tuple[ConfigWarning, ...] = ()  # schema version and older-spelling notices, from loading

    def line_of(self, path: KeyPath) -> int | None:
        """Line of ``path``, or of its nearest ancestor that the file spells out."""
        for end in range(len(path), -1, -1):
            line = self.lines.get(path[:end])
            if line is not None:
                return line
        return None

    def has(self, path: KeyPath) -> bool:
        return path in self.lines


def format_path(path: KeyPath) -> str:
    """``("gpus", 1)`` -> ``gpus[1]``; ``("vllm", "block_size")`` -> ``vllm.block_size``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def load_yaml(path: Path) -> YamlDocument:
    """Read and parse one config file; raises ``ConfigError`` naming file and line."""
    file = str(path)
    raw = _read_bytes(path, file)
    text = _decode(raw, file)
    return parse_yaml(text, file)


def parse_yaml(text: str, file: str) -> YamlDocument:
    """Parse config text whose top level must be a mapping."""
    node = _compose(text, file)
    if node is None:
        raise _error(file, 1, "", "the file is empty (or only comments); write a mapping of keys")
    if not isinstance(node, MappingNode):
        kind = "a list" if isinstance(node, SequenceNode) else f"a single value ({node.value!r})"
        raise _error(file, _line(node), "", f"the top level must be a mapping of keys, not {kind}")
    builder = _Builder(file)
    data = builder.mapping(node, ())
    if builder.problems:
        raise ConfigError(builder.problems)
    return YamlDocument(file=file, data=data, lines=builder.lines)


# --------------------------------------------------------------------------- reading


def _read_bytes(path: Path, file: str) -> bytes:
    try:
        size = path.stat().st_size
        if not path.is_file():
            raise _error(file, None, "", "not a regular file")
        if size > MAX_FILE_BYTES:
            raise _error(
                file,
                None,
                "",
                f"the file is {size:,} bytes; a config file may be at most {MAX_FILE_BYTES:,} bytes",
            )
        return path.read_bytes()
    except FileNotFoundError:
        raise _error(file, None, "", "file not found") from None
    except OSError as exc:
        raise _error(file, None, "", f"cannot read the file: {exc.strerror or exc}") from None


def _decode(raw: bytes, file: str) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        byte = raw[exc.start : exc.start + 1].hex()
        raise _error(
            file, line, "", f"not valid UTF-8 (byte 0x{byte} at column {column}); save the file as UTF-8"
        ) from None


def _compose(text: str, file: str) -> Node | None:
    _refuse_control_characters(text, file)
    fast = _compose_fast(text)
    if fast is not _FAILED:
        return fast  # type: ignore[return-value]
    loader: yaml.SafeLoader | None = None
    try:
        loader = yaml.SafeLoader(text)
        return loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        raise _syntax_error(text, file, exc) from None
    except yaml.reader.ReaderError as exc:
        line, column = _line_column(text, exc.position)
        raise _error(file, line, "", f"YAML error: {exc.reason}", column) from None
    except yaml.YAMLError as exc:
        raise _error(file, None, "", f"YAML error: {exc}") from None
    except RecursionError:
        raise _error(file, None, "", f"nesting is too deep (more than {MAX_DEPTH} levels)") from None
    finally:
        if loader is not None:
            loader.dispose()


_FAILED = object()


def _compose_fast(text: str) -> Node | object | None:
    """libyaml's composer (about 10x faster) when installed; ``_FAILED`` on any problem, which the
    pure-Python composer then reports in its own words (it names more of the context)."""
    loader_class = getattr(yaml, "CSafeLoader", None)
    if loader_class is None:
        return _FAILED
    loader = loader_class(text)
    try:
        node: Node | None = loader.get_single_node()
        return node
    except (yaml.YAMLError, RecursionError):  # libyaml stops nesting at 1,000 levels itself
        return _FAILED
    finally:
        loader.dispose()


def _refuse_control_characters(text: str, file: str) -> None:
    """YAML forbids control characters anywhere, quoted or not; name the first one and where it is."""
    found = yaml.reader.Reader.NON_PRINTABLE.search(text)
    if found is None:
        return
    line, column = _line_column(text, found.start())
    code = ord(found.group())
    raise _error(
        file,
        line,
        "",
        f"control character U+{code:04X} is not allowed in YAML, even inside quotes; delete it "
        f"(inside double quotes it may be written as the escape \\x{code:02x})"
        if code < 0x100
        else f"character U+{code:04X} is not allowed in YAML, even inside quotes; delete it",
        column,
    )


def _line_column(text: str, position: int) -> tuple[int, int]:
    """1-based line and column of character ``position`` of ``text``."""
    line_start = text.rfind("\n", 0, position) + 1
    return text.count("\n", 0, position) + 1, position - line_start + 1


def _syntax_error(text: str, file: str, exc: yaml.MarkedYAMLError) -> ConfigError:
    tab = _first_tab_indent(text)
    if tab is not None:
        return _error(
            file, tab[0], "", "a tab character indents this line; YAML indents with spaces only", tab[1]
        )
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark is not None else None
    column = mark.column + 1 if mark is not None else None
    problem = exc.problem or "invalid YAML"
    context = f" ({exc.context})" if exc.context else ""
    starts = exc.context_mark.line + 1 if exc.context_mark is not None else line
    if exc.context and exc.context.startswith("while parsing") and starts != line:
        context = f" ({exc.context} that starts on line {starts})"
    return _error(file, line, "", f"YAML syntax error: {problem}{context}", column)


def _first_tab_indent(text: str) -> tuple[int, int] | None:
    """Line and column of the first tab in the indentation of a line that holds something."""
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.lstrip(" \t")
        indent = line[: len(line) - len(stripped)]
        if "\t" in indent and stripped and not stripped.startswith("#"):
            return number, indent.index("\t") + 1
    return None


# --------------------------------------------------------------------------- building


class _Builder:
    """Turns a composed node graph into dicts/lists/scalars with a line map."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.lines: dict[KeyPath, int] = {(): 1}
        self.problems: list[ConfigProblem] = []
        self._constructor = yaml.SafeLoader("")
        self._plain: dict[tuple[str, str], Any] = {}  # (tag, text) -> value, for immutable values
        self._values = 0
        self._seen: set[int] = set()
        self._stack: set[int] = set()

    def value(self, node: Node, path: KeyPath) -> Any:
        self._count(node, path)
        if isinstance(node, ScalarNode):
            return self.scalar(node, path)
        if node.tag not in _COLLECTION_TAGS:
            raise _error(
                self.file, _line(node), format_path(path), f"unsupported YAML tag {node.tag!r}; remove it"
            )
        if id(node) in self._stack:
            raise _error(self.file, _line(node), format_path(path), "a YAML alias refers to itself")
        self._stack.add(id(node))
        try:
            if isinstance(node, MappingNode):
                return self.mapping(node, path)
            return [self.item(item, (*path, i)) for i, item in enumerate(node.value)]
        finally:
            self._stack.discard(id(node))

    def item(self, node: Node, path: KeyPath) -> Any:
        self.lines[path] = _line(node)
        return self.value(node, path)

    def _count(self, node: Node, path: KeyPath) -> None:
        self._values += 1
        repeated = id(node) in self._seen
        self._seen.add(id(node))
        if self._values > MAX_VALUES:
            why = "YAML aliases expand" if repeated else "the file holds"
            top = path[:1]
            line = self.lines.get(top, _line(node))
            raise _error(
                self.file, line, format_path(top), f"{why} to more than {MAX_VALUES:,} values; refusing it"
            )
        if len(path) > MAX_DEPTH:
            raise _error(self.file, _line(node), format_path(path), f"nesting deeper than {MAX_DEPTH} levels")

    def scalar(self, node: ScalarNode, path: KeyPath) -> Any:
        if node.tag == _STR_TAG:
            return node.value  # what the constructor would return, without its overhead
        if node.tag in _NUMBER_TAGS and ":" in node.value:
            return node.value  # YAML 1.1 base-60 numbers ("02:00") stay text
        key = (node.tag, node.value)
        if key in self._plain:
            return self._plain[key]
        try:
            value = self._constructor.construct_object(node)
        except yaml.YAMLError as exc:
            problem = getattr(exc, "problem", None) or str(exc)
            raise _error(
                self.file, _line(node), format_path(path), f"unsupported YAML value: {problem}"
            ) from None
        if node.tag in _PLAIN_TAGS:
            self._plain[key] = value  # immutable: numbers, booleans, null
        return value

    def mapping(self, node: MappingNode, path: KeyPath) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                merged = {**self._merge_sources(value_node, path), **merged}
                continue
            key = self._key(key_node, path)
            if key is None:
                continue
            if key in out:
                self._duplicate(key, key_node, path)
                continue
            self.lines[(*path, key)] = _line(key_node)
            out[key] = self.value(value_node, (*path, key))
        return {**merged, **out}

    def _merge_sources(self, node: Node, path: KeyPath) -> dict[str, Any]:
        sources = node.value if isinstance(node, SequenceNode) else [node]
        merged: dict[str, Any] = {}
        for source in reversed(sources):
            if not isinstance(source, MappingNode):
                raise _error(self.file, _line(source), format_path(path), "'<<' merges only mappings")
            merged.update(self.value(source, path))
        return merged

    def _key(self, node: Node, path: KeyPath) -> str | None:
        key = self.scalar(node, path) if isinstance(node, ScalarNode) else None
        if isinstance(key, str):
            return key
        shown = node.value if isinstance(node, ScalarNode) else "a list or mapping"
        self.problems.append(
            ConfigProblem(self.file, _line(node), format_path(path), f"key {shown!r} must be text; quote it")
        )
        return None

    def _duplicate(self, key: str, node: Node, path: KeyPath) -> None:
        first = self.lines[(*path, key)]
        message = f"duplicate key '{key}' (first given on line {first}); keep one"
        self.problems.append(ConfigProblem(self.file, _line(node), format_path((*path, key)), message))


def _line(node: Node) -> int:
    return int(node.start_mark.line) + 1


def _error(file: str, line: int | None, key: str, message: str, column: int | None = None) -> ConfigError:
    return ConfigError([ConfigProblem(file, line, key, message, column)])


def dig(data: Mapping[str, Any], path: KeyPath) -> tuple[bool, Any]:
    """``(True, value)`` when ``path`` exists in nested mappings/lists, else ``(False, None)``."""
    current: Any = data
    for part in path:
        if not _holds(current, part):
            return False, None
        current = current[part]
    return True, current


def _holds(container: Any, part: str | int) -> bool:
    if isinstance(part, int):
        return isinstance(container, list) and 0 <= part < len(container)
    return isinstance(container, Mapping) and part in container
