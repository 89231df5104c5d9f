"""save_outputs / decode_token_to_text: outputs.jsonl beside result.json, in prompt order, never inside it."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from lem_harness.contract import OUTPUTS_FILE, RESULT_FILE
from lem_harness.engines.base import BatchResult, Generation
from lem_harness.engines.token_timing import TokenClock
from lem_harness.experiment import ExperimentConfig
from lem_harness.outputs import in_prompt_order, output_records, write_outputs
from tests.unit.harness.test_runner import T0, FakeClock, FakeEngine, FakeTokenizer, _run, _spec


def _gen(n_in: int, ids: Sequence[int]) -> Generation:
    return Generation(n_in, len(ids), output_ids=tuple(ids))


def test_generations_return_to_prompt_order_whatever_the_batch_order() -> None:
    plan = [[2, 0], [3], [1]]  # e.g. sorted batching
    batches = [
        BatchResult([_gen(5, [20]), _gen(1, [0])], 1.0),
        BatchResult([_gen(7, [30, 31])], 1.0),
        BatchResult([_gen(3, [10])], 1.0),
    ]
    assert [g.output_ids for g in in_prompt_order(plan, batches)] == [(0,), (10,), (20,), (30, 31)]
    with pytest.raises(ValueError, match="a batch of 2 prompts returned 1 generations"):
        in_prompt_order([[0, 1]], [BatchResult([_gen(1, [1])], 1.0)])


def test_records_and_the_written_file_are_exact(tmp_path: Path) -> None:
    gens = [_gen(4, [7, 8]), _gen(2, [])]
    assert output_records(gens, None) == [
        {"index": 0, "input_tokens": 4, "output_tokens": 2, "token_ids": [7, 8]},
        {"index": 1, "input_tokens": 2, "output_tokens": 0, "token_ids": []},
    ]
    records = output_records(gens, lambda ids: "-".join(map(str, ids)) or "∅")
    assert [r["text"] for r in records] == ["7-8", "∅"]
    write_outputs(tmp_path / OUTPUTS_FILE, records)
    lines = (tmp_path / OUTPUTS_FILE).read_text(encoding="utf-8").splitlines()
    assert lines == [
        '{"index": 0, "input_tokens": 4, "output_tokens": 2, "token_ids": [7, 8], "text": "7-8"}',
        '{"index": 1, "input_tokens": 2, "output_tokens": 0, "token_ids": [], "text": "∅"}',
    ]
    assert [p.name for p in tmp_path.iterdir()] == [OUTPUTS_FILE]  # no temporary file left


def test_streamed_tokens_keep_their_ids() -> None:
    clock = TokenClock(input_tokens=3)
    clock.record(1, 1.0, [42])
    clock.record(2, 1.5, [43, 44])
    gen = clock.generation(0.5)
    assert (gen.output_tokens, gen.output_ids, gen.itl_s) == (3, (42, 43, 44), (0.5, 0.0))


def test_decode_token_to_text_needs_save_outputs() -> None:
    with pytest.raises(ValidationError, match="decode_token_to_text: true needs save_outputs: true"):
        ExperimentConfig.model_validate({"model_name": "m", "decode_token_to_text": True})


# ---- through the runner (fake engine, fake clock)


class IdEngine(FakeEngine):
    """FakeEngine whose outputs are ``first id`` repeated ``(first id % 4) + 1`` times."""

    def generate(self, prompts: Sequence[Sequence[int]]) -> BatchResult:
        batch = super().generate(prompts)
        gens = [
            Generation(g.input_tokens, g.output_tokens, g.latency_s, output_ids=(p[0],) * g.output_tokens)
            for p, g in zip(prompts, batch.generations, strict=True)
        ]
        return BatchResult(gens, batch.latency_s)

    def plan_batches(self, prompts: Sequence[Sequence[int]]) -> list[list[int]]:
        if len(prompts) == 6:  # the measured prompts, out of order (warmup's 3 keep the default)
            return [[4, 5], [0, 2], [1, 3]]
        return super().plan_batches(prompts)


class LetterTokenizer(FakeTokenizer):
    def decode(self, ids: Sequence[int]) -> str:
        return "".join(chr(ord("a") + i % 26) for i in ids)


class DecodingEngine(IdEngine):
    def load_tokenizer(self) -> LetterTokenizer:
        return LetterTokenizer()


def _outputs(tmp_path: Path) -> list[dict[str, Any]]:
    text = (tmp_path / "out" / OUTPUTS_FILE).read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines()]


def test_the_runner_writes_outputs_in_prompt_order_beside_the_result(tmp_path: Path) -> None:
    result, _ = _run(tmp_path, _spec(tmp_path, save_outputs=True), FakeClock(T0), IdEngine)
    assert result.status == "ok" and result.outputs_file == OUTPUTS_FILE
    records = _outputs(tmp_path)
    assert [r["index"] for r in records] == [0, 1, 2, 3, 4, 5]
    assert all(r["token_ids"] == [r["token_ids"][0]] * r["output_tokens"] for r in records)
    assert sum(r["output_tokens"] for r in records) == result.metrics.output_tokens  # type: ignore[union-attr]
    assert all("text" not in r for r in records)
    stored = json.loads((tmp_path / "out" / RESULT_FILE).read_text())
    assert "token_ids" not in json.dumps(stored) and stored["outputs_file"] == OUTPUTS_FILE
    assert stored["config"]["save_outputs"] is True


def test_decode_token_to_text_adds_the_text(tmp_path: Path) -> None:
    spec = _spec(tmp_path, save_outputs=True, decode_token_to_text=True)
    _run(tmp_path, spec, FakeClock(T0), DecodingEngine)
    for record in _outputs(tmp_path):
        assert record["text"] == "".join(chr(ord("a") + i % 26) for i in record["token_ids"])


def test_a_tokenizer_that_cannot_decode_leaves_a_warning_not_a_failure(tmp_path: Path) -> None:
    spec = _spec(tmp_path, save_outputs=True, decode_token_to_text=True)
    result, _ = _run(tmp_path, spec, FakeClock(T0), IdEngine)
    assert result.status == "ok" and result.outputs_file is None
    assert not (tmp_path / "out" / OUTPUTS_FILE).exists()
    assert any(
        w.startswith("outputs not written (outputs.jsonl): NotImplementedError") for w in result.warnings
    )


def test_without_save_outputs_no_file_is_written(tmp_path: Path) -> None:
    result, _ = _run(tmp_path, _spec(tmp_path), FakeClock(T0), IdEngine)
    assert result.outputs_file is None and not (tmp_path / "out" / OUTPUTS_FILE).exists()


def test_a_failed_measurement_writes_no_outputs(tmp_path: Path) -> None:
    result, _ = _run(tmp_path, _spec(tmp_path, save_outputs=True), FakeClock(T0), IdEngine, fail_on_batch=3)
    assert result.status == "failed" and result.outputs_file is None
    assert not (tmp_path / "out" / OUTPUTS_FILE).exists()
