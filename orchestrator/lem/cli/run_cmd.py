"""``lem campaign run FILE`` (also ``lem campaign FILE``): run a campaign, or resume one.

A thin skin over ``lem.campaign.launch.launch_campaign``: options in, progress on stderr, a
summary table per configuration and the results path on stdout. Exit codes: 0 every run
done, 1 a run failed (or the campaign could not start), 2 a usage error, 130 stopped by
Ctrl-C / SIGTERM. ``lem experiment`` (``experiment_cmd``) shares ``run_options`` and
``execute``: one experiment is a campaign of one configuration.

Tests inject fakes (runtime, clock, GPU probe) by passing a ``RunDeps`` as the context object.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import tzinfo
from pathlib import Path
from typing import Any

import click
from rich.console import Console, RenderableType

from lem.campaign.clock import Clock, SystemClock
from lem.campaign.cluster import ClusterRequest
from lem.campaign.daemon_launch import launch_daemon
from lem.campaign.gaps import NvmlProbe, ProbeFactory
from lem.campaign.hostgpus import host_gpu_inventory, host_gpu_processes
from lem.campaign.launch import Inventory, LaunchRequest, LaunchResult, LaunchServices, launch_campaign
from lem.campaign.liveness import CampaignBusy, runtime_dir
from lem.campaign.manifest import ManifestError
from lem.campaign.plan import plan_campaign
from lem.campaign.preflight import HostProbes, PreflightFailed
from lem.campaign.progress import LogProgress, ProgressSink, RichProgress
from lem.campaign.schedule_state import ScheduleError
from lem.campaign.signals import stop_on_signals
from lem.cli import daemon_cmd
from lem.cli.campaign_cmd import Loaded, load_and_expand, print_plan
from lem.cli.results_cmd import group_by_option
from lem.cli.slurm_cmd import apply_overrides, dry_run_text, run_on_slurm
from lem.cli.storage import storage_error
from lem.config.campaign import CampaignConfig
from lem.config.overrides import override_warnings
from lem.config.zone import ZoneError, local_zone
from lem.results.fields import UnknownFieldError, validate_fields
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
    gpu_processes: Callable[[Collection[str]], dict[str, int]] = host_gpu_processes
    host: HostProbes | None = None
    registry: Path = field(default_factory=runtime_dir)
    host_env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ), repr=False)
    force_exit: Callable[[int], object] = os._exit
    zone: Callable[[], tuple[tzinfo, str]] = local_zone
    slurm_factory: Callable[[], SlurmClient] = CommandSlurm


@dataclass(frozen=True)
class RunOptions:
    """The options ``lem campaign run`` and ``lem experiment`` share, as click parsed them."""

    resume: bool
    runtime_name: str
    fail_fast: bool
    quiet: bool
    results_dir: Path | None
    dry_run: bool
    flavour: Flavour
    skip_preflight: bool = False
    detach: bool = False
    slurm_overrides: tuple[str, ...] = ()
    group_by: tuple[str, ...] = ()
    fresh: bool = False
    no_rerun: bool = False


_SHARED_OPTIONS: tuple[Callable[[Any], Any], ...] = (
    click.option(
        "--fresh",
        is_flag=True,
        help="Move an existing campaign directory aside (<name>.archived-<UTC time>) and start again.",
    ),
    click.option(
        "--no-rerun",
        is_flag=True,
        help="With --resume: list done runs whose result.json is missing or changed instead of re-running.",
    ),
    click.option(
        "--resume",
        is_flag=True,
        help="Continue in the existing results directory: runs already done are kept, the rest run "
        "(the definition must be the one the directory was started with).",
    ),
    click.option(
        "--runtime",
        "runtime_name",
        type=click.Choice((*RUNTIME_NAMES, "slurm")),
        default="docker",
        show_default=True,
        help="docker: a fresh container per run (images from `lem images build`); local: the harness "
        "in a subprocess of this host (no Docker; the harness must be installed here); slurm: lanes of "
        "runs as Slurm jobs, one node each (the campaign's slurm: section; docs/slurm.md).",
    ),
    click.option(
        "--slurm",
        "slurm_overrides",
        multiple=True,
        metavar="KEY=VALUE",
        help="With --runtime slurm: override a key of the slurm: section (repeatable), e.g. "
        "--slurm partition=gpu --slurm max_nodes=8.",
    ),
    click.option(
        "--detach",
        is_flag=True,
        help="With --runtime slurm: submit the jobs and return; `lem campaign status DIR` follows them.",
    ),
    click.option("--fail-fast", is_flag=True, help="Stop at the first failed run (the rest stay pending)."),
    click.option(
        "--quiet", "-q", is_flag=True, help="Plain log lines on stderr instead of the live progress display."
    ),
    click.option(
        "--results-dir",
        type=click.Path(file_okay=False, path_type=Path),
        help="Root of the results tree; results go to RESULTS_DIR/<campaign name>/<run id>/ "
        "(default: the campaign's results_dir, 'results', relative to the current directory).",
    ),
    click.option(
        "--dry-run",
        is_flag=True,
        help="Print the schedule (for one experiment, its resolved configuration too) and where results "
        "would go; run nothing.",
    ),
    click.option(
        "--flavour",
        type=click.Choice(FLAVOURS),
        default="gpu",
        show_default=True,
        help="Image flavour for --runtime docker: gpu (production) or cpu (the CPU test images).",
    ),
)


_SHARED_OPTIONS += (
    click.option(
        "--skip-preflight",
        is_flag=True,
        help="Experts: start without checking images, paths, GPUs, disk and the runs' needs first.",
    ),
)


def run_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The options every command that runs experiments takes (``RunOptions``)."""
    for option in reversed(_SHARED_OPTIONS):
        command = option(command)
    return command


