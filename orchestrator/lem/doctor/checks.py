"""The host's facts judged: one ``Check`` per capability, with the fix for each that fails (pure).

Statuses: ``ok`` (✔), ``warn`` (⚠: works, with a caveat for measurements) and ``fail`` (✘:
that capability is missing; the fix says how to get it, or what to run instead). Which of them
a given campaign needs is preflight's question (``lem doctor CAMPAIGN``), not this module's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from lem.runtime.bundle_manifest import Manifest
from lem.runtime.errors import build_command
from lem.runtime.images import ImageStatus, flavour_of, image_name, image_problem
from lem_harness.contract import GpuInfo

Status = Literal["ok", "warn", "fail"]
SYMBOLS: dict[Status, str] = {"ok": "✔", "warn": "⚠", "fail": "✘"}
LOW_DISK_BYTES = 20 * 10**9
NO_GPU_INSTEAD = "without a GPU: make demo, or lem campaign run FILE --flavour cpu (or --runtime local)"


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    found: str
    fix: str = ""


@dataclass(frozen=True)
class HostFacts:
    """What ``lem.doctor.facts`` found; an ``*_error`` says why a fact could not be read."""

    docker_version: str | None
    docker_runtimes: tuple[str, ...]
    docker_error: str | None
    gpus: tuple[GpuInfo, ...]
    gpu_error: str | None
    images: tuple[ImageStatus, ...]
    rapl_error: str | None
    page_cache_error: str | None
    disk_path: Path
    disk_free_bytes: int
    sbatch: str | None


def host_checks(facts: HostFacts) -> list[Check]:
    return [
        docker_check(facts),
        nvidia_runtime_check(facts),
        *gpu_checks(facts.gpus, facts.gpu_error),
        *image_checks(facts.images, facts.docker_error),
        rapl_check(facts.rapl_error),
        page_cache_check(facts.page_cache_error),
        disk_check(facts.disk_path, facts.disk_free_bytes),
        slurm_check(facts.sbatch),
    ]


def docker_check(facts: HostFacts) -> Check:
    if facts.docker_error is not None:
        fix = "start Docker (sudo systemctl start docker, or make docker-engine); without it: --runtime local"
        return Check("Docker engine", "fail", facts.docker_error, fix)
    return Check("Docker engine", "ok", f"Docker {facts.docker_version}")


def nvidia_runtime_check(facts: HostFacts) -> Check:
    name = "NVIDIA container runtime"
    if facts.docker_error is not None:
        return Check(name, "fail", "no Docker engine to ask", "start Docker first")
    if "nvidia" in facts.docker_runtimes:
        return Check(name, "ok", f"runtimes: {', '.join(facts.docker_runtimes)}")
    return Check(
        name,
        "fail",
        f"runtimes: {', '.join(facts.docker_runtimes) or 'none'} (no nvidia)",
        "install the NVIDIA Container Toolkit, then nvidia-ctk runtime configure --runtime=docker and "
        f"restart Docker; {NO_GPU_INSTEAD}",
    )


def gpu_checks(gpus: Sequence[GpuInfo], error: str | None) -> list[Check]:
    if error is not None or not gpus:
        return [
            Check(
                "GPUs (NVML)",
                "fail",
                error or "NVML sees no GPU",
                f"install the NVIDIA driver; {NO_GPU_INSTEAD}",
            )
        ]
    return [_gpu_check(gpu) for gpu in gpus]


def _gpu_check(gpu: GpuInfo) -> Check:
    limit = f"{gpu.power_limit_w:.0f} W limit" if gpu.power_limit_w is not None else "power limit ?"
    persistence = {True: "persistence on", False: "persistence off", None: "persistence ?"}[
        gpu.persistence_mode
    ]
    counter = "energy counter" if gpu.supports_energy_counter else "no energy counter (power integral only)"
    found = (
        f"{gpu.name} · {gpu.uuid} · driver {gpu.driver_version or '?'} · {limit} · {persistence} · {counter}"
    )
    fixes = []
    if gpu.persistence_mode is False:
        fixes.append(f"sudo nvidia-smi -i {gpu.index} -pm 1 (the driver stays loaded between runs)")
    if not gpu.supports_energy_counter:
        fixes.append("energy comes from the sampled power integral: expect wider intervals (pre-Volta GPU)")
    return Check(f"GPU {gpu.index}", "warn" if fixes else "ok", found, "; ".join(fixes))


def image_checks(images: Sequence[ImageStatus], docker_error: str | None) -> list[Check]:
    if docker_error is not None:
        return [Check("images", "fail", "no Docker engine to ask", "start Docker first")]
    return [_image_check(status) for status in images]


def _image_check(status: ImageStatus) -> Check:
    problem = image_problem(status)
    if problem is None:
        return Check(f"image {status.name}", "ok", f"contract {status.contract}")
    backend = status.name.split("/")[-1].split(":")[0]
    found = "missing" if not status.present else problem.split(":")[0]
    return Check(f"image {status.name}", "fail", found, build_command(backend, flavour_of(status.name)))


def bundle_checks(
    bundle: Path, manifest: Manifest, statuses: dict[str, ImageStatus], docker_error: str | None
) -> list[Check]:
    """Whether the bundle's base images are loaded (the very ones: same image id) and the images
    built from them are present for this host's contract. ``statuses``: name → status."""
    fix = f"lem images build --bundle {bundle}"
    if docker_error is not None:
        return [Check(f"bundle {bundle.name}", "fail", "no Docker engine to ask", "start Docker first")]
    out = []
    for image in manifest.images:
        base = statuses[image.base.reference]
        if not base.present:
            out.append(Check(f"bundle base {image.base.reference}", "fail", "not loaded", fix))
        elif base.image_id != image.base.id:
            found = f"another image is loaded under this tag ({base.image_id}; the bundle's: {image.base.id})"
            out.append(Check(f"bundle base {image.base.reference}", "fail", found, fix))
        else:
            out.append(Check(f"bundle base {image.base.reference}", "ok", f"loaded ({image.base.id[:19]})"))
        built = statuses[image_name(image.backend, image.flavour)]
        problem = image_problem(built)
        if problem is None:
            out.append(Check(f"bundle image {built.name}", "ok", f"built, contract {built.contract}"))
        else:
            out.append(Check(f"bundle image {built.name}", "fail", problem.split(":")[0], fix))
    return out


