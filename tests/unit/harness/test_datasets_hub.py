"""Hub prompt sources: built-in aliases and their extraction, subsets, shuffle and seed, offline
errors. Each dataset is a small fake in a temporary Hugging Face cache laid out like the real one."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from lem_harness.datasets import DatasetError, load_prompts, select_indices
from lem_harness.datasets.extract import alpaca_prompt, mmlu_prompt, sharegpt_prompt
from lem_harness.datasets.hub import download_patterns, fetch_command, load_hub_texts
from lem_harness.engines.base import Tokenizer
from lem_harness.experiment import ExperimentConfig
from lem_harness.prompt_sources import DatasetConfig, HubPrompts

pq = pytest.importorskip("pyarrow.parquet")
pa = pytest.importorskip("pyarrow")


class CharTokenizer(Tokenizer):
    """One id per character (its code point): prompts decode back to their text by eye."""

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        return [[ord(c) for c in t] for t in texts]

    @property
    def vocab_size(self) -> int:
        return 0x110000

    @property
    def special_ids(self) -> frozenset[int]:
        return frozenset()


def _snapshot(home: Path, repo_id: str) -> Path:
    """An empty snapshot of ``repo_id`` in the cache under ``home`` (``HF_HOME``)."""
    repo = home / "hub" / f"datasets--{repo_id.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("c0ffee")
    root = repo / "snapshots" / "c0ffee"
    root.mkdir(parents=True)
    return root


def _parquet(path: Path, columns: dict[str, list[Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(columns), path)


def _env(home: Path) -> dict[str, str]:
    return {"HF_HOME": str(home), "HF_HUB_OFFLINE": "1"}


# ---- schema


def test_builtin_names_resolve_to_their_hub_dataset_split_and_subset() -> None:
    cases = {
        "ai_energy_score": ("AIEnergyScore/text_generation", "train", None, "text"),
        "alpaca": ("tatsu-lab/alpaca", "train", None, None),
        "sharegpt": ("anon8231489123/ShareGPT_Vicuna_unfiltered", "train", None, None),
        "gsm8k": ("openai/gsm8k", "train", "main", "question"),
        "mmlu": ("cais/mmlu", "test", "all", None),
    }
    for name, expected in cases.items():
        cfg = DatasetConfig(name=name)
        assert (cfg.repo_id, cfg.resolved_split, cfg.resolved_subset, cfg.resolved_column) == expected
    assert DatasetConfig(name="gsm8k", subset="socratic", split="test").resolved_subset == "socratic"


def test_prompts_type_huggingface_is_the_dataset_section() -> None:
    cfg = ExperimentConfig.model_validate(
        {"model_name": "m", "prompts": {"type": "huggingface", "dataset": "gsm8k", "split": "test",
                                        "shuffle": True, "seed": 3, "sample_size": 5}}
    )  # fmt: skip
    assert isinstance(cfg.prompts, HubPrompts)
    assert cfg.prompt_source == DatasetConfig(name="gsm8k", split="test", shuffle=True, seed=3, sample_size=5)
    assert cfg.prompt_count == 5


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"name": "sharegpt", "split": "test"}, "'sharegpt' is one file"),
        ({"name": "alpaca", "shuffle": False, "seed": 1}, "seed is given but shuffle is false"),
        ({"name": "not a name"}, "neither a built-in dataset"),
        ({"name": "alpaca", "shufle": True}, "shufle"),
    ],
)
def test_bad_hub_selections_are_errors(section: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ExperimentConfig.model_validate({"model_name": "m", "dataset": section})
    with pytest.raises(ValidationError, match=message):
        hub = {"type": "huggingface", "dataset": section.pop("name"), **section}
        ExperimentConfig.model_validate({"model_name": "m", "prompts": hub})


# ---- extraction (pure)


def test_alpaca_joins_instruction_and_input() -> None:
    assert alpaca_prompt({"instruction": "Sum these.", "input": "1, 2"}) == "Sum these.\n\n1, 2"
    assert alpaca_prompt({"instruction": "Say hi.", "input": ""}) == "Say hi."
    assert alpaca_prompt({"instruction": "  ", "input": "x"}) is None


def test_sharegpt_takes_the_first_human_turn() -> None:
    row = {"conversations": [{"from": "gpt", "value": "hello"}, {"from": "human", "value": "Why?"},
                             {"from": "human", "value": "later"}]}  # fmt: skip
    assert sharegpt_prompt(row) == "Why?"
    assert sharegpt_prompt({"conversations": [{"from": "user", "value": "Q"}]}) == "Q"
    assert sharegpt_prompt({"conversations": [{"from": "gpt", "value": "only the model"}]}) is None


def test_mmlu_writes_question_lettered_choices_and_answer() -> None:
    row = {"question": "2 + 2 =", "choices": ["3", "4", "5", "22"], "answer": 1}
    assert mmlu_prompt(row) == "2 + 2 =\nA. 3\nB. 4\nC. 5\nD. 22\nAnswer:"


# ---- selection (pure)


def test_selection_sample_first_rows_or_seeded_shuffle() -> None:
    assert select_indices(10, 3, None, seed=7) == sorted(select_indices(10, 3, None, seed=7))
    assert select_indices(10, 3, False, seed=7) == [0, 1, 2]
    shuffled = select_indices(10, 4, True, seed=7)
    assert shuffled == select_indices(10, 4, True, seed=7)
    assert shuffled != sorted(shuffled) and len(set(shuffled)) == 4
    assert shuffled != select_indices(10, 4, True, seed=8)
    assert sorted(select_indices(3, 5, True, seed=1)) == [0, 1, 2]


# ---- through the cache


def test_alpaca_from_the_cache(tmp_path: Path) -> None:
    root = _snapshot(tmp_path, "tatsu-lab/alpaca")
    rows = {"instruction": ["Add.", "Greet.", ""], "input": ["1 2", "", "x"], "output": ["3", "hi", "y"]}
    _parquet(root / "data" / "train-00000-of-00001-a09b74b3ef9c3b56.parquet", rows)
    assert load_hub_texts(DatasetConfig(name="alpaca"), _env(tmp_path)) == ["Add.\n\n1 2", "Greet."]
    # a column set on a built-in replaces its extraction
    assert load_hub_texts(DatasetConfig(name="alpaca", column="output"), _env(tmp_path)) == ["3", "hi", "y"]


def test_sharegpt_from_its_one_json_file(tmp_path: Path) -> None:
    root = _snapshot(tmp_path, "anon8231489123/ShareGPT_Vicuna_unfiltered")
    rows = [
        {"id": "a", "conversations": [{"from": "human", "value": "first?"}, {"from": "gpt", "value": "."}]},
        {"id": "b", "conversations": []},
        {"id": "c", "conversations": [{"from": "human", "value": "second?"}]},
    ]
    (root / "ShareGPT_V3_unfiltered_cleaned_split.json").write_text(json.dumps(rows))
    (root / "ShareGPT_V3_unfiltered_cleaned_split_no_imsorry.json").write_text(json.dumps(rows[:1]))
    assert load_hub_texts(DatasetConfig(name="sharegpt"), _env(tmp_path)) == ["first?", "second?"]


def test_gsm8k_reads_its_subset_and_split_only(tmp_path: Path) -> None:
    root = _snapshot(tmp_path, "openai/gsm8k")
    _parquet(root / "main" / "train-00000-of-00001.parquet", {"question": ["q1", "q2"], "answer": ["a", "b"]})
    _parquet(root / "main" / "test-00000-of-00001.parquet", {"question": ["t1"], "answer": ["a"]})
    _parquet(root / "socratic" / "train-00000-of-00001.parquet", {"question": ["s1"], "answer": ["a"]})
    env = _env(tmp_path)
    assert load_hub_texts(DatasetConfig(name="gsm8k"), env) == ["q1", "q2"]
    assert load_hub_texts(DatasetConfig(name="gsm8k", split="test"), env) == ["t1"]
    assert load_hub_texts(DatasetConfig(name="gsm8k", subset="socratic"), env) == ["s1"]
    with pytest.raises(DatasetError, match="no data files for subset 'nope', split 'train'"):
        load_hub_texts(DatasetConfig(name="gsm8k", subset="nope"), env)


def test_mmlu_from_the_all_subset(tmp_path: Path) -> None:
    root = _snapshot(tmp_path, "cais/mmlu")
    test = {
        "question": ["Capital of France?"],
        "subject": ["geo"],
        "choices": [["Paris", "Rome"]],
        "answer": [0],
    }
    _parquet(root / "all" / "test-00000-of-00001.parquet", test)
    aux = {"question": ["aux"], "subject": ["x"], "choices": [["a", "b"]], "answer": [0]}
    _parquet(root / "all" / "auxiliary_train-00000-of-00001.parquet", aux)
    assert load_hub_texts(DatasetConfig(name="mmlu"), _env(tmp_path)) == [
        "Capital of France?\nA. Paris\nB. Rome\nAnswer:"
    ]


def test_a_hub_id_without_column_uses_the_first_usual_column(tmp_path: Path) -> None:
    root = _snapshot(tmp_path, "org/qa")
    _parquet(root / "train.parquet", {"id": [1, 2], "question": ["why", "how"], "input": ["x", "y"]})
    assert load_hub_texts(DatasetConfig(name="org/qa"), _env(tmp_path)) == ["why", "how"]
    other = _snapshot(tmp_path, "org/odd")
    _parquet(other / "train.parquet", {"id": [1], "body": ["b"]})
    with pytest.raises(DatasetError, match=r"none of the usual prompt columns .* \(columns: id, body\)"):
        load_hub_texts(DatasetConfig(name="org/odd"), _env(tmp_path))


def test_shuffle_and_seed_pick_the_prompts_end_to_end(tmp_path: Path) -> None:
    root = _snapshot(tmp_path, "org/letters")
    _parquet(root / "train.parquet", {"text": list("abcdefgh")})

    def prompts(**selection: Any) -> list[str]:
        cfg = ExperimentConfig.model_validate(
            {"model_name": "m", "num_input_prompts": 3, "dataset": {"name": "org/letters", **selection}}
        )
        return ["".join(map(chr, p)) for p in load_prompts(cfg, CharTokenizer(), _env(tmp_path)).prompts]

    assert prompts(shuffle=False) == ["a", "b", "c"]
    shuffled = prompts(shuffle=True, seed=5)
    assert shuffled == prompts(shuffle=True, seed=5) and shuffled != prompts(shuffle=True, seed=6)
    expected = [list("abcdefgh")[i] for i in select_indices(8, 3, True, seed=5)]
    assert shuffled == expected
    assert prompts() == [list("abcdefgh")[i] for i in select_indices(8, 3, None, seed=42)]  # random_seed


def test_offline_miss_names_the_dataset_and_the_fetch_command(tmp_path: Path) -> None:
    cfg = DatasetConfig(name="gsm8k")
    assert download_patterns(cfg) == ["main/*.parquet", "main/*.jsonl"]
    assert fetch_command(cfg) == (
        "huggingface-cli download openai/gsm8k --repo-type dataset --include 'main/*.parquet' "
        "--include 'main/*.jsonl'"
    )
    assert download_patterns(DatasetConfig(name="sharegpt")) == ["ShareGPT_V3_unfiltered_cleaned_split.json"]
    with pytest.raises(DatasetError) as caught:
        load_hub_texts(cfg, _env(tmp_path))
    message = str(caught.value)
    assert "cannot read the dataset 'openai/gsm8k' (dataset.name: gsm8k)" in message
    assert fetch_command(cfg) in message and "HF_HUB_OFFLINE=1" in message
