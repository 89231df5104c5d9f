"""Offline bundles: everything an isolated GPU host needs to build lem's images, in one archive.

Connected side, ``make_bundle``: for each image, take the pinned base (local, else pulled),
ask its own Python which ABI it is, collect the wheelhouse for that Python, refuse wheels that
do not fit, ``docker save`` the base, hash every file and write ``manifest.json`` + files as one
tar (``.tar.gz``/``.tgz`` compress). Isolated side, ``build_from_bundle``: unpack while hashing,
check every file, the architecture, the contract and the checkout's requirements against the
manifest, then ``docker load`` the bases, check that each loaded base is the recorded image and
runs the recorded Python, and only then build every image with the build's network off.
Any problem stops the work before the next step with a ``BundleError`` listing all of them.
Docker sits behind ``BundleEngine`` (``DockerRuntime`` fits); ``lem.runtime.bundle_manifest``
holds the pure checks.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tarfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Protocol

from lem.runtime.bundle_manifest import (
    MANIFEST_NAME,
    BaseImage,
    BundledImage,
    FileEntry,
    HostFacts,
    Manifest,
    PythonInfo,
    file_problems,
    host_problems,
    loaded_problems,
    package_problems,
    python_problems,
    safe_member,
)
from lem.runtime.errors import LemRuntimeError
from lem.runtime.images import (
    IMAGE_REPOSITORY,
    Flavour,
    ImageBuild,
    ImageBuilder,
    build_backend_image,
    lem_version,
    plan_build,
    wheelhouse_name,
)
from lem.runtime.pins import PINS_FILE, load_pins
from lem_harness.contract import CONTRACT_VERSION

CHUNK = 1 << 20
WHEELHOUSE_STAMP = ".requirements.sha256"  # build_wheelhouse.sh's own bookkeeping


class BundleError(LemRuntimeError):
    """The bundle cannot serve: ``problems`` lists every reason found at the step that stopped."""

    def __init__(self, what: str, problems: list[str], hint: str = "") -> None:
        self.problems = problems
        lines = "\n".join(f"  ✗ {p}" for p in problems)
        super().__init__(f"{what}: {len(problems)} problem(s)\n{lines}", hint)


@dataclass(frozen=True)
class ImageFacts:
    id: str
    repo_digests: tuple[str, ...]
    arch: str


class BundleEngine(ImageBuilder, Protocol):
    """What bundling and building from a bundle need of Docker (``DockerRuntime`` fits)."""

    def engine_arch(self) -> str: ...
    def image_facts(self, reference: str) -> ImageFacts | None: ...
    def pull_image(self, reference: str) -> None: ...
    def probe_python(self, reference: str) -> PythonInfo: ...
    def save_image(self, reference: str, out: IO[bytes]) -> None: ...
    def load_images(self, source: IO[bytes]) -> None: ...


# A wheelhouse maker: (backend, flavour, target Python "3.11") → the folder it filled.
WheelhouseMaker = Callable[[str, Flavour, str], Path]


def sha256_file(path: Path) -> FileEntry:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            digest.update(chunk)
    return FileEntry(sha256=digest.hexdigest(), size_bytes=path.stat().st_size)


# ============================================================================ connected side


@dataclass(frozen=True)
class BundleRequest:
    repo_root: Path
    out: Path
    backends: tuple[str, ...]
    flavour: Flavour
    base_image: str | None = None  # instead of the pinned base (all backends)


def make_bundle(
    request: BundleRequest, engine: BundleEngine, wheelhouses: WheelhouseMaker, on_line: Callable[[str], None]
) -> Manifest:
    """Write ``request.out``; returns its manifest."""
    work = request.out.parent / f".{request.out.name}.parts"  # saved bases wait here: room next to --out
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        bundler = _Bundler(request, engine, wheelhouses, on_line, work)
        images = [bundler.add_image(backend) for backend in request.backends]
        files = bundler.files
        manifest = Manifest(
            created_utc=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            lem_version=lem_version(),
            contract_version=CONTRACT_VERSION,
            arch=engine.engine_arch(),
            pins_sha256=sha256_file(request.repo_root / PINS_FILE).sha256,
            images=tuple(images),
            files={name: sha256_file(path) for name, path in sorted(files.items())},
        )
        _write_archive(request.out, manifest, files)
        return manifest
    finally:
        shutil.rmtree(work, ignore_errors=True)


@dataclass
class _Bundler:
    """Collects the bundle's files image by image (a base shared by two images is saved once)."""

    request: BundleRequest
    engine: BundleEngine
    wheelhouses: WheelhouseMaker
    on_line: Callable[[str], None]
    work: Path
    files: dict[str, Path] = field(default_factory=dict)

    def add_image(self, backend: str) -> BundledImage:
        """Add one image's base and wheelhouse to ``files``; returns its manifest entry."""
        request, engine = self.request, self.engine
        pinned = load_pins(request.repo_root).image(backend, request.flavour)
        reference = request.base_image or pinned.base_image
        self.on_line(f"[bundle] {backend} ({request.flavour}): base {reference}")
        facts = _local_base(engine, reference, pinned.base_digest, request.flavour)
        python = engine.probe_python(reference)
        self.on_line(f"[bundle] {reference}: {facts.id[:19]}…, {facts.arch}, Python {python.version}")
        name = f"wheelhouse/{wheelhouse_name(backend, request.flavour)}"
        self._add_wheelhouse(self.wheelhouses(backend, request.flavour, python.version), name, python, facts)
        base_file = f"bases/{facts.id.removeprefix('sha256:')[:16]}.tar"
        if base_file not in self.files:
            self.on_line(f"[bundle] docker save {reference} → {base_file}")
            self.files[base_file] = _save(engine, reference, self.work / Path(base_file).name)
        base = BaseImage(
            reference=reference, id=facts.id, repo_digests=facts.repo_digests, arch=facts.arch, file=base_file
        )
        return BundledImage(
            backend=backend,
            flavour=request.flavour,
            base=base,
            python=python,
            wheelhouse=name,
            requirements=pinned.requirements,
            requirements_sha256=sha256_file(request.repo_root / pinned.requirements).sha256,
        )

    def _add_wheelhouse(self, wheel_dir: Path, name: str, python: PythonInfo, facts: ImageFacts) -> None:
        wheel_files = _wheelhouse_files(wheel_dir, name)
        problems = package_problems(name, [p.name for p in wheel_files.values()], python, facts.arch)
        if problems:
            raise BundleError(f"{wheel_dir}", problems, "collect the wheels for the base image's Python")
        self.files.update(wheel_files)


