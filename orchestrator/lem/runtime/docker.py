"""The Docker runtime: the only module that imports docker-py.

``container_kwargs`` is the one place a ``ContainerSpec`` becomes ``containers.run`` arguments.
``DockerRuntime.run`` starts the container, streams its logs to ``container.log``, waits for it
(a per-run timeout and the stop event both kill it), maps the ending to a ``RunOutcome`` and
always removes the container after its logs are saved. Only transient daemon/API errors
(connection reset, HTTP 5xx) are retried, with exponential backoff; an unreachable daemon, a
missing image or a missing NVIDIA runtime raise the matching ``LemRuntimeError``.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any, TypeVar

import docker
import docker.errors
import docker.types
import requests
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from lem.runtime.bundle import ImageFacts
from lem.runtime.bundle_manifest import PythonInfo
from lem.runtime.errors import (
    GpuRuntimeMissing,
    ImageMissing,
    ImageOutdated,
    LemRuntimeError,
    RuntimeUnavailable,
)
from lem.runtime.images import ImageBuild, ImageStatus, flavour_of, image_problem
from lem.runtime.logsink import LogSink
from lem.runtime.orphans import OrphanPolicy
from lem.runtime.outcome import ExitInfo, StoppedBy, check_result, classify
from lem.runtime.spec import (
    LABEL_CAMPAIGN,
    LABEL_CONTRACT,
    LABEL_MANAGED,
    LABEL_RUN,
    SPEC_TARGET,
    ContainerSpec,
    RunOutcome,
)
from lem_harness.contract import CONTRACT_VERSION

log = logging.getLogger(__name__)
T = TypeVar("T")
GPU_DRIVER_ERROR = "could not select device driver"
LOG_JOIN_S = 10.0
STOP_GRACE_S = 10  # SIGTERM, then SIGKILL this much later (docker stop; the API takes whole seconds)


def container_kwargs(
    spec: ContainerSpec, *, user: str | None = None, hostname: str | None = None
) -> dict[str, Any]:
    """``client.containers.run(**kwargs)`` for ``spec``: detached, labelled, never privileged,
    every capability dropped but the spec's ``cap_add``, private IPC unless the spec says host.

    ``hostname``: the container takes the host's name, so a result records the node it ran on.
    """
    kwargs: dict[str, Any] = {
        "image": spec.image,
        "command": list(spec.command),
        "detach": True,
        "init": True,
        "privileged": False,
        "security_opt": ["no-new-privileges:true"],
        "cap_drop": ["ALL"],
        "stop_signal": "SIGTERM",
        "ipc_mode": "host" if spec.ipc_host else "private",
        "labels": dict(spec.labels),
        "environment": dict(spec.environment),
        "mounts": [
            docker.types.Mount(target=m.target, source=m.source, type=m.kind, read_only=m.read_only)
            for m in spec.mounts
        ],
    }
    if hostname:
        kwargs["hostname"] = hostname
    if spec.ulimits:
        kwargs["ulimits"] = [docker.types.Ulimit(name=n, soft=s, hard=h) for n, s, h in spec.ulimits]
    if spec.cap_add:
        kwargs["cap_add"] = list(spec.cap_add)
    if spec.shm_size is not None:
        kwargs["shm_size"] = spec.shm_size
    if spec.mem_limit is not None:
        kwargs["mem_limit"] = spec.mem_limit
        kwargs["memswap_limit"] = spec.mem_limit  # no swap: an over-budget run is OOM-killed, not slowed
    if spec.gpu_uuids:
        kwargs["device_requests"] = [
            docker.types.DeviceRequest(device_ids=list(spec.gpu_uuids), capabilities=[["gpu"]])
        ]
    if user is not None:
        kwargs["user"] = user
    return kwargs


def host_user() -> str | None:
    """``uid:gid`` of this process, so that files in the results tree belong to the caller."""
    return f"{os.getuid()}:{os.getgid()}" if hasattr(os, "getuid") else None


def is_transient(exc: BaseException) -> bool:
    """Worth retrying: the connection dropped, or the daemon answered 5xx (but not a GPU driver error)."""
    if isinstance(exc, requests.exceptions.ConnectionError | requests.exceptions.Timeout):
        return True
    if isinstance(exc, docker.errors.APIError):
        return exc.is_server_error() and not _is_gpu_driver_error(exc)
    return False


def _is_gpu_driver_error(exc: BaseException) -> bool:
    return GPU_DRIVER_ERROR in str(getattr(exc, "explanation", None) or exc).lower()


def _is_permission_error(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "permission denied" in text or isinstance(exc.__context__, PermissionError)


def unavailable(exc: BaseException) -> RuntimeUnavailable:
    return RuntimeUnavailable(str(exc) or type(exc).__name__, permission_denied=_is_permission_error(exc))


def _status_code(exc: BaseException) -> int | None:
    return exc.status_code if isinstance(exc, docker.errors.APIError) else None


class DockerRuntime:
    """``Runtime`` over a Docker engine (docker-py). ``client`` is injectable for tests."""

    name = "docker"

    def __init__(
        self,
        client: Any | None = None,
        *,
        client_factory: Callable[[], Any] = docker.from_env,
        clock: Callable[[], float] = time.monotonic,
        poll_s: float = 0.05,
        retry_attempts: int = 4,
        retry_wait_s: float = 0.5,
        user: str | None = host_user(),
        stop_grace_s: int = STOP_GRACE_S,
    ) -> None:
        self._client = client
        self._client_factory = client_factory
        self._clock = clock
        self._poll_s = poll_s
        self._retry_attempts = retry_attempts
        self._retry_wait_s = retry_wait_s
        self._user = user
        self._stop_grace_s = stop_grace_s
        self._active: Any | None = None  # the running container, for abandon()

    # ------------------------------------------------------------------ plumbing

    @property
    def client(self) -> Any:
        if self._client is None:
            try:
                self._client = self._client_factory()
            except docker.errors.DockerException as e:
                raise unavailable(e) from e
        return self._client

    def _retrying(self, before_sleep: Callable[[RetryCallState], None] | None = None) -> Retrying:
        return Retrying(
            retry=retry_if_exception(is_transient),
            stop=stop_after_attempt(self._retry_attempts),
            wait=wait_exponential(multiplier=self._retry_wait_s, max=8.0),
            before_sleep=before_sleep,
            reraise=True,
        )

    def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)`` with transient errors retried; a dead daemon → ``RuntimeUnavailable``."""
        try:
            return self._retrying()(fn, *args, **kwargs)
        except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as e:
            raise unavailable(e) from e

    # ------------------------------------------------------------------ Runtime protocol

    def check(self, images: Sequence[str]) -> None:
        self._call(self.client.ping)
        for name in images:
            status = self.image_status(name)
            backend = name.split("/")[-1].split(":")[0]
            if not status.present:
                raise ImageMissing(name, backend, flavour_of(name))
            if image_problem(status) is not None:
                raise ImageOutdated(name, status.contract, CONTRACT_VERSION, backend)

    def run(self, spec: ContainerSpec, stop: threading.Event) -> RunOutcome:
        if stop.is_set():
            return RunOutcome("interrupted", None, 0.0, [], "stopped before the container started")
        self._require_image(spec)
        _prepare_mounts(spec)
        sink = LogSink(spec.log_path, spec.secret_values())
        started = self._clock()
        try:
            container = self._start(spec)
        except LemRuntimeError:
            sink.close()
            raise
        except docker.errors.APIError as e:
            sink.note(f"Docker could not start the container: {e}")
            sink.close()
            return RunOutcome(
                "failed", None, self._clock() - started, sink.tail(), sink.mask(f"Docker refused: {e}")
            )
        self._active = container
        try:
            return self._supervise(spec, container, stop, sink, started)
        finally:
            self._active = None
            sink.close()
            self._remove(container)

    def abandon(self) -> None:
        """Kill the running container at once (lem is exiting); errors are ignored."""
        container = self._active
        if container is not None:
            try:
                container.remove(force=True)
            except Exception as e:  # best effort: the next campaign's sweep removes it
                log.warning("could not remove container %s: %s", getattr(container, "short_id", "?"), e)

    def cleanup_orphans(self, policy: OrphanPolicy) -> list[str]:
        found = self._call(self.client.containers.list, all=True, filters={"label": f"{LABEL_MANAGED}=true"})
        removed: list[str] = []
        for container in found:
            labels = container.labels or {}
            if policy.spare_reason(labels) is not None:
                continue
            self._remove(container)
            removed.append(
                f"{container.short_id} (campaign {labels.get(LABEL_CAMPAIGN)}, run {labels.get(LABEL_RUN)})"
            )
        return removed

    def query(self, spec: ContainerSpec, timeout_s: float = 120.0) -> str:
        """A short harness command in a throwaway container (no GPU); its stdout."""
        self._require_image(spec)
        container = self._start(spec)
        try:
            waiter = _Waiter(lambda: self._call(container.wait))
            if not waiter.done.wait(timeout_s):
                self._stop(container)
                raise LemRuntimeError(
                    f"{spec.image}: the harness did not answer `{spec.command[0]}` in {timeout_s:g} s",
                    "check the Docker engine (docker info) and the image",
                )
            out: str = self._call(container.logs, stdout=True, stderr=False).decode("utf-8", "replace")
            err: str = self._call(container.logs, stdout=False, stderr=True).decode("utf-8", "replace")
        finally:
            self._remove(container)
        if waiter.exit_code != 0:
            raise LemRuntimeError(
                f"{spec.image}: the harness could not answer `{spec.command[0]}` "
                f"(exit {waiter.exit_code}): {err.strip()[-300:]}",
                "rebuild the image from this checkout (lem images build)",
            )
        return out

    # ------------------------------------------------------------------ one run

    def _require_image(self, spec: ContainerSpec) -> None:
        try:
            self._call(self.client.images.get, spec.image)
        except docker.errors.ImageNotFound as e:
            raise ImageMissing(spec.image, spec.backend, flavour_of(spec.image)) from e

    def _start(self, spec: ContainerSpec) -> Any:
        kwargs = container_kwargs(spec, user=self._user, hostname=socket.gethostname())
        retrying = self._retrying(before_sleep=lambda _state: self._remove_leftovers(spec))
        try:
            return retrying(self.client.containers.run, **kwargs)
        except docker.errors.ImageNotFound as e:
            raise ImageMissing(spec.image, spec.backend, flavour_of(spec.image)) from e
        except docker.errors.APIError as e:
            self._remove_leftovers(spec)
            if _is_gpu_driver_error(e):
                raise GpuRuntimeMissing(str(e.explanation or e)) from e
            raise
        except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as e:
            raise unavailable(e) from e

    def _supervise(
        self, spec: ContainerSpec, container: Any, stop: threading.Event, sink: LogSink, started: float
    ) -> RunOutcome:
        streamer = _spawn(self._stream_logs, container, sink)
        waiter = _Waiter(lambda: self._call(container.wait))
        stopped_by = self._wait(container, waiter, stop, started + spec.timeout_s)
        if isinstance(waiter.error, docker.errors.NotFound):
            sink.note("the container vanished while lem waited for it (removed from outside?)")
        elif waiter.error is not None:
            raise _wait_error(spec, waiter.error)
        streamer.join(LOG_JOIN_S)
        info = ExitInfo(waiter.exit_code, self._oom_killed(container), stopped_by)
        if stopped_by is not None:
            sink.note(f"run {stopped_by}: container killed")
        result = check_result(spec.run_dir(), spec.run_id)
        duration = self._clock() - started
        return classify(info, result, timeout_s=spec.timeout_s, duration_s=duration, log_tail=sink.tail())

    def _wait(
        self, container: Any, waiter: _Waiter, stop: threading.Event, deadline: float
    ) -> StoppedBy | None:
        """Block until the container exits; kill it on stop or at the deadline and say which."""
        stopped_by: StoppedBy | None = None
        while not waiter.done.wait(self._poll_s):
            if stopped_by is None and stop.is_set():
                stopped_by = "interrupted"
            elif stopped_by is None and self._clock() >= deadline:
                stopped_by = "timeout"
            else:
                continue
            self._stop(container)
        return stopped_by

    def _stream_logs(self, container: Any, sink: LogSink) -> None:
        try:
            for chunk in container.logs(stream=True, follow=True, stdout=True, stderr=True):
                sink.feed(chunk)
        except Exception as e:
            sink.note(f"log stream ended early: {e}")

    def _oom_killed(self, container: Any) -> bool:
        try:
            self._call(container.reload)
        except docker.errors.NotFound:
            return False
        return bool(container.attrs.get("State", {}).get("OOMKilled", False))

    def _stop(self, container: Any) -> None:
        """SIGTERM (the harness writes an ``interrupted`` result), SIGKILL after the grace period."""
        try:
            self._call(container.stop, timeout=int(self._stop_grace_s))
        except docker.errors.APIError as e:
            if _status_code(e) not in (404, 409):  # already gone / no longer running
                raise

    def _remove(self, container: Any) -> None:
        try:
            self._call(container.remove, force=True)
        except docker.errors.NotFound:
            return
        except (docker.errors.APIError, RuntimeUnavailable) as e:
            log.warning("could not remove container %s: %s", getattr(container, "short_id", "?"), e)

    def _remove_leftovers(self, spec: ContainerSpec) -> None:
        """Remove containers a failed ``containers.run`` may have created for this run."""
        filters = {"label": [f"{LABEL_RUN}={spec.run_id}", f"{LABEL_CAMPAIGN}={spec.campaign_id}"]}
        try:
            for container in self.client.containers.list(all=True, filters=filters):
                self._remove(container)
        except (docker.errors.APIError, requests.exceptions.RequestException) as e:
            log.warning("could not look for leftover containers of run %s: %s", spec.run_id, e)

    # ------------------------------------------------------------------ the engine (lem doctor)

    def engine_facts(self) -> tuple[str, tuple[str, ...]]:
        """The engine's version and the container runtimes it offers (``nvidia`` when GPUs can pass)."""
        version = self._call(self.client.version)
        info = self._call(self.client.info)
        return str(version.get("Version", "?")), tuple(sorted((info.get("Runtimes") or {}).keys()))

    # ------------------------------------------------------------------ images (lem images)

    def image_status(self, name: str) -> ImageStatus:
        try:
            image = self._call(self.client.images.get, name)
        except docker.errors.ImageNotFound:
            return ImageStatus(name, present=False)
        attrs = image.attrs or {}
        labels = (attrs.get("Config") or {}).get("Labels") or {}
        return ImageStatus(
            name, True, image.id, labels.get(LABEL_CONTRACT), attrs.get("Created"), attrs.get("Size")
        )

    def list_images(self) -> list[ImageStatus]:
        """Every local image carrying the contract label (built by this tool)."""
        statuses = []
        for image in self._call(self.client.images.list, filters={"label": LABEL_CONTRACT}):
            for tag in image.tags or [image.short_id]:
                statuses.append(self.image_status(tag))
        return sorted(statuses, key=lambda s: s.name)

    def build_image(self, build: ImageBuild, context: IO[bytes], on_line: Callable[[str], None]) -> str:
        """Build from a prepared context tar (see ``images.write_context``); returns the image id."""
        stream = self._call(
            self.client.api.build,
            fileobj=context,
            custom_context=True,
            dockerfile=build.dockerfile,
            tag=build.tag,
            buildargs=dict(build.buildargs),
            rm=True,
            forcerm=True,
            pull=False,
            decode=True,
            network_mode=build.network,
            nocache=build.nocache,
        )
        return _follow_build(stream, build.tag, on_line)

    # ------------------------------------------------------------------ bundles (lem.runtime.bundle)

    def engine_arch(self) -> str:
        """The engine's CPU architecture (``x86_64``, ``aarch64``)."""
        return str(self._call(self.client.info).get("Architecture", "unknown"))

    def image_facts(self, reference: str) -> ImageFacts | None:
        try:
            image = self._call(self.client.images.get, reference)
        except docker.errors.ImageNotFound:
            return None
        attrs = image.attrs or {}
        return ImageFacts(image.id, tuple(attrs.get("RepoDigests") or ()), str(attrs.get("Architecture", "")))

    def pull_image(self, reference: str) -> None:
        repository, sep, tag = reference.rpartition(":")
        if "@" in reference or not sep or "/" in tag:  # by digest, or no tag (registry:port/name)
            repository, tag = reference, ""
        try:
            self._call(self.client.images.pull, repository, tag=tag or None)
        except docker.errors.APIError as e:
            raise LemRuntimeError(
                f"docker pull {reference} failed: {e.explanation or e}",
                "check the name and the registry login",
            ) from e

    def probe_python(self, reference: str) -> PythonInfo:
        """The image's own ``python3``: version and CPython ABI tag, asked with the network off."""
        code = "import sys; v = sys.version_info; print(f'{v[0]}.{v[1]} cp{v[0]}{v[1]}')"
        try:
            out = self._call(
                self.client.containers.run,
                reference,
                ["-c", code],
                entrypoint="python3",
                network_mode="none",
                remove=True,
                stdout=True,
                stderr=True,
            )
        except docker.errors.ContainerError as e:
            raise LemRuntimeError(
                f"{reference}: python3 -c failed: {e.stderr!r}", "does it have python3?"
            ) from e
        version, abi = bytes(out).decode().split()[-2:]
        return PythonInfo(version=version, abi=abi)

    def save_image(self, reference: str, out: IO[bytes]) -> None:
        """``docker save`` of ``reference`` (its tag kept, so that ``docker load`` restores it)."""
        for chunk in self._call(self.client.api.get_image, reference):
            out.write(chunk)

    def load_images(self, source: IO[bytes]) -> None:
        try:
            for event in self._call(self.client.api.load_image, source):
                if "error" in event:
                    raise LemRuntimeError(f"docker load failed: {event['error']}", "copy the bundle again")
        except docker.errors.APIError as e:
            raise LemRuntimeError(f"docker load failed: {e.explanation or e}", "copy the bundle again") from e


