"""DockerRuntime against a real engine and the real harness in the PyTorch CPU image.

The tiny model is mounted read-only, the simulated device stands in for the GPU, and every
result is read back from the run directory mounted into the container.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from lem.campaign.plan import PlannedRun
from lem.runtime.docker import DockerRuntime
from lem.runtime.spec import LABEL_CAMPAIGN, LABEL_MANAGED, LABEL_RUN, ContainerSpec, RunOutcome
from lem.runtime.spec_builder import RunPaths, build_container_spec, container_cache_dirs
from lem_harness.contract import TIMELINE_COLUMNS, RunResult, RunSpec, config_hash
from lem_harness.experiment import ExperimentConfig
from lem_harness.fileio import atomic_write_text

pytestmark = pytest.mark.docker

REPO_ROOT = Path(__file__).resolve().parents[2]
RUN_ID = "tiny-c01"
TINY = {
    "backend": "pytorch",
    "fp_precision": "float32",
    "max_input_tokens": 32,
    "min_output_tokens": 8,
    "max_output_tokens": 8,
    "prompts": {"type": "synthetic", "sample_size": 4, "input_len": 16},
    "warmup": {"mode": "fixed", "min_prompts": 1, "max_prompts": 2},
    "baseline": {"duration_seconds": 1.0},
    "timeseries": {"sample_rate_hz": 10.0},
    "measurement": {"device": "simulated"},
    "pytorch": {"batch_size": 2},
}


def make_run(
    tmp_path: Path,
    model_dir: Path,
    image: str,
    campaign_id: str,
    *,
    timeout_s: float = 240.0,
    mem_limit: str | None = None,
    **overrides: Any,
) -> ContainerSpec:
    """Write a run's spec.json under tmp_path/results and return its ContainerSpec."""
    cfg = ExperimentConfig.model_validate({"model_name": str(model_dir), **TINY, **overrides})
    results = tmp_path / "results"
    run_dir = results / campaign_id / RUN_ID
    run_dir.mkdir(parents=True)
    spec = RunSpec(
        run_id=RUN_ID,
        campaign_id=campaign_id,
        config_id=config_hash(cfg),
        config_name="tiny",
        cycle=1,
        config=cfg,
        **container_cache_dirs("pytorch"),
    )
    atomic_write_text(run_dir / "spec.json", spec.model_dump_json(indent=2))
    planned = PlannedRun(
        run_id=RUN_ID,
        cycle=1,
        position=1,
        config_id=spec.config_id,
        name="tiny",
        backend="pytorch",
        axis_values={},
        gap_before_s=0.0,
        gap_kind="none",
    )
    paths = RunPaths(run_dir=run_dir, results_root=results, project_root=REPO_ROOT, extra_roots=(model_dir,))
    return build_container_spec(
        planned, cfg, paths, image=image, campaign_id=campaign_id, timeout_s=timeout_s, mem_limit=mem_limit
    )


def ours(client: Any, campaign_id: str) -> list[Any]:
    return list(client.containers.list(all=True, filters={"label": f"{LABEL_CAMPAIGN}={campaign_id}"}))


def run_in_background(
    spec: ContainerSpec, stop: threading.Event
) -> tuple[threading.Thread, list[RunOutcome]]:
    outcomes: list[RunOutcome] = []
    thread = threading.Thread(target=lambda: outcomes.append(DockerRuntime().run(spec, stop)))
    thread.start()
    return thread, outcomes


def wait_for_log(spec: ContainerSpec, text: str, timeout_s: float = 120.0) -> None:
    """Block until the run's container.log shows ``text`` (the harness reached that point)."""
    deadline = time.monotonic() + timeout_s
    log = Path(str(spec.log_path))
    while time.monotonic() < deadline:
        if log.exists() and text in log.read_text():
            return
        time.sleep(0.2)
    raise AssertionError(f"{text!r} never appeared in {log}")


def test_real_harness_run_writes_its_result_to_the_mounted_run_dir(
    tmp_path: Path, tiny_model_dir: Path, pytorch_cpu_image: str, campaign_id: str, docker_engine: Any
) -> None:
    spec = make_run(tmp_path, tiny_model_dir, pytorch_cpu_image, campaign_id)
    run_dir = Path(str(spec.run_dir()))

    outcome = DockerRuntime().run(spec, threading.Event())

    assert (outcome.status, outcome.exit_code) == ("ok", 0), outcome
    result = RunResult.model_validate_json((run_dir / "result.json").read_text())
    assert (result.run_id, result.campaign_id, result.status) == (RUN_ID, campaign_id, "ok")
    assert result.metrics is not None and result.metrics.output_tokens == 32  # 4 prompts x 8 tokens
    assert result.energy is not None and result.energy.energy_source == "simulated"
    assert result.provenance is not None and result.provenance.device_kind == "simulated"
    assert (run_dir / "timeline.csv").read_text().splitlines()[0] == ",".join(TIMELINE_COLUMNS)
    assert "measure:" in (run_dir / "container.log").read_text()
    assert (run_dir / "result.json").stat().st_uid == os.getuid()  # written as the caller, not as root
    assert any((tmp_path / "results" / ".baseline-cache").iterdir())  # the baseline cache mount is writable
    assert ours(docker_engine, campaign_id) == []  # removed after its logs were saved


