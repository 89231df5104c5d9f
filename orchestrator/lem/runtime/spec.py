"""What a runtime is asked to run (``ContainerSpec``), what it answers (``RunOutcome``), and the
``Runtime`` protocol that the scheduler talks to.

Nothing here touches Docker: ``lem.runtime.docker`` turns a spec into docker-py calls,
``lem.runtime.local`` into a subprocess. Both honour the same container-side layout (the
``*_TARGET`` paths below), so one ``spec.json`` works under either runtime.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:
    from lem.runtime.orphans import OrphanPolicy

# Labels on every container this tool starts; cleanup of orphans keys on them.
LABEL_CAMPAIGN = "org.llenergymeasure.campaign"
LABEL_RUN = "org.llenergymeasure.run"
LABEL_MANAGED = "org.llenergymeasure.managed"
LABEL_UID = "org.llenergymeasure.uid"  # the uid of the lem process that started the container
LABEL_OWNER = "org.llenergymeasure.owner"  # that process: <host id>:<pid>:<start ticks>
# Image label carrying the harness's contract version (lem_harness.contract.CONTRACT_VERSION).
LABEL_CONTRACT = "org.llenergymeasure.contract"

# Container-side layout.
SPEC_TARGET = "/lem/spec.json"
RUN_DIR_TARGET = "/lem/run"
HF_CACHE_TARGET = "/lem/cache/hf"
ENGINE_CACHE_TARGET = "/lem/cache/trt"
BASELINE_CACHE_TARGET = "/lem/cache/baseline"

# Named volumes that outlive containers.
HF_CACHE_VOLUME = "lem-hf-cache"
ENGINE_CACHE_VOLUME = "lem-trt-engines"

# Host environment variables that are secrets: forwarded, never logged.
SECRET_ENV_NAMES: frozenset[str] = frozenset({"HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"})

OutcomeStatus = Literal["ok", "failed", "oom", "timeout", "result_missing", "result_invalid", "interrupted"]
MountKind = Literal["bind", "volume"]


@dataclass(frozen=True)
class Mount:
    """A host path (``bind``) or a named volume (``volume``) seen at ``target`` in the container."""

    source: str
    target: str
    read_only: bool
    kind: MountKind


@dataclass(frozen=True)
class ContainerSpec:
    """One experiment's container, fully decided before anything starts.

    ``environment`` is left out of ``repr`` because it may carry a forwarded secret.
    ``ulimits`` are ``(name, soft, hard)``; ``timeout_s`` bounds the whole run.
    """

    image: str
    command: tuple[str, ...]
    run_id: str
    campaign_id: str
    backend: str
    gpu_uuids: tuple[str, ...]
    mounts: tuple[Mount, ...]
    environment: tuple[tuple[str, str], ...] = field(repr=False)
    labels: tuple[tuple[str, str], ...]
    shm_size: str | None
    ipc_host: bool
    ulimits: tuple[tuple[str, int, int], ...]
    mem_limit: str | None = None
    cap_add: tuple[str, ...] = ()  # every other capability is dropped
    timeout_s: float = 3600
    log_path: str | None = None

    def mount_at(self, target: str) -> Mount | None:
        """The mount whose container path is ``target``, if any."""
        return next((m for m in self.mounts if m.target == target), None)

    def run_dir(self) -> str | None:
        """Host directory mounted at ``RUN_DIR_TARGET`` (where ``result.json`` lands)."""
        mount = self.mount_at(RUN_DIR_TARGET)
        return mount.source if mount is not None and mount.kind == "bind" else None

    def for_query(self, command: Sequence[str]) -> ContainerSpec:
        """This run's container asked a question instead: same image, environment and caches,
        no GPU, no spec/run/baseline mounts (they do not exist before the run), a short timeout."""
        private = {SPEC_TARGET, RUN_DIR_TARGET, BASELINE_CACHE_TARGET}
        env = tuple((k, "void" if k == "NVIDIA_VISIBLE_DEVICES" else v) for k, v in self.environment)
        return replace(
            self,
            command=tuple(command),
            run_id=f"{self.run_id}-query",
            gpu_uuids=(),
            mounts=tuple(m for m in self.mounts if m.target not in private),
            environment=env,
            labels=tuple((k, f"{v}-query" if k == LABEL_RUN else v) for k, v in self.labels),
            log_path=None,
        )

    def secret_values(self) -> tuple[str, ...]:
        """Values of forwarded secrets, to be masked in logs and messages."""
        return tuple(value for name, value in self.environment if name in SECRET_ENV_NAMES and value)


@dataclass(frozen=True)
class RunOutcome:
    """How one run ended, as the runtime saw it (the harness's own verdict is in result.json)."""

    status: OutcomeStatus
    exit_code: int | None
    duration_s: float
    log_tail: list[str]
    message: str


class Runtime(Protocol):
    """Runs one ``ContainerSpec`` at a time; the scheduler owns order, gaps and retries."""

    name: str

    def check(self, images: Sequence[str]) -> None:
        """Raise ``RuntimeUnavailable`` / ``ImageMissing`` (with the fix) before a campaign starts."""
        ...

    def run(self, spec: ContainerSpec, stop: threading.Event) -> RunOutcome:
        """Run to completion (blocking). ``stop`` set → the run is killed → ``interrupted``."""
        ...

    def cleanup_orphans(self, policy: OrphanPolicy) -> list[str]:
        """Remove this tool's containers that ``policy`` finds orphaned; return what was removed."""
        ...

    def abandon(self) -> None:
        """lem is exiting at once: kill what is running now (called from a signal handler)."""
        ...

    def query(self, spec: ContainerSpec, timeout_s: float = 120.0) -> str:
        """Run the harness with ``spec.command`` (a short query such as ``probe``); its stdout.

        Raises ``LemRuntimeError`` when the harness cannot answer (non-zero exit, with its stderr).
        """
        ...
