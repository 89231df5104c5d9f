"""Traffic simulation through the vLLM and TensorRT-LLM adapters, with fake frameworks and a fake clock.

vLLM: every request goes to ``LLMEngine.add_request`` at its arrival (FINAL_ONLY outputs), the
engine is stepped between arrivals, and processing starts at submission + the engine's own queue
time (``scheduled_ts − queued_ts``). TensorRT-LLM: ``generate_async(token ids, sampling_params=…)``
at each arrival (the pinned LLM API's signature), processing starts at submission + the
executor's queue time (``first_scheduled_time − arrival_time``).
"""

from __future__ import annotations

import enum
import sys
import types
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from lem_harness.engines.base import BatchResult, Generation
from lem_harness.engines.pytorch import PyTorchEngine
from lem_harness.engines.tensorrt import TensorRTEngine, scheduler_queue_s
from lem_harness.engines.vllm import VLLMEngine, engine_queue_s
from lem_harness.experiment import ExperimentConfig

ORIGIN = 50.0


class FakeClock:
    def __init__(self) -> None:
        self.now = ORIGIN

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


# --------------------------------------------------------------------------- vLLM


class OutputKind(enum.Enum):
    CUMULATIVE = 0
    DELTA = 1
    FINAL_ONLY = 2


class FakeParams:
    def __init__(self) -> None:
        self.output_kind = OutputKind.CUMULATIVE

    def clone(self) -> FakeParams:
        return FakeParams()


class FakeLLMEngine:
    """Each step takes 0.5 s and finishes every running request; 0.125 s in the engine's queue."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.added: list[tuple[float, str, Any, Any]] = []
        self.running: list[tuple[str, Any]] = []

    def add_request(
        self, request_id: str, engine_input: Any, params: Any, arrival_time: float, lora_request: Any = None
    ) -> None:
        assert isinstance(arrival_time, float)  # its own, not the render time (request latency starts there)
        assert lora_request is None  # the config names no adapter
        self.added.append((self.clock.now - ORIGIN, request_id, engine_input, params))
        self.running.append((request_id, engine_input))

    def has_unfinished_requests(self) -> bool:
        return bool(self.running)

    def step(self) -> list[Any]:
        self.clock.now += 0.5
        done, self.running = self.running, []
        stats = SimpleNamespace(
            queued_ts=5.0,
            scheduled_ts=5.125,
            first_token_ts=5.25,
            last_token_ts=5.5,
            first_token_latency=0.375,
        )
        return [
            SimpleNamespace(
                request_id=rid,
                finished=True,
                prompt_token_ids=engine_input["ids"],
                outputs=[SimpleNamespace(token_ids=[7, 8, 9])],
                metrics=stats,
            )
            for rid, engine_input in done
        ]

    def abort_request(self, ids: list[str]) -> None:
        raise AssertionError("nothing failed")


@pytest.fixture
def fake_vllm(monkeypatch: pytest.MonkeyPatch) -> None:
    """The two vllm modules ``VLLMEngine.serve`` imports, as fakes at their import site."""
    preprocess = types.ModuleType("vllm.renderers.inputs.preprocess")
    preprocess.parse_model_prompt = lambda model_config, prompt: {"ids": prompt["prompt_token_ids"]}  # type: ignore[attr-defined]
    sampling = types.ModuleType("vllm.sampling_params")
    sampling.RequestOutputKind = OutputKind  # type: ignore[attr-defined]
    for name in ("vllm", "vllm.renderers", "vllm.renderers.inputs"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    monkeypatch.setitem(sys.modules, "vllm.renderers.inputs.preprocess", preprocess)
    monkeypatch.setitem(sys.modules, "vllm.sampling_params", sampling)


def test_vllm_adds_each_request_at_its_arrival_and_steps_between(fake_vllm: None) -> None:
    clock = FakeClock()
    engine = VLLMEngine(ExperimentConfig.model_validate({"model_name": "m", "backend": "vllm"}))
    core = FakeLLMEngine(clock)
    renderer = SimpleNamespace(default_cmpl_tok_params="tok", render_cmpl=lambda parsed, tok: list(parsed))
    engine._llm = SimpleNamespace(llm_engine=core, model_config="cfg", renderer=renderer)
    engine._params = FakeParams()

    served = engine.serve([[1, 2], [3], [4, 5, 6]], (0.0, 0.25, 1.0), clock, clock.sleep)

    # t=0: request 0, step to 0.5; request 1 (due at 0.25) goes in then; step to 1.0; request 2
    assert [(at, rid) for at, rid, _, _ in core.added] == [
        (0.0, "lem-traffic-0"),
        (0.5, "lem-traffic-1"),
        (1.0, "lem-traffic-2"),
    ]
    assert [entry[2] for entry in core.added] == [{"ids": [1, 2]}, {"ids": [3]}, {"ids": [4, 5, 6]}]
    assert all(entry[3].output_kind is OutputKind.FINAL_ONLY for entry in core.added)
    assert served.starts_s == [0.125, 0.625, 1.125]  # + 0.125 s in the engine's own queue
    [batch] = served.batches
    assert [(g.input_tokens, g.output_tokens) for g in batch.generations] == [(2, 3), (1, 3), (3, 3)]
    assert batch.generations[0].latency_s == 0.625  # 0.375 to the first token + 0.25 of decode


def test_vllm_engine_queue_time_needs_both_stamps() -> None:
    assert engine_queue_s(SimpleNamespace(queued_ts=2.0, scheduled_ts=2.5)) == 0.5
    assert engine_queue_s(SimpleNamespace(queued_ts=2.0, scheduled_ts=0.0)) == 0.0
    assert engine_queue_s(None) == 0.0


# --------------------------------------------------------------------------- TensorRT-LLM


def _trt_output(prompt: list[int]) -> Any:
    timing = SimpleNamespace(
        arrival_time=timedelta(seconds=10.0),
        first_scheduled_time=timedelta(seconds=10.25),
        first_token_time=timedelta(seconds=10.5),
        last_token_time=timedelta(seconds=11.0),
    )
    completion = SimpleNamespace(
        token_ids=[1] * 4, request_perf_metrics=SimpleNamespace(timing_metrics=timing)
    )
    return SimpleNamespace(prompt_token_ids=prompt, outputs=[completion])


class FakeTrtLLM:
    """``generate_async`` as the LLM API has it: one prompt, returns a future with ``result()``."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.calls: list[tuple[float, list[int], Any]] = []

    def generate_async(self, inputs: list[int], sampling_params: Any = None, streaming: bool = False) -> Any:
        assert not streaming
        self.calls.append((self.clock.now - ORIGIN, inputs, sampling_params))
        return SimpleNamespace(result=lambda: _trt_output(inputs))


