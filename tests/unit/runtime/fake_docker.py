"""A canned-response stand-in for the few docker-py calls ``lem.runtime.docker`` makes.

Each ``FakeContainer`` is scripted: what it logs, how it exits, whether it hangs until killed,
whether the kernel flagged an OOM kill, and what it leaves in the run directory (``harness``
callback, run when the container "starts"). Every call is recorded for the assertions.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import docker.errors
import requests

_ids = itertools.count(1)


class FakeResponse:
    """Enough of ``requests.Response`` for ``docker.errors.APIError``."""

    def __init__(self, status_code: int, reason: str = "") -> None:
        self.status_code = status_code
        self.reason = reason
        self.url = "http+docker://localhost/fake"


def api_error(status: int, explanation: str) -> docker.errors.APIError:
    return docker.errors.APIError("fake", response=FakeResponse(status), explanation=explanation)


class FakeContainer:
    def __init__(
        self,
        *,
        exit_code: int = 0,
        logs: tuple[bytes, ...] = (b"harness: started\n", b"harness: done\n"),
        oom_killed: bool = False,
        hang: bool = False,
        harness: Callable[[], object] | None = None,
        labels: dict[str, str] | None = None,
    ) -> None:
        n = next(_ids)
        self.id = f"{n:064x}"
        self.short_id = self.id[:12]
        self.labels = labels or {}
        self.attrs: dict[str, Any] = {"State": {"OOMKilled": oom_killed, "ExitCode": exit_code}}
        self._exit_code = exit_code
        self._logs = logs
        self._hang = hang
        self._harness = harness
        self.killed = threading.Event()
        self.vanish = False  # wait() answers 404, as after a `docker rm -f` from outside
        self.calls: list[str] = []
        self.log_file_at_removal: str | None = None
        self._log_path: Path | None = None

    def started(self, log_path: str | None) -> None:
        self._log_path = Path(log_path) if log_path else None
        if self._harness is not None:
            self._harness()

    def logs(self, **kwargs: Any) -> Iterator[bytes]:
        self.calls.append("logs")
        yield from self._logs
        if self._hang:
            self.killed.wait(10)

    def wait(self) -> dict[str, Any]:
        self.calls.append("wait")
        if self.vanish:
            raise docker.errors.NotFound("No such container")
        if self._hang:
            self.killed.wait(10)
            return {"StatusCode": 137}
        return {"StatusCode": self._exit_code}

    def kill(self) -> None:
        self.calls.append("kill")
        self.killed.set()

    def reload(self) -> None:
        self.calls.append("reload")

    def remove(self, force: bool = False) -> None:
        self.calls.append(f"remove(force={force})")
        if self._log_path is not None and self._log_path.exists():
            self.log_file_at_removal = self._log_path.read_text()


class FakeImage:
    def __init__(self, name: str, contract: str | None = "2.0.0") -> None:
        self.id = f"sha256:{abs(hash(name)):064x}"[:71]
        self.short_id = self.id[:19]
        self.tags = [name]
        labels = {"org.llenergymeasure.contract": contract} if contract else {}
        self.attrs = {"Config": {"Labels": labels}, "Created": "2025-01-01T00:00:00Z", "Size": 123}


class FakeImages:
    def __init__(self, images: dict[str, FakeImage]) -> None:
        self.images = images

    def get(self, name: str) -> FakeImage:
        if name not in self.images:
            raise docker.errors.ImageNotFound(f"No such image: {name}")
        return self.images[name]

    def list(self, filters: dict[str, str] | None = None) -> list[FakeImage]:
        return list(self.images.values())


class FakeContainers:
    def __init__(self, client: FakeClient) -> None:
        self._client = client
        self.run_kwargs: list[dict[str, Any]] = []
        self.script: list[FakeContainer | BaseException] = []
        self.existing: list[FakeContainer] = []
        self.list_filters: list[dict[str, Any]] = []

    def run(self, **kwargs: Any) -> FakeContainer:
        self.run_kwargs.append(kwargs)
        step = self.script.pop(0)
        if isinstance(step, BaseException):
            raise step
        step.labels = dict(kwargs.get("labels", {}))
        self.existing.append(step)
        step.started(self._client.log_path)
        return step

    def list(self, all: bool = False, filters: dict[str, Any] | None = None) -> list[FakeContainer]:
        self.list_filters.append(filters or {})
        return list(self.existing)


class FakeClient:
    """``docker.DockerClient`` look-alike: ``ping``, ``images``, ``containers``."""

    def __init__(
        self,
        images: tuple[str, ...] = ("llenergymeasure/pytorch:cpu",),
        ping_error: BaseException | None = None,
    ):
        self.images = FakeImages({name: FakeImage(name) for name in images})
        self.containers = FakeContainers(self)
        self.log_path: str | None = None
        self._ping_error = ping_error

    def ping(self) -> bool:
        if self._ping_error is not None:
            raise self._ping_error
        return True


def connection_reset() -> requests.exceptions.ConnectionError:
    return requests.exceptions.ConnectionError(
        ("Connection aborted.", ConnectionResetError(104, "Connection reset by peer"))
    )


def write_result(run_dir: Path, run_id: str, status: str = "ok", **overrides: Any) -> None:
    """A minimal valid ``result.json`` (what the harness would leave behind)."""
    body: dict[str, Any] = {
        "run_id": run_id,
        "config_id": "abc123def456",
        "config_name": "pytorch-bs1",
        "cycle": 1,
        "backend": "pytorch",
        "status": status,
        "started_at": "2025-01-01T00:00:00Z",
        "finished_at": "2025-01-01T00:00:05Z",
    }
    if status == "failed":
        body["error"] = {"type": "OutOfMemoryError", "message": "CUDA out of memory"}
    body.update(overrides)
    (run_dir / "result.json").write_text(json.dumps(body))
