"""``lem images build|bundle|list|check``: the backend images (thin skin over ``lem.runtime.images``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar, cast

import click

from lem.runtime.bundle import BundleBuild, BundleRequest, build_from_bundle, make_bundle, staging_dir
from lem.runtime.errors import LemRuntimeError, RuntimeUnavailable
from lem.runtime.images import (
    CPU_FLAVOUR_BACKENDS,
    FLAVOURS,
    Flavour,
    ImageStatus,
    build_backend_image,
    find_repo_root,
    has_wheelhouse,
    image_name,
    image_problem,
    image_repository,
    plan_build,
)
from lem.runtime.wheelhouse import script_wheelhouse
from lem_harness.contract import CONTRACT_VERSION
from lem_harness.schema_base import BACKENDS

F = TypeVar("F", bound=Callable[..., Any])


def _runtime_errors_as_messages(fn: F) -> F:
    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except LemRuntimeError as e:
            raise click.ClickException(str(e)) from e

    return cast(F, wrapper)


def _docker() -> Any:
    from lem.runtime.docker import DockerRuntime

    return DockerRuntime()


def _campaign_backends(file: Path | None) -> tuple[str, ...]:
    if file is None:
        return ()
    from lem.cli.campaign_cmd import load_and_expand

    loaded = load_and_expand(file)
    return tuple(sorted({c.config.backend for c in loaded.expansion.configs}))


def _backends(chosen: Sequence[str], flavour: Flavour) -> list[str]:
    if chosen:
        return list(chosen)
    return sorted(CPU_FLAVOUR_BACKENDS) if flavour == "cpu" else list(BACKENDS)


backend_option = click.option(
    "--backend",
    "backends",
    multiple=True,
    type=click.Choice(BACKENDS),
    help="Backend image(s) to act on (repeatable). Default: all of the flavour's backends.",
)
flavour_option = click.option(
    "--flavour",
    type=click.Choice(FLAVOURS),
    default="gpu",
    show_default=True,
    help="gpu: production images; cpu: the CPU test flavours (pytorch, vllm).",
)


@click.group("images")
def images() -> None:
    """Build, list and check the per-backend Docker images."""


@images.command("build")
@backend_option
@flavour_option
@click.option("--offline", is_flag=True, help="Install from wheelhouse/<backend>[-cpu]/ only (no index).")
@click.option("--base-image", default=None, help="Override the Dockerfile's BASE_IMAGE build argument.")
@click.option(
    "--bundle",
    "bundle_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Isolated host: verify this bundle (lem images bundle), load its bases, build with the network off.",
)
@click.option(
    "--repository",
    default=None,
    help="Name the images REPOSITORY/<backend>:<tag> (default: $LEM_IMAGE_REPOSITORY, else llenergymeasure).",
)
@click.option("--no-cache", is_flag=True, help="Build every layer afresh (Docker's layer cache unused).")
@click.option(
    "--missing",
    is_flag=True,
    help="Only images that are missing or speak another contract; offline when a wheelhouse is there; "
    "an unreachable Docker engine is reported, not an error (the campaign's preflight says what to do).",
)
@click.option(
    "--for",
    "campaign_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Only the backends this campaign uses.",
)
@_runtime_errors_as_messages
def build(
    *,
    backends: tuple[str, ...],
    flavour: Flavour,
    offline: bool,
    base_image: str | None,
    bundle_file: Path | None,
    repository: str | None,
    no_cache: bool,
    missing: bool,
    campaign_file: Path | None,
) -> None:
    """Build images from the Dockerfiles under images/ (the build output is streamed)."""
    root = find_repo_root()
    runtime = _docker()
    if bundle_file is not None:
        if base_image:
            raise click.UsageError("--bundle builds on the bundle's own base images: drop --base-image")
        repo = image_repository(repository)
        _build_from_bundle(BundleBuild(bundle_file, root, Path(), backends, repo, no_cache), runtime)
        return
    chosen = _backends(backends or _campaign_backends(campaign_file), flavour)
    if missing:
        try:
            chosen = [
                b
                for b in chosen
                if image_problem(runtime.image_status(image_name(b, flavour, repository=repository)))
                is not None
            ]
        except RuntimeUnavailable as e:
            click.echo(f"not building: {e.message}", err=True)
            return
        if not chosen:
            click.echo("every image is present and speaks this host's contract")
    for backend in chosen:
        use_wheels = offline or (missing and has_wheelhouse(root, backend, flavour))
        plan = plan_build(backend, flavour, offline=use_wheels, base_image=base_image, repository=repository)
        plan = replace(plan, nocache=no_cache)
        click.echo(f"building {plan.tag} from {plan.dockerfile}{' (offline)' if plan.offline else ''}")
        image_id = build_backend_image(runtime, root, plan, click.echo)
        click.echo(f"built {plan.tag} ({image_id[:19]})")


def _build_from_bundle(request: BundleBuild, runtime: Any) -> None:
    parent = request.bundle.resolve().parent
    with staging_dir(parent) as staging:
        built = build_from_bundle(replace(request, staging=staging), runtime, click.echo)
    for tag, image_id in built.items():
        click.echo(f"built {tag} ({image_id[:19]}) from {request.bundle}")


@images.command("bundle")
@backend_option
@flavour_option
@click.option(
    "--out",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    required=True,
    help="The archive to write (.tar; .tar.gz or .tgz to compress).",
)
@click.option("--base-image", default=None, help="Bundle this base instead of the one in images/pins.toml.")
@_runtime_errors_as_messages
def bundle(backends: tuple[str, ...], flavour: Flavour, out: Path, base_image: str | None) -> None:
    """Connected machine: one archive with the base images, wheelhouses and a checksummed manifest."""
    root = find_repo_root()
    request = BundleRequest(root, out.resolve(), tuple(_backends(backends, flavour)), flavour, base_image)
    manifest = make_bundle(request, _docker(), script_wheelhouse(root), click.echo)
    size = out.stat().st_size / 1e9
    names = ", ".join(f"{i.backend} ({i.flavour}, Python {i.python.version})" for i in manifest.images)
    click.echo(f"wrote {out}: {size:.2f} GB, {len(manifest.files)} files: {names}")
    click.echo(
        f"on the isolated host: lem images build --bundle {out.name}  (or: make images BUNDLE={out.name})"
    )


@images.command("list")
@_runtime_errors_as_messages
def list_images() -> None:
    """List the local images built by this tool, with their contract version."""
    statuses = _docker().list_images()
    if not statuses:
        click.echo("no llenergymeasure images on this Docker engine (build them: lem images build)")
        return
    for status in statuses:
        click.echo(_describe(status))


@images.command("check")
@backend_option
@flavour_option
@_runtime_errors_as_messages
def check(backends: tuple[str, ...], flavour: Flavour) -> None:
    """Is each backend's image present, and does it speak this host's contract? Exit 1 if not."""
    runtime = _docker()
    problems = 0
    for backend in _backends(backends, flavour):
        status: ImageStatus = runtime.image_status(image_name(backend, flavour))
        problem = image_problem(status, CONTRACT_VERSION)
        problems += problem is not None
        verdict = problem or f"ok (contract {status.contract})"
        click.echo(f"{'✗' if problem else '✓'} {status.name}: {verdict}")
    if problems:
        raise click.exceptions.Exit(1)


def _describe(status: ImageStatus) -> str:
    size = f"{status.size_bytes / 1e9:.2f} GB" if status.size_bytes else "?"
    short_id = (status.image_id or "?").removeprefix("sha256:")[:12]
    contract = status.contract or "-"
    return f"{status.name:40} {short_id}  contract {contract:8} {size:>9}  {status.created or ''}"
