"""`lem campaign run` on a daemon campaign and `lem campaign daemon-unit`, with a fake runtime and clock."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import threading
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from rich.console import Console

from lem.campaign.daemon_display import RichScheduleDisplay, waiting_line
from lem.campaign.daemon_launch import DAEMON_LOCK_SUFFIX
from lem.campaign.liveness import LiveCampaign
from lem.cli.campaign_cmd import campaign
from lem.cli.run_cmd import RunDeps
from lem.runtime.spec import ContainerSpec
from tests.unit.campaign.test_run_cli import CAMPAIGN_YAML, Cli

DAEMON_YAML = CAMPAIGN_YAML + "daemon: {enabled: true, interval: 30m, repetitions: 3}\n"
RUN_IDS = ["pytorch-bs1-c01", "pytorch-bs2-c01", "pytorch-bs1-c02", "pytorch-bs2-c02"]


class DaemonCli(Cli):
    def deps(self) -> RunDeps:
        deps = super().deps()
        deps.zone = lambda: (ZoneInfo("Europe/London"), "Europe/London")
        return deps


@pytest.fixture
def cli(tmp_path: Path) -> DaemonCli:
    return DaemonCli(tmp_path, DAEMON_YAML)


def schedule(cli: Cli) -> dict[str, object]:
    data: dict[str, object] = json.loads((cli.results / "demo" / "schedule.json").read_text())
    return data


def test_a_daemon_campaign_runs_each_repetition_in_its_own_subtree(cli: DaemonCli) -> None:
    result = cli.invoke()
    assert result.exit_code == 0, result.output
    assert [c.run_id for c in cli.runtime.calls] == RUN_IDS * 3
    demo = cli.results / "demo"
    assert sorted(p.name for p in demo.iterdir()) == ["rep-0001", "rep-0002", "rep-0003", "schedule.json"]
    for rep in ("rep-0001", "rep-0002", "rep-0003"):
        manifest = json.loads((demo / rep / "manifest.json").read_text())
        assert [r["status"] for r in manifest["runs"]] == ["done"] * 4
        assert all((demo / rep / run / "result.json").is_file() for run in RUN_IDS)
    state = schedule(cli)
    reps = state["repetitions"]
    assert isinstance(reps, list)
    # 4 runs of 10 s each (the fake runtime's clock): 40 s per repetition, every 30 minutes
    assert [(r["repetition"], r["slot"], r["status"], r["runs_done"]) for r in reps] == [
        (1, 0, "done", 4),
        (2, 1, "done", 4),
        (3, 2, "done", 4),
    ]
    assert [r["started_at"] for r in reps] == [
        "2023-11-14T22:13:20.000+00:00",
        "2023-11-14T22:43:20.000+00:00",
        "2023-11-14T23:13:20.000+00:00",
    ]
    assert (state["phase"], state["timezone"], state["finished_reason"]) == (
        "finished",
        "Europe/London",
        "3 of 3 repetitions run",
    )
    assert cli.clock.sleeps.count(60.0) == 2 * 29  # the two waits of 30 min - 40 s, a minute at a time
    assert "waiting: repetition 2 starts at 2023-11-14 22:43:20 GMT — in 29:20" in result.stderr
    assert (
        "daemon campaign demo: 3 repetition(s) — 3 done, 0 start(s) skipped; schedule finished"
        in result.stdout
    )
    assert "rep-0002: done, 4/4 runs done" in result.stdout
    assert "Campaign demo" in result.stdout  # the summary over all repetitions


def test_a_second_run_without_resume_is_refused_and_resume_of_a_finished_schedule_runs_nothing(
    cli: DaemonCli,
) -> None:
    assert cli.invoke().exit_code == 0
    again = cli.invoke()
    assert again.exit_code == 1
    assert "already holds this daemon campaign (3 repetition(s) started): pass --resume" in again.output
    resumed = cli.invoke("--resume")
    assert resumed.exit_code == 0
    assert len(cli.runtime.calls) == 12
    assert "schedule finished: 3 of 3 repetitions run" in resumed.stderr


def test_ctrl_c_during_a_repetition_exits_130_and_resume_finishes_it_then_the_schedule(
    cli: DaemonCli,
) -> None:
    def ctrl_c(spec: ContainerSpec, stop: threading.Event) -> None:
        if spec.run_id == "pytorch-bs2-c01" and len(cli.runtime.calls) == 6:  # 2nd run of repetition 2
            stop.set()

    cli.runtime.during_run = ctrl_c
    first = cli.invoke()
    assert first.exit_code == 130
    assert [r["status"] for r in schedule(cli)["repetitions"]] == ["done", "interrupted"]  # type: ignore[union-attr]
    assert "to continue: lem campaign run" in first.stdout
    cli.runtime.during_run = None
    second = cli.invoke("--resume")
    assert second.exit_code == 0, second.output
    assert [c.run_id for c in cli.runtime.calls[6:]] == RUN_IDS[1:] + RUN_IDS
    assert [r["status"] for r in schedule(cli)["repetitions"]] == ["done"] * 3  # type: ignore[union-attr]
    assert "continuing repetition 2 (rep-0002)" in second.stderr


def test_a_daemon_already_running_is_refused(cli: DaemonCli) -> None:
    plan = CliRunner().invoke(campaign, ["plan", str(cli.file), "--json"])
    runs = json.loads(plan.stdout)["runs"]
    rows = [[r["run_id"], r["config_id"], r["cycle"], r["position"]] for r in runs]
    digest = hashlib.sha256(json.dumps(["demo", rows], separators=(",", ":")).encode()).hexdigest()
    with LiveCampaign(cli.tmp_path / "live", f"demo-{digest[:8]}{DAEMON_LOCK_SUFFIX}"):
        busy = cli.invoke()
    assert busy.exit_code == 1
    assert f"campaign demo-{digest[:8]}.daemon is already running in another lem process" in busy.output
    assert cli.runtime.calls == []


def test_dry_run_lists_the_next_starts(tmp_path: Path) -> None:
    cli = DaemonCli(tmp_path, CAMPAIGN_YAML + "daemon: {enabled: true, at: '02:00', days: weekdays}\n")
    result = cli.invoke("--dry-run")
    assert result.exit_code == 0, result.output
    # the fake clock reads Tue 2023-11-14 22:13:20 UTC: 02:00 has passed, Saturday and Sunday are left out
    assert (
        "daemon: repetitions would start at Wed 2023-11-15 02:00:00 GMT, Thu 2023-11-16 02:00:00 GMT, "
        "Fri 2023-11-17 02:00:00 GMT, Mon 2023-11-20 02:00:00 GMT, Tue 2023-11-21 02:00:00 GMT"
    ) in result.stdout
    assert cli.asked == [] and not cli.results.exists()


def test_daemon_unit_prints_a_restarting_service_that_resumes(cli: DaemonCli) -> None:
    result = CliRunner().invoke(
        campaign,
        ["daemon-unit", str(cli.file), "--user", "--runtime", "local", "--results-dir", str(cli.results)],
    )
    assert result.exit_code == 0, result.output
    unit = result.stdout
    assert (
        "Restart=on-failure\n" in unit and "SuccessExitStatus=130\n" in unit and "KillSignal=SIGINT\n" in unit
    )
    exec_start = next(line for line in unit.splitlines() if line.startswith("ExecStart="))
    assert exec_start.endswith(
        f"-m lem campaign run {cli.file.resolve()} --resume --quiet --runtime local --flavour gpu "
        f"--results-dir {cli.results.resolve()}"
    )
    assert "WantedBy=default.target" in unit and "After=network-online.target\n" in unit
    assert "User=" not in unit
    assert "systemctl --user enable --now lem-demo.service" in result.stderr


def test_daemon_unit_refuses_a_campaign_without_daemon(tmp_path: Path) -> None:
    plain = Cli(tmp_path, CAMPAIGN_YAML)
    result = CliRunner().invoke(campaign, ["daemon-unit", str(plain.file)])
    assert result.exit_code == 1
    assert "daemon.enabled is not true" in result.output


@pytest.mark.skipif(
    shutil.which("systemd-analyze") is None and not os.environ.get("LEM_REQUIRE_SYSTEMD"),
    reason="systemd-analyze is not installed (apt-get install systemd)",
)
def test_systemd_analyze_verify_accepts_the_unit(cli: DaemonCli, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        campaign, ["daemon-unit", str(cli.file), "--results-dir", str(tmp_path / "r o")]
    )
    assert result.exit_code == 0, result.output
    path = tmp_path / "lem-demo.service"
    path.write_text(result.stdout)
    assert (
        "After=network-online.target docker.service\n" in result.stdout
    )  # a system unit for the docker runtime
    assert "WantedBy=multi-user.target" in result.stdout
    verify = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(path)], capture_output=True, text=True, check=False
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "lem-demo.service" not in verify.stderr  # no complaint about the unit itself


def test_a_real_sigint_while_waiting_ends_the_daemon_with_130(cli: DaemonCli) -> None:
    cli.clock.schedule(1_000.0 + 600.0, lambda: os.kill(os.getpid(), signal.SIGINT))  # 10 min into the wait
    result = cli.invoke()
    assert result.exit_code == 130
    assert "SIGINT: stopping the running container and saving the manifest" in result.stderr
    state = schedule(cli)
    assert (state["phase"], state["next_slot"]) == ("stopped", 1)
    assert [r["status"] for r in state["repetitions"]] == ["done"]  # type: ignore[union-attr]
    assert len(cli.runtime.calls) == 4
    assert "to continue: lem campaign run" in result.stdout


def test_the_countdown_display_redraws_the_next_start(tmp_path: Path) -> None:
    buffer = io.StringIO()
    display = RichScheduleDisplay(Console(file=buffer, force_terminal=True, width=120))
    display.waiting(2, "2026-12-02 02:00:00 GMT", 3725.0)
    display.tick(3724.0)
    display.waited()
    display.event("repetition 2 starts")
    out = buffer.getvalue()
    assert "repetition 2 starts at 2026-12-02 02:00:00 GMT — in 1:02:05" in out
    assert "in 1:02:04" in out
    assert out.rstrip().endswith("repetition 2 starts")
    assert waiting_line(3, "x", 59.4) == "repetition 3 starts at x — in 0:59"
