"""Image names, build plans, the hand-made build context, and the `lem images` / `lem cleanup` commands."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from lem.campaign.liveness import LiveCampaign
from lem.cli import main
from lem.runtime import docker as docker_runtime
from lem.runtime.errors import LemRuntimeError
from lem.runtime.images import (
    ImageStatus,
    build_backend_image,
    find_repo_root,
    image_name,
    image_problem,
    lem_version,
    plan_build,
    write_context,
)
from tests.unit.runtime.fake_docker import FakeClient, FakeContainer, FakeImage

REPO = Path(__file__).resolve().parents[3]
CPU = "llenergymeasure/pytorch:cpu"
MANAGED = "org.llenergymeasure.managed"
CAMPAIGN = "org.llenergymeasure.campaign"


def test_image_names() -> None:
    assert image_name("pytorch", "cpu") == "llenergymeasure/pytorch:cpu"
    assert image_name("vllm", "gpu", "1.2.3") == "llenergymeasure/vllm:1.2.3"
    assert image_name("tensorrt") == f"llenergymeasure/tensorrt:{lem_version()}"


def test_cpu_plan_is_offline_from_its_own_wheelhouse() -> None:
    plan = plan_build("pytorch", "cpu")

    assert (plan.tag, plan.dockerfile, plan.wheelhouse, plan.offline) == (
        "llenergymeasure/pytorch:cpu",
        "images/pytorch/Dockerfile.cpu",
        "wheelhouse/pytorch-cpu",
        True,
    )
    assert plan.buildargs == (
        ("CONTRACT_VERSION", "2.0.0"),
        ("LEM_VERSION", lem_version()),
        ("WHEELHOUSE", "wheelhouse/pytorch-cpu"),
    )


def test_gpu_plan_passes_offline_and_base_image() -> None:
    plan = plan_build("vllm", offline=True, base_image="vllm/vllm-openai:v0.0.0")

    assert plan.dockerfile == "images/vllm/Dockerfile"
    assert dict(plan.buildargs) == {
        "BASE_IMAGE": "vllm/vllm-openai:v0.0.0",
        "CONTRACT_VERSION": "2.0.0",
        "LEM_VERSION": lem_version(),
        "OFFLINE": "1",
        "WHEELHOUSE": "wheelhouse/vllm",
    }


@pytest.mark.parametrize(
    ("backend", "flavour", "fragment"),
    [("tensorrt", "cpu", "pytorch and vllm only"), ("jax", "gpu", "unknown")],
)
def test_impossible_plans_are_refused(backend: str, flavour: Any, fragment: str) -> None:
    with pytest.raises(LemRuntimeError, match=fragment):
        plan_build(backend, flavour)


def _fake_repo(root: Path) -> Path:
    for rel, text in {
        "images/pytorch/Dockerfile.cpu": "FROM scratch\n",
        "images/pytorch/requirements-cpu.txt": "torch\n",
        "images/harness/pyproject.toml": "[project]\n",
        "images/harness/lem_harness/__init__.py": "",
        "images/harness/lem_harness/__pycache__/x.cpython-311.pyc": "junk",
        "images/harness/lem_harness.egg-info/PKG-INFO": "junk",
        "images/vllm/Dockerfile": "FROM scratch\n",
        "wheelhouse/pytorch-cpu/torch-2.13.0-cp311.whl": "wheel",
        "wheelhouse/pytorch-cpu/.requirements.sha256": "stamp",
        "wheelhouse/pytorch-cpu/harness/lem_harness-0.1.0-py3-none-any.whl": "kept out of the context",
        "wheelhouse/vllm/vllm-0.1.whl": "wheel",
        ".venv/bin/python": "junk",
        "results/run/result.json": "{}",
    }.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def test_context_holds_exactly_what_the_dockerfile_copies(tmp_path: Path) -> None:
    repo = _fake_repo(tmp_path)
    buffer = io.BytesIO()

    count = write_context(repo, plan_build("pytorch", "cpu"), buffer)

    buffer.seek(0)
    with tarfile.open(fileobj=buffer) as tar:
        names = sorted(m.name for m in tar.getmembers() if m.isfile())
    assert names == [
        "images/harness/lem_harness/__init__.py",
        "images/harness/pyproject.toml",
        "images/pytorch/Dockerfile.cpu",
        "images/pytorch/requirements-cpu.txt",
        "wheelhouse/pytorch-cpu/torch-2.13.0-cp311.whl",
    ]
    assert count == 5


def test_an_online_build_without_wheelhouse_still_gets_the_folder(tmp_path: Path) -> None:
    repo = _fake_repo(tmp_path)
    (repo / "images/tensorrt").mkdir()
    (repo / "images/tensorrt/Dockerfile").write_text("FROM scratch\n")
    buffer = io.BytesIO()

    write_context(repo, plan_build("tensorrt"), buffer)

    buffer.seek(0)
    with tarfile.open(fileobj=buffer) as tar:
        assert tar.getmember("wheelhouse/tensorrt").isdir()


def test_offline_build_without_wheels_says_how_to_collect_them(tmp_path: Path) -> None:
    repo = _fake_repo(tmp_path)
    (repo / "images/tensorrt").mkdir()
    (repo / "images/tensorrt/Dockerfile").write_text("FROM scratch\n")

    with pytest.raises(LemRuntimeError, match=r"scripts/build_wheelhouse\.sh tensorrt"):
        build_backend_image(object(), repo, plan_build("tensorrt", offline=True), print)  # type: ignore[arg-type]


class RecordingBuilder:
    def __init__(self) -> None:
        self.contexts: list[bytes] = []

    def build_image(self, build: Any, context: Any, on_line: Any) -> str:
        self.contexts.append(context.read())
        on_line("Step 1/1 : FROM scratch")
        return "sha256:feed"


def test_build_backend_image_sends_the_context(tmp_path: Path) -> None:
    repo = _fake_repo(tmp_path)
    builder = RecordingBuilder()
    lines: list[str] = []

    image_id = build_backend_image(builder, repo, plan_build("pytorch", "cpu"), lines.append)

    assert image_id == "sha256:feed"
    assert len(builder.contexts) == 1 and len(builder.contexts[0]) > 0
    assert lines[0].startswith("[lem] build context: 5 files")
    assert lines[1] == "Step 1/1 : FROM scratch"


def test_image_problems() -> None:
    name = "llenergymeasure/pytorch:cpu"
    assert image_problem(ImageStatus(name, True, "id", "2.4.2")) is None
    assert image_problem(ImageStatus(name, True, "id", "1.0.0")) == "contract 1.0.0 ≠ host 2.0.0: rebuild it"
    assert "lem images build --backend pytorch --flavour cpu" in str(image_problem(ImageStatus(name, False)))
    assert str(image_problem(ImageStatus(name, True, "id", None))).startswith(
        "no org.llenergymeasure.contract label"
    )


def test_find_repo_root_from_a_subdirectory() -> None:
    assert find_repo_root(REPO / "images" / "pytorch") == REPO


# --------------------------------------------------------------------------- CLI


@pytest.fixture
def fake_client(monkeypatch: pytest.MonkeyPatch) -> FakeClient:
    client = FakeClient(images=())
    real = docker_runtime.DockerRuntime
    monkeypatch.setattr(docker_runtime, "DockerRuntime", lambda: real(client, retry_wait_s=0.0))
    return client


def test_images_check_exit_status(fake_client: FakeClient) -> None:
    check = ["images", "check", "--flavour", "cpu"]
    result = CliRunner().invoke(main, check)
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        f"✗ {CPU}: missing: lem images build --backend pytorch --flavour cpu --offline  "
        "(or: make images BACKEND=pytorch FLAVOUR=cpu OFFLINE=1)",
        "✗ llenergymeasure/vllm:cpu: missing: lem images build --backend vllm --flavour cpu --offline  "
        "(or: make images BACKEND=vllm FLAVOUR=cpu OFFLINE=1)",
    ]

    fake_client.images.images[CPU] = FakeImage(CPU, "2.0.0")
    result = CliRunner().invoke(main, [*check, "--backend", "pytorch"])
    assert (result.exit_code, result.output) == (0, f"✓ {CPU}: ok (contract 2.0.0)\n")


def test_images_list(fake_client: FakeClient) -> None:
    fake_client.images.images["llenergymeasure/vllm:0.1.0"] = FakeImage("llenergymeasure/vllm:0.1.0", "2.0.0")

    result = CliRunner().invoke(main, ["images", "list"])

    assert result.exit_code == 0
    assert result.output.startswith("llenergymeasure/vllm:0.1.0")
    assert "contract 2.0.0" in result.output


def test_cleanup_spares_live_campaigns(
    fake_client: FakeClient, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("LEM_STATE_DIR", str(tmp_path))
    dead = FakeContainer(labels={MANAGED: "true", CAMPAIGN: "old"})
    live = FakeContainer(labels={MANAGED: "true", CAMPAIGN: "now"})
    fake_client.containers.existing = [dead, live]

    with LiveCampaign(tmp_path / "live", "now"):  # "now" is running in another lem process
        result = CliRunner().invoke(main, ["cleanup"])

    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        f"removed {dead.short_id} (campaign old, run None)",
        "1 orphan container(s) removed; spared 1 running campaign(s)",
    ]
    assert (dead.calls, live.calls) == (["remove(force=True)"], [])
