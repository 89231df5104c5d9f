"""The image pins: ``images/pins.toml``, the one place that says what goes into each image.

Per backend: the engine release its adapter is written against, and per image flavour (gpu,
cpu) the base image (tag, registry digest once known), the requirements file the image installs
and the Python packages pinned in it. ``lem.runtime.pins_sync`` derives the generated files
from these pins and checks the hand-written ones against them; ``lem images bundle`` reads the
base images from here. A malformed pin file is a ``LemRuntimeError`` naming the dotted key.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lem.runtime.errors import LemRuntimeError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

PINS_FILE = "images/pins.toml"
Flavour = Literal["gpu", "cpu"]


class _Closed(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FlavourPins(_Closed):
    """One image: its base, its requirements file and the packages pinned there."""

    base_image: str = Field(min_length=1)
    base_digest: str = Field("", pattern=r"^(sha256:[0-9a-f]{64})?$")
    requirements: str = Field(min_length=1)
    packages: dict[str, str] = Field(min_length=1)
    lock: bool = False  # the requirements file is a full freeze: checked against the pins, not generated
    note: str = ""

    @property
    def base_reference(self) -> str:
        """``tag@digest`` when the digest is pinned, else the tag."""
        return f"{self.base_image}@{self.base_digest}" if self.base_digest else self.base_image

    def requirement_lines(self) -> list[str]:
        return [f"{name}{spec}" for name, spec in self.packages.items()]


class BackendPins(_Closed):
    engine: str = Field(min_length=1)
    engine_version: str = Field(pattern=r"^\d+(\.\d+)*$")
    gpu: FlavourPins
    cpu: FlavourPins | None = None

    def flavours(self) -> dict[Flavour, FlavourPins]:
        found: dict[Flavour, FlavourPins] = {"gpu": self.gpu}
        if self.cpu is not None:
            found["cpu"] = self.cpu
        return found


class Pins(_Closed):
    pytorch: BackendPins
    vllm: BackendPins
    tensorrt: BackendPins

    def backends(self) -> dict[str, BackendPins]:
        return {"pytorch": self.pytorch, "vllm": self.vllm, "tensorrt": self.tensorrt}

    def image(self, backend: str, flavour: Flavour) -> FlavourPins:
        pinned = self.backends()[backend].flavours().get(flavour)
        if pinned is None:
            raise LemRuntimeError(f"{PINS_FILE} pins no {flavour} image for {backend}")
        return pinned


@dataclass(frozen=True)
class PinnedImage:
    """One (backend, flavour) row, for the tables and loops that want them flat."""

    backend: str
    flavour: Flavour
    engine: str
    engine_version: str
    pins: FlavourPins


def pinned_images(pins: Pins) -> list[PinnedImage]:
    return [
        PinnedImage(name, flavour, backend.engine, backend.engine_version, image)
        for name, backend in pins.backends().items()
        for flavour, image in backend.flavours().items()
    ]


def parse_pins(text: str, source: str = PINS_FILE) -> Pins:
    """Pins from TOML text; ``LemRuntimeError`` naming the file and dotted key when malformed."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise LemRuntimeError(f"{source}: not valid TOML: {e}", "fix the syntax") from e
    try:
        return Pins.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        key = ".".join(str(part) for part in first["loc"])
        raise LemRuntimeError(
            f"{source}: {key}: {first['msg']}", f"see the header of {PINS_FILE} for the keys"
        ) from e


def load_pins(repo_root: Path) -> Pins:
    path = repo_root / PINS_FILE
    if not path.is_file():
        raise LemRuntimeError(f"{path} not found", "run from the repository root")
    return parse_pins(path.read_text(encoding="utf-8"), str(path))