@click.command("run")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@run_options
@group_by_option
@click.pass_context
def run(ctx: click.Context, /, file: Path, **options: Any) -> None:
    """Run campaign FILE: every configuration, cycle after cycle, each run in a fresh container.

    FILE may also be an experiment file: it runs as a campaign of one configuration
    (one cycle, no gaps), like `lem experiment FILE`. At the end a table per configuration
    (and per --group-by group) is printed with the results path.

    Exit codes: 0 every run done; 1 a run failed, or the campaign could not start (an invalid
    FILE, a missing image, results already there without --resume); 2 a usage error (an
    unknown option or --group-by field); 130 stopped by Ctrl-C or SIGTERM
    (continue with --resume).
    """
    opts = RunOptions(**{**options, "group_by": checked_group_by(options["group_by"])})
    execute(ctx, load_and_expand(file), opts, resume_command=f"lem campaign run {file} --resume")


def checked_group_by(values: tuple[str, ...]) -> tuple[str, ...]:
    """``--group-by`` split and checked before anything runs; an unknown field is a usage error."""
    try:
        return validate_fields(values)
    except UnknownFieldError as e:
        raise click.BadParameter(str(e), param_hint="'--group-by'") from None


def execute(ctx: click.Context, loaded: Loaded, opts: RunOptions, *, resume_command: str) -> None:
    """Print the plan (``--dry-run``), or launch the campaign and print its summary; exit with its code.

    ``resume_command`` is the command line printed when runs are left to do.
    """
    if opts.fresh and opts.resume:
        raise click.UsageError("--fresh starts the campaign again and --resume continues it: choose one")
    if opts.no_rerun and not opts.resume:
        raise click.UsageError("--no-rerun applies to --resume only")
    campaign_cfg, expansion = loaded.campaign, loaded.expansion
    results_root = (opts.results_dir or Path(campaign_cfg.results_dir)).expanduser().resolve()
    deps = ctx.find_object(RunDeps) or RunDeps()
    if opts.runtime_name == "slurm":
        _run_slurm(ctx, loaded, opts, (deps, results_root), resume_command)
        return
    if opts.detach or opts.slurm_overrides:
        raise click.UsageError("--detach and --slurm go with --runtime slurm")
    if opts.dry_run:
        print_plan(loaded)
        if campaign_cfg.daemon.enabled:
            click.echo(daemon_cmd.upcoming_text(campaign_cfg, deps.clock.time(), _zone(deps)[0]))
        click.echo(f"results would go to {results_root / campaign_cfg.campaign_name}")
        return
    for warning in override_warnings(campaign_cfg, expansion.entry_documents):  # plan prints them itself
        click.echo(str(warning), err=True)
    request = LaunchRequest(
        campaign=campaign_cfg,
        campaign_file=loaded.file,
        expansion=expansion,
        runs=plan_campaign(campaign_cfg, expansion),
        results_root=results_root,
        resume=opts.resume,
        fail_fast=opts.fail_fast,
        flavour=opts.flavour,
        skip_preflight=opts.skip_preflight,
        fresh=opts.fresh,
        no_rerun=opts.no_rerun,
    )
    if campaign_cfg.daemon.enabled:
        ctx.exit(_run_daemon(request, deps, opts, loaded.file))
    result = launch_request(request, deps, opts.runtime_name, opts.quiet)
    _print_summary(result, campaign_cfg, opts.group_by or campaign_cfg.group_by, resume_command)
    ctx.exit(result.report.exit_code)


def _run_slurm(
    ctx: click.Context, loaded: Loaded, opts: RunOptions, where: tuple[RunDeps, Path], resume_command: str
) -> None:
    """``--runtime slurm``: the plan's lanes as Slurm jobs (``lem.campaign.cluster``)."""
    deps, results_root = where
    campaign_cfg = apply_overrides(loaded.campaign, opts.slurm_overrides)
    if campaign_cfg.daemon.enabled:
        raise click.UsageError(
            "--runtime slurm does not run daemon campaigns: schedule the submission instead"
        )
    request = ClusterRequest(
        campaign=campaign_cfg,
        campaign_file=loaded.file,
        expansion=loaded.expansion,
        runs=plan_campaign(campaign_cfg, loaded.expansion),
        results_root=results_root,
        resume=opts.resume,
        detach=opts.detach,
        flavour=opts.flavour,
    )
    if opts.dry_run:
        print_plan(loaded)
        click.echo(dry_run_text(request))
        return
    result = run_on_slurm(request, deps.slurm_factory(), deps.clock, deps.registry)
    if not result.detached:
        launched = LaunchResult(result.report, result.campaign_dir, result.campaign_id, result.resumed, ())
        _print_summary(launched, campaign_cfg, opts.group_by or campaign_cfg.group_by, resume_command)
    ctx.exit(result.report.exit_code)