def test_timeout_kills_the_container(
    tmp_path: Path, tiny_model_dir: Path, pytorch_cpu_image: str, campaign_id: str, docker_engine: Any
) -> None:
    spec = make_run(
        tmp_path,
        tiny_model_dir,
        pytorch_cpu_image,
        campaign_id,
        timeout_s=6.0,
        baseline={"duration_seconds": 300.0, "method": "fresh"},
    )

    outcome = DockerRuntime().run(spec, threading.Event())

    assert outcome.status == "timeout"
    assert 6.0 <= outcome.duration_s < 40.0
    assert not (Path(str(spec.run_dir())) / "result.json").exists()
    assert ours(docker_engine, campaign_id) == []


def test_memory_limited_container_is_reported_oom(
    tmp_path: Path, tiny_model_dir: Path, pytorch_cpu_image: str, campaign_id: str, docker_engine: Any
) -> None:
    spec = make_run(tmp_path, tiny_model_dir, pytorch_cpu_image, campaign_id, mem_limit="96m")

    outcome = DockerRuntime().run(spec, threading.Event())

    assert (outcome.status, outcome.exit_code) == ("oom", 137), outcome
    assert ours(docker_engine, campaign_id) == []


def test_container_killed_from_outside_mid_run_fails_without_a_result(
    tmp_path: Path, tiny_model_dir: Path, pytorch_cpu_image: str, campaign_id: str, docker_engine: Any
) -> None:
    spec = make_run(
        tmp_path,
        tiny_model_dir,
        pytorch_cpu_image,
        campaign_id,
        baseline={"duration_seconds": 300.0, "method": "fresh"},
    )
    thread, outcomes = run_in_background(spec, threading.Event())
    wait_for_log(spec, "prompts:")

    for container in ours(docker_engine, campaign_id):
        container.kill()
    thread.join(60)

    assert (outcomes[0].status, outcomes[0].exit_code) == ("failed", 137), outcomes
    assert "killed by SIGKILL" in outcomes[0].message
    assert not (Path(str(spec.run_dir())) / "result.json").exists()
    assert ours(docker_engine, campaign_id) == []


def test_stop_event_interrupts_a_running_container(
    tmp_path: Path, tiny_model_dir: Path, pytorch_cpu_image: str, campaign_id: str, docker_engine: Any
) -> None:
    spec = make_run(
        tmp_path,
        tiny_model_dir,
        pytorch_cpu_image,
        campaign_id,
        baseline={"duration_seconds": 300.0, "method": "fresh"},
    )
    stop = threading.Event()
    thread, outcomes = run_in_background(spec, stop)
    wait_for_log(spec, "prompts:")

    stop.set()
    thread.join(60)

    assert outcomes[0].status == "interrupted"
    assert not (Path(str(spec.run_dir())) / "result.json").exists()
    assert ours(docker_engine, campaign_id) == []


def test_orphan_cleanup_removes_only_labelled_containers_of_dead_campaigns(
    base_image: str, campaign_id: str, docker_engine: Any, scratch_containers: list[Any]
) -> None:
    dead_id, live_id = f"{campaign_id}-dead", f"{campaign_id}-live"

    def start(labels: dict[str, str]) -> Any:
        container = docker_engine.containers.run(base_image, ["sleep", "300"], detach=True, labels=labels)
        scratch_containers.append(container)
        return container

    dead = start({LABEL_MANAGED: "true", LABEL_CAMPAIGN: dead_id, LABEL_RUN: "r-c01"})
    live = start({LABEL_MANAGED: "true", LABEL_CAMPAIGN: live_id, LABEL_RUN: "r-c01"})
    unlabelled = start({})
    same_campaign_unmanaged = start({LABEL_CAMPAIGN: dead_id})  # our campaign label but not "managed"
    # Other sessions may share this engine: everything but the dead campaign counts as live here.
    managed = docker_engine.containers.list(all=True, filters={"label": f"{LABEL_MANAGED}=true"})
    live_ids = {c.labels.get(LABEL_CAMPAIGN) for c in managed} - {dead_id}

    removed = DockerRuntime().cleanup_orphans(live_ids)

    assert removed == [f"{dead.short_id} (campaign {dead_id}, run r-c01)"]
    remaining = {c.id for c in docker_engine.containers.list(all=True)}
    assert dead.id not in remaining
    assert {live.id, unlabelled.id, same_campaign_unmanaged.id} <= remaining