def _follow_build(stream: Iterator[dict[str, Any]], tag: str, on_line: Callable[[str], None]) -> str:
    image_id: str | None = None
    for event in stream:
        if "error" in event:
            raise LemRuntimeError(
                f"building {tag} failed: {str(event['error']).strip()}", "see the build output above"
            )
        if "stream" in event:
            for line in str(event["stream"]).splitlines():
                if line.strip():
                    on_line(line)
        aux = event.get("aux")
        if isinstance(aux, dict) and "ID" in aux:
            image_id = str(aux["ID"])
    if image_id is None:
        raise LemRuntimeError(f"building {tag} produced no image", "see the build output above")
    return image_id


def _wait_error(spec: ContainerSpec, error: BaseException) -> LemRuntimeError:
    if isinstance(error, LemRuntimeError):
        return error
    return LemRuntimeError(
        f"run {spec.run_id}: waiting for the container failed: {error}", "check `docker ps -a`"
    )


def _prepare_mounts(spec: ContainerSpec) -> None:
    """The spec file must exist; writable bind-mounted directories are created when missing."""
    for writable in spec.mounts:
        if writable.kind == "bind" and not writable.read_only:
            Path(writable.source).mkdir(parents=True, exist_ok=True)
    mount = spec.mount_at(SPEC_TARGET)
    if mount is not None and not Path(mount.source).is_file():
        raise LemRuntimeError(
            f"run {spec.run_id}: spec file {mount.source} does not exist", "write spec.json first"
        )


def _spawn(target: Callable[..., None], *args: Any) -> threading.Thread:
    thread = threading.Thread(target=target, args=args, daemon=True)
    thread.start()
    return thread


class _Waiter:
    """Runs a blocking ``container.wait()`` in a thread; ``done`` is set when it returns or fails."""

    def __init__(self, wait: Callable[[], dict[str, Any]]) -> None:
        self.done = threading.Event()
        self.exit_code: int | None = None
        self.error: BaseException | None = None
        self._wait = wait
        _spawn(self._run)

    def _run(self) -> None:
        try:
            self.exit_code = int(self._wait().get("StatusCode", -1))
        except BaseException as e:
            self.error = e
        finally:
            self.done.set()