def test_tensorrt_submits_generate_async_at_each_arrival(tmp_path: Path) -> None:
    clock = FakeClock()
    config = ExperimentConfig.model_validate(
        {"model_name": "m", "backend": "tensorrt", "traffic_simulation": {"enabled": True}}
    )
    engine = TensorRTEngine(config, cache_dir=tmp_path)
    llm = FakeTrtLLM(clock)
    engine._llm, engine._params = llm, "sampling-params"

    served = engine.serve([[1, 2], [3], [4, 5, 6]], (0.0, 0.5, 1.25), clock, clock.sleep)

    assert llm.calls == [
        (0.0, [1, 2], "sampling-params"),
        (0.5, [3], "sampling-params"),
        (1.25, [4, 5, 6], "sampling-params"),
    ]
    assert clock.now == ORIGIN + 1.25  # it slept between arrivals and nowhere else
    assert served.starts_s == [0.25, 0.75, 1.5]  # + 0.25 s until the executor first scheduled it
    [batch] = served.batches
    assert [(g.input_tokens, g.output_tokens, g.latency_s) for g in batch.generations] == [
        (2, 4, 1.0),
        (1, 4, 1.0),
        (3, 4, 1.0),
    ]


def test_tensorrt_queue_time_is_zero_without_a_schedule_stamp() -> None:
    output = _trt_output([1])
    output.outputs[0].request_perf_metrics.timing_metrics.first_scheduled_time = timedelta(0)
    assert scheduler_queue_s(output) == 0.0
    assert scheduler_queue_s(SimpleNamespace(outputs=[SimpleNamespace(request_perf_metrics=None)])) == 0.0


# --------------------------------------------------------------------------- PyTorch


def test_pytorch_batches_hold_every_processs_share_as_its_plan_does() -> None:
    clock = FakeClock()
    config = ExperimentConfig.model_validate(
        {
            "model_name": "m",
            "gpus": [0, 1],
            "pytorch": {"batch_size": 2, "num_processes": 2},
            "traffic_simulation": {"enabled": True},
        }
    )
    engine = PyTorchEngine(config)
    ran: list[list[list[int]]] = []

    def generate(prompts: Sequence[Sequence[int]]) -> BatchResult:
        ran.append([list(p) for p in prompts])
        clock.now += 0.5
        return BatchResult([Generation(len(p), 1) for p in prompts], 0.5)

    engine.generate = generate  # type: ignore[method-assign]
    served = engine.serve([[i] for i in range(6)], (0.0, 0.25, 0.5, 0.75, 1.0, 1.25), clock, clock.sleep)
    assert ran == [[[0], [1], [2], [3]], [[4], [5]]]  # 2 processes x batch_size 2, then the last
    assert served.starts_s == [0.75, 0.75, 0.75, 0.75, 1.25, 1.25]
