"""DockerRuntime outcome mapping, retries, log handling and orphan cleanup, against a fake SDK."""

from __future__ import annotations

import threading
from pathlib import Path

import docker.errors
import pytest

from lem.runtime.docker import DockerRuntime, is_transient
from lem.runtime.errors import GpuRuntimeMissing, ImageMissing, ImageOutdated, RuntimeUnavailable
from lem.runtime.spec import ContainerSpec, Mount
from tests.unit.runtime.fake_docker import (
    FakeClient,
    FakeContainer,
    FakeImage,
    api_error,
    connection_reset,
    write_result,
)

IMAGE = "llenergymeasure/pytorch:cpu"
RUN_ID = "pytorch-bs1-c01"


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    path = tmp_path / "results" / "camp" / RUN_ID
    path.mkdir(parents=True)
    (path / "spec.json").write_text("{}")
    return path


def _spec(run_dir: Path, *, timeout_s: float = 30.0, env: tuple[tuple[str, str], ...] = ()) -> ContainerSpec:
    return ContainerSpec(
        image=IMAGE,
        command=("run", "--spec", "/lem/spec.json", "--out", "/lem/run"),
        run_id=RUN_ID,
        campaign_id="camp",
        backend="pytorch",
        gpu_uuids=(),
        mounts=(
            Mount(str(run_dir / "spec.json"), "/lem/spec.json", True, "bind"),
            Mount(str(run_dir), "/lem/run", False, "bind"),
        ),
        environment=env,
        labels=(("org.llenergymeasure.campaign", "camp"), ("org.llenergymeasure.managed", "true")),
        shm_size="1g",
        ipc_host=False,
        ulimits=(),
        timeout_s=timeout_s,
        log_path=str(run_dir / "container.log"),
    )


def _runtime(client: FakeClient) -> DockerRuntime:
    return DockerRuntime(client, poll_s=0.01, retry_wait_s=0.0, user=None)


def _run(client: FakeClient, spec: ContainerSpec, stop: threading.Event | None = None):  # type: ignore[no-untyped-def]
    client.log_path = spec.log_path
    return _runtime(client).run(spec, stop or threading.Event())


def test_ok_run_saves_logs_then_removes_the_container(run_dir: Path) -> None:
    client = FakeClient()
    container = FakeContainer(harness=lambda: write_result(run_dir, RUN_ID))
    client.containers.script = [container]

    outcome = _run(client, _spec(run_dir))

    assert (outcome.status, outcome.exit_code, outcome.message) == ("ok", 0, "ok")
    assert outcome.log_tail == ["harness: started", "harness: done"]
    assert container.calls[-1] == "remove(force=True)"
    assert container.log_file_at_removal == "harness: started\nharness: done\n"


def test_non_zero_exit_reports_the_harness_error(run_dir: Path) -> None:
    client = FakeClient()
    client.containers.script = [
        FakeContainer(exit_code=1, harness=lambda: write_result(run_dir, RUN_ID, "failed"))
    ]

    outcome = _run(client, _spec(run_dir))

    assert (outcome.status, outcome.exit_code) == ("failed", 1)
    assert outcome.message == "exit 1: the harness reported a failure (OutOfMemoryError: CUDA out of memory)"


def test_non_zero_exit_without_result_quotes_the_last_log_line(run_dir: Path) -> None:
    client = FakeClient()
    client.containers.script = [FakeContainer(exit_code=3, logs=(b"Traceback ...\nValueError: boom\n",))]

    outcome = _run(client, _spec(run_dir))

    assert (outcome.status, outcome.message) == ("failed", "exit 3. Last log line: ValueError: boom")


def test_oom_flag_maps_to_oom(run_dir: Path) -> None:
    client = FakeClient()
    client.containers.script = [FakeContainer(exit_code=137, oom_killed=True)]

    outcome = _run(client, _spec(run_dir))

    assert (outcome.status, outcome.exit_code) == ("oom", 137)


def test_sigkill_without_oom_flag_is_a_failure_naming_both_causes(run_dir: Path) -> None:
    client = FakeClient()
    client.containers.script = [FakeContainer(exit_code=137, logs=())]

    outcome = _run(client, _spec(run_dir))

    assert outcome.status == "failed"
    assert (
        outcome.message == "killed by SIGKILL (exit 137): out of memory on the host, or killed from outside."
    )


