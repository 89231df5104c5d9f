"""Runtimes: where one experiment's harness runs (a Docker container, or a local subprocess).

The scheduler sees only the ``Runtime`` protocol, ``ContainerSpec`` and ``RunOutcome``;
``make_runtime`` picks the implementation (docker-py is imported only when Docker is asked for).
"""

from __future__ import annotations

from typing import Literal

from lem.runtime.errors import (
    GpuRuntimeMissing,
    ImageMissing,
    ImageOutdated,
    LemRuntimeError,
    RuntimeUnavailable,
    SpecError,
)
from lem.runtime.spec import ContainerSpec, Mount, RunOutcome, Runtime
from lem.runtime.spec_builder import RunPaths, build_container_spec, container_cache_dirs

RuntimeName = Literal["docker", "local"]
RUNTIME_NAMES: tuple[RuntimeName, ...] = ("docker", "local")

__all__ = [
    "RUNTIME_NAMES",
    "ContainerSpec",
    "GpuRuntimeMissing",
    "ImageMissing",
    "ImageOutdated",
    "LemRuntimeError",
    "Mount",
    "RunOutcome",
    "RunPaths",
    "Runtime",
    "RuntimeName",
    "RuntimeUnavailable",
    "SpecError",
    "build_container_spec",
    "container_cache_dirs",
    "make_runtime",
]


def make_runtime(name: str) -> Runtime:
    """The runtime called ``name`` with its defaults (``docker`` or ``local``)."""
    if name == "docker":
        from lem.runtime.docker import DockerRuntime

        return DockerRuntime()
    if name == "local":
        from lem.runtime.local import LocalRuntime

        return LocalRuntime()
    raise LemRuntimeError(f"unknown runtime {name!r}", f"choose one of: {', '.join(RUNTIME_NAMES)}")
