"""Readable, path-safe, unique names for expanded configurations (``pytorch-bs4-float16``)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping

MAX_NAME_CHARS = 150  # run ids append "-cNN"; RunSpec.run_id allows 200

# Short prefixes for well-known keys (matched on the last path segment); "" means the value alone.
ABBREVIATIONS: dict[str, str] = {
    "batch_size": "bs",
    "max_batch_size": "bs",
    "max_num_seqs": "seqs",
    "max_output_tokens": "out",
    "max_input_tokens": "in",
    "min_output_tokens": "minout",
    "tensor_parallel_size": "tp",
    "pipeline_parallel_size": "pp",
    "tp_size": "tp",
    "pp_size": "pp",
    "sample_size": "n",
    "num_input_prompts": "n",
    "random_seed": "seed",
    "block_size": "blk",
    "gpu_memory_utilization": "gmu",
    "fp_precision": "",
    "experiment": "",
}

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe(text: str) -> str:
    """Path-safe form of ``text``: other characters become ``_``; starts alphanumeric."""
    cleaned = _UNSAFE.sub("_", text).strip("._-")
    return cleaned or "config"


def value_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "none"
    if isinstance(value, (list, tuple)):
        return "_".join(value_text(v) for v in value)
    if isinstance(value, Mapping):
        return "_".join(f"{k}{value_text(v)}" for k, v in value.items())
    return str(value)


def axis_token(axis: str, value: object) -> str:
    """``("batch_size", 4)`` -> ``bs4``; ``("fp_precision", "float16")`` -> ``float16``."""
    leaf = axis.rsplit(".", 1)[-1]
    text = value_text(value)
    prefix = ABBREVIATIONS.get(leaf)
    if prefix is not None:
        return f"{prefix}{text}"
    if isinstance(value, str):
        return text
    return f"{leaf}-{text}"


def config_name(head: str, axis_values: Mapping[str, object]) -> str:
    tokens = [head, *(axis_token(k, v) for k, v in axis_values.items())]
    name = safe("-".join(t for t in tokens if t))
    if len(name) > MAX_NAME_CHARS:
        digest = hashlib.sha256(name.encode()).hexdigest()[:8]
        name = f"{name[: MAX_NAME_CHARS - 9].rstrip('._-')}-{digest}"
    return name


def unique_names(names: Iterable[str]) -> list[str]:
    """Suffix ``-2``, ``-3``, ... onto repeats, in order, so every name is unique."""
    taken: set[str] = set()
    out: list[str] = []
    for name in names:
        candidate, n = name, 1
        while candidate in taken:
            n += 1
            candidate = f"{name}-{n}"
        taken.add(candidate)
        out.append(candidate)
    return out
