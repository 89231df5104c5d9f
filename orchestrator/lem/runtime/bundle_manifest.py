"""The manifest of an offline bundle, and every check made against it (pure).

A bundle (``lem images bundle``) is one tar archive: ``manifest.json`` first, then the saved base
images (``bases/<id>.tar``, ``docker save``) and the wheelhouses (``wheelhouse/<name>/…``, the
harness wheel included). The manifest says what each file's sha256 and size must be, which base
image (id = config digest, which survives ``docker save``/``docker load``, plus the registry
digests) and Python (``cp311``) each image is built on, the CPU architecture of it all, the
requirements file each wheelhouse was collected for, and the lem and contract versions.

The checks return problems as sentences (what, where, what to do); the isolated side refuses to
build while any remain.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath

from pydantic import BaseModel, ConfigDict, Field

from lem.runtime.images import Flavour
from lem.runtime.wheels import normalise_arch, package_problem
from lem_harness.contract import contract_major

BUNDLE_FORMAT = "lem-bundle/1"
MANIFEST_NAME = "manifest.json"
SHOWN = 3  # wheels named per problem; the rest are counted


class _Closed(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FileEntry(_Closed):
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size_bytes: int = Field(ge=0)


class BaseImage(_Closed):
    reference: str  # the tag the Dockerfile builds FROM (docker load restores it)
    id: str  # sha256:… of the image config: what `docker load` must give back
    repo_digests: tuple[str, ...] = ()
    arch: str
    file: str  # bases/<id>.tar in the bundle


class PythonInfo(_Closed):
    version: str  # "3.11"
    abi: str  # "cp311"


class BundledImage(_Closed):
    backend: str
    flavour: Flavour
    base: BaseImage
    python: PythonInfo
    wheelhouse: str  # wheelhouse/<name> in the bundle
    requirements: str  # repo-relative path of the file the wheelhouse was collected for
    requirements_sha256: str


class Manifest(_Closed):
    format: str = BUNDLE_FORMAT
    created_utc: str
    lem_version: str
    contract_version: str
    arch: str
    pins_sha256: str
    images: tuple[BundledImage, ...]
    files: dict[str, FileEntry]


@dataclass(frozen=True)
class HostFacts:
    """The isolated side: its engine's CPU, its lem, and the checkout's requirements files' sha256."""

    arch: str
    contract_version: str
    requirements_sha256: dict[str, str | None]  # path → sha256 (None: absent)


def safe_member(name: str) -> bool:
    """A relative path with no ``..``: nothing in a bundle may land outside its folder."""
    path = PurePosixPath(name)
    return bool(name) and not path.is_absolute() and ".." not in path.parts


def file_problems(manifest: Manifest, seen: dict[str, FileEntry]) -> list[str]:
    """Files missing, unexpected, or whose size/sha256 differs from the manifest."""
    problems = []
    for name, want in manifest.files.items():
        got = seen.get(name)
        if got is None:
            problems.append(f"{name}: missing from the bundle")
        elif got.sha256 != want.sha256:
            problems.append(
                f"{name}: sha256 {got.sha256[:12]}… ≠ manifest {want.sha256[:12]}… (corrupted in transit?)"
            )
        elif got.size_bytes != want.size_bytes:
            problems.append(f"{name}: {got.size_bytes} bytes ≠ manifest {want.size_bytes}")
    problems += [f"{name}: not in the manifest" for name in sorted(set(seen) - set(manifest.files))]
    return problems


def host_problems(manifest: Manifest, host: HostFacts) -> list[str]:
    """What makes this bundle unfit for this host before anything is loaded."""
    problems = []
    if manifest.format != BUNDLE_FORMAT:
        problems.append(f"bundle format {manifest.format!r}; this lem reads {BUNDLE_FORMAT!r}")
    if contract_major(manifest.contract_version) != contract_major(host.contract_version):
        problems.append(
            f"bundle made by lem {manifest.lem_version} for contract {manifest.contract_version}; "
            f"this lem speaks {host.contract_version}: bundle again with this lem version"
        )
    bundled, here = normalise_arch(manifest.arch), normalise_arch(host.arch)
    if bundled != here:
        problems.append(
            f"wrong architecture: the bundle is for {bundled}, this Docker engine runs {here}: "
            f"make the bundle on a {here} machine"
        )
    for image in manifest.images:
        have = host.requirements_sha256.get(image.requirements)
        if have != image.requirements_sha256:
            state = "is absent here" if have is None else "differs here"
            problems.append(
                f"{image.requirements} {state}: the bundle's wheelhouse {image.wheelhouse} was collected for "
                "another version of it; check out the lem version the bundle was made from, or bundle again"
            )
    return problems


def package_problems(wheelhouse: str, filenames: list[str], python: PythonInfo, arch: str) -> list[str]:
    """Wheels/debs of ``wheelhouse`` that do not fit ``python`` on ``arch``, as one problem."""
    bad = [p for name in sorted(filenames) if (p := package_problem(name, python.abi, arch))]
    if not bad:
        return []
    more = f" (+{len(bad) - SHOWN} more)" if len(bad) > SHOWN else ""
    return [
        f"{wheelhouse}: {len(bad)} package(s) do not fit Python {python.version} ({python.abi}) on "
        f"{normalise_arch(arch)}: {'; '.join(bad[:SHOWN])}{more}"
    ]


def loaded_problems(image: BundledImage, loaded_id: str | None, loaded_arch: str | None) -> list[str]:
    """After ``docker load``: the base must be the very image the bundle recorded."""
    base = image.base
    if loaded_id is None:
        return [f"{base.reference}: not present after loading {base.file}"]
    problems = []
    if loaded_id != base.id:
        problems.append(
            f"{base.reference}: image digest changed: the bundle recorded {base.id[:19]}…, "
            f"the engine has {loaded_id[:19]}… (another image under that tag?)"
        )
    if loaded_arch is not None and normalise_arch(loaded_arch) != normalise_arch(base.arch):
        problems.append(
            f"{base.reference}: wrong architecture {loaded_arch}, the bundle recorded {base.arch}"
        )
    return problems


def python_problems(image: BundledImage, probed: PythonInfo) -> list[str]:
    """The loaded base's own Python must be the one the wheels were collected for."""
    if probed.abi == image.python.abi:
        return []
    return [
        f"{image.base.reference}: wrong Python ABI: the base runs Python {probed.version} ({probed.abi}), "
        f"the wheels in {image.wheelhouse} are for {image.python.abi}: bundle again"
    ]
