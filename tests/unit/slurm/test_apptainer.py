"""``slurm.launcher: apptainer``: one ``apptainer exec`` argv per run, built from its ContainerSpec."""

from __future__ import annotations

from pathlib import Path

import pytest

from lem.runtime.apptainer import ApptainerRuntime, apptainer_command, sif_name
from lem.runtime.errors import LemRuntimeError
from lem.runtime.spec import ContainerSpec, Mount


def spec(gpus: tuple[str, ...]) -> ContainerSpec:
    return ContainerSpec(
        image="llenergymeasure/pytorch:latest",
        command=("run", "--spec", "/lem/spec.json", "--out", "/lem/run"),
        run_id="r1",
        campaign_id="c1",
        backend="pytorch",
        gpu_uuids=gpus,
        mounts=(
            Mount(source="/shared/res/c/r1/spec.json", target="/lem/spec.json", kind="bind", read_only=True),
            Mount(source="/shared/res/c/r1", target="/lem/run", kind="bind", read_only=False),
            Mount(source="lem-hf-cache", target="/lem/hf", kind="volume", read_only=False),
        ),
        environment=(("NVIDIA_VISIBLE_DEVICES", ",".join(gpus) or "void"), ("HF_HOME", "/lem/hf")),
        labels=(),
        shm_size=None,
        ipc_host=False,
        ulimits=(),
    )


def test_the_command_binds_every_mount_and_passes_the_environment() -> None:
    argv = apptainer_command(spec(("GPU-a", "GPU-b")), Path("/sif/x.sif"), Path("/vol"))
    assert argv == [
        "apptainer", "exec", "--cleanenv", "--containall", "--no-home", "--nv",
        "--bind", "/shared/res/c/r1/spec.json:/lem/spec.json:ro",
        "--bind", "/shared/res/c/r1:/lem/run",
        "--bind", "/vol/lem-hf-cache:/lem/hf",
        "--env", "HF_HOME=/lem/hf",
        "--env", "CUDA_VISIBLE_DEVICES=GPU-a,GPU-b",
        "/sif/x.sif", "python3", "-m", "lem_harness", "run", "--spec", "/lem/spec.json", "--out", "/lem/run",
    ]  # fmt: skip
    assert "--nv" not in apptainer_command(spec(()), Path("/sif/x.sif"), Path("/vol"))


def test_a_missing_sif_says_how_to_build_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert sif_name("llenergymeasure/pytorch:cpu") == "llenergymeasure_pytorch_cpu.sif"
    monkeypatch.setattr("lem.runtime.apptainer.shutil.which", lambda name: "/usr/bin/apptainer")
    with pytest.raises(LemRuntimeError) as info:
        ApptainerRuntime(tmp_path).check(["llenergymeasure/pytorch:cpu"])
    assert (
        f"apptainer build {tmp_path}/llenergymeasure_pytorch_cpu.sif docker-daemon://llenergymeasure/pytorch:cpu"
        in str(info.value)
    )
    (tmp_path / "llenergymeasure_pytorch_cpu.sif").write_text("")
    ApptainerRuntime(tmp_path).check(["llenergymeasure/pytorch:cpu"])
