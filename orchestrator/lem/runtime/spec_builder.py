"""Planned run + experiment config → ``ContainerSpec`` (pure: no Docker, no writes).

Every container decision lives here, so that a unit test can pin it exactly:

- GPUs by UUID (host indices from the config mapped through the host's inventory);
  none at all for the simulated device, and ``NVIDIA_VISIBLE_DEVICES=void`` then, so that a
  host whose default runtime is nvidia still hands over nothing.
- ``ipc=host`` for vLLM and TensorRT-LLM, a ``shm_size`` (from the validated ``docker`` section)
  for PyTorch; TensorRT-LLM also gets ``memlock=-1`` and a 64 MiB stack.
- Mounts: the spec read-only, the run's own directory read-write (the only writable host path
  besides the baseline cache), named volumes for the HF cache and the TensorRT engine cache,
  local model / dataset paths read-only at their own absolute path (so the config inside the
  spec means the same thing in the container and on the host).
- Environment: ``NVIDIA_DRIVER_CAPABILITIES=compute,utility``, ``HF_HOME``, ``HF_TOKEN`` only when
  the host has it, plus the names the config lists under ``docker.env`` (values from the host).
- Labels: campaign id, run id, managed. Never privileged, never extra capabilities (docker.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Protocol

from lem.config.local_inputs import MISSING_FIX, input_problem, local_inputs
from lem.runtime.errors import SpecError
from lem.runtime.spec import (
    BASELINE_CACHE_TARGET,
    ENGINE_CACHE_TARGET,
    ENGINE_CACHE_VOLUME,
    HF_CACHE_TARGET,
    HF_CACHE_VOLUME,
    LABEL_CAMPAIGN,
    LABEL_MANAGED,
    LABEL_RUN,
    RUN_DIR_TARGET,
    SECRET_ENV_NAMES,
    SPEC_TARGET,
    ContainerSpec,
    Mount,
)
from lem_harness.contract import SPEC_FILE
from lem_harness.experiment import ExperimentConfig

HARNESS_COMMAND: tuple[str, ...] = ("run", "--spec", SPEC_TARGET, "--out", RUN_DIR_TARGET)
TENSORRT_ULIMITS: tuple[tuple[str, int, int], ...] = (("memlock", -1, -1), ("stack", 67_108_864, 67_108_864))
IPC_HOST_BACKENDS = frozenset({"vllm", "tensorrt"})
# Names a config may not set through docker.env: they steer GPUs, caches or the interpreter.
RESERVED_ENV_NAMES = frozenset(
    {
        "NVIDIA_VISIBLE_DEVICES",
        "CUDA_VISIBLE_DEVICES",
        "NVIDIA_DRIVER_CAPABILITIES",
        "HF_HOME",
        "HOME",
        "PATH",
        "PYTHONPATH",
        "PYTHONHOME",
        "VIRTUAL_ENV",
        "LD_PRELOAD",
        "LD_LIBRARY_PATH",
    }
)


class PlannedRunLike(Protocol):
    """What the builder needs of a planned run (``lem.campaign.plan.PlannedRun`` fits)."""

    @property
    def run_id(self) -> str: ...

    @property
    def backend(self) -> str: ...


@dataclass(frozen=True)
class RunPaths:
    """Host paths of one run. ``run_dir`` holds ``spec.json`` and receives the results.

    ``run_dir`` and ``baseline_cache_dir`` must lie inside ``results_root``; local model and
    dataset paths inside ``project_root``, ``results_root`` or one of ``extra_roots``.
    """

    run_dir: Path
    results_root: Path
    project_root: Path
    baseline_cache_dir: Path | None = None  # default: <results_root>/.baseline-cache
    extra_roots: tuple[Path, ...] = ()


def container_cache_dirs(backend: str) -> dict[str, str | None]:
    """The container paths to put in ``RunSpec.baseline_cache_dir`` / ``engine_cache_dir``."""
    return {
        "baseline_cache_dir": BASELINE_CACHE_TARGET,
        "engine_cache_dir": ENGINE_CACHE_TARGET if backend == "tensorrt" else None,
    }


def build_container_spec(
    run: PlannedRunLike,
    cfg: ExperimentConfig,
    paths: RunPaths,
    *,
    image: str,
    campaign_id: str,
    gpu_uuids_by_index: Mapping[int, str] | None = None,
    host_env: Mapping[str, str] | None = None,
    timeout_s: float = 3600.0,
    mem_limit: str | None = None,
) -> ContainerSpec:
    """The container for ``run``; ``SpecError`` (key + fix) when the config cannot be honoured."""
    if run.backend != cfg.backend:
        raise SpecError(
            "backend", f"run {run.run_id} is planned for {run.backend} but its config says {cfg.backend}"
        )
    gpu_uuids = select_gpus(cfg, gpu_uuids_by_index or {})
    ipc_host = cfg.backend in IPC_HOST_BACKENDS
    return ContainerSpec(
        image=image,
        command=HARNESS_COMMAND,
        run_id=run.run_id,
        campaign_id=campaign_id,
        backend=cfg.backend,
        gpu_uuids=gpu_uuids,
        mounts=build_mounts(cfg, paths),
        environment=build_environment(cfg, gpu_uuids, host_env or {}),
        labels=build_labels(campaign_id, run.run_id),
        shm_size=None if ipc_host else cfg.docker.shm_size,
        ipc_host=ipc_host,
        ulimits=TENSORRT_ULIMITS if cfg.backend == "tensorrt" else (),
        mem_limit=mem_limit,
        timeout_s=timeout_s,
        log_path=str(_resolved(paths.run_dir) / "container.log"),
    )


def build_labels(campaign_id: str, run_id: str) -> tuple[tuple[str, str], ...]:
    return ((LABEL_CAMPAIGN, campaign_id), (LABEL_MANAGED, "true"), (LABEL_RUN, run_id))


def select_gpus(cfg: ExperimentConfig, inventory: Mapping[int, str]) -> tuple[str, ...]:
    """UUIDs of the config's GPUs; none for the simulated device or a GPU-less host in auto mode."""
    if cfg.measurement.device == "simulated":
        return ()
    if not inventory:
        if cfg.measurement.device == "nvml":
            raise SpecError(
                "measurement.device",
                "nvml asked for but no NVIDIA GPU was found on this host",
                "run on a GPU host, or set measurement.device: simulated for a CPU demo",
            )
        return ()
    missing = [i for i in cfg.gpus if i not in inventory]
    if missing:
        found = ", ".join(str(i) for i in sorted(inventory))
        raise SpecError(
            "gpus", f"GPU index {missing[0]} not found on this host (found: {found})", "fix gpus:"
        )
    return tuple(inventory[i] for i in cfg.gpus)