def test_container_removed_from_outside_is_a_failure(run_dir: Path) -> None:
    client = FakeClient()
    container = FakeContainer(logs=(b"loading\n",))
    container.vanish = True
    client.containers.script = [container]

    outcome = _run(client, _spec(run_dir))

    assert (outcome.status, outcome.exit_code) == ("failed", None)
    assert outcome.message == (
        "no exit status: the container was removed from outside or the engine lost it. "
        "Last log line: [lem] the container vanished while lem waited for it (removed from outside?)"
    )


def test_timeout_kills_the_container(run_dir: Path) -> None:
    client = FakeClient()
    container = FakeContainer(hang=True, logs=(b"loading\n",))
    client.containers.script = [container]

    outcome = _run(client, _spec(run_dir, timeout_s=0.2))

    assert outcome.status == "timeout"
    assert "kill" in container.calls
    assert outcome.message.startswith("no result within the 0.2 s timeout")
    assert outcome.log_tail == ["loading", "[lem] run timeout: container killed"]
    assert 0.2 <= outcome.duration_s < 5.0


def test_stop_event_interrupts_and_kills(run_dir: Path) -> None:
    client = FakeClient()
    container = FakeContainer(hang=True)
    client.containers.script = [container]
    stop = threading.Event()
    threading.Timer(0.1, stop.set).start()

    outcome = _run(client, _spec(run_dir), stop)

    assert outcome.status == "interrupted"
    assert container.calls.count("kill") == 1
    assert container.calls[-1] == "remove(force=True)"


def test_stop_already_set_starts_nothing(run_dir: Path) -> None:
    client = FakeClient()
    stop = threading.Event()
    stop.set()

    outcome = _run(client, _spec(run_dir), stop)

    assert outcome.status == "interrupted"
    assert client.containers.run_kwargs == []


def test_exit_zero_without_result_is_result_missing(run_dir: Path) -> None:
    client = FakeClient()
    client.containers.script = [FakeContainer()]

    outcome = _run(client, _spec(run_dir))

    assert outcome.status == "result_missing"
    assert f"{run_dir}/result.json was not written" in outcome.message


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("{not json", "is not a valid result"),
        ('{"run_id": "pytorch-bs1-c01"}', "is not a valid result (7 errors"),
    ],
)
def test_garbage_result_is_result_invalid(run_dir: Path, content: str, fragment: str) -> None:
    client = FakeClient()
    client.containers.script = [FakeContainer(harness=lambda: (run_dir / "result.json").write_text(content))]

    outcome = _run(client, _spec(run_dir))

    assert outcome.status == "result_invalid"
    assert fragment in outcome.message


def test_result_of_another_run_is_invalid(run_dir: Path) -> None:
    client = FakeClient()
    client.containers.script = [FakeContainer(harness=lambda: write_result(run_dir, "other-run-c01"))]

    outcome = _run(client, _spec(run_dir))

    assert outcome.status == "result_invalid"
    assert "belongs to run other-run-c01" in outcome.message


def test_secrets_are_masked_in_log_file_and_tail(run_dir: Path) -> None:
    client = FakeClient()
    client.containers.script = [
        FakeContainer(
            logs=(b"token is hf_sec", b"ret123 ok\n"), harness=lambda: write_result(run_dir, RUN_ID)
        )
    ]

    outcome = _run(client, _spec(run_dir, env=(("HF_TOKEN", "hf_secret123"),)))

    assert outcome.log_tail == ["token is *** ok"]
    assert (run_dir / "container.log").read_text() == "token is *** ok\n"


def test_missing_image_says_how_to_build_it(run_dir: Path) -> None:
    client = FakeClient(images=())

    with pytest.raises(ImageMissing) as info:
        _run(client, _spec(run_dir))

    assert "lem images build --backend pytorch --flavour cpu --offline" in str(info.value)
    assert client.containers.run_kwargs == []