def _local_base(engine: BundleEngine, reference: str, digest: str, flavour: Flavour) -> ImageFacts:
    facts = engine.image_facts(reference)
    if facts is None:
        if flavour == "cpu":
            raise LemRuntimeError(
                f"base image {reference} not found on this engine", "run scripts/bootstrap_base_image.sh"
            )
        engine.pull_image(reference)
        facts = engine.image_facts(reference)
        if facts is None:
            raise LemRuntimeError(f"base image {reference}: still absent after docker pull")
    if digest and not any(d.endswith(f"@{digest}") for d in facts.repo_digests):
        found = ", ".join(facts.repo_digests) or "no registry digest"
        raise LemRuntimeError(
            f"base image {reference}: digest changed: {PINS_FILE} pins {digest}, the local image has {found}",
            f"docker pull {reference.rsplit(':', 1)[0]}@{digest}, tag it {reference}, and bundle again "
            f"(or update base_digest in {PINS_FILE} after checking the new image)",
        )
    return facts


def _wheelhouse_files(wheel_dir: Path, name: str) -> dict[str, Path]:
    if not any(wheel_dir.glob("*.whl")):
        raise LemRuntimeError(f"no wheels in {wheel_dir}", "see the wheelhouse script's output above")
    return {
        f"{name}/{path.relative_to(wheel_dir).as_posix()}": path
        for path in sorted(wheel_dir.rglob("*"))
        if path.is_file() and path.name != WHEELHOUSE_STAMP
    }


