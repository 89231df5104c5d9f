"""Gather what ``lem doctor`` judges: the Docker engine, GPUs through the harness's NVML module
(the only pynvml importer), images, RAPL, page-cache permission, free disk, a Slurm client.

Every probe catches its own failure and records why, so one missing piece never hides the rest.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Protocol

from lem.campaign.coldstart import DROP_CACHES
from lem.doctor.checks import HostFacts
from lem.runtime.errors import LemRuntimeError
from lem.runtime.images import ImageStatus, expected_images
from lem_harness.contract import GpuInfo
from lem_harness.devices.base import DeviceError


class DockerFacts(Protocol):
    """What doctor asks of the engine (``DockerRuntime`` fits)."""

    def engine_facts(self) -> tuple[str, tuple[str, ...]]: ...

    def image_status(self, name: str) -> ImageStatus: ...


def gather(disk_path: Path, docker: DockerFacts | None = None) -> HostFacts:
    version, runtimes, images, docker_error = docker_facts(docker)
    gpus, gpu_error = gpu_facts()
    return HostFacts(
        docker_version=version,
        docker_runtimes=runtimes,
        docker_error=docker_error,
        gpus=gpus,
        gpu_error=gpu_error,
        images=images,
        rapl_error=rapl_error(),
        page_cache_error=page_cache_error(),
        disk_path=disk_path,
        disk_free_bytes=shutil.disk_usage(_existing(disk_path)).free,
        sbatch=shutil.which("sbatch"),
    )


def docker_facts(
    docker: DockerFacts | None = None,
) -> tuple[str | None, tuple[str, ...], tuple[ImageStatus, ...], str | None]:
    """(version, runtimes, expected images' status, error)."""
    try:
        if docker is None:
            from lem.runtime.docker import DockerRuntime

            docker = DockerRuntime()
        version, runtimes = docker.engine_facts()
        names = [*expected_images("gpu"), *expected_images("cpu")]
        return version, runtimes, tuple(docker.image_status(n) for n in names), None
    except LemRuntimeError as e:
        return None, (), (), e.message
    except ImportError as e:
        return None, (), (), f"the docker package is not installed ({e})"


def image_statuses(
    names: list[str], docker: DockerFacts | None = None
) -> tuple[dict[str, ImageStatus], str | None]:
    """The engine's status of each image name, or why the engine could not be asked."""
    try:
        if docker is None:
            from lem.runtime.docker import DockerRuntime

            docker = DockerRuntime()
        return {name: docker.image_status(name) for name in names}, None
    except LemRuntimeError as e:
        return {}, e.message
    except ImportError as e:
        return {}, f"the docker package is not installed ({e})"


def gpu_facts() -> tuple[tuple[GpuInfo, ...], str | None]:
    try:
        from lem_harness.devices.nvml import open_all_nvml

        devices = open_all_nvml()
    except (DeviceError, ImportError) as e:
        return (), str(e)
    try:
        return tuple(devices.info()), None
    except DeviceError as e:
        return (), str(e)
    finally:
        devices.close()


def rapl_error() -> str | None:
    from lem_harness.devices.rapl import RaplReader

    reader = RaplReader()
    return None if reader.available() else reader.unavailable_reason or "unavailable"


def page_cache_error(path: Path = DROP_CACHES) -> str | None:
    if os.geteuid() != 0:
        return f"lem runs as uid {os.geteuid()}, not root"
    if not os.access(path, os.W_OK):
        return f"{path} is not writable here (a container without privileges?)"
    return None


def _existing(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path("/")
