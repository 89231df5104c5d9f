"""``--runtime slurm`` for ``lem campaign run``, ``lem campaign status DIR`` and ``lem campaign lane FILE``.

Thin skins over ``lem.campaign.cluster`` (login node) and ``lem.campaign.launch`` (a lane's job on
its node). ``--slurm KEY=VALUE`` overrides one key of the campaign's ``slurm:`` section (the
value is read as YAML and validated like the file). Ctrl-C during ``run`` offers to ``scancel``
the campaign's jobs; ``--detach`` leaves them running and ``status`` follows them later.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import click
import yaml
from pydantic import ValidationError

from lem.campaign.clock import Clock
from lem.campaign.cluster import (
    ClusterRequest,
    ClusterResult,
    ClusterServices,
    Follower,
    LaneSet,
    LaneView,
    lane_job,
    lane_scripts,
    plan_lanes,
    run_cluster,
)
from lem.campaign.lane_file import ClusterState, LaneFile, lane_paths, lane_request, read_state
from lem.campaign.lanes import campaign_estimate_s, lane_estimate_s, run_estimate_s
from lem.campaign.liveness import CampaignBusy, LiveCampaign, live_key
from lem.campaign.manifest import MANIFEST_FILE, Manifest, ManifestError
from lem.campaign.signals import stop_on_signals
from lem.cli.campaign_cmd import format_duration, load_and_expand
from lem.config.campaign import CampaignConfig
from lem.config.slurm import SLURM_KEYS, SlurmConfig
from lem.runtime.apptainer import ApptainerRuntime
from lem.runtime.errors import LemRuntimeError
from lem.runtime.process import slurm_job_id
from lem.runtime.slurm import SlurmClient

if TYPE_CHECKING:
    from lem.cli.run_cmd import RunDeps


@dataclass(frozen=True)
class SlurmOptions:
    detach: bool
    overrides: tuple[str, ...]


def apply_overrides(campaign_cfg: CampaignConfig, overrides: Sequence[str]) -> CampaignConfig:
    """The campaign with ``--slurm KEY=VALUE`` applied (each validated like the file's section)."""
    values = campaign_cfg.slurm.model_dump(exclude_unset=True)
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or key not in SLURM_KEYS:
            near = difflib.get_close_matches(key, SLURM_KEYS, n=1)
            hint = f" (did you mean {near[0]}?)" if near else f" (keys: {', '.join(SLURM_KEYS)})"
            raise click.UsageError(f"--slurm {item!r}: expected KEY=VALUE with a slurm key{hint}")
        values[key] = yaml.safe_load(text) if text else None
    try:
        slurm = SlurmConfig.model_validate(values)
    except ValidationError as e:
        first = e.errors()[0]
        raise click.UsageError(f"--slurm {'.'.join(str(p) for p in first['loc'])}: {first['msg']}") from None
    return campaign_cfg.model_copy(update={"slurm": slurm})


def dry_run_text(request: ClusterRequest) -> str:
    """The lanes, their estimates and every sbatch script the run would submit."""
    lanes = plan_lanes(request)
    run_s = run_estimate_s(request.campaign.execution, request.campaign.slurm.expected_run_seconds)
    nodes = min(len(lanes), request.campaign.slurm.max_nodes)
    lines = [
        f"slurm: {len(lanes)} lane(s), one job each, at most {request.campaign.slurm.max_nodes} node(s); "
        f"expected wall time {format_duration(campaign_estimate_s(lanes, run_s, nodes))} "
        f"(runs of {format_duration(run_s)})"
    ]
    scripts = lane_scripts(request, lanes)
    for lane in lanes:
        job = lane_job(request, lane)
        lines.append(
            f"{lane.name}: {len(lane.runs)} runs ({', '.join(lane.run_ids)}), expected "
            f"{format_duration(lane_estimate_s(lane, run_s))}, --time={job.time_minutes}"
        )
    for name, script in scripts.items():
        lines.extend([f"----- {lane_paths(request.campaign_dir, name)['script']} -----", script.rstrip()])
    return "\n".join(lines)


def run_on_slurm(request: ClusterRequest, slurm: SlurmClient, clock: Clock, registry: Path) -> ClusterResult:
    """Submit and follow; Ctrl-C offers scancel; Slurm or manifest errors end the command (exit 1)."""
    stop = threading.Event()
    services = ClusterServices(slurm=slurm, clock=clock, stop=stop, note=_note, registry=registry)
    with stop_on_signals(stop, _note):
        try:
            result = run_cluster(request, services)
        except (LemRuntimeError, ManifestError, CampaignBusy) as e:
            raise click.ClickException(str(e)) from None
    if result.report.stopped and result.active_jobs:
        _offer_cancel(slurm, result.active_jobs, request.campaign_dir)
    elif result.detached:
        click.echo(f"detached: Slurm jobs {', '.join(result.active_jobs) or '(none)'} keep running")
        click.echo(f"follow them with: lem campaign status {request.campaign_dir} --follow")
    return result


def _offer_cancel(slurm: SlurmClient, jobs: Sequence[str], campaign_dir: Path) -> None:
    ask = sys.stdin.isatty()
    if not ask or click.confirm(
        f"cancel the campaign's Slurm jobs {', '.join(jobs)} (scancel)?", default=True
    ):
        slurm.cancel(list(jobs))
        click.echo(f"cancelled Slurm jobs {', '.join(jobs)}; --resume runs what they left")
    else:
        click.echo(f"Slurm jobs {', '.join(jobs)} keep running: lem campaign status {campaign_dir} --follow")


def _note(line: str) -> None:
    click.echo(line, err=True)


# ---------------------------------------------------------------------------- status


@click.command("status")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--follow", is_flag=True, help="Keep following the jobs until every one ended.")
@click.option("--json", "as_json", is_flag=True, help="Print the lanes as JSON.")
@click.pass_context
def status(ctx: click.Context, directory: Path, follow: bool, as_json: bool) -> None:
    """Where a Slurm campaign stands: its jobs, lanes and runs (merged into DIRECTORY/manifest.json)."""
    from lem.cli.run_cmd import RunDeps

    state = read_state(directory)
    if state is None:
        raise click.ClickException(f"{directory} holds no Slurm campaign (no slurm/jobs.json)")
    deps = ctx.find_object(RunDeps) or RunDeps()
    try:
        follower = _follow(directory, state, deps, follow)
    except (LemRuntimeError, ManifestError, CampaignBusy) as e:
        raise click.ClickException(str(e)) from None
    report = follower.report()
    if as_json:
        click.echo(json.dumps([_view_json(v) for v in follower.views.values()]))
    else:
        for view in follower.views.values():
            click.echo(view.line())
    click.echo(
        f"{report.total} runs — {report.done} done, {report.failed} failed, "
        f"{report.interrupted} interrupted, {report.pending} pending; jobs still active: "
        f"{', '.join(follower.active_jobs()) or 'none'}"
    )


def _follow(directory: Path, state: ClusterState, deps: RunDeps, follow: bool) -> Follower:
    """Poll the campaign's jobs once (or until every one ended) and merge the lanes' manifests."""
    stop = threading.Event()
    services = ClusterServices(deps.slurm_factory(), deps.clock, stop, _note, deps.registry)
    with LiveCampaign(services.registry, live_key(state.campaign_id, "slurm")), stop_on_signals(stop, _note):
        manifest = Manifest.load(directory / MANIFEST_FILE)
        try:
            campaign_cfg = CampaignConfig.model_validate(manifest_config(manifest))
            run_s = run_estimate_s(campaign_cfg.execution, campaign_cfg.slurm.expected_run_seconds)
            follower = Follower(directory, LaneSet(state, {}), manifest, services, run_s)
            if follow:
                follower.follow(campaign_cfg.slurm.poll_interval_seconds)
            else:
                follower.poll()
        finally:
            manifest.close()
    return follower


def manifest_config(manifest: Manifest) -> dict[str, object]:
    """The campaign configuration the manifest was written with."""
    config = json.loads(manifest.render()).get("config", {})
    return config if isinstance(config, dict) else {}


def _view_json(view: LaneView) -> dict[str, object]:
    return {
        "lane": view.lane,
        "job_id": view.job_id,
        "state": view.state,
        "node": view.node,
        "done": view.done,
        "total": view.total,
        "running": view.running,
        "ended": view.ended,
    }


# ---------------------------------------------------------------------------- lane (on a node)


@click.command("lane", hidden=True)
@click.argument("lane_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_context
def lane(ctx: click.Context, lane_file: Path) -> None:
    """Run one lane of a Slurm campaign on this node (what each job script calls)."""
    from lem.cli.run_cmd import RunDeps, launch_request

    try:
        plan = LaneFile.model_validate_json(lane_file.read_text())
    except ValidationError as e:
        raise click.ClickException(
            f"{lane_file} is not a lane file written by lem: {e.errors()[0]['msg']}"
        ) from None
    loaded = load_and_expand(Path(plan.campaign_file))
    try:
        request = lane_request(plan, loaded.campaign, loaded.expansion, slurm_job_id())
    except ValueError as e:
        raise click.ClickException(str(e)) from None
    deps = ctx.find_object(RunDeps) or RunDeps()
    if plan.runtime == "apptainer" and plan.apptainer_image_dir is not None:
        image_dir = Path(plan.apptainer_image_dir)
        deps = dataclasses.replace(deps, runtime_factory=lambda name: ApptainerRuntime(image_dir))
    result = launch_request(request, deps, plan.runtime, quiet=True)
    report = result.report
    click.echo(
        f"{plan.lane}: {report.total} runs — {report.done} done, {report.failed} failed, "
        f"{report.interrupted} interrupted, {report.pending} pending"
    )
    ctx.exit(report.exit_code)
