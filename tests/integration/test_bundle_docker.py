"""The air gap, end to end on a real engine with the CPU flavour (marker ``docker``).

Connected side: ``lem images bundle`` from the bootstrapped Debian base (under a tag of this
test's own, so that shared images are never touched) and the PyTorch CPU wheelhouse. Then the
base's test tag is removed, and the isolated side is a checkout that has ``images/`` and no
wheelhouse: ``lem images build --bundle`` verifies, loads (the tag comes back), builds with the
build's network off and without Docker's layer cache, and one experiment runs in the result.
Everything this test creates carries its own ``lem-itest-…`` name and is removed afterwards.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker.errors
import pytest
import requests

from lem.runtime.docker import DockerRuntime
from lem_harness.contract import RunResult
from tests.integration.test_docker_runtime import make_run

pytestmark = pytest.mark.docker

REPO = Path(__file__).resolve().parents[2]


@dataclass
class OwnNames:
    base_tag: str  # a test tag of the Debian base
    repository: str  # the bundle's images are built into it
    build_output: list[str] = field(default_factory=list)  # its " ---> <id>" lines name the stage images


@pytest.fixture
def own(docker_engine: Any, base_image: str) -> Iterator[OwnNames]:
    repository = f"lem-itest-{uuid.uuid4().hex[:8]}"
    names = OwnNames(f"{repository}/debian:base", repository)
    docker_engine.images.get(base_image).tag(names.base_tag)
    yield names
    for tag in (f"{repository}/pytorch:cpu", names.base_tag):  # untags only: the shared tag keeps the base
        with contextlib.suppress(docker.errors.ImageNotFound, requests.exceptions.Timeout):
            docker_engine.images.remove(tag)  # a slow engine may finish after the client gave up
    remove_untagged(docker_engine, names.build_output)


def remove_untagged(client: Any, build_output: list[str]) -> None:
    """The multi-stage build's own intermediate images (--no-cache: none is shared); never a tagged one."""
    for image_id in dict.fromkeys(re.findall(r"^ ---> ([0-9a-f]{12})$", "\n".join(build_output), re.M)):
        with contextlib.suppress(docker.errors.APIError, requests.exceptions.RequestException):
            if not client.images.get(image_id).tags:
                client.images.remove(image_id)


def lem(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lem", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        timeout=1200,
    )


def test_bundle_then_offline_build_then_one_experiment(
    tmp_path: Path,
    tiny_model_dir: Path,
    own: OwnNames,
    docker_engine: Any,
    campaign_id: str,
) -> None:
    base_tag, repository = own.base_tag, own.repository
    base_id = docker_engine.images.get(base_tag).id
    bundle = tmp_path / "lem-bundle.tar"

    made = lem(
        "images", "bundle", "--backend", "pytorch", "--flavour", "cpu", "--base-image", base_tag,
        "--out", str(bundle), cwd=REPO,
    )  # fmt: skip
    assert made.returncode == 0, made.stdout + made.stderr
    assert f"wrote {bundle}:" in made.stdout

    docker_engine.images.remove(base_tag)  # the isolated side has never seen this tag
    isolated = tmp_path / "isolated"
    shutil.copytree(
        REPO / "images", isolated / "images", ignore=shutil.ignore_patterns("__pycache__", "build")
    )
    assert not (isolated / "wheelhouse").exists()

    built = lem(
        "images", "build", "--bundle", str(bundle), "--repository", repository, "--no-cache", cwd=isolated
    )  # fmt: skip
    output = built.stdout + built.stderr
    own.build_output.append(output)
    assert built.returncode == 0, output
    assert "files verified" in output and "(network: none)" in output
    assert f"built {repository}/pytorch:cpu" in output
    assert docker_engine.images.get(base_tag).id == base_id  # docker load restored the recorded base
    assert not list(tmp_path.glob(".lem-bundle-*"))  # the unpacked bundle is gone
    image = f"{repository}/pytorch:cpu"
    labels = docker_engine.images.get(image).labels
    assert labels["org.llenergymeasure.flavour"] == "cpu"

    spec = make_run(tmp_path, tiny_model_dir, image, campaign_id)
    outcome = DockerRuntime().run(spec, threading.Event())

    assert (outcome.status, outcome.exit_code) == ("ok", 0), outcome
    result = RunResult.model_validate_json((Path(str(spec.run_dir())) / "result.json").read_text())
    assert result.metrics is not None and result.metrics.output_tokens == 32  # 4 prompts x 8 tokens


def test_a_corrupted_bundle_is_refused_before_docker_loads_anything(
    tmp_path: Path, docker_engine: Any
) -> None:
    bundle = tmp_path / "b.tar"
    bundle.write_bytes(b"\0" * 1024)  # two empty tar blocks: a valid, empty archive
    refused = lem("images", "build", "--bundle", str(bundle), cwd=REPO)
    assert refused.returncode == 1
    assert "is not a lem bundle: it does not start with manifest.json" in refused.stderr
    assert "Traceback" not in refused.stderr