def bundle_image_names(manifest: Manifest) -> list[str]:
    """The tags ``bundle_checks`` asks about: each base, then the image built on it."""
    return [n for i in manifest.images for n in (i.base.reference, image_name(i.backend, i.flavour))]


def rapl_check(error: str | None) -> Check:
    if error is None:
        return Check("RAPL (CPU energy)", "ok", "readable")
    return Check(
        "RAPL (CPU energy)",
        "warn",
        error,
        "sudo chmod a+r /sys/class/powercap/intel-rapl:*/energy_uj (only CPU-side energy needs it)",
    )


def page_cache_check(error: str | None) -> Check:
    if error is None:
        return Check("page-cache drop", "ok", "permitted")
    return Check(
        "page-cache drop", "warn", error, "run lem as root on the host for cold_start.drop_page_cache"
    )


def disk_check(path: Path, free: int) -> Check:
    found = f"{free / 1e9:,.1f} GB free on {path}"
    if free < LOW_DISK_BYTES:
        return Check("free disk", "warn", found, "images and model caches need tens of GB: free some space")
    return Check("free disk", "ok", found)


def slurm_check(sbatch: str | None) -> Check:
    if sbatch is None:
        return Check("Slurm client", "warn", "sbatch not found", "needed only to submit campaigns to Slurm")
    return Check("Slurm client", "ok", sbatch)


def healthy(checks: Sequence[Check]) -> bool:
    return all(c.status != "fail" for c in checks)
