"""YAML loading: line map, duplicate keys, and every way a file can be unreadable."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from lem.config.errors import ConfigError
from lem.config.yaml_source import MAX_DEPTH, MAX_FILE_BYTES, dig, format_path, load_yaml, parse_yaml


def problems_of(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_yaml(text, "f.yaml")
    return [str(p) for p in info.value.problems]


def test_lines_of_nested_keys_and_list_items() -> None:
    doc = parse_yaml("model_name: m\npytorch:\n  batch_size: 8\ngpus:\n  - 0\n  - 1\n", "f.yaml")
    assert doc.data == {"model_name": "m", "pytorch": {"batch_size": 8}, "gpus": [0, 1]}
    assert doc.lines[("model_name",)] == 1
    assert doc.lines[("pytorch", "batch_size")] == 3
    assert doc.lines[("gpus", 1)] == 6
    assert doc.line_of(("pytorch", "batch_size", "deeper")) == 3  # nearest spelled-out ancestor
    assert doc.line_of(("absent",)) == 1  # the root


def test_every_duplicate_key_is_reported_with_both_lines() -> None:
    problems = problems_of("a: 1\nb: 2\na: 3\nsec:\n  x: 1\n  x: 2\n")
    assert problems == [
        "f.yaml:3: a: duplicate key 'a' (first given on line 1); keep one",
        "f.yaml:6: sec.x: duplicate key 'x' (first given on line 5); keep one",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "f.yaml:1: the file is empty (or only comments); write a mapping of keys"),
        ("# nothing\n", "f.yaml:1: the file is empty (or only comments); write a mapping of keys"),
        ("- a\n- b\n", "f.yaml:1: the top level must be a mapping of keys, not a list"),
        ("42\n", "f.yaml:1: the top level must be a mapping of keys, not a single value ('42')"),
        ("a:\n\tb: 1\n", "f.yaml:2:1: a tab character indents this line; YAML indents with spaces only"),
        ("1: x\n", "f.yaml:1: key '1' must be text; quote it"),
        ("a: !!binary aGk=\nb: !custom x\n", "f.yaml:2: b: unsupported YAML value: could not determine a "
         "constructor for the tag '!custom'"),
        ("a: !!python/tuple [1]\n", "f.yaml:1: a: unsupported YAML tag "
            "'tag:yaml.org,2002:python/tuple'; remove it"),
        ("a: 1\n---\nb: 2\n", "f.yaml:2:1: YAML syntax error: but found another document (expected a single "
         "document in the stream)"),
    ],
)  # fmt: skip
def test_unreadable_text_is_one_clear_problem(text: str, expected: str) -> None:
    assert problems_of(text) == [expected]


def test_alias_bomb_is_refused_quickly() -> None:
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    levels += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    problems = problems_of("\n".join(levels) + "\n")
    assert problems == ["f.yaml:5: a4: YAML aliases expand to more than 100,000 values; refusing it"]


def test_recursive_alias_and_deep_nesting_are_refused() -> None:
    assert problems_of("a: &x [1, *x]\n") == ["f.yaml:1: a[1]: a YAML alias refers to itself"]
    deep = "a: " + "[" * (MAX_DEPTH + 5) + "]" * (MAX_DEPTH + 5) + "\n"
    (problem,) = problems_of(deep)
    assert f"nesting deeper than {MAX_DEPTH} levels" in problem


def test_anchors_and_merge_keys_work_and_explicit_keys_win() -> None:
    text = "defaults: &d\n  batch_size: 4\n  use_cache: false\npytorch:\n  <<: *d\n  batch_size: 8\n"
    doc = parse_yaml(text, "f.yaml")
    assert doc.data["pytorch"] == {"batch_size": 8, "use_cache": False}
    assert doc.lines[("pytorch", "batch_size")] == 6


def test_base_60_numbers_stay_text() -> None:
    assert parse_yaml("at: 02:00\nn: 1200\n", "f.yaml").data == {"at": "02:00", "n": 1200}


def test_non_utf8_names_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_bytes(b"a: 1\nconfig_name: caf\xe9\n")
    with pytest.raises(ConfigError) as info:
        load_yaml(path)
    assert str(info.value) == f"{path}:2: not valid UTF-8 (byte 0xe9 at column 17); save the file as UTF-8"


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "bom.yaml"
    path.write_bytes(b"\xef\xbb\xbfmodel_name: m\n")
    assert load_yaml(path).data == {"model_name": "m"}


def test_oversize_missing_and_directory_paths(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_bytes(b"#" * (MAX_FILE_BYTES + 1))
    cases = {
        big: f"{big}: the file is {MAX_FILE_BYTES + 1:,} bytes; a config file may be at most "
        f"{MAX_FILE_BYTES:,} bytes",
        tmp_path / "nope.yaml": f"{tmp_path / 'nope.yaml'}: file not found",
        tmp_path: f"{tmp_path}: not a regular file",
    }
    for path, expected in cases.items():
        with pytest.raises(ConfigError) as info:
            load_yaml(path)
        assert str(info.value) == expected


def test_format_path_and_dig() -> None:
    assert format_path(("gpus", 1)) == "gpus[1]"
    assert format_path(("experiments", 0, "overrides", "pytorch.batch_size")) == (
        "experiments[0].overrides.pytorch.batch_size"
    )
    data = {"a": {"b": [10, 20]}}
    assert dig(data, ("a", "b", 1)) == (True, 20)
    assert dig(data, ("a", "b", 2)) == (False, None)
    assert dig(data, ("a", "c")) == (False, None)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('a: 1\nb: "x\x07y"\n', "f.yaml:2:6: control character U+0007 is not allowed in YAML, even inside "
         "quotes; delete it (inside double quotes it may be written as the escape \\x07)"),
        ("a: 1\n# note \x1b[0m\n", "f.yaml:2:8: control character U+001B"),
        ("k\x00ey: 1\n", "f.yaml:1:2: control character U+0000"),
        ("a: '\ufffe'\n", "f.yaml:1:5: character U+FFFE is not allowed in YAML, even inside quotes"),
        ("a: 1\nb: @x\n", "f.yaml:2:4: YAML syntax error: found character '@' that cannot start any token"),
    ],
)  # fmt: skip
def test_reader_and_scanner_errors_name_line_and_column(text: str, expected: str) -> None:
    (problem,) = problems_of(text)
    assert problem.startswith(expected)


def test_libyaml_and_pure_python_composers_build_the_same_document(monkeypatch: pytest.MonkeyPatch) -> None:
    text = "a: 1\nb: [1, 2.5, x]\nc: &x {k: v, n: null}\nd: *x\ne: 02:00\nf: yes\ng: '3'\n"
    fast = parse_yaml(text, "f.yaml")
    monkeypatch.delattr(yaml, "CSafeLoader")
    slow = parse_yaml(text, "f.yaml")
    assert fast.data == slow.data == {
        "a": 1, "b": [1, 2.5, "x"], "c": {"k": "v", "n": None}, "d": {"k": "v", "n": None}, "e": "02:00",
        "f": True, "g": "3",
    }  # fmt: skip
    assert fast.lines == slow.lines
