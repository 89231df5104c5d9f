"""Errors of the runtime layer: one root, subclasses that carry what a person needs to act.

Each error's ``str()`` is a complete message (what failed + what to do); the data that built
it stays on the instance for callers and tests.
"""

from __future__ import annotations


class LemRuntimeError(Exception):
    """Root of every runtime error. ``hint`` says what to do next."""

    def __init__(self, message: str, hint: str = "") -> None:
        self.message = message
        self.hint = hint
        super().__init__(f"{message}\n  → {hint}" if hint else message)


class RuntimeUnavailable(LemRuntimeError):
    """The Docker daemon cannot be reached (not running, no permission, no client)."""

    def __init__(self, detail: str, *, permission_denied: bool = False) -> None:
        self.detail = detail
        self.permission_denied = permission_denied
        if permission_denied:
            hint = (
                "Docker refused this user: add it to the docker group "
                "(sudo usermod -aG docker $USER, then log in again) or run as root."
            )
        else:
            hint = (
                "Start Docker (sudo systemctl start docker, or `make docker-engine` on a CI/dev box) "
                "and check `docker info`."
            )
        hint += " Without Docker: make demo, or lem campaign run FILE --runtime local."
        super().__init__(f"Docker engine unreachable: {detail}", hint)


class ImageMissing(LemRuntimeError):
    """A backend image is not present locally (nothing is pulled: hosts may be offline)."""

    def __init__(self, image: str, backend: str | None = None, flavour: str = "gpu") -> None:
        self.image = image
        self.backend = backend
        self.flavour = flavour
        self.build_command = build_command(backend, flavour)
        super().__init__(f"image {image} not found on this Docker engine", f"build it: {self.build_command}")


class ImageOutdated(LemRuntimeError):
    """An image's contract label does not match the host's contract major version."""

    def __init__(
        self, image: str, image_contract: str | None, host_contract: str, backend: str | None
    ) -> None:
        self.image = image
        self.image_contract = image_contract
        self.host_contract = host_contract
        self.backend = backend
        found = image_contract or "no contract label"
        super().__init__(
            f"image {image} speaks contract {found}, this host speaks {host_contract}",
            f"rebuild it: {build_command(backend, 'gpu')}",
        )


class GpuRuntimeMissing(LemRuntimeError):
    """GPUs were requested but Docker has no NVIDIA runtime to hand them over."""

    def __init__(self, detail: str) -> None:
        self.detail = detail
        super().__init__(
            f"Docker cannot pass GPUs to containers: {detail}",
            "install the NVIDIA Container Toolkit (nvidia-ctk runtime configure --runtime=docker, "
            "then restart Docker); for a CPU-only demo use measurement.device: simulated.",
        )


class SpecError(LemRuntimeError):
    """A container spec cannot be built from this config (bad path, unknown GPU, reserved env)."""

    def __init__(self, key: str, message: str, hint: str = "") -> None:
        self.key = key
        super().__init__(f"{key}: {message}", hint)


def build_command(backend: str | None, flavour: str = "gpu") -> str:
    """The command that builds a backend's image (shown in error messages)."""
    parts = ["lem images build"]
    if backend:
        parts.append(f"--backend {backend}")
    if flavour == "cpu":
        parts.append("--flavour cpu --offline")
    make = "make images" + (f" BACKEND={backend}" if backend else "")
    if flavour == "cpu":
        make += " FLAVOUR=cpu OFFLINE=1"
    return f"{' '.join(parts)}  (or: {make})"
