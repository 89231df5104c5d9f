"""Every file of the bad-config corpus is rejected by the real CLI: exit 1, one clear message, no traceback.

``tests/data/bad_configs/expected.yaml`` says, for each file, the line (and the column, for
problems found while reading the YAML text), the dotted key and a fragment of the message of
its first problem, and how many problems it has when that is not one. The 10 MB file is
generated here rather than stored in the repository.
"""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml

from lem.config.yaml_source import MAX_FILE_BYTES

CORPUS = Path(__file__).resolve().parents[2] / "data" / "bad_configs"
EXPECTED: dict[str, dict[str, Any]] = yaml.safe_load((CORPUS / "expected.yaml").read_text())
REPO = Path(__file__).resolve().parents[3]


def run_validate(path: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LEM_DEBUG": ""}
    return subprocess.run(
        [sys.executable, "-m", "lem", "config", "validate", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env=env,
        check=False,
    )


@pytest.fixture(scope="module")
def corpus_results() -> dict[str, subprocess.CompletedProcess[str]]:
    """One `lem config validate` process per file, a few at a time (the CPUs are the limit)."""
    names = sorted(EXPECTED)
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        return dict(zip(names, pool.map(lambda n: run_validate(CORPUS / n), names), strict=True))


def test_the_corpus_is_complete() -> None:
    files = {p.name for p in CORPUS.glob("*.yaml")} - {"expected.yaml"}
    assert files == set(EXPECTED)
    assert len(files) >= 30


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_bad_config_is_rejected_clearly(
    name: str, corpus_results: dict[str, subprocess.CompletedProcess[str]]
) -> None:
    path = CORPUS / name
    expected = EXPECTED[name]
    result = corpus_results[name]
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "Traceback" not in output
    key = f" {expected['key']}:" if expected["key"] else ""
    column = f"{expected['column']}:" if "column" in expected else ""
    prefix = f"{path}:{expected['line']}:{column}{key} "
    problems = [line.strip() for line in result.stdout.splitlines() if line.startswith(f"  {path}")]
    assert len(problems) == expected.get("count", 1), output
    assert problems[0].startswith(prefix), output
    assert expected["message"] in problems[0]


def test_ten_megabyte_file_is_rejected_without_reading_it(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    line = b"key_%07d: some value that pads the line\n"
    with path.open("wb") as handle:
        for i in range(10 * 1024 * 1024 // len(line % 0) + 1):
            handle.write(line % i)
    size = path.stat().st_size
    assert size >= 10 * 1024 * 1024
    result = run_validate(path)
    assert result.returncode == 1
    assert "Traceback" not in result.stdout + result.stderr
    assert (
        f"{path}: the file is {size:,} bytes; a config file may be at most {MAX_FILE_BYTES:,} bytes"
        in result.stdout
    )
