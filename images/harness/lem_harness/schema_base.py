"""What every schema model shares: the closed base model, backend and precision names, and
how a string is told to be a local path or a hub id."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

Backend = Literal["pytorch", "vllm", "tensorrt"]
BACKENDS: tuple[Backend, ...] = ("pytorch", "vllm", "tensorrt")
Precision = Literal["float32", "float16", "bfloat16"]

HUB_ID = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}$"


class StrictModel(BaseModel):
    """Base of every config model: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


def is_local_path(value: str) -> bool:
    """A ``model_name`` / ``prompts.path`` string that names a file-system path rather than a hub id."""
    return value.startswith(("/", "./", "../", "~"))
