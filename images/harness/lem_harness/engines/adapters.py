"""A PEFT LoRA adapter's rank, read from its ``adapter_config.json`` (vLLM's and TensorRT-LLM's
``max_lora_rank``; PyTorch hands the directory to peft, which reads it itself)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

ADAPTER_CONFIG = "adapter_config.json"


def adapter_rank(adapter_config: Mapping[str, Any], source: str = "the adapter") -> int:
    """The rank ``r`` of a PEFT LoRA adapter from its ``adapter_config.json`` (``source``: the
    config's ``adapter``, for the message)."""
    kind, rank = adapter_config.get("peft_type", "LORA"), adapter_config.get("r")
    valid_rank = rank if isinstance(rank, int) and not isinstance(rank, bool) and rank >= 1 else None
    problems = [] if kind == "LORA" else ["is not a LoRA adapter"]
    if valid_rank is None:
        problems.append(f"has no positive integer LoRA rank 'r' (got {rank!r})")
    if valid_rank is None or problems:
        raise ValueError(
            f"{source}: {ADAPTER_CONFIG} {' and '.join(problems)}; found peft_type={kind!r}, r={rank!r}"
        )
    return valid_rank


def read_adapter_rank(directory: Path, source: str) -> int:
    """``adapter_rank`` of the adapter in ``directory``."""
    return adapter_rank(json.loads((directory / ADAPTER_CONFIG).read_text(encoding="utf-8")), source)
