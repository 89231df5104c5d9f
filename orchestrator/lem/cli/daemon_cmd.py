"""Daemon campaigns on the command line: the schedule display, the summary, ``lem campaign daemon-unit``."""

from __future__ import annotations

import getpass
import sys
from datetime import datetime, tzinfo
from pathlib import Path

import click
from rich.console import Console

from lem.campaign.daemon import ScheduleDisplay
from lem.campaign.daemon_display import LogScheduleDisplay, RichScheduleDisplay
from lem.campaign.daemon_launch import DaemonResult
from lem.campaign.schedule import Schedule
from lem.campaign.systemd_unit import UnitRequest, install_text, render_unit
from lem.cli.campaign_cmd import load_and_expand
from lem.config.campaign import CampaignConfig
from lem.runtime import RUNTIME_NAMES
from lem.runtime.images import FLAVOURS

UPCOMING = 5


def schedule_display(quiet: bool) -> ScheduleDisplay:
    console = Console(stderr=True)
    if quiet or not console.is_terminal:
        return LogScheduleDisplay(lambda line: click.echo(line, err=True))
    return RichScheduleDisplay(console)


def upcoming_text(campaign_cfg: CampaignConfig, now: float, zone: tzinfo) -> str:
    """The next starts of the schedule if it began now (``--dry-run``)."""
    starts = Schedule(campaign_cfg.daemon, zone).upcoming(now, UPCOMING)
    shown = ", ".join(datetime.fromtimestamp(t, zone).strftime("%a %Y-%m-%d %H:%M:%S %Z") for t in starts)
    return (
        f"daemon: repetitions would start at {shown or 'no time (the schedule ends before its first start)'}"
    )


def print_daemon_summary(result: DaemonResult, campaign_cfg: CampaignConfig, file: Path) -> None:
    report = result.report
    done = sum(1 for r in report.repetitions if r.status == "done")
    click.echo(
        f"daemon campaign {campaign_cfg.campaign_name}: {len(report.repetitions)} repetition(s) — "
        f"{done} done, {report.skipped} start(s) skipped; schedule {report.phase}"
    )
    for r in report.repetitions:
        runs = f"{r.runs_done}/{r.runs_total} runs done" if r.runs_total is not None else "not run"
        click.echo(
            f"  {r.directory}: {r.status}, {runs}, started {r.started_at}, finished {r.finished_at or '—'}"
        )
    if report.aborted:
        click.echo(f"stopped: {report.aborted}")
    click.echo(f"results: {result.campaign_dir}")
    if report.exit_code != 0:
        click.echo(f"to continue: lem campaign run {file} --resume")


@click.command("daemon-unit")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--user", "user_unit", is_flag=True, help="A user unit (systemctl --user) instead of a system one."
)
@click.option(
    "--runtime", "runtime_name", type=click.Choice(RUNTIME_NAMES), default="docker", show_default=True
)
@click.option("--flavour", type=click.Choice(FLAVOURS), default="gpu", show_default=True)
@click.option(
    "--results-dir", type=click.Path(file_okay=False, path_type=Path), help="As for `lem campaign run`."
)
def daemon_unit(
    file: Path, user_unit: bool, runtime_name: str, flavour: str, results_dir: Path | None
) -> None:
    """Print a systemd service that runs daemon campaign FILE and restarts it (with --resume) on failure."""
    campaign_cfg = load_and_expand(file).campaign
    if not campaign_cfg.daemon.enabled:
        raise click.ClickException(
            f"{file}: daemon.enabled is not true; the unit would run the campaign once"
        )
    root = (results_dir or Path(campaign_cfg.results_dir)).expanduser().resolve()
    command = (
        sys.executable, "-m", "lem", "campaign", "run", str(file.resolve()), "--resume", "--quiet",
        "--runtime", runtime_name, "--flavour", flavour, "--results-dir", str(root),
    )  # fmt: skip
    request = UnitRequest(
        campaign_name=campaign_cfg.campaign_name,
        command=command,
        working_dir=Path.cwd().resolve(),
        user_unit=user_unit,
        user=None if user_unit else getpass.getuser(),
        docker=runtime_name == "docker",
    )
    click.echo(render_unit(request), nl=False)
    click.echo(install_text(request), err=True)
