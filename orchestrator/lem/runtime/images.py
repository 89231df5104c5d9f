"""Backend images: names, how each is built, its build context, and whether it fits this host.

No Docker here (``lem.runtime.docker`` runs the builds and answers the queries). The build
context is assembled by hand so that it holds exactly what the Dockerfile copies: the harness
source, the backend's directory under ``images/`` and that image's wheelhouse only.
"""

from __future__ import annotations

import os
import tarfile
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import IO, Literal, Protocol

from lem.runtime.errors import LemRuntimeError, build_command
from lem.runtime.spec import LABEL_CONTRACT
from lem_harness.contract import CONTRACT_VERSION, contract_major
from lem_harness.schema_base import BACKENDS

IMAGE_REPOSITORY = "llenergymeasure"
REPOSITORY_ENV = "LEM_IMAGE_REPOSITORY"  # another name for this checkout's images on a shared engine
Flavour = Literal["gpu", "cpu"]
FLAVOURS: tuple[Flavour, ...] = ("gpu", "cpu")
CPU_FLAVOUR_BACKENDS = frozenset({"pytorch", "vllm"})  # images/<backend>/Dockerfile.cpu
_SKIP_NAMES = frozenset({"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", "build"})
WHEELHOUSE_PRIVATE = ("harness", ".requirements.sha256")  # kept out of build contexts


def lem_version() -> str:
    try:
        return metadata.version("llenergymeasure")
    except metadata.PackageNotFoundError:
        return "0.0.0"


def image_name(
    backend: str, flavour: Flavour = "gpu", version: str | None = None, repository: str | None = None
) -> str:
    """``llenergymeasure/<backend>:<version>``; the CPU test flavour is ``llenergymeasure/<backend>:cpu``.

    ``repository`` (else ``LEM_IMAGE_REPOSITORY``, for checkouts sharing one Docker engine)
    replaces ``llenergymeasure``."""
    tag = "cpu" if flavour == "cpu" else (version or lem_version())
    return f"{image_repository(repository)}/{backend}:{tag}"


def image_repository(repository: str | None = None) -> str:
    """``repository``, else ``$LEM_IMAGE_REPOSITORY``, else ``llenergymeasure``."""
    return repository or os.environ.get(REPOSITORY_ENV) or IMAGE_REPOSITORY


def flavour_of(image: str) -> Flavour:
    return "cpu" if image.endswith(":cpu") else "gpu"


def wheelhouse_name(backend: str, flavour: Flavour) -> str:
    return f"{backend}-cpu" if flavour == "cpu" else backend


@dataclass(frozen=True)
class ImageBuild:
    """One image build, fully decided: tag, Dockerfile and wheelhouse (repo-relative), build args.

    ``wheelhouse_source``: a folder to take the wheelhouse from instead of ``<repo>/<wheelhouse>``
    (an unpacked bundle); ``network``: the build's network mode (``"none"``: provably offline).
    """

    backend: str
    flavour: Flavour
    tag: str
    dockerfile: str
    wheelhouse: str
    offline: bool
    buildargs: tuple[tuple[str, str], ...]
    wheelhouse_source: Path | None = None
    network: str | None = None
    nocache: bool = False

    def wheelhouse_dir(self, repo_root: Path) -> Path:
        return self.wheelhouse_source or repo_root / self.wheelhouse


def plan_build(
    backend: str,
    flavour: Flavour = "gpu",
    *,
    offline: bool = False,
    base_image: str | None = None,
    repository: str | None = None,
) -> ImageBuild:
    """How to build ``backend``'s image. A CPU test flavour always builds offline."""
    if backend not in BACKENDS:
        raise LemRuntimeError(f"unknown backend {backend!r}", f"choose one of: {', '.join(BACKENDS)}")
    if flavour == "cpu" and backend not in CPU_FLAVOUR_BACKENDS:
        flavoured = " and ".join(sorted(CPU_FLAVOUR_BACKENDS))
        raise LemRuntimeError(f"no CPU flavour for {backend}", f"CPU flavours exist for {flavoured} only")
    offline = offline or flavour == "cpu"
    wheelhouse = f"wheelhouse/{wheelhouse_name(backend, flavour)}"
    args = {"CONTRACT_VERSION": CONTRACT_VERSION, "LEM_VERSION": lem_version(), "WHEELHOUSE": wheelhouse}
    if flavour == "gpu":  # the CPU Dockerfile is offline by construction
        args["OFFLINE"] = "1" if offline else "0"
    if base_image:
        args["BASE_IMAGE"] = base_image
    dockerfile = f"images/{backend}/Dockerfile" + (".cpu" if flavour == "cpu" else "")
    return ImageBuild(
        backend,
        flavour,
        image_name(backend, flavour, repository=repository),
        dockerfile,
        wheelhouse,
        offline,
        tuple(sorted(args.items())),
    )


def has_wheelhouse(repo_root: Path, backend: str, flavour: Flavour) -> bool:
    """Whether ``wheelhouse/<backend>[-cpu]/`` holds wheels (then a build can be offline)."""
    return any((repo_root / "wheelhouse" / wheelhouse_name(backend, flavour)).glob("*.whl"))


