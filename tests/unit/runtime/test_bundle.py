"""Offline bundles on small synthetic archives, with a fake engine: every mismatch, by name."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import pytest
from click.testing import CliRunner

from lem.cli import images_cmd, main
from lem.cli.doctor_cmd import DoctorDeps, doctor
from lem.runtime.bundle import (
    BundleBuild,
    BundleError,
    BundleRequest,
    ImageFacts,
    build_from_bundle,
    make_bundle,
    read_bundle,
)
from lem.runtime.bundle_manifest import MANIFEST_NAME, PythonInfo
from lem.runtime.errors import LemRuntimeError
from lem.runtime.images import ImageBuild, ImageStatus
from lem_harness.contract import CONTRACT_VERSION
from tests.unit.doctor.test_doctor import GOOD as DOCTOR_GOOD

REPO = Path(__file__).resolve().parents[3]
BASE = "lem/debian-bookworm:base"
BASE_ID = "sha256:" + "d6" * 32
SAVED = b"a docker save archive of the base"
WHEELS = {
    "torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl": b"torch bytes",
    "transformers-5.24.0-py3-none-any.whl": b"transformers bytes",
    "harness/lem_harness-3.0.0-py3-none-any.whl": b"harness bytes",
    ".requirements.sha256": b"stamp, never bundled\n",
}
PY311 = PythonInfo(version="3.11", abi="cp311")


class FakeEngine:
    """``BundleEngine`` without Docker: images by reference, saves and loads as bytes."""

    def __init__(self, arch: str = "x86_64", python: PythonInfo = PY311) -> None:
        self.arch = arch
        self.python = python
        self.images: dict[str, ImageFacts] = {}
        self.on_load: dict[str, ImageFacts] = {}  # what `docker load` makes appear
        self.loaded: list[bytes] = []
        self.builds: list[tuple[ImageBuild, dict[str, bytes]]] = []

    def engine_arch(self) -> str:
        return self.arch

    def image_facts(self, reference: str) -> ImageFacts | None:
        return self.images.get(reference)

    def pull_image(self, reference: str) -> None:
        raise AssertionError("nothing is pulled in these tests")

    def probe_python(self, reference: str) -> PythonInfo:
        return self.python

    def save_image(self, reference: str, out: IO[bytes]) -> None:
        out.write(SAVED)

    def load_images(self, source: IO[bytes]) -> None:
        self.loaded.append(source.read())
        self.images.update(self.on_load)

    def build_image(self, build: ImageBuild, context: IO[bytes], on_line: Callable[[str], None]) -> str:
        with tarfile.open(fileobj=context) as tar:
            files = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]
        self.builds.append((build, files))
        return "sha256:" + "b1" * 32


def connected() -> FakeEngine:
    engine = FakeEngine()
    engine.images[BASE] = ImageFacts(BASE_ID, (), "amd64")
    return engine


def isolated(arch: str = "x86_64", python: PythonInfo = PY311, loaded_id: str = BASE_ID) -> FakeEngine:
    engine = FakeEngine(arch, python)
    engine.on_load[BASE] = ImageFacts(loaded_id, (), "amd64")
    return engine


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A checkout with what bundling and building read: pins, images/pytorch, a harness stub."""
    root = tmp_path / "repo"
    (root / "images").mkdir(parents=True)
    shutil.copy(REPO / "images" / "pins.toml", root / "images" / "pins.toml")
    shutil.copytree(REPO / "images" / "pytorch", root / "images" / "pytorch")
    (root / "images" / "harness").mkdir()
    (root / "images" / "harness" / "pyproject.toml").write_text("[project]\nname = 'lem-harness'\n")
    return root


def wheelhouse_maker(root: Path, wheels: dict[str, bytes] = WHEELS) -> Callable[[str, str, str], Path]:
    def make(backend: str, flavour: str, python: str) -> Path:
        assert (backend, flavour, python) == ("pytorch", "cpu", "3.11")
        folder = root / "wheelhouse" / "pytorch-cpu"
        for name, data in wheels.items():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_bytes(data)
        return folder

    return make


