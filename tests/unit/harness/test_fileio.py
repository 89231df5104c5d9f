"""The atomic writer: whole files or none, models with non-finite floats still writable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lem_harness.contract import WarmupMetrics
from lem_harness.fileio import atomic_write_json, atomic_write_text


def test_text_replaces_the_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "a.txt"
    target.write_text("old")
    atomic_write_text(target, "new")
    assert target.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_a_failed_write_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "a.json"
    target.write_text('{"old": 1}')
    with pytest.raises(ValueError, match="Out of range float"):
        atomic_write_json(target, {"bad": float("nan")})
    assert target.read_text() == '{"old": 1}'
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_models_are_written_with_non_finite_floats_as_null(tmp_path: Path) -> None:
    model = WarmupMetrics(mode="convergence", iterations=1, prompts=1, duration_s=1.5, final_cv=float("inf"))
    atomic_write_json(tmp_path / "w.json", model)
    data = json.loads((tmp_path / "w.json").read_text())
    assert data["final_cv"] is None and data["duration_s"] == 1.5
    assert WarmupMetrics.model_validate(data).final_cv is None


def test_written_files_are_readable_by_others(tmp_path: Path) -> None:
    import os
    import stat

    old = os.umask(0o022)
    try:
        import importlib

        from lem_harness import fileio

        importlib.reload(fileio)
        fileio.atomic_write_text(tmp_path / "r.json", "{}")
    finally:
        os.umask(old)
        importlib.reload(fileio)
    assert stat.S_IMODE((tmp_path / "r.json").stat().st_mode) == 0o644
