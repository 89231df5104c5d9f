"""The TensorRT-LLM engine's framework-free parts: where engines are cached, request metrics."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest

from lem_harness.engines import tensorrt
from lem_harness.engines.tensorrt import TensorRTEngine, engine_cache_root, perf_generation
from lem_harness.experiment import ExperimentConfig


def config(**section: object) -> ExperimentConfig:
    return ExperimentConfig.model_validate({"model_name": "m", "backend": "tensorrt", "tensorrt": section})


def test_cache_root_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tensorrt, "CONTAINER_CACHE_DIR", tmp_path / "volume")
    monkeypatch.setattr(tensorrt, "USER_CACHE_DIR", tmp_path / "home-cache")
    assert engine_cache_root(config(engine_cache_dir="/cfg/dir"), {"LEM_ENGINE_CACHE_DIR": "/env"}) == Path(
        "/cfg/dir"
    )
    assert engine_cache_root(config(), {"LEM_ENGINE_CACHE_DIR": "/env"}) == Path("/env")
    assert engine_cache_root(config(), {}) == tmp_path / "home-cache"
    (tmp_path / "volume").mkdir()
    assert engine_cache_root(config(), {}) == tmp_path / "volume"


def test_explicit_cache_dir_wins(tmp_path: Path) -> None:
    assert TensorRTEngine(config(engine_cache_dir="/ignored"), cache_dir=tmp_path).cache_root == tmp_path


def timing(arrival: float, first: float, last: float) -> SimpleNamespace:
    return SimpleNamespace(
        arrival_time=timedelta(seconds=arrival),
        first_token_time=timedelta(seconds=first),
        last_token_time=timedelta(seconds=last),
    )


def test_perf_generation_uses_request_perf_metrics() -> None:
    completion = SimpleNamespace(
        token_ids=[5, 6, 7], request_perf_metrics=SimpleNamespace(timing_metrics=timing(100.0, 100.2, 101.5))
    )
    gen = perf_generation(SimpleNamespace(prompt_token_ids=[1, 2], outputs=[completion]))
    assert (gen.input_tokens, gen.output_tokens) == (2, 3)
    assert gen.latency_s == pytest.approx(1.5)
    assert gen.output_ids == (5, 6, 7)


def test_perf_generation_without_metrics() -> None:
    completion = SimpleNamespace(token_ids=[5], request_perf_metrics=None)
    gen = perf_generation(SimpleNamespace(prompt_token_ids=[1], outputs=[completion]))
    assert (gen.output_tokens, gen.latency_s) == (1, None)


def test_one_batch_of_every_prompt(tmp_path: Path) -> None:
    engine = TensorRTEngine(config(), cache_dir=tmp_path)
    assert engine.plan_batches([[1], [2]]) == [[0, 1]]
    assert engine.plan_batches([]) == []