def bundle(repo: Path, out: Path, wheels: dict[str, bytes] = WHEELS) -> Path:
    request = BundleRequest(repo, out, ("pytorch",), "cpu")
    make_bundle(request, connected(), wheelhouse_maker(repo, wheels), lambda _line: None)  # type: ignore[arg-type]
    return out


def build(repo: Path, bundle_path: Path, engine: FakeEngine, **kwargs: Any) -> dict[str, str]:
    staging = bundle_path.parent / "staging"
    staging.mkdir(exist_ok=True)
    request = BundleBuild(bundle_path, repo, staging, **kwargs)
    return build_from_bundle(request, engine, lambda _line: None)


def problems_of(call: Callable[[], object]) -> list[str]:
    with pytest.raises(BundleError) as caught:
        call()
    return caught.value.problems


def rewrite(bundle_path: Path, edit: Callable[[dict[str, bytes]], None]) -> None:
    """Re-pack ``bundle_path`` after ``edit`` changed its members (name → bytes), order kept."""
    with tarfile.open(bundle_path) as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]
    edit(members)
    with tarfile.open(bundle_path, "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def edit_manifest(bundle_path: Path, change: Callable[[dict[str, Any]], None]) -> None:
    def edit(members: dict[str, bytes]) -> None:
        manifest = json.loads(members[MANIFEST_NAME])
        change(manifest)
        members[MANIFEST_NAME] = json.dumps(manifest).encode()

    rewrite(bundle_path, edit)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------------------- the good path


def test_the_manifest_records_every_file_the_base_and_the_python(repo: Path, tmp_path: Path) -> None:
    out = bundle(repo, tmp_path / "b.tar")

    with tarfile.open(out) as tar:
        names = tar.getnames()
        manifest = json.loads(tar.extractfile(MANIFEST_NAME).read())  # type: ignore[union-attr]
    base_file = "bases/" + "d6" * 8 + ".tar"
    assert names == [
        MANIFEST_NAME,
        base_file,
        "wheelhouse/pytorch-cpu/harness/lem_harness-3.0.0-py3-none-any.whl",
        "wheelhouse/pytorch-cpu/torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl",
        "wheelhouse/pytorch-cpu/transformers-5.24.0-py3-none-any.whl",
    ]
    assert manifest["files"][base_file] == {"sha256": sha(SAVED), "size_bytes": len(SAVED)}
    assert manifest["files"]["wheelhouse/pytorch-cpu/transformers-5.24.0-py3-none-any.whl"] == {
        "sha256": sha(b"transformers bytes"),
        "size_bytes": 18,
    }
    requirements = (repo / "images/pytorch/requirements-cpu.txt").read_bytes()
    assert manifest["images"] == [
        {
            "backend": "pytorch",
            "flavour": "cpu",
            "base": {
                "reference": BASE,
                "id": BASE_ID,
                "repo_digests": [],
                "arch": "amd64",
                "file": base_file,
            },
            "python": {"version": "3.11", "abi": "cp311"},
            "wheelhouse": "wheelhouse/pytorch-cpu",
            "requirements": "images/pytorch/requirements-cpu.txt",
            "requirements_sha256": sha(requirements),
        }
    ]
    assert (manifest["arch"], manifest["contract_version"]) == ("x86_64", CONTRACT_VERSION)
    assert manifest["pins_sha256"] == sha((repo / "images/pins.toml").read_bytes())
    assert not list(tmp_path.glob(".b.tar*"))  # no parts or partial archive left behind


def test_a_bundle_builds_offline_on_its_loaded_base_with_its_own_wheels(repo: Path, tmp_path: Path) -> None:
    out = bundle(repo, tmp_path / "b.tar")
    shutil.rmtree(repo / "wheelhouse")  # the isolated side has no wheelhouse of its own
    engine = isolated()

    built = build(repo, out, engine, repository="itest")

    assert built == {"itest/pytorch:cpu": "sha256:" + "b1" * 32}
    assert engine.loaded == [SAVED]
    plan, context = engine.builds[0]
    assert (plan.network, plan.offline, dict(plan.buildargs)["BASE_IMAGE"]) == ("none", True, BASE)
    assert context["wheelhouse/pytorch-cpu/torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl"] == (
        b"torch bytes"
    )
    assert "wheelhouse/pytorch-cpu/harness/lem_harness-3.0.0-py3-none-any.whl" not in context
    assert "images/pytorch/Dockerfile.cpu" in context


def test_a_compressed_bundle_reads_the_same(repo: Path, tmp_path: Path) -> None:
    out = bundle(repo, tmp_path / "b.tar.gz")
    assert out.read_bytes()[:2] == b"\x1f\x8b"
    assert len(read_bundle(out, tmp_path / "s").files) == 4


# ---------------------------------------------------------------------------- what is refused


def test_a_corrupted_file_is_named_and_nothing_is_loaded(repo: Path, tmp_path: Path) -> None:
    out = bundle(repo, tmp_path / "b.tar")
    wheel = "wheelhouse/pytorch-cpu/transformers-5.24.0-py3-none-any.whl"
    rewrite(out, lambda m: m.__setitem__(wheel, b"transformers bytez"))
    engine = isolated()

    assert problems_of(lambda: build(repo, out, engine)) == [
        f"{wheel}: sha256 {sha(b'transformers bytez')[:12]}… ≠ manifest "
        f"{sha(b'transformers bytes')[:12]}… (corrupted in transit?)"
    ]
    assert engine.loaded == [] and engine.builds == []


def test_missing_and_unexpected_files_are_named(repo: Path, tmp_path: Path) -> None:
    out = bundle(repo, tmp_path / "b.tar")
    base_file = "bases/" + "d6" * 8 + ".tar"

    def edit(members: dict[str, bytes]) -> None:
        del members[base_file]
        members["wheelhouse/pytorch-cpu/evil-1.0-py3-none-any.whl"] = b"x"

    rewrite(out, edit)
    assert problems_of(lambda: build(repo, out, isolated())) == [
        f"{base_file}: missing from the bundle",
        "wheelhouse/pytorch-cpu/evil-1.0-py3-none-any.whl: not in the manifest",
    ]


def test_wrong_architecture(repo: Path, tmp_path: Path) -> None:
    out = bundle(repo, tmp_path / "b.tar")
    engine = isolated(arch="aarch64")

    assert problems_of(lambda: build(repo, out, engine)) == [
        "wrong architecture: the bundle is for x86_64, this Docker engine runs aarch64: "
        "make the bundle on a aarch64 machine"
    ]
    assert engine.loaded == []
    assert list((tmp_path / "staging").iterdir()) == []  # refused from the manifest, before unpacking


def test_wheels_for_another_python_are_refused_when_bundling(repo: Path, tmp_path: Path) -> None:
    wheels = {"torch-2.13.0+cpu-cp312-cp312-manylinux_2_28_x86_64.whl": b"t", "a-1-py3-none-any.whl": b"a"}

    assert problems_of(lambda: bundle(repo, tmp_path / "b.tar", wheels)) == [
        "wheelhouse/pytorch-cpu: 1 package(s) do not fit Python 3.11 (cp311) on x86_64: "
        "torch-2.13.0+cpu-cp312-cp312-manylinux_2_28_x86_64.whl: built for cp312-cp312, not cp311"
    ]
    assert not (tmp_path / "b.tar").exists()


def test_wheels_that_do_not_fit_the_manifests_python_are_refused_before_loading(
    repo: Path, tmp_path: Path
) -> None:
    out = bundle(repo, tmp_path / "b.tar")
    edit_manifest(out, lambda m: m["images"][0]["python"].update(version="3.12", abi="cp312"))

    assert problems_of(
        lambda: build(repo, out, isolated(python=PythonInfo(version="3.12", abi="cp312")))
    ) == [
        "wheelhouse/pytorch-cpu: 1 package(s) do not fit Python 3.12 (cp312) on x86_64: "
        "torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl: built for cp311-cp311, not cp312"
    ]


def test_a_loaded_base_with_another_python_is_refused(repo: Path, tmp_path: Path) -> None:
    out = bundle(repo, tmp_path / "b.tar")
    engine = isolated(python=PythonInfo(version="3.12", abi="cp312"))

    assert problems_of(lambda: build(repo, out, engine)) == [
        f"{BASE}: wrong Python ABI: the base runs Python 3.12 (cp312), the wheels in "
        "wheelhouse/pytorch-cpu are for cp311: bundle again"
    ]
    assert engine.builds == []


def test_a_changed_base_digest_is_refused(repo: Path, tmp_path: Path) -> None:
    out = bundle(repo, tmp_path / "b.tar")
    other = "sha256:" + "ee" * 32
    engine = isolated(loaded_id=other)

    assert problems_of(lambda: build(repo, out, engine)) == [
        f"{BASE}: image digest changed: the bundle recorded {BASE_ID[:19]}…, the engine has "
        f"{other[:19]}… (another image under that tag?)"
    ]
    assert engine.builds == []


def test_a_pinned_base_digest_that_the_local_base_lacks_is_refused(repo: Path, tmp_path: Path) -> None:
    pins = repo / "images/pins.toml"
    digest = "sha256:" + "ab" * 32
    pins.write_text(pins.read_text().replace('base_digest = ""', f'base_digest = "{digest}"'))

    with pytest.raises(
        LemRuntimeError, match=r"digest changed: images/pins\.toml pins sha256:abab"
    ) as caught:
        bundle(repo, tmp_path / "b.tar")
    assert "the local image has no registry digest" in str(caught.value)


def test_a_checkout_of_another_version_and_another_contract_are_refused(repo: Path, tmp_path: Path) -> None:
    out = bundle(repo, tmp_path / "b.tar")
    edit_manifest(out, lambda m: m.update(contract_version="99.0.0", lem_version="9.9.9"))
    requirements = repo / "images/pytorch/requirements-cpu.txt"
    requirements.write_text(requirements.read_text() + "numpy==2.3.5\n")

    assert problems_of(lambda: build(repo, out, isolated())) == [
        f"bundle made by lem 9.9.9 for contract 99.0.0; this lem speaks {CONTRACT_VERSION}: "
        "bundle again with this lem version",
        "images/pytorch/requirements-cpu.txt differs here: the bundle's wheelhouse wheelhouse/pytorch-cpu "
        "was collected for another version of it; check out the lem version the bundle was made from, "
        "or bundle again",
    ]


def test_an_archive_that_is_not_a_bundle(tmp_path: Path) -> None:
    out = tmp_path / "x.tar"
    with tarfile.open(out, "w") as tar:
        info = tarfile.TarInfo("README")
        tar.addfile(info, io.BytesIO(b""))
    with pytest.raises(LemRuntimeError, match=r"x\.tar is not a lem bundle: it does not start with manifest"):
        read_bundle(out, tmp_path / "s")
    (tmp_path / "junk.tar").write_bytes(b"not a tar at all")
    with pytest.raises(LemRuntimeError, match="unreadable archive"):
        read_bundle(tmp_path / "junk.tar", tmp_path / "s")


def test_a_member_that_would_land_outside_the_staging_folder_is_refused(repo: Path, tmp_path: Path) -> None:
    out = bundle(repo, tmp_path / "b.tar")
    rewrite(out, lambda m: m.__setitem__("../escape.whl", b"x"))
    with pytest.raises(LemRuntimeError, match=r"refusing member '\.\./escape\.whl'"):
        read_bundle(out, tmp_path / "s")
    assert not (tmp_path / "escape.whl").exists()


def test_asking_for_a_backend_the_bundle_lacks(repo: Path, tmp_path: Path) -> None:
    out = bundle(repo, tmp_path / "b.tar")
    assert problems_of(lambda: build(repo, out, isolated(), backends=("vllm",))) == [
        "no vllm image in this bundle"
    ]


# ---------------------------------------------------------------------------- the command


def test_the_command_lists_the_problems_and_exits_1_without_a_traceback(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = bundle(repo, tmp_path / "b.tar")
    monkeypatch.setattr(images_cmd, "_docker", lambda: isolated(arch="aarch64"))
    monkeypatch.chdir(repo)

    result = CliRunner().invoke(main, ["images", "build", "--bundle", str(out)])

    assert result.exit_code == 1
    assert "bundle does not fit this host: 1 problem(s)" in result.output
    assert "✗ wrong architecture: the bundle is for x86_64" in result.output
    assert "Traceback" not in result.output
    assert not list(tmp_path.glob(".lem-bundle-*"))  # the staging folder is removed


def test_the_command_builds_and_names_what_it_built(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = bundle(repo, tmp_path / "b.tar")
    engine = isolated()
    monkeypatch.setattr(images_cmd, "_docker", lambda: engine)
    monkeypatch.chdir(repo)

    result = CliRunner().invoke(main, ["images", "build", "--bundle", str(out), "--repository", "t"])

    assert result.exit_code == 0, result.output
    assert f"built t/pytorch:cpu (sha256:{'b1' * 6}) from {out}" in result.output
    assert engine.builds[0][0].tag == "t/pytorch:cpu"


def test_bundle_and_base_image_do_not_mix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(images_cmd, "_docker", isolated)
    result = CliRunner().invoke(
        main, ["images", "build", "--bundle", str(tmp_path / "b.tar"), "--base-image", "x:1"]
    )
    assert result.exit_code == 2
    assert "--bundle builds on the bundle's own base images" in result.output


def _doctor_with(bundle_path: Path, statuses: dict[str, ImageStatus]) -> tuple[int, dict[str, Any]]:
    deps = DoctorDeps(
        facts=lambda _p: DOCTOR_GOOD, images=lambda names: ({n: statuses[n] for n in names}, None)
    )
    done = CliRunner().invoke(
        doctor, ["--bundle", str(bundle_path), "--json"], obj=deps, catch_exceptions=False
    )
    return done.exit_code, json.loads(done.output)


def test_doctor_says_whether_the_bundles_images_are_loaded_and_built(repo: Path, tmp_path: Path) -> None:
    path = bundle(repo, tmp_path / "lem.bundle")
    built = "llenergymeasure/pytorch:cpu"
    ready = {
        BASE: ImageStatus(BASE, True, BASE_ID),
        built: ImageStatus(built, True, "sha256:b1", CONTRACT_VERSION),
    }
    code, out = _doctor_with(path, ready)
    rows = [(c["status"], c["name"], c["found"]) for c in out["checks"] if "bundle" in c["name"]]
    assert code == 0
    assert rows == [
        ("ok", f"bundle base {BASE}", "loaded (sha256:d6d6d6d6d6d6)"),
        ("ok", f"bundle image {built}", f"built, contract {CONTRACT_VERSION}"),
    ]

    other = {**ready, BASE: ImageStatus(BASE, True, "sha256:" + "ee" * 32)}
    code, out = _doctor_with(path, other)
    (base_row,) = [c for c in out["checks"] if c["name"] == f"bundle base {BASE}"]
    assert code == 1 and base_row["status"] == "fail"
    assert base_row["found"].startswith("another image is loaded under this tag (sha256:eeee")
    assert base_row["fix"] == f"lem images build --bundle {path}"

    code, out = _doctor_with(path, {BASE: ImageStatus(BASE, False), built: ImageStatus(built, False)})
    assert code == 1
    assert [(c["status"], c["found"]) for c in out["checks"] if "bundle" in c["name"]] == [
        ("fail", "not loaded"),
        ("fail", "missing"),
    ]


def test_doctor_names_a_file_that_is_not_a_bundle(tmp_path: Path) -> None:
    junk = tmp_path / "junk.tar"
    with tarfile.open(junk, "w") as tar:
        tar.addfile(tarfile.TarInfo("readme.txt"), io.BytesIO(b""))
    code, out = _doctor_with(junk, {})
    (row,) = [c for c in out["checks"] if c["name"] == "bundle junk.tar"]
    assert code == 1 and row["status"] == "fail"
    assert row["found"] == f"{junk} is not a lem bundle: it does not start with manifest.json"
