"""A local-runtime campaign through the real command: SIGKILL, SIGINT twice, SIGHUP, then resume.

Each signal lands while a harness process is in the middle of a run (the stand-in harness
holds where the test asked and writes ``held-<run>``; the test waits for that file). After
each, the harness process must be gone (no orphan), and the resume must finish every run
exactly once, never with two processes measuring one run, leaving no temporary file.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import pytest

from tests.faults.conftest import (
    REPO,
    completions,
    events,
    gone,
    kill_and_reap,
    output,
    overlaps,
    spawn,
    temp_leftovers,
    wait_for,
)

pytestmark = pytest.mark.faults

RUN_IDS = [f"pytorch-bs{b}-c{c:02d}" for c in (1, 2, 3) for b in (1, 2)]
CAMPAIGN = """\
campaign_name: local-faults
model: org/tiny-model
prompts: {type: synthetic, sample_size: 4, input_len: 8}
base: {measurement: {device: simulated}, max_output_tokens: 4}
grid: {backends: [pytorch], axes: {pytorch.batch_size: [1, 2]}}
execution: {cycles: 3, config_gap_seconds: 0, cycle_gap_seconds: 0, timeout_seconds: 600}
"""


@pytest.fixture
def bed(tmp_path: Path) -> Path:
    (tmp_path / "control").mkdir()
    (tmp_path / "tmp").mkdir()
    (tmp_path / "campaign.yaml").write_text(CAMPAIGN)
    python = tmp_path / "fake-python"
    python.write_text(
        f'#!/bin/sh\nif [ "$1" = "-c" ]; then exit 0; fi\n'
        f'exec {sys.executable} {REPO / "tests" / "faults" / "fake_harness.py"} "$@"\n'
    )
    python.chmod(0o755)
    return tmp_path


def lem(bed: Path, *args: str):  # type: ignore[no-untyped-def]
    env = {
        **os.environ,
        "FAULT_EVENTS": str(bed / "events.log"),
        "FAULT_CONTROL": str(bed / "control"),
        "LEM_RUNTIME_DIR": str(bed / "runtime"),
        "TMPDIR": str(bed / "tmp"),
        "HOME": str(bed / "home"),
    }
    argv = [sys.executable, "-m", "tests.faults.local_campaign", str(bed / "fake-python")]
    argv += [str(bed / "campaign.yaml"), "--results-dir", str(bed / "results"), *args]
    return spawn(argv, bed / "lem.log", cwd=REPO, env=env)


def hold(bed: Path, run_id: str, mode: str = "") -> int:
    """Start lem on ``hold-<run_id>`` … wait until the harness holds there; its pid."""
    held = bed / "control" / f"held-{run_id}"
    wait_for(held.exists, f"the harness to hold at {run_id}")
    return int(held.read_text())


def test_signals_to_lem_leave_no_orphan_and_lose_no_run(bed: Path) -> None:
    control = bed / "control"
    # 1. SIGKILL: the kernel's parent-death signal takes the harness down with lem
    (control / "hold-pytorch-bs2-c01").write_text("")
    proc = lem(bed)
    pid = hold(bed, "pytorch-bs2-c01")
    assert kill_and_reap(proc, signal.SIGKILL) == -signal.SIGKILL
    wait_for(lambda: gone(pid), f"harness {pid} to die with lem")

    # 2. SIGINT twice: the first asks the harness to stop (it hangs), the second kills its group
    (control / "hold-pytorch-bs1-c02").write_text("ignore-term")
    proc = lem(bed, "--resume")
    pid = hold(bed, "pytorch-bs1-c02")
    proc.send_signal(signal.SIGINT)
    wait_for(
        lambda: ["sigterm", "pytorch-bs1-c02", str(pid)] in events.read(bed / "events.log"), "SIGTERM", proc
    )
    assert kill_and_reap(proc, signal.SIGINT) == 130, output(proc)
    wait_for(lambda: gone(pid), f"harness {pid} to be killed by lem's forced exit")

    # 3. SIGHUP (a dropped ssh session): a clean stop, the harness writes an interrupted result
    (control / "hold-pytorch-bs2-c02").write_text("")
    proc = lem(bed, "--resume")
    pid = hold(bed, "pytorch-bs2-c02")
    assert kill_and_reap(proc, signal.SIGHUP) == 130, output(proc)
    assert gone(pid)

    # 4. resume to the end
    proc = lem(bed, "--resume")
    assert proc.wait(timeout=600) == 0, output(proc)

    manifest = json.loads((bed / "results" / "local-faults" / "manifest.json").read_text())
    assert {r["run_id"]: r["status"] for r in manifest["runs"]} == dict.fromkeys(RUN_IDS, "done")
    assert {r["run_id"]: r["attempts"] for r in manifest["runs"]} == {
        **dict.fromkeys(RUN_IDS, 1),
        "pytorch-bs2-c01": 2,
        "pytorch-bs1-c02": 2,
        "pytorch-bs2-c02": 2,
    }
    done = completions(bed / "events.log")
    assert {r: done[(r, "ok")] for r in RUN_IDS} == dict.fromkeys(RUN_IDS, 1)
    assert done[("pytorch-bs2-c02", "interrupted")] == 1  # SIGHUP: SIGTERM → interrupted result
    assert overlaps(bed / "events.log") == []
    assert temp_leftovers(bed / "results") == [] and list((bed / "tmp").iterdir()) == []
    starts = [e for e in events.read(bed / "events.log") if e[0] == "start"]
    assert all(gone(int(e[2])) for e in starts)  # no harness process outlived the test