def _save(engine: BundleEngine, reference: str, path: Path) -> Path:
    with path.open("wb") as f:
        engine.save_image(reference, f)
    return path


def _write_archive(out: Path, manifest: Manifest, files: dict[str, Path]) -> None:
    """manifest.json first (a reader checks it before unpacking gigabytes), then the files; atomic."""
    mode = "w:gz" if out.name.endswith((".tar.gz", ".tgz")) else "w"
    partial = out.with_name(f".{out.name}.partial")
    body = manifest.model_dump_json(indent=2).encode()
    with tarfile.open(partial, mode) as tar:  # type: ignore[call-overload]
        info = tarfile.TarInfo(MANIFEST_NAME)
        info.size = len(body)
        info.mode = 0o644
        tar.addfile(info, io.BytesIO(body))
        for name, path in sorted(files.items()):
            tar.add(path, arcname=name, recursive=False)
    os.replace(partial, out)


# ============================================================================ isolated side


@dataclass(frozen=True)
class BundleBuild:
    bundle: Path
    repo_root: Path
    staging: Path  # where the bundle is unpacked (must have room for it)
    backends: tuple[str, ...] = ()  # () = every image in the bundle
    repository: str = IMAGE_REPOSITORY
    nocache: bool = False


def read_bundle(
    bundle: Path, staging: Path, check_manifest: Callable[[Manifest], None] = lambda _m: None
) -> Manifest:
    """Unpack ``bundle`` into ``staging`` while hashing; ``BundleError`` unless every file checks out.

    ``check_manifest`` runs on the manifest before anything is unpacked (it raises to refuse)."""
    if not bundle.is_file():
        raise LemRuntimeError(
            f"bundle {bundle} not found", "give the path of the archive lem images bundle wrote"
        )
    try:
        with tarfile.open(bundle, "r|*") as tar:
            manifest = _read_manifest(bundle, tar)
            check_manifest(manifest)
            seen = {member.name: _unpack(tar, member, staging) for member in _file_members(bundle, tar)}
    except (tarfile.TarError, EOFError, OSError) as e:
        raise LemRuntimeError(f"bundle {bundle}: unreadable archive: {e}", "copy it again") from e
    problems = file_problems(manifest, seen)
    if problems:
        raise BundleError(f"bundle {bundle}", problems, "copy the bundle again, or make a new one")
    return manifest


def read_manifest(bundle: Path) -> Manifest:
    """Only the manifest of ``bundle`` (its first member): what it carries, nothing unpacked."""
    if not bundle.is_file():
        raise LemRuntimeError(
            f"bundle {bundle} not found", "give the path of the archive lem images bundle wrote"
        )
    try:
        with tarfile.open(bundle, "r|*") as tar:
            return _read_manifest(bundle, tar)
    except (tarfile.TarError, EOFError, OSError) as e:
        raise LemRuntimeError(f"bundle {bundle}: unreadable archive: {e}", "copy it again") from e


def _read_manifest(bundle: Path, tar: tarfile.TarFile) -> Manifest:
    first = tar.next()
    source = tar.extractfile(first) if first is not None and first.name == MANIFEST_NAME else None
    if source is None:
        raise LemRuntimeError(
            f"{bundle} is not a lem bundle: it does not start with {MANIFEST_NAME}", "use lem images bundle"
        )
    try:
        return Manifest.model_validate(json.loads(source.read()))
    except ValueError as e:
        raise LemRuntimeError(f"{bundle}: {MANIFEST_NAME} is malformed: {e}", "make a new bundle") from e


def _file_members(bundle: Path, tar: tarfile.TarFile) -> Iterator[tarfile.TarInfo]:
    """The members after the manifest, read forwards only (``for m in tar`` would restart)."""
    while (member := tar.next()) is not None:
        if member.isdir():
            continue
        if not member.isfile() or not safe_member(member.name):
            raise LemRuntimeError(f"{bundle}: refusing member {member.name!r} (not a plain relative file)")
        yield member


