"""A real daemon campaign on the local runtime (the harness on the tiny model, simulated device),
killed with SIGKILL during a repetition and between two, resumed each time: it ends with exactly
3 complete repetitions on the schedule it started with.

No timing luck: the lem processes run with ``tests.support.gate_clock.GateClock``, whose every
wait (the 1 s gap inside a repetition, the wait for the next repetition) parks on a marker file
until this test releases or kills; virtual time moves only by those waits, so the schedule's start
times are exact.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from lem.campaign.manifest import Manifest, iso_utc
from lem.results.summary import summarize_campaign

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
RUNS = ["pytorch-c01", "pytorch-c02"]
MARKER_TIMEOUT_S = 600.0


def campaign_yaml(model: Path) -> str:
    return f"""\
campaign_name: local-daemon
model: {model}
prompts: {{type: synthetic, sample_size: 2, input_len: 8}}
base:
  fp_precision: float32
  max_output_tokens: 4
  measurement: {{device: simulated}}
  baseline: {{method: cache, duration_seconds: 1}}
  warmup: {{enabled: false}}
  timeseries: {{sample_rate_hz: 10}}
grid:
  backends: [pytorch]
execution: {{cycles: 2, config_gap_seconds: 0, cycle_gap_seconds: 1, timeout_seconds: 600}}
daemon: {{enabled: true, interval: 20s, repetitions: 3}}
"""


class Daemon:
    def __init__(self, tmp_path: Path, model: Path) -> None:
        self.tmp_path = tmp_path
        self.gate = tmp_path / "gate"
        self.file = tmp_path / "campaign.yaml"
        self.file.write_text(campaign_yaml(model))
        self.results = tmp_path / "results"
        self.campaign_dir = self.results / "local-daemon"
        self.starts = 0

    def start(self, resume: bool) -> subprocess.Popen[bytes]:
        self.starts += 1
        env = {
            **os.environ,
            "HOME": str(self.tmp_path / "home"),
            "HF_HUB_OFFLINE": "1",
            "TZ": "Europe/London",
            "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
        }
        env.pop("HF_HOME", None)
        argv = [sys.executable, "-m", "tests.support.gate_clock", str(self.gate), "run", str(self.file)]
        argv += ["--runtime", "local", "--quiet", "--results-dir", str(self.results)]
        argv += ["--resume"] if resume else []
        with (self.tmp_path / f"lem-{self.starts}.log").open("wb") as log:
            return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.tmp_path)

    def log(self, n: int, tail: int = 4000) -> str:
        return (self.tmp_path / f"lem-{n}.log").read_text(errors="replace")[-tail:]

    def next_wait(self, proc: subprocess.Popen[bytes]) -> Path:
        """The next wait marker of ``proc``; fails if the process ends first."""
        deadline = time.monotonic() + MARKER_TIMEOUT_S
        while time.monotonic() < deadline:
            markers = sorted(
                self.gate.glob(f"wait-{proc.pid}-*.json"), key=lambda p: int(p.stem.rsplit("-", 1)[1])
            )
            if markers:
                return markers[0]
            if proc.poll() is not None:
                pytest.fail(f"lem exited {proc.returncode} before waiting:\n{self.log(self.starts)}")
            time.sleep(0.05)
        pytest.fail(f"no wait within {MARKER_TIMEOUT_S} s:\n{self.log(self.starts)}")

    def schedule(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.campaign_dir / "schedule.json").read_text())
        return data

    def runs(self, rep: str) -> list[tuple[str, str, int]]:
        manifest = Manifest.load(self.campaign_dir / rep / "manifest.json")
        return [(e.run_id, e.status, e.attempts) for e in manifest.entries()]


def kill(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=60) == -signal.SIGKILL


@pytest.fixture
def daemon(tmp_path: Path, tiny_model_dir: Path) -> Daemon:
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    return Daemon(tmp_path, model)


def test_killed_during_and_between_repetitions_it_resumes_to_exactly_three(daemon: Daemon) -> None:
    # 1. start; killed in the 1 s gap between the two runs of repetition 1
    first = daemon.start(resume=False)
    daemon.next_wait(first)
    kill(first)
    state = daemon.schedule()
    base = state["began_ts"]
    assert [(r["repetition"], r["status"]) for r in state["repetitions"]] == [(1, "running")]
    assert daemon.runs("rep-0001") == [("pytorch-c01", "done", 1), ("pytorch-c02", "pending", 0)]

    # 2. resumed: repetition 1 is finished, then killed while waiting for repetition 2
    second = daemon.start(resume=True)
    daemon.next_wait(second).unlink()  # the gap before pytorch-c02
    daemon.next_wait(second)
    state = daemon.schedule()
    assert state["phase"] == "waiting"
    assert (state["next_slot"], state["next_due_at"]) == (1, iso_utc(base + 20))
    assert [(r["repetition"], r["status"]) for r in state["repetitions"]] == [(1, "done")]
    kill(second)

    # 3. resumed: waits for repetition 2 at its original time, then runs 2 and 3 (releasing every wait)
    third = daemon.start(resume=True)
    phases: list[str] = []
    while third.poll() is None:
        try:
            marker = daemon.next_wait(third)
        except pytest.fail.Exception:
            if third.poll() is not None:
                break
            raise
        phases.append(daemon.schedule()["phase"])
        marker.unlink()
    assert third.wait(timeout=60) == 0, daemon.log(3)
    assert phases == ["waiting", "running", "waiting", "running"]

    state = daemon.schedule()
    assert state["phase"] == "finished" and state["finished_reason"] == "3 of 3 repetitions run"
    assert [(r["repetition"], r["slot"], r["status"], r["runs_done"]) for r in state["repetitions"]] == [
        (1, 0, "done", 2),
        (2, 1, "done", 2),
        (3, 2, "done", 2),
    ]
    assert [r["started_at"] for r in state["repetitions"]] == [iso_utc(base + 20 * k) for k in range(3)]
    assert state["skipped"] == []
    assert sorted(p.name for p in daemon.campaign_dir.iterdir()) == [
        "rep-0001",
        "rep-0002",
        "rep-0003",
        "schedule.json",
    ]
    for rep in ("rep-0001", "rep-0002", "rep-0003"):
        assert daemon.runs(rep) == [("pytorch-c01", "done", 1), ("pytorch-c02", "done", 1)]
        for run in RUNS:
            result = json.loads((daemon.campaign_dir / rep / run / "result.json").read_text())
            assert (result["status"], result["run_id"]) == ("ok", run)
    by_rep = summarize_campaign(daemon.campaign_dir, ["repetition"], zone=ZoneInfo("Europe/London"))
    assert [(g.key, g.n_ok) for g in by_rep.groups] == [((("repetition", k),), 2) for k in (1, 2, 3)]
    assert [c.n_ok for c in by_rep.configs] == [6]
    log = daemon.log(3, tail=1_000_000)
    assert "waiting: repetition 2 starts at" in log and "repetition 3 starts (rep-0003" in log
    assert "daemon campaign local-daemon: 3 repetition(s) — 3 done, 0 start(s) skipped" in log
