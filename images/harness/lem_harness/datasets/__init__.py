"""Prompt sources: a hub dataset (``dataset``), a jsonl file or synthetic token ids (``prompts``).

Prompts are prepared before any measurement window and reach engines as token ids:
texts are sampled (seeded), encoded with the model's tokenizer and truncated to
``max_input_tokens``; synthetic prompts are token ids from the start.
"""

from __future__ import annotations

import os
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from lem_harness.datasets.errors import DatasetError
from lem_harness.datasets.hub import load_hub_texts
from lem_harness.datasets.jsonl import load_jsonl_texts
from lem_harness.datasets.synthetic import synthetic_prompts
from lem_harness.engines.base import Tokenizer
from lem_harness.experiment import ExperimentConfig
from lem_harness.prompt_sources import DatasetConfig, FilePrompts, SyntheticPrompts

__all__ = ["DatasetError", "PromptSet", "load_prompts", "sample_indices", "select_indices", "truncate"]


@dataclass(frozen=True)
class PromptSet:
    prompts: list[list[int]]  # token ids, at most max_input_tokens each
    source: str
    truncated: int = 0  # prompts cut to max_input_tokens
    warnings: list[str] = field(default_factory=list)


def sample_indices(available: int, sample_size: int, seed: int) -> list[int]:
    """``sample_size`` distinct indices drawn with ``seed``, in dataset order; all when too few."""
    if sample_size >= available:
        return list(range(available))
    return sorted(random.Random(seed).sample(range(available), sample_size))


def select_indices(available: int, count: int, shuffle: bool | None, seed: int) -> list[int]:
    """Which rows become prompts: ``shuffle`` None: a seeded sample in dataset order;
    false: the first ``count``; true: ``count`` rows in a seeded shuffled order."""
    if shuffle is None:
        return sample_indices(available, count, seed)
    order = list(range(available))
    if shuffle:
        random.Random(seed).shuffle(order)
    return order[:count]


def truncate(prompts: Sequence[Sequence[int]], max_tokens: int) -> tuple[list[list[int]], int]:
    """Each prompt cut to its first ``max_tokens`` ids, and how many were cut."""
    cut = sum(1 for p in prompts if len(p) > max_tokens)
    return [list(p[:max_tokens]) for p in prompts], cut


def _texts(config: ExperimentConfig, env: Mapping[str, str]) -> list[str]:
    source = config.prompt_source
    if isinstance(source, DatasetConfig):
        return load_hub_texts(source, env)
    if isinstance(source, FilePrompts):
        return load_jsonl_texts(source)
    raise TypeError(f"not a text source: {source!r}")


def _indices(config: ExperimentConfig, available: int, count: int) -> list[int]:
    source = config.prompt_source
    if isinstance(source, DatasetConfig):
        seed = source.seed if source.seed is not None else config.random_seed
        return select_indices(available, count, source.shuffle, seed)
    return sample_indices(available, count, config.random_seed)


def source_label(config: ExperimentConfig) -> str:
    """``ai_energy_score``, ``file``, ``synthetic``: which source the prompts came from."""
    source = config.prompt_source
    return source.name if isinstance(source, DatasetConfig) else source.type


def load_prompts(
    config: ExperimentConfig, tokenizer: Tokenizer, env: Mapping[str, str] = os.environ
) -> PromptSet:
    """The run's prompts as token ids (raises ``DatasetError`` with what to do when unreadable)."""
    source = config.prompt_source
    count = config.prompt_count
    notes: list[str] = []
    if isinstance(source, SyntheticPrompts):
        ids = synthetic_prompts(
            source, count, tokenizer.vocab_size, tokenizer.special_ids, config.random_seed
        )
    else:
        texts = _texts(config, env)
        if not texts:
            raise DatasetError(f"prompt source '{source_label(config)}' holds no prompts")
        if len(texts) < count:
            notes.append(f"{count} prompts requested but the source holds {len(texts)}: using all")
        chosen = [texts[i] for i in _indices(config, len(texts), count)]
        ids = tokenizer.encode(chosen)
    prompts, cut = truncate(ids, config.max_input_tokens)
    if cut:
        notes.append(
            f"{cut} of {len(prompts)} prompts truncated to max_input_tokens={config.max_input_tokens}"
        )
    return PromptSet(prompts=prompts, source=source_label(config), truncated=cut, warnings=notes)