def _unpack(tar: tarfile.TarFile, member: tarfile.TarInfo, staging: Path) -> FileEntry:
    target = staging / member.name
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    source = tar.extractfile(member)
    assert source is not None  # a regular file
    with target.open("wb") as out:
        for chunk in iter(lambda: source.read(CHUNK), b""):
            digest.update(chunk)
            out.write(chunk)
    return FileEntry(sha256=digest.hexdigest(), size_bytes=target.stat().st_size)


def host_facts(repo_root: Path, manifest: Manifest, arch: str) -> HostFacts:
    shas: dict[str, str | None] = {}
    for image in manifest.images:
        path = repo_root / image.requirements
        shas[image.requirements] = sha256_file(path).sha256 if path.is_file() else None
    return HostFacts(arch=arch, contract_version=CONTRACT_VERSION, requirements_sha256=shas)


def check_host(manifest: Manifest, host: HostFacts) -> None:
    """Before unpacking: format, contract, architecture, the checkout's requirements files."""
    problems = host_problems(manifest, host)
    if problems:
        raise BundleError("bundle does not fit this host", problems)


def check_packages(manifest: Manifest) -> None:
    """Every wheel and .deb against the Python ABI and architecture of the image it is for."""
    problems = []
    for image in manifest.images:
        names = [
            name.rsplit("/", 1)[-1] for name in manifest.files if name.startswith(f"{image.wheelhouse}/")
        ]
        problems += package_problems(image.wheelhouse, names, image.python, image.base.arch)
    if problems:
        raise BundleError("bundle packages do not fit their images", problems)


def load_bases(
    manifest: Manifest, staging: Path, engine: BundleEngine, on_line: Callable[[str], None]
) -> None:
    """``docker load`` each base once, then check each is the recorded image with the recorded Python."""
    for file in sorted({image.base.file for image in manifest.images}):
        on_line(f"[bundle] docker load {file}")
        with (staging / file).open("rb") as source:
            engine.load_images(source)
    problems = []
    for image in manifest.images:
        facts = engine.image_facts(image.base.reference)
        found = loaded_problems(image, facts.id if facts else None, facts.arch if facts else None)
        problems += found or python_problems(image, engine.probe_python(image.base.reference))
    if problems:
        raise BundleError("the loaded base images do not match the bundle", problems)


def build_from_bundle(
    request: BundleBuild, engine: BundleEngine, on_line: Callable[[str], None]
) -> dict[str, str]:
    """Verify, load, build offline; returns ``tag → image id`` of the images built."""
    arch = engine.engine_arch()
    manifest = read_bundle(
        request.bundle,
        request.staging,
        lambda found: check_host(found, host_facts(request.repo_root, found, arch)),
    )
    on_line(f"[bundle] {len(manifest.files)} files verified (lem {manifest.lem_version}, {manifest.arch})")
    chosen = [i for i in manifest.images if not request.backends or i.backend in request.backends]
    missing = sorted(set(request.backends) - {i.backend for i in manifest.images})
    if missing:
        raise BundleError(f"bundle {request.bundle}", [f"no {b} image in this bundle" for b in missing])
    check_packages(manifest)
    load_bases(manifest, request.staging, engine, on_line)
    built = {}
    for image in chosen:
        plan = plan_build(
            image.backend,
            image.flavour,
            offline=True,
            base_image=image.base.reference,
            repository=request.repository,
        )
        plan = _offline(plan, request.staging / image.wheelhouse, request.nocache)
        on_line(f"[bundle] building {plan.tag} on {image.base.reference} (network: none)")
        built[plan.tag] = build_backend_image(engine, request.repo_root, plan, on_line)
    return built


def _offline(plan: ImageBuild, wheelhouse: Path, nocache: bool) -> ImageBuild:
    return replace(plan, wheelhouse_source=wheelhouse, network="none", nocache=nocache)


@contextmanager
def staging_dir(parent: Path) -> Iterator[Path]:
    """A fresh folder under ``parent`` (next to the bundle: room for its size), removed afterwards."""
    path = parent / f".lem-bundle-{os.getpid()}"
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