def _zone(deps: RunDeps) -> tuple[tzinfo, str]:
    try:
        return deps.zone()
    except ZoneError as e:
        raise click.ClickException(str(e)) from None


def _run_daemon(request: LaunchRequest, deps: RunDeps, opts: RunOptions, file: Path) -> int:
    zone, zone_name = _zone(deps)
    stop = threading.Event()
    display = daemon_cmd.schedule_display(opts.quiet)
    services = _services(deps, opts.runtime_name, stop, _progress(deps, opts.quiet))
    with stop_on_signals(stop, display.event, deps.force_exit, on_force=services.runtime.abandon):
        try:
            result = launch_daemon(
                request,
                services,
                display=display,
                progress_factory=lambda: _progress(deps, opts.quiet),
                zone=zone,
                zone_name=zone_name,
            )
        except (LemRuntimeError, ManifestError, CampaignBusy, ScheduleError) as e:
            raise click.ClickException(str(e)) from None
        except OSError as e:
            raise click.ClickException(storage_error(e)) from None
    daemon_cmd.print_daemon_summary(result, request.campaign, file)
    for renderable in _tables(result.campaign_dir, ("repetition", *request.campaign.group_by)):
        _summary_console().print(renderable)
    return result.report.exit_code


def _progress(deps: RunDeps, quiet: bool) -> ProgressSink:
    console = Console(stderr=True)
    if quiet or not console.is_terminal:
        return LogProgress(deps.clock, lambda line: click.echo(line, err=True))
    return RichProgress(deps.clock, console)


def _services(
    deps: RunDeps, runtime_name: str, stop: threading.Event, progress: ProgressSink
) -> LaunchServices:
    return LaunchServices(
        runtime=deps.runtime_factory(runtime_name),
        clock=deps.clock,
        stop=stop,
        progress=progress,
        probe_factory=deps.probe_factory,
        inventory=deps.inventory,
        gpu_processes=deps.gpu_processes,
        host=deps.host,
        registry=deps.registry,
        host_env=deps.host_env,
    )


def launch_request(request: LaunchRequest, deps: RunDeps, runtime_name: str, quiet: bool) -> LaunchResult:
    """Run one campaign (or one Slurm lane) on this host; Ctrl-C / SIGTERM stop it cleanly."""
    progress = _progress(deps, quiet)
    stop = threading.Event()
    services = _services(deps, runtime_name, stop, progress)
    with stop_on_signals(stop, progress.note, deps.force_exit, on_force=services.runtime.abandon):
        try:
            return launch_campaign(request, services)
        except (LemRuntimeError, ManifestError, CampaignBusy, PreflightFailed) as e:
            raise click.ClickException(str(e)) from None
        except OSError as e:
            raise click.ClickException(storage_error(e)) from None


def _print_summary(
    result: LaunchResult, campaign_cfg: CampaignConfig, group_by: tuple[str, ...], resume_hint: str
) -> None:
    report = result.report
    click.echo(
        f"campaign {campaign_cfg.campaign_name}: {report.total} runs — {report.done} done, "
        f"{report.failed} failed, {report.interrupted} interrupted, {report.pending} pending"
    )
    console = _summary_console()
    for renderable in _tables(result.campaign_dir, group_by):
        console.print(renderable)
    for line in problem_lines(report.problems):
        click.echo(line)
    if report.aborted:
        click.echo(f"stopped: {report.aborted}")
    click.echo(f"results: {result.campaign_dir}")
    if report.exit_code != 0 and (report.pending or report.interrupted or report.failed):
        click.echo(f"to continue: {resume_hint}")


def _summary_console() -> Console:
    console = Console()
    if not console.is_terminal:
        console = Console(width=SUMMARY_WIDTH)  # logs and CI: do not fold the table at 80 columns
    return console


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


def problem_lines(problems: list[tuple[str, str]], shown: int = 3) -> list[str]:
    """Runs that share a message are listed once under it (``message [run, run, … and N more]``)."""
    runs_by_message: dict[str, list[str]] = {}
    for run_id, message in problems:
        runs_by_message.setdefault(message, []).append(run_id)
    lines = []
    for message, run_ids in runs_by_message.items():
        more = f" and {len(run_ids) - shown} more" if len(run_ids) > shown else ""
        lines.append(f"{message} [{', '.join(run_ids[:shown])}{more}]")
    return lines
