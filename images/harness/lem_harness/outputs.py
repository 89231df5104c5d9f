"""``save_outputs``: what each measured prompt generated, written beside ``result.json``.

``outputs.jsonl`` holds one JSON object per measured prompt, in prompt order (whatever
order the engine's batches ran in): ``index`` (the prompt's position), ``input_tokens``,
``output_tokens``, ``token_ids`` (the generated ids) and, with ``decode_token_to_text``,
``text`` (decoded after the measured window, special tokens left out). The outputs never
go into ``result.json``, which stays small.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from lem_harness.engines.base import BatchResult, Generation
from lem_harness.fileio import atomic_write_text


def in_prompt_order(plan: Sequence[Sequence[int]], batches: Sequence[BatchResult]) -> list[Generation]:
    """The generations of ``batches`` (run in ``plan``'s order) re-ordered by prompt index."""
    by_index: dict[int, Generation] = {}
    for indices, batch in zip(plan, batches, strict=True):
        if len(indices) != len(batch.generations):
            raise ValueError(
                f"a batch of {len(indices)} prompts returned {len(batch.generations)} generations"
            )
        by_index.update(zip(indices, batch.generations, strict=True))
    return [by_index[i] for i in sorted(by_index)]


def output_records(
    generations: Sequence[Generation], decode: Callable[[Sequence[int]], str] | None
) -> list[dict[str, Any]]:
    """One record per prompt; ``text`` only when ``decode`` is given."""
    records: list[dict[str, Any]] = []
    for index, gen in enumerate(generations):
        record: dict[str, Any] = {
            "index": index,
            "input_tokens": gen.input_tokens,
            "output_tokens": gen.output_tokens,
            "token_ids": list(gen.output_ids),
        }
        if decode is not None:
            record["text"] = decode(gen.output_ids)
        records.append(record)
    return records


def write_outputs(path: Path, records: Sequence[dict[str, Any]]) -> None:
    """``records`` as JSON lines, written atomically (a reader sees the old file or the whole new one)."""
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
