"""``lem campaign run FILE`` (also ``lem campaign FILE``): run a campaign, or resume one.

A thin skin over ``lem.campaign.launch.launch_campaign``: options in, progress on stderr, a
summary table per configuration and the results path on stdout. Exit codes: 0 every run
done, 1 a run failed (or the campaign could not start), 130 stopped by Ctrl-C / SIGTERM.

Tests inject fakes (runtime, clock, GPU probe) by passing a ``RunDeps`` as the context object.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
from rich.console import Console, RenderableType

from lem.campaign.clock import Clock, SystemClock
from lem.campaign.cluster import ClusterRequest
from lem.campaign.executor import CampaignReport
from lem.campaign.gaps import NvmlProbe, ProbeFactory
from lem.campaign.hostgpus import host_gpu_inventory
from lem.campaign.launch import Inventory, LaunchRequest, LaunchResult, LaunchServices, launch_campaign
from lem.campaign.liveness import CampaignBusy, registry_dir
from lem.campaign.manifest import ManifestError
from lem.campaign.plan import plan_campaign
from lem.campaign.progress import LogProgress, ProgressSink, RichProgress
from lem.campaign.signals import stop_on_signals
from lem.cli.campaign_cmd import load_and_expand, plan
from lem.cli.slurm_cmd import apply_overrides, dry_run_text, run_on_slurm
from lem.config.campaign import CampaignConfig
from lem.results.fields import UnknownFieldError
from lem.results.load import NoResultsError
from lem.results.summary import summarize_campaign
from lem.results.tables import group_table, summary_table
from lem.runtime import RUNTIME_NAMES, make_runtime
from lem.runtime.errors import LemRuntimeError
from lem.runtime.images import FLAVOURS, Flavour
from lem.runtime.slurm import CommandSlurm, SlurmClient
from lem.runtime.spec import Runtime

SUMMARY_WIDTH = 200


@dataclass
class RunDeps:
    """The command's side effects; the defaults are the real ones."""

    runtime_factory: Callable[[str], Runtime] = make_runtime
    clock: Clock = field(default_factory=SystemClock)
    probe_factory: ProbeFactory = NvmlProbe
    inventory: Inventory = host_gpu_inventory
    registry: Path = field(default_factory=registry_dir)
    host_env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ), repr=False)
    force_exit: Callable[[int], object] = os._exit
    slurm_factory: Callable[[], SlurmClient] = CommandSlurm


@dataclass(frozen=True)
class RunOptions:
    """The command's options, as click parsed them."""

    resume: bool
    runtime_name: str
    fail_fast: bool
    quiet: bool
    results_dir: Path | None
    dry_run: bool
    flavour: Flavour
    detach: bool
    slurm_overrides: tuple[str, ...]


@click.command("run")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--resume", is_flag=True, help="Continue the campaign in its results directory (done runs are kept)."
)
@click.option(
    "--runtime",
    "runtime_name",
    type=click.Choice((*RUNTIME_NAMES, "slurm")),
    default="docker",
    show_default=True,
    help="docker: a fresh container per run; local: the harness in a subprocess of this host; "
    "slurm: lanes of runs as Slurm jobs, one node each (the campaign's slurm: section).",
)
@click.option(
    "--slurm",
    "slurm_overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a key of the campaign's slurm: section (repeatable), e.g. --slurm partition=gpu.",
)
@click.option(
    "--detach", is_flag=True, help="slurm: submit and return; `lem campaign status DIR` follows the jobs."
)
@click.option("--fail-fast", is_flag=True, help="Stop the campaign at the first failed run.")
@click.option("--quiet", "-q", is_flag=True, help="Plain log lines instead of the live progress display.")
@click.option(
    "--results-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where results go (default: the campaign's results_dir, relative to the current directory).",
)
@click.option("--dry-run", is_flag=True, help="Print the schedule and where results would go; run nothing.")
@click.option(
    "--flavour",
    type=click.Choice(FLAVOURS),
    default="gpu",
    show_default=True,
    help="Image flavour: gpu (production) or cpu (the PyTorch CPU test image).",
)
@click.pass_context
def run(ctx: click.Context, /, file: Path, **options: Any) -> None:
    """Run campaign FILE: every configuration, cycle after cycle, each run in a fresh container."""
    opts = RunOptions(**options)
    campaign_cfg, expansion = load_and_expand(file)
    _refuse_daemon(campaign_cfg)
    slurm = opts.runtime_name == "slurm"
    if not slurm and (opts.detach or opts.slurm_overrides):
        raise click.UsageError("--detach and --slurm go with --runtime slurm")
    campaign_cfg = apply_overrides(campaign_cfg, opts.slurm_overrides)
    results_root = (opts.results_dir or Path(campaign_cfg.results_dir)).expanduser().resolve()
    deps = ctx.find_object(RunDeps) or RunDeps()
    if slurm:
        cluster = ClusterRequest(
            campaign=campaign_cfg,
            campaign_file=file,
            expansion=expansion,
            runs=plan_campaign(campaign_cfg, expansion),
            results_root=results_root,
            resume=opts.resume,
            detach=opts.detach,
            flavour=opts.flavour,
        )
        _run_slurm(ctx, cluster, opts.dry_run, deps)
        return
    if opts.dry_run:
        ctx.invoke(plan, file=file, as_json=False)
        click.echo(f"results would go to {results_root / campaign_cfg.campaign_name}")
        return
    request = LaunchRequest(
        campaign=campaign_cfg,
        campaign_file=file,
        expansion=expansion,
        runs=plan_campaign(campaign_cfg, expansion),
        results_root=results_root,
        resume=opts.resume,
        fail_fast=opts.fail_fast,
        flavour=opts.flavour,
    )
    result = launch_request(request, deps, opts.runtime_name, opts.quiet)
    _print_summary(result.report, result.campaign_dir, campaign_cfg, file)
    ctx.exit(result.report.exit_code)


