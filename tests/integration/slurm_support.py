"""The real single-node Slurm cluster of the ``slurm`` tests (``scripts/ci/slurm_cluster.sh``).

Without a cluster these tests skip, except when ``LEM_REQUIRE_SLURM=1`` (CI): then a missing
cluster is a failure that prints the setup command. Every job a test submits is cancelled at the
end of the test (``scancel`` by id), whatever happened.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from lem.campaign.manifest import Manifest, ManifestError

SETUP = "scripts/ci/slurm_cluster.sh   # install slurm-wlm + munge, start slurmctld + slurmd (root)"


def cluster_problem() -> str | None:
    if shutil.which("sinfo") is None:
        return "Slurm is not installed (no sinfo)"
    done = subprocess.run(["sinfo", "-h", "-N", "-o", "%T"], capture_output=True, text=True, check=False)
    states = done.stdout.split()
    if done.returncode != 0 or not states:
        return f"sinfo answers nothing: {done.stderr.strip()[:200]}"
    if not any(s.rstrip("*~") in ("idle", "mixed", "allocated", "completing") for s in states):
        return f"no usable node (states: {', '.join(states)})"
    return None


def require_cluster() -> None:
    problem = cluster_problem()
    if problem is None:
        return
    if os.environ.get("LEM_REQUIRE_SLURM", "") not in ("", "0"):
        pytest.fail(
            f"{problem}\nLEM_REQUIRE_SLURM=1 forbids skipping. Set it up with:\n{SETUP}", pytrace=False
        )
    pytest.skip(f"{problem} (set up with {SETUP})")


def wait_for(check: Callable[[], bool], what: str, timeout_s: float = 300.0) -> None:
    """Poll ``check`` every 0.2 s until it holds; fail after ``timeout_s`` saying ``what`` never happened."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"{what}: not seen within {timeout_s:g} s")


def job_state(job_id: str) -> str:
    done = subprocess.run(
        ["squeue", "-h", "--states=all", "-o", "%T", "-j", job_id],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip()


def feed(fifo: Path, prompts: list[str]) -> threading.Thread:
    """Write prompts into ``fifo`` once a run opens it (the run blocks until then)."""

    def write() -> None:
        with fifo.open("w") as f:
            f.write("".join(json.dumps({"prompt": p}) + "\n" for p in prompts))

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    return thread


class SlurmCampaign:
    """A campaign file beside a copy of the tiny model, run with ``--runtime slurm``."""

    def __init__(self, tmp_path: Path, model_dir: Path, yaml_text: str, name: str) -> None:
        self.tmp_path = tmp_path
        model = tmp_path / "model"
        if not model.exists():
            shutil.copytree(model_dir, model)
        self.file = tmp_path / "campaign.yaml"
        self.file.write_text(yaml_text.replace("MODEL", str(model)))
        self.results = tmp_path / "results"
        self.dir = self.results / name

    def env(self) -> dict[str, str]:
        env = {
            **os.environ,
            "HOME": str(self.tmp_path / "home"),
            "LEM_STATE_DIR": str(self.tmp_path / "state"),
            "HF_HUB_OFFLINE": "1",
            "COLUMNS": "200",
        }
        env.pop("HF_HOME", None)
        return env

    def argv(self, *extra: str) -> list[str]:
        run = ["run", str(self.file), "--runtime", "slurm", "--quiet", "--results-dir", str(self.results)]
        return [sys.executable, "-m", "lem", "campaign", *run, *extra]

    def lem(self, *args: str, timeout_s: float = 900) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "lem", *args],
            capture_output=True,
            text=True,
            env=self.env(),
            cwd=self.tmp_path,
            timeout=timeout_s,
            check=False,
        )

    def run(self, *extra: str) -> subprocess.CompletedProcess[str]:
        return self.lem(*self.argv(*extra)[3:])

    def start(self, *extra: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.argv(*extra),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self.env(),
            cwd=self.tmp_path,
        )

    def jobs(self) -> dict[str, list[str]]:
        path = self.dir / "slurm" / "jobs.json"
        if not path.exists():
            return {}
        return {lane["lane"]: lane["job_ids"] for lane in json.loads(path.read_text())["lanes"]}

    def lane_statuses(self, lane: str) -> list[str]:
        path = self.dir / "slurm" / f"{lane}.manifest.json"
        try:
            return [e.status for e in Manifest.load(path).entries()]
        except (ManifestError, OSError):
            return []

    def manifest(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.dir / "manifest.json").read_text())
        return data

    def cancel_all(self) -> None:
        ids = [j for jobs in self.jobs().values() for j in jobs]
        if ids:
            subprocess.run(["scancel", *ids], check=False)