def build_environment(
    cfg: ExperimentConfig, gpu_uuids: tuple[str, ...], host_env: Mapping[str, str]
) -> tuple[tuple[str, str], ...]:
    env: dict[str, str] = {
        "NVIDIA_DRIVER_CAPABILITIES": "compute,utility",
        "NVIDIA_VISIBLE_DEVICES": ",".join(gpu_uuids) if gpu_uuids else "void",
        "HF_HOME": HF_CACHE_TARGET,
    }
    for name in sorted(SECRET_ENV_NAMES):
        if host_env.get(name):
            env[name] = host_env[name]
    for name in cfg.docker.env:
        if name in RESERVED_ENV_NAMES:
            reserved = ", ".join(sorted(RESERVED_ENV_NAMES))
            raise SpecError(
                "docker.env",
                f"{name} is set by lem itself and cannot be forwarded",
                f"remove it ({reserved})",
            )
        if name in host_env:
            env[name] = host_env[name]
    return tuple(env.items())


def build_mounts(cfg: ExperimentConfig, paths: RunPaths) -> tuple[Mount, ...]:
    results_root = _resolved(paths.results_root)
    run_dir = _inside(paths.run_dir, (results_root,), "run directory")
    baseline = paths.baseline_cache_dir or results_root / ".baseline-cache"
    mounts = [
        Mount(str(run_dir / SPEC_FILE), SPEC_TARGET, read_only=True, kind="bind"),
        Mount(str(run_dir), RUN_DIR_TARGET, read_only=False, kind="bind"),
        Mount(
            str(_inside(baseline, (results_root,), "baseline cache")), BASELINE_CACHE_TARGET, False, "bind"
        ),
        Mount(HF_CACHE_VOLUME, HF_CACHE_TARGET, read_only=False, kind="volume"),
    ]
    if cfg.backend == "tensorrt":
        mounts.append(Mount(ENGINE_CACHE_VOLUME, ENGINE_CACHE_TARGET, read_only=False, kind="volume"))
    mounts.extend(_input_mounts(cfg, paths))
    return tuple(mounts)


def _input_mounts(cfg: ExperimentConfig, paths: RunPaths) -> list[Mount]:
    """Local model / prompt-file paths, read-only, seen in the container at the path the config gives."""
    roots = (_resolved(paths.project_root), _resolved(paths.results_root), *map(_resolved, paths.extra_roots))
    mounts: list[Mount] = []
    for key, value in local_inputs(cfg):
        if not PurePosixPath(value).is_absolute():
            raise SpecError(
                key,
                f"relative path {value!r} means different things on the host and in a container",
                "give an absolute path, or resolve it against the config file's directory before "
                "building the run",
            )
        source = _inside(Path(value), roots, key)
        problem = input_problem(key, source)
        if problem is not None:
            raise SpecError(key, problem, MISSING_FIX)
        mounts.append(Mount(str(source), value, read_only=True, kind="bind"))
    return mounts


def _resolved(path: Path) -> Path:
    return Path(path).expanduser().resolve()


def _inside(path: Path, roots: tuple[Path, ...], what: str) -> Path:
    resolved = _resolved(path)
    if not any(resolved == root or root in resolved.parents for root in roots):
        allowed = ", ".join(str(r) for r in roots)
        raise SpecError(
            what,
            f"{resolved} is outside the allowed roots ({allowed})",
            "keep inputs inside the project or results directory",
        )
    return resolved
