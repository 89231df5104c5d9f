"""Traffic simulation: seeded arrival schedules, batches from arrivals and the open loop on a fake
clock, the result's traffic block, and what the config refuses. Exact numbers throughout."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

import pytest
from pydantic import ValidationError

from lem_harness.contract import EnergyMetrics, config_hash
from lem_harness.engines.arrivals import BatchPolicy, serve_in_batches, serve_open_loop, served_plan
from lem_harness.engines.base import BatchResult, Generation
from lem_harness.experiment import ExperimentConfig, TrafficSimulationConfig
from lem_harness.traffic import arrival_offsets, queue_delays, traffic_metrics, traffic_seed

ORIGIN = 100.0


class FakeClock:
    def __init__(self) -> None:
        self.now = ORIGIN
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def _config(**traffic: Any) -> ExperimentConfig:
    return ExperimentConfig.model_validate(
        {"model_name": "m", "traffic_simulation": {"enabled": True, **traffic}}
    )


# --------------------------------------------------------------------------- schedules


def test_constant_arrivals_are_one_every_one_over_qps_from_zero() -> None:
    traffic = TrafficSimulationConfig(enabled=True, mode="constant", target_qps=4.0)
    assert arrival_offsets(5, traffic, seed=0) == (0.0, 0.25, 0.5, 0.75, 1.0)


def test_poisson_arrivals_are_exponential_gaps_of_the_seeded_generator() -> None:
    # random.Random(42) draws 0.6394267984578837, 0.0250107552..., ...: first gap -ln(1 - u) / 2
    traffic = TrafficSimulationConfig(enabled=True, mode="poisson", target_qps=2.0)
    expected = (0.0, 0.5100301436374005, 0.5226945631587699, 0.6835065951962527, 0.8097996880313094)
    assert arrival_offsets(5, traffic, seed=42) == pytest.approx(expected, abs=1e-15)
    fast = TrafficSimulationConfig(enabled=True, mode="poisson", target_qps=10.0)
    assert arrival_offsets(4, fast, seed=7) == pytest.approx(
        (0.0, 0.039131484423480425, 0.05548333012402824, 0.16073289193112095), abs=1e-15
    )


def test_a_seed_always_gives_the_same_schedule_and_another_seed_another() -> None:
    traffic = TrafficSimulationConfig(enabled=True, target_qps=3.0)
    assert arrival_offsets(50, traffic, 11) == arrival_offsets(50, traffic, 11)
    assert arrival_offsets(50, traffic, 11) != arrival_offsets(50, traffic, 12)
    assert arrival_offsets(0, traffic, 11) == ()


def test_the_traffic_seed_defaults_to_the_experiment_seed() -> None:
    assert traffic_seed(_config()) == 42
    assert traffic_seed(_config(seed=9)) == 9


# --------------------------------------------------------------------------- batches from arrivals


def _batch_runner(clock: FakeClock, seconds: float, ran: list[list[int]]) -> Any:
    def run(batch: list[int]) -> BatchResult:
        ran.append(batch)
        clock.now += seconds
        return BatchResult([Generation(4, 2) for _ in batch], seconds)

    return run


def test_static_batches_wait_for_a_full_batch_or_the_last_request() -> None:
    clock, ran = FakeClock(), []
    offsets = (0.0, 1.0, 2.0, 3.0, 4.0)
    served = serve_in_batches(
        offsets, [4] * 5, BatchPolicy("static", 2), _batch_runner(clock, 0.5, ran), clock, clock.sleep
    )
    assert ran == [[0, 1], [2, 3], [4]]
    assert served.starts_s == [1.0, 1.0, 3.0, 3.0, 4.0]
    assert clock.sleeps == [1.0, 1.5, 0.5]  # until request 1, then 3, then 4 arrives
    assert queue_delays(offsets, served.starts_s) == [1.0, 0.0, 1.0, 0.0, 0.0]
    assert len(served.batches) == 3


def test_requests_that_arrived_together_still_run_batch_size_at_a_time() -> None:
    for strategy in ("static", "dynamic"):
        clock, ran = FakeClock(), []
        served = serve_in_batches(
            (0.0,) * 5, [4] * 5, BatchPolicy(strategy, 2), _batch_runner(clock, 0.5, ran), clock, clock.sleep
        )
        assert ran == [[0, 1], [2, 3], [4]]
        assert served.starts_s == [0.0, 0.0, 0.5, 0.5, 1.0]


def test_dynamic_batches_take_what_has_arrived_up_to_the_batch_size() -> None:
    clock, ran = FakeClock(), []
    offsets = (0.0, 0.5, 1.0, 1.5, 2.0, 2.5)
    served = serve_in_batches(
        offsets, [4] * 6, BatchPolicy("dynamic", 3), _batch_runner(clock, 1.25, ran), clock, clock.sleep
    )
    assert ran == [[0], [1, 2], [3, 4, 5]]
    assert served.starts_s == [0.0, 1.25, 1.25, 2.5, 2.5, 2.5]
    assert queue_delays(offsets, served.starts_s) == [0.0, 0.75, 0.25, 1.0, 0.5, 0.0]
    assert clock.sleeps == []  # the engine was never idle


def test_dynamic_batches_keep_the_padded_token_budget_in_arrival_order() -> None:
    policy = BatchPolicy("dynamic", 4, max_tokens_per_batch=12)
    lengths = [4, 4, 8, 2]
    assert policy.take(lengths, 0, 4) == [0, 1]  # a third would pad to 3 x 8 = 24 > 12
    assert policy.take(lengths, 2, 4) == [2]  # 2 x 8 = 16 > 12: the long prompt runs alone
    assert policy.take(lengths, 3, 4) == [3]
    assert policy.take(lengths, 3, 3) == []  # nothing waiting


def test_static_policy_waits_for_the_request_that_completes_the_batch() -> None:
    policy = BatchPolicy("static", 4)
    assert policy.take([1] * 10, 0, 3) == []
    assert policy.awaited(10, 0) == 3
    assert policy.awaited(10, 8) == 9  # the last, smaller batch
    assert policy.take([1] * 10, 8, 10) == [8, 9]
    assert BatchPolicy("dynamic", 4).awaited(10, 5) == 5


# --------------------------------------------------------------------------- open loop (vLLM)


class FakeStepEngine:
    """Each step takes ``step_s`` and finishes every request submitted before it."""

    def __init__(self, clock: FakeClock, step_s: float) -> None:
        self.clock, self.step_s = clock, step_s
        self.running: list[int] = []
        self.steps: list[list[int]] = []

    def submit(self, index: int) -> None:
        self.running.append(index)

    def step(self) -> None:
        self.steps.append(list(self.running))
        self.running = []
        self.clock.now += self.step_s

    def busy(self) -> bool:
        return bool(self.running)


def _open_loop(offsets: Sequence[float], step_s: float) -> tuple[list[float], FakeStepEngine, FakeClock]:
    clock = FakeClock()
    engine = FakeStepEngine(clock, step_s)
    submitted = serve_open_loop(offsets, engine.submit, engine.step, engine.busy, clock, clock.sleep)
    return submitted, engine, clock


def test_the_open_loop_sleeps_between_arrivals_when_the_engine_is_idle() -> None:
    submitted, engine, clock = _open_loop((0.0, 1.0, 2.0), 0.75)
    assert submitted == [0.0, 1.0, 2.0]
    assert engine.steps == [[0], [1], [2]]
    assert clock.sleeps == [0.25, 0.25]
    assert clock.now == ORIGIN + 2.75


def test_requests_arriving_during_a_step_are_submitted_when_it_returns() -> None:
    submitted, engine, clock = _open_loop((0.0, 0.5, 0.625), 0.75)
    assert submitted == [0.0, 0.75, 0.75]
    assert engine.steps == [[0], [1, 2]]
    assert clock.sleeps == []


# --------------------------------------------------------------------------- the result's block


def test_the_traffic_block_reports_rates_delays_and_energy_per_request() -> None:
    config = _config(mode="constant", target_qps=2.0)
    energy = EnergyMetrics(energy_source="simulated", gross_energy_j=100.0, adjusted_energy_j=60.0)
    block = traffic_metrics(config, (0.0, 0.5, 1.0, 1.5), (0.0, 1.0, 1.0, 2.5), 4.0, energy)
    assert (block.mode, block.seed, block.requests, block.target_qps) == ("constant", 42, 4, 2.0)
    assert (block.offered_qps, block.achieved_qps, block.schedule_span_s) == (2.0, 1.0, 1.5)
    # delays 0, 0.5, 0, 1.0: sorted 0, 0, 0.5, 1.0 (numpy's linear percentiles)
    assert block.queue_delay_mean_s == 0.375
    assert block.queue_delay_p50_s == 0.25
    assert block.queue_delay_p90_s == pytest.approx(0.85, abs=1e-12)
    assert block.queue_delay_p99_s == pytest.approx(0.985, abs=1e-12)
    assert block.queue_delay_max_s == 1.0
    assert (block.energy_per_request_j, block.adjusted_energy_per_request_j) == (25.0, 15.0)


def test_one_request_has_no_offered_rate_and_no_energy_gives_nulls() -> None:
    block = traffic_metrics(_config(), (0.0,), (0.5,), 2.0, None)
    assert (block.offered_qps, block.achieved_qps, block.queue_delay_max_s) == (None, 0.5, 0.5)
    assert block.energy_per_request_j is None and block.adjusted_energy_per_request_j is None


# --------------------------------------------------------------------------- config


def test_traffic_is_off_by_default_and_target_qps_must_be_positive() -> None:
    assert not ExperimentConfig(model_name="m").traffic_simulation.enabled
    with pytest.raises(ValidationError, match="greater than 0"):
        _config(target_qps=0.0)
    with pytest.raises(ValidationError, match="Extra inputs"):
        _config(qps=2.0)
    assert _config(target_qps=3).traffic_simulation.target_qps == 3.0


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"measurement": {"phase_split": True}}, "traffic_simulation with measurement.phase_split"),
        ({"streaming": True}, "traffic_simulation with streaming"),
    ],
)
def test_combinations_without_a_meaning_are_refused(changes: dict[str, Any], message: str) -> None:
    data = {"model_name": "m", "traffic_simulation": {"enabled": True}, **changes}
    with pytest.raises(ValidationError, match=message):
        ExperimentConfig.model_validate(data)
    data["traffic_simulation"] = {"enabled": False}
    ExperimentConfig.model_validate(data)  # the same settings without traffic are fine


def test_the_config_id_changes_only_when_traffic_simulation_is_set() -> None:
    plain = ExperimentConfig(model_name="m")
    # the id every configuration had before traffic_simulation existed (the golden results hold it too)
    before = ExperimentConfig.model_validate({"model_name": "m"}).model_dump(
        mode="json", exclude={"config_name", "schema_version", "traffic_simulation"}
    )
    assert (
        config_hash(plain)
        == hashlib.sha256(json.dumps(before, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:12]
    )
    assert config_hash(_config()) != config_hash(plain)
    assert config_hash(_config(target_qps=2.0)) != config_hash(_config())


def test_served_batches_map_back_to_consecutive_prompts() -> None:
    batches = [BatchResult([Generation(1, 1)] * n, 0.1) for n in (2, 3, 1)]
    assert served_plan(batches) == [[0, 1], [2, 3, 4], [5]]
