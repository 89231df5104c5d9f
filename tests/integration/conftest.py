"""Fixtures for tests that need a real Docker engine (marker ``docker``).

Without an engine these tests skip with the reason, except when ``LEM_REQUIRE_DOCKER=1``
(CI): then a missing engine is a failure that prints the setup commands, and a missing CPU
image is built by ``scripts/ci/build_cpu_image.sh``. Everything a test creates carries the
session's campaign-id prefix (or is tracked by id) and is removed afterwards.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lem.runtime.images import image_name

CPU_IMAGE = image_name("pytorch", "cpu")  # LEM_IMAGE_REPOSITORY renames it on a shared engine
BASE_IMAGE = "lem/debian-bookworm:base"
REPO_ROOT = Path(__file__).resolve().parents[2]
SETUP = (
    "scripts/ci/docker_engine.sh        # install docker.io if missing, start dockerd, wait for it\n"
    "scripts/ci/build_cpu_image.sh      # base image + wheelhouse + llenergymeasure/pytorch:cpu"
)
SHARED_VOLUMES = ("lem-hf-cache", "lem-trt-engines")
SESSION_PREFIX = f"itest-{uuid.uuid4().hex[:8]}"


def _required() -> bool:
    return os.environ.get("LEM_REQUIRE_DOCKER", "") not in ("", "0")


def _unavailable(reason: str) -> None:
    if _required():
        pytest.fail(
            f"{reason}\nLEM_REQUIRE_DOCKER=1 forbids skipping. Set the engine up with:\n{SETUP}",
            pytrace=False,
        )
    pytest.skip(f"{reason} (set up with scripts/ci/docker_engine.sh)")


@pytest.fixture(scope="session")
def docker_engine() -> Iterator[Any]:
    """A docker-py client of a live engine; removes the session's leftovers at the end."""
    docker = pytest.importorskip("docker")
    problem = engine_problem(os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock"))
    if problem is not None:
        _unavailable(f"no Docker engine answers: {problem}")
    client = docker.from_env()
    volumes_before = {v.name for v in client.volumes.list()}
    yield client
    remove_session_containers(client)
    for name in SHARED_VOLUMES:
        if name not in volumes_before:
            for volume in client.volumes.list(filters={"name": name}):
                if volume.name == name:
                    volume.remove(force=True)
    client.close()


@pytest.fixture(scope="session")
def pytorch_cpu_image(docker_engine: Any) -> str:
    """The CPU test image (built here from the wheelhouse when LEM_REQUIRE_DOCKER=1 and it is missing)."""
    if not _has_image(docker_engine, CPU_IMAGE):
        if not _required():
            pytest.skip(f"{CPU_IMAGE} missing (build it: scripts/ci/build_cpu_image.sh)")
        done = subprocess.run(["scripts/ci/build_cpu_image.sh"], cwd=REPO_ROOT, check=False)
        if done.returncode != 0 or not _has_image(docker_engine, CPU_IMAGE):
            pytest.fail(f"could not build {CPU_IMAGE} (scripts/ci/build_cpu_image.sh exit {done.returncode})")
    return CPU_IMAGE


@pytest.fixture(scope="session")
def base_image(docker_engine: Any) -> str:
    """The bootstrapped Debian base (present wherever the CPU image was built)."""
    if not _has_image(docker_engine, BASE_IMAGE):
        _unavailable(f"{BASE_IMAGE} missing (scripts/bootstrap_base_image.sh)")
    return BASE_IMAGE


@pytest.fixture
def campaign_id(docker_engine: Any) -> Iterator[str]:
    """A campaign id unique to this test; its containers are removed afterwards."""
    cid = f"{SESSION_PREFIX}-{uuid.uuid4().hex[:6]}"
    yield cid
    remove_session_containers(docker_engine, cid)


@pytest.fixture
def scratch_containers(docker_engine: Any) -> Iterator[list[Any]]:
    """Containers a test starts by hand (append them); force-removed afterwards."""
    created: list[Any] = []
    yield created
    for container in created:
        with contextlib.suppress(Exception):  # already gone is fine
            container.remove(force=True)


def engine_problem(docker_host: str) -> str | None:
    """Why ``GET /_ping`` on ``docker_host`` fails (None when it answers). A raw socket, because a
    docker-py client built against a dead engine leaks its socket (a ResourceWarning = an error here)."""
    scheme, _, where = docker_host.partition("://")
    try:
        if scheme == "unix":
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                return _ping(sock, where)
        if scheme == "tcp":
            host, _, port = where.partition(":")
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                return _ping(sock, (host, int(port or 2375)))
    except OSError as e:
        return f"{docker_host}: {e}"
    return None  # ssh:// and others: let docker-py try


def _ping(sock: socket.socket, address: str | tuple[str, int]) -> str | None:
    sock.settimeout(5)
    sock.connect(address)
    sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
    status = sock.recv(64).split(b"\r\n", 1)[0].decode(errors="replace")
    return None if " 200 " in f"{status} " else f"/_ping answered {status!r}"


def remove_session_containers(client: Any, campaign_id: str | None = None) -> list[str]:
    """Remove containers of this session's campaigns (all of them, or one campaign's)."""
    removed = []
    for container in client.containers.list(all=True, filters={"label": "org.llenergymeasure.campaign"}):
        cid = container.labels.get("org.llenergymeasure.campaign", "")
        if cid == campaign_id or (campaign_id is None and cid.startswith(SESSION_PREFIX)):
            container.remove(force=True)
            removed.append(container.short_id)
    return removed


def _has_image(client: Any, name: str) -> bool:
    import docker.errors

    try:
        client.images.get(name)
    except docker.errors.ImageNotFound:
        return False
    return True
