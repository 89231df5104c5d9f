"""Synthetic prompts: seeded random token ids of exact lengths, drawn from the tokenizer's vocabulary.

Lengths are ``fixed`` (``input_len``), ``uniform`` on ``[input_len_min, input_len_max]``
or ``normal`` around ``input_len`` with ``input_len_std``, rounded and clipped to
``[input_len_min, input_len_max]``. Special tokens are never drawn.
"""

from __future__ import annotations

import random
from collections.abc import Set

from lem_harness.datasets.errors import DatasetError
from lem_harness.prompt_sources import SyntheticPrompts


def prompt_lengths(cfg: SyntheticPrompts, count: int, rng: random.Random) -> list[int]:
    if cfg.input_len_distribution == "fixed":
        return [cfg.input_len] * count
    if cfg.input_len_distribution == "uniform":
        return [rng.randint(cfg.input_len_min, cfg.input_len_max) for _ in range(count)]
    return [
        min(cfg.input_len_max, max(cfg.input_len_min, round(rng.gauss(cfg.input_len, cfg.input_len_std))))
        for _ in range(count)
    ]


def synthetic_prompts(
    cfg: SyntheticPrompts, count: int, vocab_size: int, special_ids: Set[int], seed: int
) -> list[list[int]]:
    """``count`` prompts of token ids; the same ``seed`` gives the same prompts."""
    allowed = [i for i in range(vocab_size) if i not in special_ids]
    if not allowed:
        raise DatasetError(
            f"the tokenizer's vocabulary ({vocab_size} ids) has no ordinary tokens to draw from"
        )
    rng = random.Random(seed)
    lengths = prompt_lengths(cfg, count, rng)
    return [[allowed[rng.randrange(len(allowed))] for _ in range(n)] for n in lengths]