def check_sources(repo_root: Path, build: ImageBuild) -> None:
    """Raise when the Dockerfile or (offline) the wheelhouse is missing, saying how to make it."""
    if not (repo_root / build.dockerfile).is_file():
        raise LemRuntimeError(
            f"{build.dockerfile} not found under {repo_root}", "run from the repository root"
        )
    wheels = build.wheelhouse_dir(repo_root)
    if build.offline and not any(wheels.glob("*.whl")):
        flavour = " cpu" if build.flavour == "cpu" else ""
        raise LemRuntimeError(
            f"offline build needs wheels in {build.wheelhouse}/ and there are none",
            f"collect them on a connected machine: scripts/build_wheelhouse.sh {build.backend}{flavour} "
            f"(make wheelhouse BACKEND={build.backend}{' FLAVOUR=cpu' if flavour else ''})",
        )


def write_context(repo_root: Path, build: ImageBuild, out: IO[bytes]) -> int:
    """Write the build context (an uncompressed tar) to ``out``; returns the number of files."""
    # The wheelhouse's own copy of the harness wheel (harness/) stays out: the image builds the harness
    # from source, and a changed wheel there would invalidate the cached dependency layer.
    sources = [
        (f"images/{build.backend}", repo_root / "images" / build.backend, ()),
        ("images/harness", repo_root / "images" / "harness", ()),
        (build.wheelhouse, build.wheelhouse_dir(repo_root), WHEELHOUSE_PRIVATE),
    ]
    count = 0
    with tarfile.open(fileobj=out, mode="w") as tar:
        for rel, root, private in sources:
            if root.is_dir():
                tar.add(root, arcname=rel, recursive=False)
            else:  # an online build may have no wheelhouse: the Dockerfile still copies the folder
                tar.addfile(_dir_entry(rel))
            for path in _files_under(root, private):
                tar.add(path, arcname=f"{rel}/{path.relative_to(root).as_posix()}", recursive=False)
                count += path.is_file()
    return count


def _dir_entry(arcname: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(arcname)
    info.type = tarfile.DIRTYPE
    info.mode = 0o755
    return info


def _files_under(root: Path, private: tuple[str, ...] = ()) -> Iterable[Path]:
    if not root.is_dir():
        return []
    return sorted(p for p in root.rglob("*") if _wanted(p.relative_to(root).parts, private))


def _wanted(parts: tuple[str, ...], private: tuple[str, ...]) -> bool:
    if parts[0] in private or parts[-1].endswith(".pyc"):
        return False
    return not any(part in _SKIP_NAMES or part.endswith(".egg-info") for part in parts)


@dataclass(frozen=True)
class ImageStatus:
    """What the engine knows about one image name."""

    name: str
    present: bool
    image_id: str | None = None
    contract: str | None = None
    created: str | None = None
    size_bytes: int | None = None


def image_problem(status: ImageStatus, host_contract: str = CONTRACT_VERSION) -> str | None:
    """Why this image cannot serve this host (``None`` when it can)."""
    backend = status.name.split("/")[-1].split(":")[0]
    if not status.present:
        return f"missing: {build_command(backend, flavour_of(status.name))}"
    if status.contract is None:
        return f"no {LABEL_CONTRACT} label: rebuild it ({build_command(backend, flavour_of(status.name))})"
    if contract_major(status.contract) != contract_major(host_contract):
        return f"contract {status.contract} ≠ host {host_contract}: rebuild it"
    return None


def expected_images(flavour: Flavour = "gpu") -> list[str]:
    backends = sorted(CPU_FLAVOUR_BACKENDS) if flavour == "cpu" else list(BACKENDS)
    return [image_name(b, flavour) for b in backends]


class ImageBuilder(Protocol):
    """What ``build_backend_image`` needs of a runtime (``DockerRuntime`` fits)."""

    def build_image(self, build: ImageBuild, context: IO[bytes], on_line: Callable[[str], None]) -> str: ...


def find_repo_root(start: Path | None = None) -> Path:
    """The checkout that holds ``images/harness``: ``start`` (default: cwd) or a parent, else lem's own."""
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents, Path(__file__).resolve().parents[3]):
        if (candidate / "images" / "harness" / "pyproject.toml").is_file():
            return candidate
    raise LemRuntimeError(f"no images/harness/ under {here} or its parents", "run from the repository root")


def build_backend_image(
    builder: ImageBuilder, repo_root: Path, build: ImageBuild, on_line: Callable[[str], None]
) -> str:
    """Check the sources, assemble the context, build; returns the image id."""
    check_sources(repo_root, build)
    with tempfile.TemporaryFile() as context:
        files = write_context(repo_root, build, context)
        on_line(f"[lem] build context: {files} files, {context.tell() / 1e6:.1f} MB ({build.wheelhouse})")
        context.seek(0)
        return builder.build_image(build, context, on_line)
