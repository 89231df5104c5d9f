"""The vLLM engine's framework-free parts: request latency from engine metrics, streamed token timing."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from lem_harness.engines.base import Generation
from lem_harness.engines.token_timing import TokenClock
from lem_harness.engines.vllm import VLLMEngine, offline_generation, request_latency_s
from lem_harness.engines.vllm_args import prefill_kwargs, sampling_kwargs
from lem_harness.experiment import ExperimentConfig


def stats(first_latency: float, first_ts: float, last_ts: float) -> SimpleNamespace:
    return SimpleNamespace(first_token_latency=first_latency, first_token_ts=first_ts, last_token_ts=last_ts)


def test_request_latency_is_ttft_plus_first_to_last_token() -> None:
    assert request_latency_s(stats(0.25, 100.0, 101.5)) == pytest.approx(1.75)


@pytest.mark.parametrize("value", [None, stats(0.0, 0.0, 0.0)])
def test_request_latency_unknown_without_engine_stats(value: object) -> None:
    assert request_latency_s(value) is None


def test_offline_generation_counts_engine_token_ids() -> None:
    output = SimpleNamespace(
        prompt_token_ids=[1, 2, 3, 4, 5],
        outputs=[SimpleNamespace(token_ids=[9, 9, 2])],
        metrics=stats(0.5, 10.0, 10.2),
    )
    gen = offline_generation(output)
    assert (gen.input_tokens, gen.output_tokens) == (5, 3)
    assert gen.output_ids == (9, 9, 2)
    assert gen.latency_s == pytest.approx(0.7)
    assert gen.ttft_s is None and gen.itl_s == ()


def test_token_clock_times_every_token_as_delivered() -> None:
    clock = TokenClock(input_tokens=7)
    clock.record(1, 10.5)
    clock.record(2, 10.75)  # two tokens in one delta: the second one's gap is 0
    clock.record(0, 10.8)  # an empty delta adds nothing
    clock.record(1, 11.0)
    gen = clock.generation(start=10.0)
    assert gen.input_tokens == 7
    assert gen.output_tokens == 4
    assert gen.ttft_s == pytest.approx(0.5)
    assert gen.latency_s == pytest.approx(1.0)
    assert gen.itl_s == pytest.approx((0.25, 0.0, 0.25))


def test_token_clock_without_tokens() -> None:
    assert TokenClock(input_tokens=3).generation(start=1.0) == Generation(input_tokens=3, output_tokens=0)


def test_one_batch_of_every_prompt() -> None:
    engine = VLLMEngine(ExperimentConfig(model_name="m", backend="vllm"))
    assert engine.plan_batches([[1], [2, 3], [4]]) == [[0, 1, 2]]
    assert engine.plan_batches([]) == []


def test_close_before_load_is_a_no_op() -> None:
    engine = VLLMEngine(ExperimentConfig(model_name="m", backend="vllm"))
    engine.close()
    engine.close()


class _FakeLLM:
    """The parts of vllm.LLM the engine touches after load: the resolved config and the cache reset."""

    def __init__(self, prefix_caching: bool) -> None:
        self.resets = 0
        self.llm_engine = SimpleNamespace(
            vllm_config=SimpleNamespace(cache_config=SimpleNamespace(enable_prefix_caching=prefix_caching))
        )

    def reset_prefix_cache(self) -> bool:
        self.resets += 1
        return True


@pytest.mark.parametrize(("caching", "expected", "resets"), [(True, True, 1), (False, None, 0)])
def test_prefix_cache_is_reset_where_the_engine_keeps_one(
    caching: bool, expected: bool | None, resets: int
) -> None:
    engine = VLLMEngine(ExperimentConfig(model_name="m", backend="vllm"))
    fake = _FakeLLM(caching)
    engine._llm = fake
    assert engine.reset_prefix_cache() is expected
    assert fake.resets == resets
    assert engine.effective_args() == {"enable_prefix_caching": caching}
    engine._llm = None  # nothing to shut down


def test_prefill_sampling_makes_exactly_one_token() -> None:
    full = sampling_kwargs(ExperimentConfig(model_name="m", backend="vllm", min_output_tokens=5))
    assert prefill_kwargs(full) == {**full, "max_tokens": 1, "min_tokens": 0, "ignore_eos": True}