def _run_slurm(ctx: click.Context, request: ClusterRequest, dry_run: bool, deps: RunDeps) -> None:
    if dry_run:
        ctx.invoke(plan, file=request.campaign_file, as_json=False)
        click.echo(dry_run_text(request))
        return
    result = run_on_slurm(request, deps.slurm_factory(), deps.clock, deps.registry)
    if not result.detached:
        _print_summary(result.report, result.campaign_dir, request.campaign, request.campaign_file)
    ctx.exit(result.report.exit_code)


def _refuse_daemon(campaign_cfg: CampaignConfig) -> None:
    if campaign_cfg.daemon.enabled:
        raise click.UsageError(
            "daemon mode (daemon.enabled: true) is not implemented by `lem campaign run`: set "
            "daemon.enabled: false and schedule the command with cron or a systemd timer, giving each "
            "repetition its own --results-dir"
        )


def _progress(deps: RunDeps, quiet: bool) -> ProgressSink:
    console = Console(stderr=True)
    if quiet or not console.is_terminal:
        return LogProgress(deps.clock, lambda line: click.echo(line, err=True))
    return RichProgress(deps.clock, console)


def launch_request(request: LaunchRequest, deps: RunDeps, runtime_name: str, quiet: bool) -> LaunchResult:
    """Run one campaign (or one Slurm lane) on this host; Ctrl-C / SIGTERM stop it cleanly."""
    progress = _progress(deps, quiet)
    stop = threading.Event()
    services = LaunchServices(
        runtime=deps.runtime_factory(runtime_name),
        clock=deps.clock,
        stop=stop,
        progress=progress,
        probe_factory=deps.probe_factory,
        inventory=deps.inventory,
        registry=deps.registry,
        host_env=deps.host_env,
    )
    with stop_on_signals(stop, progress.note, deps.force_exit):
        try:
            return launch_campaign(request, services)
        except (LemRuntimeError, ManifestError, CampaignBusy) as e:
            raise click.ClickException(str(e)) from None


def _print_summary(
    report: CampaignReport, campaign_dir: Path, campaign_cfg: CampaignConfig, file: Path
) -> None:
    click.echo(
        f"campaign {campaign_cfg.campaign_name}: {report.total} runs — {report.done} done, "
        f"{report.failed} failed, {report.interrupted} interrupted, {report.pending} pending"
    )
    console = Console()
    if not console.is_terminal:
        console = Console(width=SUMMARY_WIDTH)  # logs and CI: do not fold the table at 80 columns
    for renderable in _tables(campaign_dir, campaign_cfg.group_by):
        console.print(renderable)
    for run_id, message in report.problems:
        click.echo(f"{run_id}: {message}")
    if report.aborted:
        click.echo(f"stopped: {report.aborted}")
    click.echo(f"results: {campaign_dir}")
    if report.exit_code != 0 and (report.pending or report.interrupted or report.failed):
        click.echo(f"to continue: lem campaign run {file} --resume")


def _tables(campaign_dir: Path, group_by: tuple[str, ...]) -> list[RenderableType]:
    """The per-configuration table (and the group_by table), or why there is none."""
    try:
        summary = summarize_campaign(campaign_dir, group_by or None)
    except (NoResultsError, UnknownFieldError) as e:
        return [f"no summary: {e}"]
    tables: list[RenderableType] = [summary_table(summary)]
    if group_by:
        tables.append(group_table(summary))
    return tables
