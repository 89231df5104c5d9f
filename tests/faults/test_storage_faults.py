"""A results directory that fills up, or is read-only: exit 1 with the path and what to do,
nothing half-written, no temporary file left. A real tiny tmpfs (needs root; CI runs as root)."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from lem.campaign.manifest import Manifest
from lem.cli.campaign_cmd import campaign
from tests.faults.conftest import temp_leftovers
from tests.unit.campaign.test_run_cli import Cli

pytestmark = pytest.mark.faults

CAMPAIGN = """\
campaign_name: full
model: org/tiny-model
prompts: {type: synthetic, sample_size: 4, input_len: 8}
base: {measurement: {device: simulated}, max_output_tokens: 4}
grid: {backends: [pytorch], axes: {pytorch.batch_size: [1, 2, 3, 4, 5, 6, 7, 8]}}
execution: {cycles: 4, config_gap_seconds: 0, cycle_gap_seconds: 0}
"""


@pytest.fixture
def tiny_fs(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "fs"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=96k", "tmpfs", str(mount)], check=False)
    if done.returncode != 0:
        if os.environ.get("CI"):
            pytest.fail("mounting a tmpfs must work in CI (root)")
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def invoke(cli: Cli, *args: str):  # type: ignore[no-untyped-def]
    # --skip-preflight: these tests are about the writes themselves (preflight would refuse the
    # 96 KiB file system up front, which tests/unit/campaign/test_preflight.py covers).
    argv = [str(cli.file), "--quiet", "--skip-preflight", "--results-dir", str(cli.results), *args]
    return CliRunner().invoke(campaign, argv, obj=cli.deps())


def test_a_full_disk_stops_with_the_path_and_resume_finishes_after_space_is_freed(
    tmp_path: Path, tiny_fs: Path
) -> None:
    cli = Cli(tmp_path, CAMPAIGN)
    cli.results = tiny_fs / "results"
    result = invoke(cli)
    assert result.exit_code == 1, result.output
    assert "cannot write " + str(cli.results / "full") in result.output
    assert "No space left on device. The file system is full: free space there" in result.output
    assert "--resume afterwards" in result.output and "unexpected error" not in result.output
    assert temp_leftovers(cli.results) == []
    manifest = Manifest.load(cli.results / "full" / "manifest.json")  # snapshot + journal: whole, valid
    done = [e.run_id for e in manifest.entries() if e.status == "done"]
    assert 0 < len(done) < 32, result.output

    subprocess.run(["mount", "-o", "remount,size=4m", str(tiny_fs)], check=True)  # space freed
    resumed = invoke(cli, "--resume")
    assert resumed.exit_code == 0, resumed.output
    final = json.loads((cli.results / "full" / "manifest.json").read_text())
    assert {r["status"] for r in final["runs"]} == {"done"}
    assert [r["run_id"] for r in final["runs"] if r["attempts"] == 1 and r["run_id"] in done] == done


def test_a_read_only_results_directory_is_reported_with_its_path(tmp_path: Path, tiny_fs: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(tiny_fs)], check=True)
    cli = Cli(tmp_path, CAMPAIGN)
    cli.results = tiny_fs / "results"
    result = invoke(cli)
    assert result.exit_code == 1
    assert f"cannot write {cli.results}: Read-only file system. The file system is read-only" in result.output
