"""Framework-free batch plans and output-token counting."""

from __future__ import annotations

from lem_harness.engines.batching import dynamic_batches, output_length, sorted_static_batches, static_batches


def test_static_batches_keep_dataset_order() -> None:
    assert static_batches(7, 3) == [[0, 1, 2], [3, 4, 5], [6]]
    assert static_batches(0, 3) == []


def test_dynamic_batches_sort_longest_first_with_ties_in_dataset_order() -> None:
    lengths = [5, 9, 5, 2, 9, 7]
    assert dynamic_batches(lengths, batch_size=2) == [[1, 4], [5, 0], [2, 3]]


def test_sorted_static_batches_are_fixed_size_runs_of_the_longest_first_order() -> None:
    lengths = [5, 9, 5, 2, 9, 7, 1]
    # longest first: 1 (9), 4 (9), 5 (7), 0 (5), 2 (5), 3 (2), 6 (1); three at a time
    assert sorted_static_batches(lengths, batch_size=3) == [[1, 4, 5], [0, 2, 3], [6]]
    assert sorted_static_batches([], batch_size=3) == []


def test_dynamic_batches_respect_the_padded_token_budget() -> None:
    lengths = [10, 10, 10, 4, 4, 4, 4, 30]
    # 30 alone (a second prompt would pad to 60 > 40); 3 x 10 = 30 fits, a 4th would be 40 (ok), then 4s
    assert dynamic_batches(lengths, batch_size=8, max_tokens_per_batch=40) == [[7], [0, 1, 2, 3], [4, 5, 6]]
    assert dynamic_batches([50, 3], batch_size=4, max_tokens_per_batch=10) == [[0], [1]]


def test_output_length_stops_at_the_first_eos_and_counts_it() -> None:
    assert output_length([5, 6, 2, 0, 0], eos_ids={2}) == 3
    assert output_length([5, 6, 7], eos_ids={2}) == 3
    assert output_length([2, 2, 2], eos_ids={2}) == 1  # pad == eos: the padding is not output
    assert output_length([], eos_ids={2}) == 0