def test_gpu_driver_error_is_gpu_runtime_missing_and_leaves_nothing(run_dir: Path) -> None:
    client = FakeClient()
    leftover = FakeContainer()
    client.containers.existing = [leftover]
    client.containers.script = [
        api_error(500, 'could not select device driver "" with capabilities: [[gpu]]')
    ]

    with pytest.raises(GpuRuntimeMissing, match="NVIDIA Container Toolkit"):
        _run(client, _spec(run_dir))

    assert len(client.containers.run_kwargs) == 1  # a driver error is not retried
    assert "remove(force=True)" in leftover.calls
    assert client.containers.list_filters[-1] == {
        "label": ["org.llenergymeasure.run=pytorch-bs1-c01", "org.llenergymeasure.campaign=camp"]
    }


def test_transient_errors_are_retried_then_succeed(run_dir: Path) -> None:
    client = FakeClient()
    client.containers.script = [
        api_error(502, "bad gateway"),
        connection_reset(),
        FakeContainer(harness=lambda: write_result(run_dir, RUN_ID)),
    ]

    outcome = _run(client, _spec(run_dir))

    assert outcome.status == "ok"
    assert len(client.containers.run_kwargs) == 3


def test_client_errors_are_not_retried_and_fail_the_run(run_dir: Path) -> None:
    client = FakeClient()
    client.containers.script = [api_error(400, "invalid mount config")]

    outcome = _run(client, _spec(run_dir))

    assert (outcome.status, outcome.exit_code) == ("failed", None)
    assert "invalid mount config" in outcome.message
    assert len(client.containers.run_kwargs) == 1


def test_daemon_gone_for_good_is_runtime_unavailable_suggesting_local(run_dir: Path) -> None:
    client = FakeClient()
    client.containers.script = [connection_reset() for _ in range(4)]

    with pytest.raises(RuntimeUnavailable) as info:
        _run(client, _spec(run_dir))

    assert len(client.containers.run_kwargs) == 4
    assert "--runtime local" in str(info.value)
    assert "systemctl start docker" in str(info.value)


def test_client_creation_failure_with_permission_denied() -> None:
    def refuse() -> None:
        raise docker.errors.DockerException(
            "Error while fetching server API version: "
            "('Connection aborted.', PermissionError(13, 'Permission denied'))"
        )

    runtime = DockerRuntime(client_factory=refuse)

    with pytest.raises(RuntimeUnavailable) as info:
        runtime.check([IMAGE])

    assert info.value.permission_denied is True
    assert "usermod -aG docker" in str(info.value)


def test_check_flags_an_image_of_another_contract_major() -> None:
    client = FakeClient(images=())
    client.images.images[IMAGE] = FakeImage(IMAGE, contract="1.0.0")

    with pytest.raises(ImageOutdated, match=r"speaks contract 1\.0\.0"):
        _runtime(client).check([IMAGE])


def test_check_passes_for_present_current_images() -> None:
    _runtime(FakeClient()).check([IMAGE])


def test_cleanup_removes_only_managed_containers_of_dead_campaigns() -> None:
    client = FakeClient()
    dead = FakeContainer(
        labels={"org.llenergymeasure.managed": "true", "org.llenergymeasure.campaign": "old"}
    )
    live = FakeContainer(
        labels={"org.llenergymeasure.managed": "true", "org.llenergymeasure.campaign": "now"}
    )
    foreign = FakeContainer(labels={"org.llenergymeasure.campaign": "old"})  # not managed by us
    client.containers.existing = [dead, live, foreign]

    removed = _runtime(client).cleanup_orphans({"now"})

    assert removed == [f"{dead.short_id} (campaign old, run None)"]
    assert dead.calls == ["remove(force=True)"]
    assert live.calls == [] and foreign.calls == []
    assert client.containers.list_filters == [{"label": "org.llenergymeasure.managed=true"}]


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (connection_reset(), True),
        (api_error(500, "internal"), True),
        (api_error(503, "busy"), True),
        (api_error(500, "could not select device driver"), False),
        (api_error(404, "no such container"), False),
        (api_error(409, "conflict"), False),
        (ValueError("x"), False),
    ],
)
def test_only_transient_errors_are_retried(exc: BaseException, expected: bool) -> None:
    assert is_transient(exc) is expected
