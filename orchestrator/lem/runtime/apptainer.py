"""The Apptainer runtime: each run in the backend image converted once to a ``.sif`` file.

For cluster nodes without Docker (``slurm.launcher: apptainer``). A ``ContainerSpec`` maps to one
``apptainer exec`` command (pure: ``apptainer_command``): bind mounts bound at their container
paths (read-only where the spec says so), named volumes as directories under ``volume_root``,
the spec's environment passed with ``--env`` into a clean environment, ``--nv`` when the run has
GPUs (then selected with ``CUDA_VISIBLE_DEVICES``). The process itself is run and stopped exactly
as the local runtime does (``lem.runtime.local``). The images are expected at
``<image_dir>/<image name with / and : as _>.sif``; ``check`` says how to build a missing one.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

from lem.runtime.errors import LemRuntimeError
from lem.runtime.local import DEFAULT_VOLUME_ROOT, LocalRuntime, PathMap
from lem.runtime.spec import ContainerSpec

HARNESS = ("python3", "-m", "lem_harness")


def sif_name(image: str) -> str:
    """``llenergymeasure/pytorch:cpu`` → ``llenergymeasure_pytorch_cpu.sif``."""
    return image.replace("/", "_").replace(":", "_") + ".sif"


def apptainer_command(spec: ContainerSpec, sif: Path, volume_root: Path) -> list[str]:
    """The ``apptainer exec`` argv of one run (no shell involved)."""
    argv = ["apptainer", "exec", "--cleanenv", "--containall", "--no-home"]
    if spec.gpu_uuids:
        argv.append("--nv")
    for mount in spec.mounts:
        source = mount.source if mount.kind == "bind" else str(volume_root / mount.source)
        argv += ["--bind", f"{source}:{mount.target}" + (":ro" if mount.read_only else "")]
    for name, value in spec.environment:
        if name != "NVIDIA_VISIBLE_DEVICES":
            argv += ["--env", f"{name}={value}"]
    if spec.gpu_uuids:
        argv += ["--env", f"CUDA_VISIBLE_DEVICES={','.join(spec.gpu_uuids)}"]
    return [*argv, str(sif), *HARNESS, *spec.command]


class ApptainerRuntime(LocalRuntime):
    """``Runtime`` that runs the harness with ``apptainer exec`` in the run's ``.sif`` image."""

    name = "apptainer"

    def __init__(self, image_dir: Path, *, volume_root: Path = DEFAULT_VOLUME_ROOT) -> None:
        super().__init__("apptainer", volume_root=volume_root)
        self.image_dir = Path(image_dir).expanduser()

    def check(self, images: Sequence[str]) -> None:
        if shutil.which("apptainer") is None:
            raise LemRuntimeError(
                "apptainer is not installed on this node", "install Apptainer, or use slurm.launcher: docker"
            )
        missing = [i for i in images if not (self.image_dir / sif_name(i)).is_file()]
        if missing:
            hints = "; ".join(
                f"apptainer build {self.image_dir / sif_name(i)} docker-daemon://{i}" for i in missing
            )
            raise LemRuntimeError(f"no .sif image for {', '.join(missing)} in {self.image_dir}", hints)

    def _command(self, spec: ContainerSpec, paths: PathMap, run_dir: Path, scratch: list[Path]) -> list[str]:
        return apptainer_command(spec, self.image_dir / sif_name(spec.image), self._volume_root)

    def _environment(self, spec: ContainerSpec, paths: PathMap) -> dict[str, str]:
        return dict(self._base_env)  # the container's own environment is given with --env (--cleanenv)
