"""``lem doctor``: host facts judged with a fix for each ✘, and the campaign verdict as the exit code."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from unittest import mock

from click.testing import CliRunner

from lem.cli import main
from lem.cli.doctor_cmd import DoctorDeps
from lem.doctor import facts as facts_module
from lem.doctor.checks import HostFacts, healthy, host_checks
from lem.runtime.errors import RuntimeUnavailable
from lem.runtime.images import ImageStatus
from lem_harness.contract import CONTRACT_VERSION, GpuInfo
from lem_harness.devices.base import DeviceUnavailableError
from tests.support.fake_runtime import FakeRuntime
from tests.unit.campaign.test_run_cli import CAMPAIGN_YAML

H100 = GpuInfo(
    index=0,
    uuid="GPU-1111",
    name="NVIDIA H100",
    driver_version="550.54",
    power_limit_w=700.0,
    persistence_mode=True,
    supports_energy_counter=True,
)
GOOD = HostFacts(
    docker_version="27.1.1",
    docker_runtimes=("nvidia", "runc"),
    docker_error=None,
    gpus=(H100,),
    gpu_error=None,
    images=(ImageStatus("llenergymeasure/pytorch:0.1.0", True, "sha256:ab", CONTRACT_VERSION),),
    rapl_error=None,
    page_cache_error=None,
    disk_path=Path("/data/results"),
    disk_free_bytes=500 * 10**9,
    sbatch="/usr/bin/sbatch",
)


def _table(facts: HostFacts) -> list[tuple[str, str, str, str]]:
    return [(c.status, c.name, c.found, c.fix) for c in host_checks(facts)]


def test_a_ready_gpu_host_is_all_ticks() -> None:
    rows = _table(GOOD)
    assert [(s, n) for s, n, _, _ in rows] == [
        ("ok", "Docker engine"),
        ("ok", "NVIDIA container runtime"),
        ("ok", "GPU 0"),
        ("ok", "image llenergymeasure/pytorch:0.1.0"),
        ("ok", "RAPL (CPU energy)"),
        ("ok", "page-cache drop"),
        ("ok", "free disk"),
        ("ok", "Slurm client"),
    ]
    assert rows[2][2] == (
        "NVIDIA H100 · GPU-1111 · driver 550.54 · 700 W limit · persistence on · energy counter"
    )
    assert rows[3][2] == f"contract {CONTRACT_VERSION}"
    assert rows[6][2] == "500.0 GB free on /data/results"
    assert healthy(host_checks(GOOD))


def test_a_cpu_box_without_docker_gets_a_fix_for_every_cross() -> None:
    bare = replace(
        GOOD,
        docker_version=None,
        docker_runtimes=(),
        docker_error="Docker engine unreachable: connection refused",
        gpus=(),
        gpu_error="NVML could not be initialised",
        images=(),
        rapl_error="/sys/class/powercap does not exist",
        page_cache_error="lem runs as uid 1000, not root",
        disk_free_bytes=5 * 10**9,
        sbatch=None,
    )
    rows = _table(bare)
    assert [(s, n) for s, n, _, _ in rows] == [
        ("fail", "Docker engine"),
        ("fail", "NVIDIA container runtime"),
        ("fail", "GPUs (NVML)"),
        ("fail", "images"),
        ("warn", "RAPL (CPU energy)"),
        ("warn", "page-cache drop"),
        ("warn", "free disk"),
        ("warn", "Slurm client"),
    ]
    assert all(fix for status, _, _, fix in rows if status != "ok")
    assert "--runtime local" in rows[0][3]
    assert "make demo" in rows[2][3] and "--flavour cpu" in rows[2][3]
    assert not healthy(host_checks(bare))


def test_gpu_caveats_and_image_problems() -> None:
    old = H100.model_copy(update={"index": 1, "persistence_mode": False, "supports_energy_counter": False})
    facts = replace(
        GOOD,
        docker_runtimes=("runc",),
        gpus=(H100, old),
        images=(
            ImageStatus("llenergymeasure/vllm:0.1.0", False),
            ImageStatus("llenergymeasure/pytorch:cpu", True, "sha256:cd", "0.9.0"),
        ),
    )
    rows = {n: (s, f, x) for s, n, f, x in _table(facts)}
    assert rows["NVIDIA container runtime"][0] == "fail"
    assert "nvidia-ctk runtime configure --runtime=docker" in rows["NVIDIA container runtime"][2]
    assert rows["GPU 1"][0] == "warn"
    assert rows["GPU 1"][2].startswith("sudo nvidia-smi -i 1 -pm 1")
    assert "no energy counter (power integral only)" in rows["GPU 1"][1]
    assert rows["image llenergymeasure/vllm:0.1.0"] == (
        "fail",
        "missing",
        "lem images build --backend vllm  (or: make images BACKEND=vllm)",
    )
    assert rows["image llenergymeasure/pytorch:cpu"][0:2] == (
        "fail",
        f"contract 0.9.0 ≠ host {CONTRACT_VERSION}",
    )


def test_facts_survive_each_missing_piece(tmp_path: Path) -> None:
    class NoDocker:
        def engine_facts(self) -> tuple[str, tuple[str, ...]]:
            raise RuntimeUnavailable("connection refused")

        def image_status(self, name: str) -> ImageStatus:
            raise AssertionError("not asked when the engine is down")

    with mock.patch(
        "lem_harness.devices.nvml.open_all_nvml", side_effect=DeviceUnavailableError("no driver")
    ):
        found = facts_module.gather(tmp_path / "results", docker=NoDocker())
    assert found.docker_error == "Docker engine unreachable: connection refused"
    assert (found.gpus, found.gpu_error) == ((), "no driver")
    assert found.disk_path == tmp_path / "results" and found.disk_free_bytes > 0


def test_doctor_without_a_campaign_exits_0_and_json_lists_the_checks(tmp_path: Path) -> None:
    from lem.cli.doctor_cmd import doctor

    deps = DoctorDeps(facts=lambda path: GOOD)
    result = CliRunner().invoke(doctor, ["--json"], obj=deps, catch_exceptions=False)
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert [c["name"] for c in data["checks"]][:3] == ["Docker engine", "NVIDIA container runtime", "GPU 0"]
    assert "campaign" not in data
    table = CliRunner().invoke(doctor, [], obj=deps, catch_exceptions=False)
    assert "✔ │ Docker engine" in table.stdout and "Docker 27.1.1" in table.stdout


def test_doctor_with_a_campaign_exits_by_its_preflight(tmp_path: Path) -> None:
    from lem.cli.doctor_cmd import doctor

    campaign = tmp_path / "campaign.yaml"
    campaign.write_text(CAMPAIGN_YAML)
    ready = FakeRuntime()
    deps = DoctorDeps(facts=lambda path: GOOD, runtime_factory=lambda name: ready)
    args = [str(campaign), "--results-dir", str(tmp_path / "results"), "--json"]
    result = CliRunner().invoke(doctor, args, obj=deps, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["campaign"] == {"file": str(campaign), "can_run": True, "findings": []}
    assert ready.calls == [] and not (tmp_path / "results").exists()  # nothing ran, nothing written

    missing = FakeRuntime(missing_images=["llenergymeasure/pytorch:0.1.0"])
    deps = DoctorDeps(facts=lambda path: GOOD, runtime_factory=lambda name: missing)
    result = CliRunner().invoke(doctor, args[:-1], obj=deps, catch_exceptions=False)
    assert result.exit_code == 1
    assert f"campaign {campaign}: cannot run here" in result.stdout
    assert "✘ image for pytorch: image llenergymeasure/pytorch:0.1.0 not found" in result.stdout


def test_doctor_is_a_registered_command() -> None:
    assert "doctor" in main.commands
