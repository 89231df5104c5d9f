"""``lem doctor [CAMPAIGN]``: one table of what this host can do, with the fix for each ✘.

With a campaign file, preflight runs too (as ``lem campaign run`` would, nothing started) and the
exit code says whether that campaign can run here: 0 yes, 1 no. Without one the exit code is 0.
``--json`` prints the same as one JSON object. Tests pass a ``DoctorDeps`` as the context object.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from lem.campaign.clock import SystemClock
from lem.campaign.launch import LaunchRequest, LaunchServices, check_campaign
from lem.campaign.plan import plan_campaign
from lem.campaign.preflight import Finding, PreflightFailed
from lem.campaign.progress import LogProgress
from lem.cli.campaign_cmd import load_and_expand
from lem.doctor.checks import SYMBOLS, Check, HostFacts, bundle_checks, bundle_image_names, host_checks
from lem.doctor.facts import gather, image_statuses
from lem.runtime import RUNTIME_NAMES, make_runtime
from lem.runtime.bundle import read_manifest
from lem.runtime.errors import LemRuntimeError
from lem.runtime.images import FLAVOURS, Flavour, ImageStatus
from lem.runtime.spec import Runtime


@dataclass
class DoctorDeps:
    """The command's side effects; the defaults are the real ones."""

    facts: Callable[[Path], HostFacts] = gather
    runtime_factory: Callable[[str], Runtime] = make_runtime
    services: Callable[[Runtime], LaunchServices] | None = None
    images: Callable[[list[str]], tuple[dict[str, ImageStatus], str | None]] = image_statuses


@click.command("doctor")
@click.argument("campaign_file", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--runtime", "runtime_name", type=click.Choice(RUNTIME_NAMES), default="docker", show_default=True
)
@click.option("--flavour", type=click.Choice(FLAVOURS), default="gpu", show_default=True)
@click.option(
    "--results-dir", type=click.Path(file_okay=False, path_type=Path), help="Where results would go."
)
@click.option(
    "--bundle",
    type=click.Path(dir_okay=False, path_type=Path),
    help="An offline bundle (lem images bundle): are its bases loaded and its images built? Exit 1 if not.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object instead of the table.")
@click.pass_context
def doctor(
    ctx: click.Context,
    /,
    *,
    campaign_file: Path | None,
    runtime_name: str,
    flavour: Flavour,
    results_dir: Path | None,
    bundle: Path | None,
    as_json: bool,
) -> None:
    """What this host can do (Docker, NVIDIA runtime, GPUs, images, RAPL, disk, Slurm) and the fixes;
    with CAMPAIGN_FILE, whether that campaign can run here (exit 0) or not (exit 1)."""
    deps = ctx.find_object(DoctorDeps) or DoctorDeps()
    checks = host_checks(deps.facts((results_dir or Path("results")).resolve()))
    bundle_ok = True
    if bundle is not None:
        found = _bundle_checks(bundle, deps)
        bundle_ok = all(c.status == "ok" for c in found)
        checks += found
    verdict = None
    if campaign_file is not None:
        verdict = _campaign_verdict(campaign_file, runtime_name, flavour, results_dir, deps)
    if as_json:
        click.echo(json.dumps(_json(checks, campaign_file, verdict), indent=2))
    else:
        _print(checks, campaign_file, verdict)
    ctx.exit(0 if bundle_ok and (verdict is None or verdict[0]) else 1)


def _bundle_checks(bundle: Path, deps: DoctorDeps) -> list[Check]:
    try:
        manifest = read_manifest(bundle)
    except LemRuntimeError as e:
        return [Check(f"bundle {bundle.name}", "fail", e.message, e.hint or "")]
    statuses, error = deps.images(bundle_image_names(manifest))
    return bundle_checks(bundle, manifest, statuses, error)


def _campaign_verdict(
    file: Path, runtime_name: str, flavour: Flavour, results_dir: Path | None, deps: DoctorDeps
) -> tuple[bool, list[Finding]]:
    loaded = load_and_expand(file)
    campaign_cfg, expansion = loaded.campaign, loaded.expansion
    request = LaunchRequest(
        campaign=campaign_cfg,
        campaign_file=file,
        expansion=expansion,
        runs=plan_campaign(campaign_cfg, expansion),
        results_root=(results_dir or Path(campaign_cfg.results_dir)).expanduser().resolve(),
        flavour=flavour,
    )
    notes: list[str] = []
    try:
        runtime = deps.runtime_factory(runtime_name)
        services = deps.services(runtime) if deps.services else _services(runtime, notes)
        return True, check_campaign(request, services)
    except PreflightFailed as e:
        return False, list(e.findings)
    except LemRuntimeError as e:
        return False, [Finding("error", f"{runtime_name} runtime", e.message, e.hint)]


def _services(runtime: Runtime, notes: list[str]) -> LaunchServices:
    clock = SystemClock()
    return LaunchServices(
        runtime=runtime, clock=clock, stop=threading.Event(), progress=LogProgress(clock, notes.append)
    )


def _json(
    checks: list[Check], file: Path | None, verdict: tuple[bool, list[Finding]] | None
) -> dict[str, Any]:
    out: dict[str, Any] = {"checks": [asdict(c) for c in checks]}
    if verdict is not None:
        out["campaign"] = {
            "file": str(file),
            "can_run": verdict[0],
            "findings": [asdict(f) for f in verdict[1]],
        }
    return out


def _print(checks: list[Check], file: Path | None, verdict: tuple[bool, list[Finding]] | None) -> None:
    table = Table(title="lem doctor: this host", title_justify="left")
    for header in ("", "Check", "Found", "Fix"):
        table.add_column(header, overflow="fold")
    for check in checks:
        table.add_row(SYMBOLS[check.status], check.name, check.found, check.fix)
    console = Console() if Console().is_terminal else Console(width=160)
    console.print(table)
    if verdict is None:
        return
    can_run, findings = verdict
    click.echo(f"campaign {file}: {'can run here' if can_run else 'cannot run here'}")
    for finding in findings:
        mark = "⚠" if finding.severity == "warning" else "✘"
        fix = f"\n    → {finding.fix}" if finding.fix else ""
        click.echo(f"  {mark} {finding.subject}: {finding.message}{fix}")
