"""ContainerSpec → the exact ``containers.run`` keyword arguments, per backend (no engine)."""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from lem.runtime.docker import DockerRuntime, container_kwargs
from lem.runtime.spec_builder import RunPaths, build_container_spec
from lem_harness.experiment import ExperimentConfig
from tests.unit.runtime.fake_docker import FakeClient, FakeContainer, write_result

INVENTORY = {0: "GPU-aaaa", 1: "GPU-bbbb"}


@dataclass(frozen=True)
class Planned:
    run_id: str
    backend: str


@pytest.fixture
def paths(tmp_path: Path) -> RunPaths:
    run_dir = tmp_path / "results" / "camp" / "r-c01"
    run_dir.mkdir(parents=True)
    (run_dir / "spec.json").write_text("{}")
    return RunPaths(run_dir=run_dir, results_root=tmp_path / "results", project_root=tmp_path)


def _spec_for(backend: str, paths: RunPaths, **cfg: Any):  # type: ignore[no-untyped-def]
    config = ExperimentConfig.model_validate({"model_name": "org/model", "backend": backend, **cfg})
    return build_container_spec(
        Planned("r-c01", backend),
        config,
        paths,
        image=f"llenergymeasure/{backend}:0.1.0",
        campaign_id="camp",
        gpu_uuids_by_index=INVENTORY,
        host_env={"HF_TOKEN": "hf_x"},
        timeout_s=60.0,
    )


def _common(paths: RunPaths, backend: str, gpus: str) -> dict[str, Any]:
    run = str(paths.run_dir)
    return {
        "image": f"llenergymeasure/{backend}:0.1.0",
        "command": ["run", "--spec", "/lem/spec.json", "--out", "/lem/run"],
        "detach": True,
        "init": True,
        "privileged": False,
        "security_opt": ["no-new-privileges:true"],
        "cap_drop": ["ALL"],
        "stop_signal": "SIGTERM",
        "labels": {
            "org.llenergymeasure.campaign": "camp",
            "org.llenergymeasure.managed": "true",
            "org.llenergymeasure.run": "r-c01",
        },
        "environment": {
            "NVIDIA_DRIVER_CAPABILITIES": "compute,utility",
            "NVIDIA_VISIBLE_DEVICES": gpus,
            "HF_HOME": "/lem/cache/hf",
            "HF_TOKEN": "hf_x",
        },
        "mounts": [
            {"Target": "/lem/spec.json", "Source": f"{run}/spec.json", "Type": "bind", "ReadOnly": True},
            {"Target": "/lem/run", "Source": run, "Type": "bind", "ReadOnly": False},
            {
                "Target": "/lem/cache/baseline",
                "Source": f"{paths.results_root}/.baseline-cache",
                "Type": "bind",
                "ReadOnly": False,
            },
            {"Target": "/lem/cache/hf", "Source": "lem-hf-cache", "Type": "volume", "ReadOnly": False},
        ],
    }


def test_pytorch_kwargs(paths: RunPaths) -> None:
    kwargs = container_kwargs(_spec_for("pytorch", paths, gpus=(0,)), user="1000:1000")

    assert kwargs == {
        **_common(paths, "pytorch", "GPU-aaaa"),
        "ipc_mode": "private",
        "shm_size": "8g",
        "device_requests": [
            {"Driver": "", "Count": 0, "DeviceIDs": ["GPU-aaaa"], "Capabilities": [["gpu"]], "Options": {}}
        ],
        "user": "1000:1000",
    }


def test_vllm_kwargs(paths: RunPaths) -> None:
    kwargs = container_kwargs(_spec_for("vllm", paths, gpus=(1, 0), vllm={"tensor_parallel_size": 2}))

    assert kwargs == {
        **_common(paths, "vllm", "GPU-bbbb,GPU-aaaa"),
        "ipc_mode": "private",
        "shm_size": "8g",
        "cap_add": ["SYS_NICE"],
        "device_requests": [
            {
                "Driver": "",
                "Count": 0,
                "DeviceIDs": ["GPU-bbbb", "GPU-aaaa"],
                "Capabilities": [["gpu"]],
                "Options": {},
            }
        ],
    }


def test_tensorrt_kwargs(paths: RunPaths) -> None:
    kwargs = container_kwargs(_spec_for("tensorrt", paths, gpus=(0,)))

    common = _common(paths, "tensorrt", "GPU-aaaa")
    common["mounts"].append(
        {"Target": "/lem/cache/trt", "Source": "lem-trt-engines", "Type": "volume", "ReadOnly": False}
    )
    assert kwargs == {
        **common,
        "ipc_mode": "private",
        "shm_size": "8g",
        "ulimits": [
            {"Name": "memlock", "Soft": -1, "Hard": -1},
            {"Name": "stack", "Soft": 67108864, "Hard": 67108864},
        ],
        "device_requests": [
            {"Driver": "", "Count": 0, "DeviceIDs": ["GPU-aaaa"], "Capabilities": [["gpu"]], "Options": {}}
        ],
    }


def test_simulated_cpu_run_has_no_device_request_and_a_memory_cap(paths: RunPaths) -> None:
    config = ExperimentConfig(model_name="org/model", measurement={"device": "simulated"})
    spec = build_container_spec(
        Planned("r-c01", "pytorch"),
        config,
        paths,
        image="llenergymeasure/pytorch:cpu",
        campaign_id="camp",
        mem_limit="512m",
    )

    kwargs = container_kwargs(spec)

    assert "device_requests" not in kwargs
    assert kwargs["environment"]["NVIDIA_VISIBLE_DEVICES"] == "void"
    assert (kwargs["mem_limit"], kwargs["memswap_limit"]) == ("512m", "512m")


@pytest.mark.parametrize("backend", ["pytorch", "vllm", "tensorrt"])
def test_no_backend_gets_privileges(paths: RunPaths, backend: str) -> None:
    kwargs = container_kwargs(_spec_for(backend, paths, gpus=(0,)))
    assert kwargs["privileged"] is False
    assert kwargs["cap_drop"] == ["ALL"]
    assert kwargs.get("cap_add") == (["SYS_NICE"] if backend == "vllm" else None)  # documented, one each
    assert "devices" not in kwargs
    assert "network_mode" not in kwargs
    assert "pid_mode" not in kwargs


def test_run_hands_exactly_these_kwargs_to_the_sdk(paths: RunPaths) -> None:
    spec = _spec_for("pytorch", paths, gpus=(0,))
    client = FakeClient(images=(spec.image,))
    client.containers.script = [FakeContainer(harness=lambda: write_result(paths.run_dir, "r-c01"))]

    outcome = DockerRuntime(client, user="1000:1000").run(spec, threading.Event())

    assert outcome.status == "ok"
    # the container takes the host's name, so its result records the node it ran on (Slurm campaigns)
    assert client.containers.run_kwargs == [
        container_kwargs(spec, user="1000:1000", hostname=socket.gethostname())
    ]
    assert client.containers.run_kwargs[0]["hostname"] == socket.gethostname()
    assert "hostname" not in container_kwargs(spec)


def test_host_ipc_and_capabilities_only_when_asked(paths: RunPaths) -> None:
    spec = _spec_for("vllm", paths, gpus=(0,), docker={"ipc": "host"})
    kwargs = container_kwargs(replace(spec, cap_add=("SYS_PTRACE",)))
    assert (kwargs["ipc_mode"], "shm_size" in kwargs) == ("host", False)
    assert (kwargs["cap_drop"], kwargs["cap_add"]) == (["ALL"], ["SYS_PTRACE"])
