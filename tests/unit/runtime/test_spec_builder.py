"""build_container_spec: the exact ContainerSpec per backend, and every refusal with its key."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from lem.runtime.errors import SpecError
from lem.runtime.process import ProcessId
from lem.runtime.spec import ContainerSpec, Mount
from lem.runtime.spec_builder import RunPaths, build_container_spec, container_cache_dirs
from lem_harness.experiment import ExperimentConfig

INVENTORY = {0: "GPU-aaaa", 1: "GPU-bbbb", 2: "GPU-cccc"}
IMAGE = "llenergymeasure/pytorch:0.1.0"


@dataclass(frozen=True)
class Planned:
    run_id: str
    backend: str


@pytest.fixture
def roots(tmp_path: Path) -> RunPaths:
    project = tmp_path / "project"
    results = tmp_path / "results"
    run_dir = results / "camp" / "r-c01"
    run_dir.mkdir(parents=True)
    (project / "models" / "tiny").mkdir(parents=True)
    return RunPaths(run_dir=run_dir, results_root=results, project_root=project)


def _base_mounts(paths: RunPaths) -> tuple[Mount, ...]:
    run = str(paths.run_dir)
    return (
        Mount(f"{run}/spec.json", "/lem/spec.json", read_only=True, kind="bind"),
        Mount(run, "/lem/run", read_only=False, kind="bind"),
        Mount(f"{paths.results_root}/.baseline-cache", "/lem/cache/baseline", read_only=False, kind="bind"),
        Mount("lem-hf-cache", "/lem/cache/hf", read_only=False, kind="volume"),
    )


def _labels(run_id: str) -> tuple[tuple[str, str], ...]:
    return (
        ("org.llenergymeasure.campaign", "camp-1234"),
        ("org.llenergymeasure.managed", "true"),
        ("org.llenergymeasure.run", run_id),
    )


def test_pytorch_spec_is_exact(roots: RunPaths) -> None:
    cfg = ExperimentConfig(
        model_name="org/model",
        backend="pytorch",
        gpus=(1,),
        docker={"shm_size": "16g", "env": ["FOO", "ABSENT"]},
    )
    host_env = {"HF_TOKEN": "hf_secret", "FOO": "bar", "UNLISTED": "x"}

    spec = build_container_spec(
        Planned("r-c01", "pytorch"),
        cfg,
        roots,
        image=IMAGE,
        campaign_id="camp-1234",
        gpu_uuids_by_index=INVENTORY,
        host_env=host_env,
        timeout_s=900.0,
    )

    assert spec == ContainerSpec(
        image=IMAGE,
        command=("run", "--spec", "/lem/spec.json", "--out", "/lem/run"),
        run_id="r-c01",
        campaign_id="camp-1234",
        backend="pytorch",
        gpu_uuids=("GPU-bbbb",),
        mounts=_base_mounts(roots),
        environment=(
            ("NVIDIA_DRIVER_CAPABILITIES", "compute,utility"),
            ("NVIDIA_VISIBLE_DEVICES", "GPU-bbbb"),
            ("HF_HOME", "/lem/cache/hf"),
            ("HF_TOKEN", "hf_secret"),
            ("FOO", "bar"),
        ),
        labels=_labels("r-c01"),
        shm_size="16g",
        ipc_host=False,
        ulimits=(),
        mem_limit=None,
        timeout_s=900.0,
        log_path=f"{roots.run_dir}/container.log",
    )


def test_vllm_uses_private_ipc_and_gpus_in_config_order(roots: RunPaths) -> None:
    cfg = ExperimentConfig(
        model_name="org/model", backend="vllm", gpus=(2, 0), vllm={"tensor_parallel_size": 2}
    )

    spec = build_container_spec(
        Planned("r-c01", "vllm"),
        cfg,
        roots,
        image="llenergymeasure/vllm:0.1.0",
        campaign_id="camp-1234",
        gpu_uuids_by_index=INVENTORY,
    )

    assert (spec.gpu_uuids, spec.ipc_host, spec.shm_size, spec.ulimits, spec.cap_add) == (
        ("GPU-cccc", "GPU-aaaa"),
        False,  # private IPC with a sized /dev/shm unless docker.ipc: host
        "8g",
        (),
        ("SYS_NICE",),
    )
    assert spec.mounts == _base_mounts(roots)
    assert dict(spec.environment)["NVIDIA_VISIBLE_DEVICES"] == "GPU-cccc,GPU-aaaa"
    assert "HF_TOKEN" not in dict(spec.environment)


def test_tensorrt_gets_memlock_stack_and_engine_cache(roots: RunPaths) -> None:
    cfg = ExperimentConfig(model_name="org/model", backend="tensorrt", gpus=(0,))

    spec = build_container_spec(
        Planned("r-c01", "tensorrt"),
        cfg,
        roots,
        image="llenergymeasure/tensorrt:0.1.0",
        campaign_id="camp-1234",
        gpu_uuids_by_index=INVENTORY,
    )

    assert spec.ulimits == (("memlock", -1, -1), ("stack", 67_108_864, 67_108_864))
    assert (spec.ipc_host, spec.shm_size, spec.cap_add) == (False, "8g", ())
    assert spec.mounts == (*_base_mounts(roots), Mount("lem-trt-engines", "/lem/cache/trt", False, "volume"))


def test_simulated_device_requests_no_gpu_and_voids_visibility(roots: RunPaths) -> None:
    cfg = ExperimentConfig(model_name="org/model", gpus=(0,), measurement={"device": "simulated"})

    spec = build_container_spec(
        Planned("r-c01", "pytorch"),
        cfg,
        roots,
        image=IMAGE,
        campaign_id="camp-1234",
        gpu_uuids_by_index=INVENTORY,
    )

    assert spec.gpu_uuids == ()
    assert dict(spec.environment)["NVIDIA_VISIBLE_DEVICES"] == "void"


def test_auto_device_on_a_host_without_gpus_requests_none(roots: RunPaths) -> None:
    spec = build_container_spec(
        Planned("r-c01", "pytorch"),
        ExperimentConfig(model_name="org/model"),
        roots,
        image=IMAGE,
        campaign_id="c",
    )
    assert spec.gpu_uuids == ()


def test_local_model_and_dataset_are_mounted_read_only_at_their_own_path(roots: RunPaths) -> None:
    model = roots.project_root / "models" / "tiny"
    prompts = roots.project_root / "prompts.jsonl"
    prompts.write_text('{"prompt": "hi"}\n')
    cfg = ExperimentConfig(
        model_name=str(model),
        prompts={"type": "file", "path": str(prompts)},
        measurement={"device": "simulated"},
    )

    spec = build_container_spec(Planned("r-c01", "pytorch"), cfg, roots, image=IMAGE, campaign_id="camp-1234")

    assert spec.mounts[4:] == (
        Mount(str(model), str(model), read_only=True, kind="bind"),
        Mount(str(prompts), str(prompts), read_only=True, kind="bind"),
    )


def test_a_local_adapter_and_draft_model_are_mounted_and_must_exist(roots: RunPaths) -> None:
    adapter, draft = roots.project_root / "lora", roots.project_root / "models" / "draft"
    adapter.mkdir()
    draft.mkdir()
    cfg = ExperimentConfig.model_validate(
        {
            "model_name": "org/model",
            "adapter": str(adapter),
            "pytorch": {"assisted_generation": {"model": str(draft)}},
            "measurement": {"device": "simulated"},
        }
    )
    spec = build_container_spec(Planned("r-c01", "pytorch"), cfg, roots, image=IMAGE, campaign_id="camp-1234")
    assert spec.mounts[4:] == (
        Mount(str(adapter), str(adapter), read_only=True, kind="bind"),
        Mount(str(draft), str(draft), read_only=True, kind="bind"),
    )
    draft.rmdir()
    with pytest.raises(SpecError) as info:
        build_container_spec(Planned("r-c01", "pytorch"), cfg, roots, image=IMAGE, campaign_id="camp-1234")
    assert info.value.key == "pytorch.assisted_generation.model"
    assert f"{draft} does not exist" in str(info.value)


def test_every_writable_bind_mount_lies_inside_the_results_root(roots: RunPaths) -> None:
    cfg = ExperimentConfig(
        model_name=str(roots.project_root / "models" / "tiny"), measurement={"device": "simulated"}
    )
    spec = build_container_spec(Planned("r-c01", "pytorch"), cfg, roots, image=IMAGE, campaign_id="c")
    writable = [m.source for m in spec.mounts if m.kind == "bind" and not m.read_only]
    assert writable == [str(roots.run_dir), f"{roots.results_root}/.baseline-cache"]


def test_hf_token_never_appears_in_the_spec_repr(roots: RunPaths) -> None:
    spec = build_container_spec(
        Planned("r-c01", "pytorch"),
        ExperimentConfig(model_name="org/model"),
        roots,
        image=IMAGE,
        campaign_id="c",
        host_env={"HF_TOKEN": "hf_topsecret"},
    )
    assert "hf_topsecret" not in repr(spec)
    assert spec.secret_values() == ("hf_topsecret",)


def test_cache_dirs_for_the_run_spec() -> None:
    assert container_cache_dirs("pytorch") == {
        "baseline_cache_dir": "/lem/cache/baseline",
        "engine_cache_dir": None,
    }
    assert container_cache_dirs("tensorrt") == {
        "baseline_cache_dir": "/lem/cache/baseline",
        "engine_cache_dir": "/lem/cache/trt",
    }


@pytest.mark.parametrize(
    ("cfg_kwargs", "key", "fragment"),
    [
        ({"model_name": "/etc"}, "model_name", "outside the allowed roots"),
        ({"model_name": "./models/tiny"}, "model_name", "relative path"),
        ({"prompts": {"type": "file", "path": "prompts.jsonl"}}, "prompts.path", "relative path"),
        ({"gpus": (5,)}, "gpus", "GPU index 5 not found on this host (found: 0, 1, 2)"),
        (
            {"docker": {"env": ["CUDA_VISIBLE_DEVICES"]}},
            "docker.env",
            "CUDA_VISIBLE_DEVICES is set by lem itself",
        ),
        ({"backend": "vllm"}, "backend", "planned for pytorch but its config says vllm"),
    ],
)
def test_refusals_name_the_key(
    roots: RunPaths, cfg_kwargs: dict[str, object], key: str, fragment: str
) -> None:
    cfg = ExperimentConfig.model_validate({"model_name": "org/model", **cfg_kwargs})
    with pytest.raises(SpecError) as info:
        build_container_spec(
            Planned("r-c01", "pytorch"),
            cfg,
            roots,
            image=IMAGE,
            campaign_id="c",
            gpu_uuids_by_index=INVENTORY,
        )
    assert info.value.key == key
    assert fragment in str(info.value)


def test_missing_local_model_is_refused(roots: RunPaths) -> None:
    cfg = ExperimentConfig(model_name=str(roots.project_root / "models" / "absent"))
    with pytest.raises(SpecError, match="does not exist"):
        build_container_spec(Planned("r-c01", "pytorch"), cfg, roots, image=IMAGE, campaign_id="c")


def test_nvml_without_gpus_is_refused(roots: RunPaths) -> None:
    cfg = ExperimentConfig(model_name="org/model", measurement={"device": "nvml"})
    with pytest.raises(SpecError, match="no NVIDIA GPU was found"):
        build_container_spec(Planned("r-c01", "pytorch"), cfg, roots, image=IMAGE, campaign_id="c")


def test_run_dir_outside_results_root_is_refused(tmp_path: Path, roots: RunPaths) -> None:
    escaped = RunPaths(
        run_dir=tmp_path / "elsewhere", results_root=roots.results_root, project_root=roots.project_root
    )
    with pytest.raises(SpecError, match="run directory"):
        build_container_spec(
            Planned("r-c01", "pytorch"),
            ExperimentConfig(model_name="m/m"),
            escaped,
            image=IMAGE,
            campaign_id="c",
        )


def test_symlink_escaping_the_project_is_refused(tmp_path: Path, roots: RunPaths) -> None:
    outside = tmp_path / "outside-model"
    outside.mkdir()
    link = roots.project_root / "models" / "link"
    link.symlink_to(outside)
    with pytest.raises(SpecError, match="outside the allowed roots"):
        build_container_spec(
            Planned("r-c01", "pytorch"),
            ExperimentConfig(model_name=str(link)),
            roots,
            image=IMAGE,
            campaign_id="c",
        )


def test_capabilities_and_host_ipc_are_added_only_where_the_config_needs_them(roots: RunPaths) -> None:
    def spec_of(**cfg: object) -> tuple[bool, str | None, tuple[str, ...]]:
        spec = build_container_spec(
            Planned("r-c01", str(cfg.get("backend", "pytorch"))),
            ExperimentConfig(model_name="org/model", gpus=(0, 1), **cfg),
            roots,
            image="img",
            campaign_id="camp-1234",
            gpu_uuids_by_index=INVENTORY,
        )
        return spec.ipc_host, spec.shm_size, spec.cap_add

    assert spec_of(backend="tensorrt", tensorrt={"tp_size": 2}) == (False, "8g", ("SYS_PTRACE",))
    assert spec_of(backend="vllm", docker={"ipc": "host", "shm_size": "2g"}) == (True, None, ("SYS_NICE",))
    assert spec_of(backend="pytorch", docker={"shm_size": "512m"}) == (False, "512m", ())


def test_labels_carry_the_lem_process_and_its_uid(roots: RunPaths) -> None:
    owner = ProcessId("host-a", 4242, 987654, 1001)
    spec = build_container_spec(
        Planned("r-c01", "pytorch"),
        ExperimentConfig(model_name="org/model", measurement={"device": "simulated"}),
        roots,
        image="img",
        campaign_id="camp-1234",
        owner=owner,
    )
    assert dict(spec.labels) == {
        "org.llenergymeasure.campaign": "camp-1234",
        "org.llenergymeasure.managed": "true",
        "org.llenergymeasure.run": "r-c01",
        "org.llenergymeasure.owner": "host-a:4242:987654",
        "org.llenergymeasure.uid": "1001",
    }
