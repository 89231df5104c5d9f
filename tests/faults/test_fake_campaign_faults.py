"""1,000 runs, 5 % failing, the orchestrator SIGKILLed 3 times mid-run: nothing lost or repeated.

Each kill lands while a run is in progress (the fake runtime holds at a chosen run and the test
waits for its ``held`` file), then ``--resume`` continues. At the end every run is ``done``
exactly once, its ``result.json`` matches the manifest's checksum, no run was ever measured by
two processes at once, and no temporary file is left.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from lem.campaign.verdict import sha256_hex
from tests.faults.conftest import (
    REPO,
    completions,
    kill_and_reap,
    output,
    overlaps,
    spawn,
    temp_leftovers,
    wait_for,
)
from tests.faults.fake_campaign import CONFIGS, CYCLES

pytestmark = pytest.mark.faults

SEED = 11
HOLD_AT = (137, 402, 251)  # the n-th run started by the 1st, 2nd, 3rd process is where it is killed


def all_run_ids() -> list[str]:
    return [f"pytorch-bs{b}-c{c:02d}" for c in range(1, CYCLES + 1) for b in range(1, CONFIGS + 1)]


def start(tmp: Path, *extra: str) -> subprocess.Popen[bytes]:
    args = [str(tmp / "results"), str(tmp / "events.log"), str(tmp / "control"), *extra]
    return spawn([sys.executable, "-m", "tests.faults.fake_campaign", *args], tmp / "lem.log", cwd=REPO)


def test_a_thousand_run_campaign_survives_three_sigkills(tmp_path: Path) -> None:
    run_ids = all_run_ids()
    failing = sorted(random.Random(SEED).sample(run_ids, len(run_ids) // 20))  # 5 %
    (tmp_path / "control").mkdir()
    (tmp_path / "control" / "fail").write_text("\n".join(failing))
    killed_runs = []
    for n, hold_at in enumerate(HOLD_AT):
        held = tmp_path / "control" / "held"
        proc = start(tmp_path, *(["--resume"] if n else []), "--hold-at", str(hold_at))
        wait_for(held.exists, f"run {hold_at} of process {n + 1} to start", proc)
        killed_runs.append(held.read_text())
        assert kill_and_reap(proc, signal.SIGKILL) == -signal.SIGKILL
        held.unlink()

    final = start(tmp_path, "--resume")
    assert final.wait(timeout=600) == 0, output(final)

    manifest = json.loads((tmp_path / "results" / "faults" / "manifest.json").read_text())
    runs = {r["run_id"]: r for r in manifest["runs"]}
    assert sorted(runs) == sorted(run_ids)
    assert [r for r in runs.values() if r["status"] != "done"] == []  # 0 lost
    for run_id, entry in runs.items():  # every result is the one that was judged
        data = (tmp_path / "results" / "faults" / run_id / "result.json").read_bytes()
        assert sha256_hex(data) == entry["result_sha256"], run_id
    done = completions(tmp_path / "events.log")
    assert {run_id: done[(run_id, "ok")] for run_id in run_ids} == dict.fromkeys(run_ids, 1)  # 0 duplicated
    assert {run_id: done[(run_id, "failed")] for run_id in failing} == dict.fromkeys(failing, 1)
    assert sum(done.values()) == len(run_ids) + len(failing)
    # one attempt each; a failing run retries once; a killed attempt is repeated by the resume
    expected = {r: 1 + (r in failing) + (r in killed_runs) for r in run_ids}
    assert {r: runs[r]["attempts"] for r in run_ids} == expected
    assert overlaps(tmp_path / "events.log") == []  # 0 measured twice at once
    assert temp_leftovers(tmp_path / "results") == []
    assert not (tmp_path / "results" / "faults" / "manifest.json.journal").exists()
