"""Framework-free batch bookkeeping shared by engines: batch plans and output-token counts."""

from __future__ import annotations

from collections.abc import Collection, Sequence


def static_batches(count: int, batch_size: int) -> list[list[int]]:
    """Prompt indices in dataset order, ``batch_size`` at a time (the last batch may be smaller)."""
    return [list(range(start, min(start + batch_size, count))) for start in range(0, count, batch_size)]


def longest_first(lengths: Sequence[int]) -> list[int]:
    """Prompt indices sorted by length, longest first, ties in dataset order."""
    return sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))


def sorted_static_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Prompts sorted longest first (ties in dataset order), ``batch_size`` at a time: prompts of
    similar length share a batch, so less padding is computed."""
    order = longest_first(lengths)
    return [order[start : start + batch_size] for start in range(0, len(order), batch_size)]


def dynamic_batches(
    lengths: Sequence[int], batch_size: int, max_tokens_per_batch: int | None = None
) -> list[list[int]]:
    """Prompts sorted by length (longest first, ties in dataset order), grouped so that each batch
    has at most ``batch_size`` prompts and, when a budget is given, at most
    ``max_tokens_per_batch`` padded input tokens (prompts x longest prompt). A prompt longer
    than the budget runs alone."""
    order = longest_first(lengths)
    batches: list[list[int]] = []
    current: list[int] = []
    for index in order:
        longest = lengths[current[0]] if current else lengths[index]
        over_budget = max_tokens_per_batch is not None and (len(current) + 1) * longest > max_tokens_per_batch
        if current and (len(current) == batch_size or over_budget):
            batches.append(current)
            current = []
        current.append(index)
    if current:
        batches.append(current)
    return batches


def output_length(generated: Sequence[int], eos_ids: Collection[int]) -> int:
    """Tokens a request generated: up to and including its first EOS; the padding after it is not output."""
    for position, token in enumerate(generated):
        if token in eos_ids:
            return position + 1
    return len(generated)


def eos_ids(generation_eos: int | Sequence[int] | None, tokenizer_eos: int | None) -> frozenset[int]:
    """Every EOS id a model stops on: its generation config's (one id or a list), else the tokenizer's."""
    if generation_eos is None:
        return frozenset() if tokenizer_eos is None else frozenset([int(tokenizer_eos)])
    if isinstance(generation_eos, int):
        return frozenset([int(generation_eos)])
    return frozenset(int(e) for e in generation_eos)
