"""Prompt sources: jsonl files, synthetic token ids of exact lengths, the hub through its cache."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from lem_harness.datasets import DatasetError, load_prompts, sample_indices, truncate
from lem_harness.datasets.hub import load_hub_texts
from lem_harness.datasets.jsonl import load_jsonl_texts
from lem_harness.datasets.synthetic import synthetic_prompts
from lem_harness.engines.base import Tokenizer
from lem_harness.experiment import ExperimentConfig
from lem_harness.prompt_sources import DatasetConfig, FilePrompts, SyntheticPrompts


class WordTokenizer(Tokenizer):
    """One id per whitespace-separated word (id = word length), plus BOS 1: easy to count by hand."""

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        return [[1, *(len(w) + 10 for w in t.split())] for t in texts]

    @property
    def vocab_size(self) -> int:
        return 50

    @property
    def special_ids(self) -> frozenset[int]:
        return frozenset({0, 1, 2})


def _write_jsonl(path: Path, rows: Sequence[object]) -> Path:
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


# ---- jsonl


def test_jsonl_reads_prompts_in_order_and_skips_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text('{"prompt": "a b"}\n\n{"prompt": "c", "id": 2}\n', encoding="utf-8")
    assert load_jsonl_texts(FilePrompts(type="file", path=str(path))) == ["a b", "c"]


def test_jsonl_errors_name_the_file_line_and_key(tmp_path: Path) -> None:
    bad_json = tmp_path / "bad.jsonl"
    bad_json.write_text('{"prompt": "ok"}\n{"prompt": \n', encoding="utf-8")
    with pytest.raises(DatasetError, match=r"bad\.jsonl:2: not valid JSON"):
        load_jsonl_texts(FilePrompts(type="file", path=str(bad_json)))
    wrong_key = _write_jsonl(tmp_path / "key.jsonl", [{"prompt": "x"}, {"text": "y"}])
    with pytest.raises(
        DatasetError, match=r"key\.jsonl:2: no 'prompt' key \(keys: text\); set prompts\.field"
    ):
        load_jsonl_texts(FilePrompts(type="file", path=str(wrong_key)))
    with pytest.raises(DatasetError, match=r"missing\.jsonl: no such file"):
        load_jsonl_texts(FilePrompts(type="file", path=str(tmp_path / "missing.jsonl")))


def test_jsonl_field_is_configurable(tmp_path: Path) -> None:
    path = _write_jsonl(tmp_path / "q.jsonl", [{"question": "why"}, {"question": "how so"}])
    cfg = FilePrompts(type="file", path=str(path), field="question")
    assert load_jsonl_texts(cfg) == ["why", "how so"]


# ---- sampling and truncation


def test_sampling_is_seeded_distinct_and_in_dataset_order() -> None:
    first = sample_indices(100, 10, seed=7)
    assert first == sample_indices(100, 10, seed=7)
    assert first != sample_indices(100, 10, seed=8)
    assert first == sorted(set(first)) and len(first) == 10 and all(0 <= i < 100 for i in first)
    assert sample_indices(5, 10, seed=7) == [0, 1, 2, 3, 4]


def test_truncate_keeps_the_head_and_counts_the_cut() -> None:
    assert truncate([[1, 2, 3, 4], [5, 6], [7, 8, 9]], 3) == ([[1, 2, 3], [5, 6], [7, 8, 9]], 1)


def test_load_prompts_from_jsonl_samples_encodes_and_truncates(tmp_path: Path) -> None:
    rows = [{"prompt": " ".join(["word"] * n)} for n in range(1, 11)]  # prompt i has i words
    path = _write_jsonl(tmp_path / "p.jsonl", rows)
    cfg = ExperimentConfig(
        model_name="m",
        max_input_tokens=6,
        random_seed=3,
        prompts={"type": "file", "path": str(path), "sample_size": 4},
    )
    prompts = load_prompts(cfg, WordTokenizer(), env={})
    chosen = sample_indices(10, 4, seed=3)
    assert [len(p) for p in prompts.prompts] == [
        min(6, i + 2) for i in chosen
    ]  # BOS + (i + 1) words, cut at 6
    assert prompts.truncated == sum(1 for i in chosen if i + 2 > 6)
    assert prompts.source == "file"


def test_load_prompts_warns_when_the_dataset_is_smaller_than_sample_size(tmp_path: Path) -> None:
    path = _write_jsonl(tmp_path / "p.jsonl", [{"prompt": "a"}, {"prompt": "b"}])
    cfg = ExperimentConfig(model_name="m", prompts={"type": "file", "path": str(path), "sample_size": 5})
    prompts = load_prompts(cfg, WordTokenizer(), env={})
    assert len(prompts.prompts) == 2
    assert any("5 prompts requested but the source holds 2" in w for w in prompts.warnings)


# ---- synthetic


def test_synthetic_fixed_lengths_are_exact_and_avoid_special_ids() -> None:
    cfg = SyntheticPrompts(type="synthetic", sample_size=20, input_len=37)
    prompts = synthetic_prompts(cfg, 20, vocab_size=50, special_ids={0, 1, 2}, seed=1)
    assert [len(p) for p in prompts] == [37] * 20
    assert all(3 <= t < 50 for p in prompts for t in p)


def test_synthetic_prompts_are_deterministic_per_seed() -> None:
    cfg = SyntheticPrompts(type="synthetic", sample_size=5, input_len_distribution="uniform")
    a = synthetic_prompts(cfg, 5, 1000, set(), seed=42)
    assert a == synthetic_prompts(cfg, 5, 1000, set(), seed=42)
    assert a != synthetic_prompts(cfg, 5, 1000, set(), seed=43)


def test_synthetic_uniform_and_normal_lengths_stay_in_bounds() -> None:
    uniform = SyntheticPrompts(
        type="synthetic",
        sample_size=200,
        input_len_distribution="uniform",
        input_len_min=5,
        input_len_max=9,
    )
    lengths = {len(p) for p in synthetic_prompts(uniform, 200, 50, set(), seed=0)}
    assert lengths == {5, 6, 7, 8, 9}
    normal = SyntheticPrompts(
        type="synthetic",
        sample_size=200,
        input_len_distribution="normal",
        input_len=20,
        input_len_std=30.0,
        input_len_min=10,
        input_len_max=30,
    )
    lengths = {len(p) for p in synthetic_prompts(normal, 200, 50, set(), seed=0)}
    assert min(lengths) == 10 and max(lengths) == 30  # the wide spread is clipped at both ends


def test_synthetic_through_load_prompts_is_truncated_to_max_input_tokens() -> None:
    cfg = ExperimentConfig(
        model_name="m", max_input_tokens=16, prompts={"type": "synthetic", "sample_size": 3}
    )
    prompts = load_prompts(cfg, WordTokenizer(), env={})
    assert [len(p) for p in prompts.prompts] == [16, 16, 16]  # input_len 512 by default
    assert prompts.truncated == 3 and "truncated to max_input_tokens=16" in prompts.warnings[0]


def test_synthetic_without_ordinary_tokens_is_an_error() -> None:
    cfg = SyntheticPrompts(type="synthetic", sample_size=1, input_len=4)
    with pytest.raises(DatasetError, match="no ordinary tokens"):
        synthetic_prompts(cfg, 1, 2, {0, 1}, seed=0)


# ---- hub


def test_hub_unreachable_message_names_hf_home_offline_and_alternatives(tmp_path: Path) -> None:
    env = {"HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1"}
    with pytest.raises(DatasetError) as caught:
        load_hub_texts(DatasetConfig(), env)
    message = str(caught.value)
    for needle in (
        "AIEnergyScore/text_generation",
        "HF_HOME=",
        "HF_HUB_OFFLINE=1",
        "prompts: {type: file",
        "prompts: {type: synthetic}",
    ):
        assert needle in message


def test_hub_dataset_is_read_from_a_cached_snapshot_offline(tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    pa = pytest.importorskip("pyarrow")
    repo = tmp_path / "hf" / "hub" / "datasets--AIEnergyScore--text_generation"
    data = repo / "snapshots" / "0123abcd" / "data"
    data.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0123abcd")
    pq.write_table(pa.table({"text": ["one two", "", "three"]}), data / "train-00000-of-00001.parquet")
    pq.write_table(pa.table({"text": ["held out"]}), data / "test-00000-of-00001.parquet")
    env = {"HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1"}
    assert load_hub_texts(DatasetConfig(), env) == ["one two", "three"]
    with pytest.raises(DatasetError, match=r"row 1 has no 'prompt' \(columns: text\); set dataset\.column"):
        load_hub_texts(DatasetConfig(column="prompt"), env)
