"""The runner end to end with a fake engine, the simulated device and a fake clock: exact figures."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest

from lem_harness.contract import TIMELINE_COLUMNS, RunResult, RunSpec, config_hash
from lem_harness.cpus import usable_cpus
from lem_harness.devices import DeviceUnavailableError
from lem_harness.devices.simulated import SimulatedDevices
from lem_harness.engines.arrivals import BatchPolicy, Served, serve_in_batches
from lem_harness.engines.base import BatchResult, Engine, Generation, Tokenizer
from lem_harness.experiment import ExperimentConfig
from lem_harness.interrupts import InterruptGate
from lem_harness.measure.activity import CpuTimes, Snapshot
from lem_harness.runner import run

T0 = 1000.0
LOAD_S = 2.0
STEP_S = 0.25  # fake seconds per generated token step (exact in binary)


class FakeClock:
    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class FakeTokenizer(Tokenizer):
    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        return [[5] * len(t) for t in texts]

    @property
    def vocab_size(self) -> int:
        return 64

    @property
    def special_ids(self) -> frozenset[int]:
        return frozenset({0})


class FakeEngine(Engine):
    """Generates ``(first id % 4) + 1`` tokens per prompt, one fake step per token of the longest."""

    name = "fake"

    def __init__(self, config: ExperimentConfig, clock: FakeClock, fail_on_batch: int | None = None) -> None:
        super().__init__(config)
        self.clock = clock
        self.fail_on_batch = fail_on_batch
        self.generated: list[int] = []
        self.calls = 0
        self.closed = False

    def load_tokenizer(self) -> Tokenizer:
        return FakeTokenizer()

    def load(self) -> None:
        self.clock.sleep(LOAD_S)

    def plan_batches(self, prompts: Sequence[Sequence[int]]) -> list[list[int]]:
        return [list(range(i, min(i + 2, len(prompts)))) for i in range(0, len(prompts), 2)]

    def generate(self, prompts: Sequence[Sequence[int]]) -> BatchResult:
        self.calls += 1
        if self.fail_on_batch is not None and self.calls == self.fail_on_batch:
            raise RuntimeError("CUDA out of memory (fake)")
        counts = [p[0] % 4 + 1 for p in prompts]
        latency = STEP_S * max(counts)
        self.clock.sleep(latency)
        self.generated.extend(counts)
        return BatchResult([Generation(len(p), n) for p, n in zip(prompts, counts, strict=True)], latency)

    def synchronize(self) -> None:
        return None

    def close(self) -> None:
        self.closed = True

    def versions(self) -> dict[str, str]:
        return {"fakeframework": "1.2.3"}


def _spec(tmp_path: Path, **changes: Any) -> RunSpec:
    data: dict[str, Any] = {
        "model_name": "fake-model",
        "max_input_tokens": 8,
        "max_output_tokens": 4,
        "prompts": {"type": "synthetic", "sample_size": 6, "input_len": 8},
        "measurement": {"device": "simulated"},
        "timeseries": {"enabled": False},  # no sampler thread: every clock read is the fake clock's
        "baseline": {"method": "cache", "duration_seconds": 5.0},
        "warmup": {"mode": "fixed", "min_prompts": 0, "max_prompts": 3},
    }
    data.update(changes)
    config = ExperimentConfig.model_validate(data)
    return RunSpec(
        run_id="fake-c01",
        config_id=config_hash(config),
        config_name="fake",
        config=config,
        baseline_cache_dir=str(tmp_path / "baseline-cache"),
    )


def _run(
    tmp_path: Path, spec: RunSpec, clock: FakeClock, engine_cls: type[FakeEngine] | None = None, **kw: Any
) -> tuple[RunResult, FakeEngine]:
    engines: list[FakeEngine] = []

    def factory(config: ExperimentConfig) -> Engine:
        engines.append((engine_cls or FakeEngine)(config, clock, **kw))
        return engines[0]

    result = run(
        spec,
        tmp_path / "out",
        clock=clock,
        wall=lambda: clock.now + 1.7e9,
        sleep=clock.sleep,
        engine_factory=factory,
        env={},
        activity=lambda devices: None,  # /proc on this shared machine is not the test's subject
    )
    return result, engines[0]


def test_energy_tokens_and_phases_are_exact(tmp_path: Path) -> None:
    clock = FakeClock(T0)
    result, engine = _run(tmp_path, _spec(tmp_path), clock)
    assert result.status == "ok", result.error
    curve = SimulatedDevices(clock=clock, origin_s=T0)  # the same deterministic curve, same origin

    phases = {p.name: p for p in result.phases}
    assert list(phases) == ["baseline", "load", "warmup", "ready_idle", "measure"]
    assert phases["baseline"].end_s - phases["baseline"].start_s == pytest.approx(5.0, abs=1e-9)
    assert result.setup.load_duration_s == LOAD_S
    assert result.setup.load_energy_j == pytest.approx(
        curve.energy_between(T0 + phases["load"].start_s, T0 + phases["load"].end_s), rel=1e-12
    )

    m, e = result.metrics, result.energy
    assert m is not None and e is not None
    measured = engine.generated[-6:]  # the warmup's 2 batches (3 prompts) came first
    assert m.output_tokens == sum(measured)
    assert (m.num_prompts, m.num_batches, m.input_tokens) == (6, 3, 48)
    window = phases["measure"]
    assert e.window_duration_s == window.end_s - window.start_s
    batches = zip(measured[::2], measured[1::2], strict=True)
    assert e.window_duration_s == pytest.approx(sum(STEP_S * max(pair) for pair in batches), rel=1e-12)
    assert e.energy_source == "simulated"
    assert e.gross_energy_j is not None and e.window_duration_s is not None
    assert e.gross_energy_j == pytest.approx(
        curve.energy_between(T0 + window.start_s, T0 + window.end_s), rel=1e-12
    )
    assert result.baseline is not None and result.baseline.idle_power_w is not None
    # adjusted energy uses the ready idle (model loaded, after warmup): the counter's mean over that span
    ready = phases["ready_idle"]
    assert ready.end_s - ready.start_s == pytest.approx(5.0, abs=1e-9)
    assert (e.idle_power_kind, result.baseline.ready_idle_power_source) == ("ready", "nvml_counter")
    assert e.idle_power_w == result.baseline.ready_idle_power_w
    assert e.idle_power_w == pytest.approx(
        curve.energy_between(T0 + ready.start_s, T0 + ready.end_s) / 5.0, rel=1e-12
    )
    assert result.baseline.idle_power_source == "nvml_counter"
    assert result.baseline.idle_power_w == pytest.approx(
        curve.energy_between(T0 + phases["baseline"].start_s, T0 + phases["baseline"].end_s) / 5.0,
        rel=1e-12,
    )
    assert e.adjusted_energy_j == pytest.approx(
        e.gross_energy_j - e.idle_power_w * e.window_duration_s, rel=1e-12
    )
    assert e.energy_per_output_token_j == pytest.approx(e.gross_energy_j / m.output_tokens, rel=1e-12)
    assert e.output_tokens_per_j == pytest.approx(m.output_tokens / e.gross_energy_j, rel=1e-12)
    assert e.integrated_energy_j is None and e.sample_coverage is None  # no sampler in this run

    assert result.warmup is not None
    assert (result.warmup.mode, result.warmup.iterations, result.warmup.prompts) == ("fixed", 2, 3)
    assert [f.code for f in result.flags] == ["SIMULATED_ENERGY", "SHORT_WINDOW"]
    assert engine.closed
    assert result.provenance is not None
    assert result.provenance.packages["fakeframework"] == "1.2.3"
    assert result.provenance.gpus[0].uuid == "GPU-SIMULATED-0"
    assert result.provenance.device_kind == "simulated"
    assert result.provenance.cpu_threads == usable_cpus()  # affinity capped by any cgroup quota


def test_idle_baseline_is_the_median_of_the_curve_over_the_baseline_span(tmp_path: Path) -> None:
    clock = FakeClock(T0)
    result, _ = _run(tmp_path, _spec(tmp_path), clock)
    curve = SimulatedDevices(clock=clock, origin_s=T0)
    assert result.baseline is not None and result.baseline.idle_power_w is not None
    # the curve rises monotonically over the first half period (5 s), so the median of evenly
    # spaced polls is the power at the span's middle, within one poll interval
    low, high = curve.power_at(T0 + 2.4), curve.power_at(T0 + 2.6)
    assert low <= result.baseline.idle_power_w <= high


def test_files_are_written_and_the_result_on_disk_equals_the_returned_one(tmp_path: Path) -> None:
    clock = FakeClock(T0)
    result, _ = _run(tmp_path, _spec(tmp_path), clock)
    on_disk = RunResult.model_validate_json((tmp_path / "out" / "result.json").read_text())
    assert on_disk == result
    with (tmp_path / "out" / "timeline.csv").open() as handle:
        assert tuple(next(csv.reader(handle))) == TIMELINE_COLUMNS
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.endswith(".tmp")]


def test_a_second_run_takes_the_baseline_from_the_cache_with_its_age(tmp_path: Path) -> None:
    clock = FakeClock(T0)
    first, _ = _run(tmp_path, _spec(tmp_path), clock)
    clock.now += 100.0
    second_start = clock.now
    second, _ = _run(tmp_path, _spec(tmp_path), clock)
    assert first.baseline is not None and second.baseline is not None
    assert second.baseline.from_cache and not first.baseline.from_cache
    assert second.baseline.idle_power_w == first.baseline.idle_power_w
    # written when the first baseline ended (T0 + 5 s), read when the second run began
    assert second.baseline.age_s == pytest.approx(second_start - (T0 + 5.0), abs=1e-6)
    assert "baseline" not in [p.name for p in second.phases]
    assert "BASELINE_FROM_CACHE" in [f.code for f in second.flags]


def test_an_engine_failure_writes_a_failed_result_and_closes_everything(tmp_path: Path) -> None:
    clock = FakeClock(T0)
    result, engine = _run(tmp_path, _spec(tmp_path), clock, fail_on_batch=3)  # the first measured batch
    assert result.status == "failed"
    assert result.error is not None
    assert (result.error.type, result.error.message) == ("RuntimeError", "CUDA out of memory (fake)")
    assert engine.closed
    assert result.metrics is None and result.energy is None
    assert [p.name for p in result.phases] == ["baseline", "load", "warmup", "ready_idle"]
    saved = json.loads((tmp_path / "out" / "result.json").read_text())
    assert saved["status"] == "failed" and saved["error"]["type"] == "RuntimeError"


def test_without_a_sensor_energy_is_null_and_flagged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_nvml(*args: object) -> object:
        raise DeviceUnavailableError("NVML library not found")

    monkeypatch.setattr("lem_harness.devices.nvml.open_nvml", no_nvml)
    clock = FakeClock(T0)
    result, _ = _run(tmp_path, _spec(tmp_path, measurement={"device": "auto"}), clock)
    assert result.status == "ok"
    e = result.energy
    assert e is not None and e.energy_source == "none"
    assert (e.gross_energy_j, e.adjusted_energy_j, e.idle_power_w, e.energy_per_output_token_j) == (None,) * 4
    assert result.baseline is None
    assert [f.code for f in result.flags] == ["NO_ENERGY_SENSOR", "SHORT_WINDOW"]
    assert any("no GPU energy sensor" in w for w in result.warnings)


@pytest.mark.parametrize("phase", ["generate", "close"])
def test_sigterm_in_any_phase_writes_an_interrupted_result(tmp_path: Path, phase: str) -> None:
    """The gate raises while the run executes and only records while it closes: a result either way."""
    gate = InterruptGate()
    clock = FakeClock(T0)

    class Interrupted(FakeEngine):
        def generate(self, prompts: Sequence[Sequence[int]]) -> BatchResult:
            if phase == "generate":
                gate.signal("SIGTERM")  # what the handler does when the signal lands here
            return super().generate(prompts)

        def close(self) -> None:
            if phase == "close":
                gate.signal("SIGTERM")
            super().close()

    engines: list[Interrupted] = []

    def factory(config: ExperimentConfig) -> Engine:
        engines.append(Interrupted(config, clock))
        return engines[0]

    result = run(
        _spec(tmp_path),
        tmp_path / "out",
        clock=clock,
        wall=lambda: clock.now + 1.7e9,
        sleep=clock.sleep,
        engine_factory=factory,
        env={},
        gate=gate,
    )

    saved = RunResult.model_validate_json((tmp_path / "out" / "result.json").read_text())
    assert saved == result
    assert (result.status, result.error.type if result.error else None) == ("failed", "RunInterrupted")
    assert result.error is not None and result.error.message == "received SIGTERM: the run was stopped"
    assert engines[0].closed  # the engine was closed either way
    assert (result.metrics is None) == (phase == "generate")  # interrupted mid-window: no figures


# --------------------------------------------------------------------------- measurement validity


class _PrefillEngine(FakeEngine):
    """FakeEngine with a prefix cache to reset and a prefill-only pass of one step per batch."""

    def __init__(self, config: ExperimentConfig, clock: FakeClock) -> None:
        super().__init__(config, clock)
        self.resets = 0
        self.seen: list[list[int]] = []

    def generate(self, prompts: Sequence[Sequence[int]]) -> BatchResult:
        self.seen.extend(list(p) for p in prompts)
        return super().generate(prompts)

    def generate_prefill(self, prompts: Sequence[Sequence[int]]) -> BatchResult:
        self.clock.sleep(STEP_S)
        return BatchResult([Generation(len(p), 1) for p in prompts], STEP_S)

    def reset_prefix_cache(self) -> bool | None:
        self.resets += 1
        return True


def _run_with(tmp_path: Path, spec: RunSpec, clock: FakeClock, engine: type[FakeEngine], **kw: Any) -> Any:
    made: list[FakeEngine] = []

    def factory(config: ExperimentConfig) -> Engine:
        made.append(engine(config, clock))
        return made[0]

    options: dict[str, Any] = {"env": {}, "activity": lambda devices: None, **kw}
    result = run(
        spec, tmp_path / "out", clock=clock, wall=lambda: clock.now + 1.7e9, sleep=clock.sleep,
        engine_factory=factory, **options,
    )  # fmt: skip
    return result, (made[0] if made else None)


def test_warmup_runs_on_disjoint_prompts_and_the_prefix_cache_is_reset(tmp_path: Path) -> None:
    clock = FakeClock(T0)
    result, engine = _run_with(tmp_path, _spec(tmp_path), clock, _PrefillEngine)
    assert result.status == "ok", result.error
    warm, measured = engine.seen[:3], engine.seen[3:]
    assert [len(p) for p in warm] == [8, 8, 8]
    assert not {tuple(p) for p in warm} & {tuple(p) for p in measured}
    assert result.warmup is not None
    assert (result.warmup.prompts_disjoint, result.warmup.prefix_cache_reset) == (True, True)
    assert engine.resets == 1


def test_phase_split_reports_prefill_and_decode_energy_exactly(tmp_path: Path) -> None:
    clock = FakeClock(T0)
    spec = _spec(tmp_path, measurement={"device": "simulated", "phase_split": True})
    result, engine = _run_with(tmp_path, spec, clock, _PrefillEngine)
    assert result.status == "ok", result.error
    curve = SimulatedDevices(clock=clock, origin_s=T0)
    phases = {p.name: p for p in result.phases}
    assert list(phases) == ["baseline", "load", "warmup", "ready_idle", "measure", "prefill"]
    split, e, m = result.phase_split, result.energy, result.metrics
    assert split is not None and e is not None and m is not None and e.gross_energy_j is not None
    prefill = phases["prefill"]
    prefill_j = curve.energy_between(T0 + prefill.start_s, T0 + prefill.end_s)
    assert split.prefill_duration_s == pytest.approx(3 * STEP_S, rel=1e-12)  # three batches, one step each
    assert split.prefill_output_tokens == 6
    assert split.prefill_energy_j == pytest.approx(prefill_j, rel=1e-12)
    assert split.decode_output_tokens == m.output_tokens - 6
    assert split.decode_energy_j == pytest.approx(e.gross_energy_j - prefill_j, rel=1e-12)
    assert split.decode_energy_per_output_token_j == pytest.approx(
        (e.gross_energy_j - prefill_j) / (m.output_tokens - 6), rel=1e-12
    )
    assert e.idle_power_w is not None
    assert split.prefill_adjusted_energy_j == pytest.approx(
        prefill_j - e.idle_power_w * split.prefill_duration_s, rel=1e-12
    )
    assert [f.code for f in split.prefill_flags] == ["SIMULATED_ENERGY", "SHORT_WINDOW"]
    assert engine.resets == 2  # after warmup, and between the measured window and the prefill pass


def test_phase_split_with_an_engine_without_a_prefill_pass_fails_clearly(tmp_path: Path) -> None:
    clock = FakeClock(T0)
    spec = _spec(tmp_path, measurement={"device": "simulated", "phase_split": True})
    result, _ = _run(tmp_path, spec, clock)
    assert result.status == "failed" and result.error is not None
    assert "measurement.phase_split: false" in result.error.message


class _NvmlLike(SimulatedDevices):
    """A simulated GPU that says it is NVML GPU 3 (to exercise the CUDA narrowing)."""

    kind = "nvml"

    def info(self) -> list[Any]:
        return [gpu.model_copy(update={"index": 3}) for gpu in super().info()]


def test_cuda_is_narrowed_to_the_measured_gpus_before_the_engine_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FakeClock(T0)
    monkeypatch.setattr(
        "lem_harness.runner.open_devices", lambda m, g, env, clk, **_: (_NvmlLike(clock=clk, origin_s=T0), [])
    )
    env: dict[str, str] = {"CUDA_VISIBLE_DEVICES": "0,1,2,3"}
    result, _ = _run_with(tmp_path, _spec(tmp_path, gpus=[3]), clock, FakeEngine, env=env)
    assert result.status == "ok", result.error
    assert env == {"CUDA_VISIBLE_DEVICES": "3", "CUDA_DEVICE_ORDER": "PCI_BUS_ID"}


def test_a_run_that_cannot_narrow_cuda_fails_instead_of_measuring_the_wrong_gpu(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FakeClock(T0)
    monkeypatch.setattr(
        "lem_harness.runner.open_devices", lambda m, g, env, clk, **_: (_NvmlLike(clock=clk, origin_s=T0), [])
    )
    frozen = MappingProxyType({"CUDA_VISIBLE_DEVICES": "0"})
    result, _ = _run_with(tmp_path, _spec(tmp_path, gpus=[1]), clock, FakeEngine, env=frozen)
    assert result.status == "failed" and result.error is not None
    assert "CUDA_VISIBLE_DEVICES=3" in result.error.message


class _BusyHost:
    """An activity source whose second snapshot shows another GPU process and a busy host."""

    def __init__(self) -> None:
        self.calls = 0

    def snapshot(self) -> Snapshot:
        self.calls += 1
        n = self.calls
        return Snapshot(
            cpu=CpuTimes(total=1000 * n, idle=500 * n, steal=0),
            own_jiffies=100 * n,
            load_avg_1m=7.0,
            gpu_processes={"GPU-SIMULATED-0": frozenset({1, 999})},
            own_pids=frozenset({1}),
        )


def test_a_shared_gpu_and_a_busy_host_are_flagged(tmp_path: Path) -> None:
    clock = FakeClock(T0)
    result, _ = _run_with(tmp_path, _spec(tmp_path), clock, FakeEngine, activity=lambda devices: _BusyHost())
    assert result.status == "ok", result.error
    e = result.energy
    assert e is not None and e.activity is not None
    # each window spans one step of the fake: 1000 jiffies, 500 busy, 100 of them ours
    assert e.activity.host_cpu_other_pct == pytest.approx(40.0)
    assert e.activity.gpu_other_processes == {"GPU-SIMULATED-0": 1}
    assert [f.code for f in result.flags][-2:] == ["GPU_SHARED", "HOST_BUSY"]


def test_negative_adjusted_energy_is_flagged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock(T0)
    # power falls 5 W every second: the ready idle (just before the window) is above the window's power
    falling = SimulatedDevices(
        clock=clock, origin_s=T0, idle_power_w=200.0, amplitude_w=0.0, ramp_w_per_s=-5.0
    )
    monkeypatch.setattr("lem_harness.runner.open_devices", lambda m, g, env, clk, **_: (falling, []))
    result, _ = _run(tmp_path, _spec(tmp_path), clock)
    e = result.energy
    assert e is not None and e.adjusted_energy_j is not None and e.gross_energy_j is not None
    assert e.window_duration_s is not None and e.idle_power_w is not None
    phases = {p.name: p for p in result.phases}
    ready = phases["ready_idle"]
    ready_w = falling.energy_between(T0 + ready.start_s, T0 + ready.end_s) / (ready.end_s - ready.start_s)
    assert e.idle_power_w == pytest.approx(ready_w, rel=1e-12)
    assert e.adjusted_energy_j == pytest.approx(e.gross_energy_j - ready_w * e.window_duration_s, rel=1e-12)
    assert e.adjusted_energy_j < 0
    assert "ADJUSTED_NEGATIVE" in [f.code for f in result.flags]


class TrafficEngine(FakeEngine):
    """Serves arrivals in static batches of 2 (as PyTorch does), each batch on the fake clock."""

    def serve(
        self, prompts: Sequence[Sequence[int]], offsets: Sequence[float], clock: Any, sleep: Any
    ) -> Served:
        policy = BatchPolicy("static", 2)
        lengths = [len(p) for p in prompts]
        return serve_in_batches(
            offsets, lengths, policy, lambda b: self.generate([prompts[i] for i in b]), clock, sleep
        )


def test_traffic_simulation_paces_the_window_and_reports_delays_and_energy_per_request(
    tmp_path: Path,
) -> None:
    clock = FakeClock(T0)
    traffic = {"enabled": True, "mode": "constant", "target_qps": 1.0}
    result, engine = _run(tmp_path, _spec(tmp_path, traffic_simulation=traffic), clock, TrafficEngine)
    assert result.status == "ok", result.error
    t, e, m = result.traffic, result.energy, result.metrics
    assert t is not None and e is not None and m is not None
    # arrivals at 0..5 s; each batch of two starts when its second request arrives and ends
    # within 1 s (at most 4 tokens x 0.25 s), so the third batch starts at 5 s
    last_batch = STEP_S * max(engine.generated[-2:])
    assert e.window_duration_s == pytest.approx(5.0 + last_batch, abs=1e-9)
    assert (t.requests, t.offered_qps, t.schedule_span_s) == (6, 1.0, 5.0)
    assert t.achieved_qps == pytest.approx(6 / (5.0 + last_batch), rel=1e-9)
    assert (t.queue_delay_mean_s, t.queue_delay_p50_s, t.queue_delay_max_s) == pytest.approx((0.5, 0.5, 1.0))
    assert e.gross_energy_j is not None and e.adjusted_energy_j is not None
    assert t.energy_per_request_j == pytest.approx(e.gross_energy_j / 6, rel=1e-12)
    assert t.adjusted_energy_per_request_j == pytest.approx(e.adjusted_energy_j / 6, rel=1e-12)
    assert (m.num_prompts, m.num_batches) == (6, 3)


def test_without_traffic_simulation_the_result_has_no_traffic_block(tmp_path: Path) -> None:
    result, _ = _run(tmp_path, _spec(tmp_path), FakeClock(T0))
    assert result.status == "ok" and result.traffic is None


def test_an_engine_without_traffic_support_fails_the_run_with_the_reason(tmp_path: Path) -> None:
    traffic = {"enabled": True, "target_qps": 2.0}
    result, _ = _run(tmp_path, _spec(tmp_path, traffic_simulation=traffic), FakeClock(T0))
    assert result.status == "failed" and result.error is not None
    assert result.error.type == "EngineUnavailableError"
    assert "fake engine has no traffic simulation" in result.error.message
