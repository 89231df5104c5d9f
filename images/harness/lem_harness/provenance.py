"""What produced a result: software versions, GPUs by UUID with limits and clocks, host, config hash."""

from __future__ import annotations

import importlib.metadata
import platform
import socket
from collections.abc import Mapping

from lem_harness import __version__
from lem_harness.contract import Provenance, RunSpec, config_hash
from lem_harness.devices.base import GpuDevices

HARNESS_PACKAGES = ("pydantic", "nvidia-ml-py")
VISIBILITY_VARS = ("CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES")


def package_versions(names: tuple[str, ...] = HARNESS_PACKAGES) -> dict[str, str]:
    """Installed versions of ``names``; absent packages are left out."""
    found: dict[str, str] = {}
    for name in names:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return found


def visible_devices(env: Mapping[str, str]) -> str | None:
    """``CUDA_VISIBLE_DEVICES=…`` / ``NVIDIA_VISIBLE_DEVICES=…`` as this process sees them, or None."""
    parts = [f"{name}={env[name]}" for name in VISIBILITY_VARS if name in env]
    return " ".join(parts) or None


def build_provenance(
    spec: RunSpec,
    devices: GpuDevices | None,
    engine_versions: Mapping[str, str],
    env: Mapping[str, str],
) -> Provenance:
    """The provenance block of a result; device facts are read once, here."""
    packages = {"lem-harness": __version__, **package_versions(), **engine_versions}
    return Provenance(
        harness_version=__version__,
        python_version=platform.python_version(),
        packages=packages,
        cuda_version=devices.cuda_version() if devices is not None else engine_versions.get("torch_cuda"),
        driver_version=devices.driver_version() if devices is not None else None,
        gpus=devices.info() if devices is not None else [],
        hostname=socket.gethostname(),
        config_hash=config_hash(spec.config),
        random_seed=spec.config.random_seed,
        image=spec.image,
        device_kind=devices.kind if devices is not None else "none",
        visible_devices=visible_devices(env),
    )
